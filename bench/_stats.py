"""Shared helpers for the bench scripts: summaries, figures, machine facts, output.

Every speed figure is a distribution (median and p99 over many runs), printed beside the floor it
competes against when there is one, because these machines are shared and noisy: a single number
would say more about the neighbours than about treadmilld.

Each bench script builds a list of `Figure`s and calls `emit(figures, as_json=...)`: a readable
line per figure by default, one JSON document with `--json` (what `bench/run` reads).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# A bench script that cannot run because a part it measures is missing exits with this code,
# so `bench/run` can say "not measured" instead of "failed" (the automake convention for SKIP).
EXIT_NOT_AVAILABLE = 77


class PartMissingError(RuntimeError):
    """A part this benchmark measures is not importable yet; install or land it, then rerun."""


@dataclass(frozen=True, slots=True)
class Summary:
    """The distribution of one measured quantity."""

    n: int
    median: float
    p99: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        if not samples:
            raise ValueError("cannot summarise zero samples; the benchmark measured nothing")
        return cls(
            n=len(samples),
            median=statistics.median(samples),
            p99=percentile(samples, 99.0),
            minimum=min(samples),
            maximum=max(samples),
        )


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was really observed, never an interpolation."""
    if not samples:
        raise ValueError("cannot take a percentile of zero samples")
    ordered = sorted(samples)
    rank = math.ceil(pct / 100.0 * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]


@dataclass(frozen=True, slots=True)
class Figure:
    """One row of the performance table."""

    bench: str  # which script measured it, e.g. "estop"
    name: str  # what was measured, e.g. "MQTT emergency stop -> Control Point Stop"
    unit: str  # "ms", "s", "MiB", "%"...
    summary: Summary
    # Floor: the same path with treadmilld taken out, measured in the same run.
    floor_name: str | None = None
    floor_median: float | None = None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.floor_median is None or self.floor_median <= 0:
            return None
        return self.summary.median / self.floor_median

    def line(self) -> str:
        s = self.summary
        text = (
            f"{self.bench}: {self.name}: median {fmt(s.median)} {self.unit}, "
            f"p99 {fmt(s.p99)} {self.unit}, min {fmt(s.minimum)}, max {fmt(s.maximum)} "
            f"(n={s.n})"
        )
        if self.floor_median is not None:
            text += f"; floor {self.floor_name} median {fmt(self.floor_median)} {self.unit}"
            if self.ratio is not None:
                text += f", ratio {fmt_ratio(self.ratio)}"
        if self.note:
            text += f" [{self.note}]"
        return text

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        summary = Summary(**data["summary"])
        return cls(
            bench=str(data["bench"]),
            name=str(data["name"]),
            unit=str(data["unit"]),
            summary=summary,
            floor_name=data.get("floor_name"),
            floor_median=data.get("floor_median"),
            note=str(data.get("note", "")),
            extra={str(k): float(v) for k, v in dict(data.get("extra") or {}).items()},
        )


def fmt(value: float) -> str:
    """Three significant-ish digits without scientific notation for the sizes we see."""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_ratio(ratio: float) -> str:
    """Two decimals near 1 (a stop within a few per cent of its physical floor), one above."""
    return f"x{ratio:.2f}" if ratio < 2 else f"x{ratio:.1f}"


def markdown_header() -> str:
    return (
        "| Bench | Figure | n | median | p99 | min | max | floor (median) | ratio | note |\n"
        "|---|---|---:|---:|---:|---:|---:|---|---:|---|"
    )


def markdown_row(figure: Figure) -> str:
    s = figure.summary
    unit = figure.unit
    floor = (
        ""
        if figure.floor_median is None
        else f"{figure.floor_name}: {fmt(figure.floor_median)} {unit}"
    )
    ratio = "" if figure.ratio is None else fmt_ratio(figure.ratio)
    cells = [
        figure.bench,
        figure.name,
        str(s.n),
        f"{fmt(s.median)} {unit}",
        f"{fmt(s.p99)} {unit}",
        f"{fmt(s.minimum)} {unit}",
        f"{fmt(s.maximum)} {unit}",
        floor,
        ratio,
        figure.note.replace("|", "/"),
    ]
    return "| " + " | ".join(cells) + " |"


def machine_facts() -> dict[str, str]:
    """CPU model, cores, Python and OS: what a reader needs to compare figures across runs."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        fields: dict[str, str] = {}
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip().lower(), value.strip())
        # x86 says "model name"; Raspberry Pi kernels say "Model" (the board) or "Hardware".
        cpu = fields.get("model name") or fields.get("model") or fields.get("hardware") or cpu
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count() or 0),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
    }


def argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document (read by bench/run)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer iterations: a smoke run, not a measurement"
    )
    return parser


def emit(figures: Sequence[Figure], *, as_json: bool) -> None:
    if as_json:
        json.dump({"figures": [f.to_json() for f in figures]}, sys.stdout)
        sys.stdout.write("\n")
    else:
        for figure in figures:
            print(figure.line())
    sys.stdout.flush()


def not_available(reason: str) -> int:
    """Say which part is missing and return the exit code that means 'not measured'."""
    print(f"not measured: {reason}", file=sys.stderr)
    return EXIT_NOT_AVAILABLE


class Stopwatch:
    """Wall-clock milliseconds since construction (perf_counter, immune to clock steps)."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._start) * 1000.0


def quiet_logs() -> None:
    """Warnings and errors only, on stderr: stdout carries the figures (and the JSON)."""
    import logging

    import structlog

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
