"""The one shape of a refusal the engine answers with: a machine-readable `code` and a
message a person can act on, shared by refused commands and refused profile uploads."""

from __future__ import annotations


class RefusedError(Exception):
    """Something asked of the engine was refused and changed nothing. `code` is
    machine-readable (snake_case); `message` says what to do instead."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
