"""The one exception the FTMS codec raises."""

from __future__ import annotations


class CodecError(ValueError):
    """Bytes (or a value) that the FTMS codec cannot decode (or encode).

    The message names the characteristic and shows the offending bytes as hex, so a log line is
    enough to reproduce the problem. Callers drop the notification and keep going.
    """

    def __init__(self, characteristic: str, problem: str, data: bytes | None = None) -> None:
        message = f"{characteristic}: {problem}"
        if data is not None:
            message += f" [bytes: {data.hex(' ') if data else 'none'}]"
        super().__init__(message)
        self.characteristic = characteristic
        self.problem = problem
        self.data = data
