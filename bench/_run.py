"""Run every bench script, collect the figures, write docs/performance.md.

Our own scripts (`estop`, `timewarp`, `footprint`, `timeliness`, `history`, `state_rate`)
print JSON with `--json`. The codec and simulator scripts belong to other parts and print
readable lines: those are parsed as well as their wording allows (a line with a median, or
with a value and a unit), and their raw output is always kept in the document so nothing they
said is lost.

Exit status: 0 when every script ran (or said it could not measure because a part is missing,
exit 77: listed as "not measured"); 1 when any script failed or timed out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _stats import (
    EXIT_NOT_AVAILABLE,
    Figure,
    Summary,
    machine_facts,
    markdown_header,
    markdown_row,
)

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    speaks_json: bool
    timeout_s: float


# Order: cheap first, so a broken environment shows up fast. Timeouts sum well under 5 minutes
# of the budget; each script bounds its own iterations far below its timeout.
SCRIPTS = (
    Script("codec", speaks_json=False, timeout_s=60),
    Script("sim", speaks_json=False, timeout_s=90),
    Script("timewarp", speaks_json=True, timeout_s=60),
    Script("estop", speaks_json=True, timeout_s=150),
    Script("timeliness", speaks_json=True, timeout_s=90),
    Script("history", speaks_json=True, timeout_s=150),
    Script("footprint", speaks_json=True, timeout_s=150),
    Script("state_rate", speaks_json=True, timeout_s=150),
)


@dataclass
class Outcome:
    script: Script
    status: str  # "ok", "not measured", "failed", "missing", "timed out"
    seconds: float
    figures: list[Figure] = field(default_factory=list)
    raw: str = ""
    detail: str = ""


_NUMBER = r"(-?\d+(?:\.\d+)?)"
# A unit is the word right after the number: "ms", "us", "records/s", "%"...
_UNIT = r"\s*([A-Za-zµ%/]+)?"
_MEDIAN = re.compile(r"median[\s:=]*" + _NUMBER + _UNIT, re.IGNORECASE)
_P99 = re.compile(r"p99[\s:=]*" + _NUMBER + _UNIT, re.IGNORECASE)
_MIN = re.compile(r"\bmin[\s:=]*" + _NUMBER, re.IGNORECASE)
_MAX = re.compile(r"\bmax[\s:=]*" + _NUMBER, re.IGNORECASE)
_N = re.compile(r"\bn\s*[=:]\s*(\d+)", re.IGNORECASE)
_FLOOR = re.compile(r"floor\s+(.*?)\s+median[\s:=]*" + _NUMBER, re.IGNORECASE)
_NOTE = re.compile(r"\[(.*)\]\s*$")


def parse_foreign_line(bench: str, line: str) -> Figure | None:
    """Best effort: 'label: median 1.2 ms, p99 3.4 ms ... n=200' -> a Figure."""
    median = _MEDIAN.search(line)
    if median is None:
        return None
    label = line[: median.start()].strip(" :-,\t") or line.strip()
    label = label.removeprefix(f"{bench}:").strip()
    unit = median.group(2) or ""
    value = float(median.group(1))
    p99_match = _P99.search(line)
    p99 = float(p99_match.group(1)) if p99_match else value
    min_match = _MIN.search(line)
    max_match = _MAX.search(line)
    n_match = _N.search(line)
    floor_match = _FLOOR.search(line)
    note_match = _NOTE.search(line)
    return Figure(
        bench=bench,
        name=label,
        unit=unit,
        summary=Summary(
            n=int(n_match.group(1)) if n_match else 0,
            median=value,
            p99=p99,
            minimum=float(min_match.group(1)) if min_match else value,
            maximum=float(max_match.group(1)) if max_match else p99,
        ),
        floor_name=floor_match.group(1) if floor_match else None,
        floor_median=float(floor_match.group(2)) if floor_match else None,
        note=note_match.group(1) if note_match else "",
    )


def _figures_document(line: str) -> dict[str, Any] | None:
    """The `{"figures": [...]}` line a script printed with --json (log lines are skipped)."""
    if not line.startswith('{"figures"'):
        return None
    try:
        document = json.loads(line)
    except json.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def run_script(script: Script, *, quick: bool) -> Outcome:
    path = BENCH_DIR / f"{script.name}.py"
    if not path.exists():
        return Outcome(script, "missing", 0.0, detail=f"{path.relative_to(ROOT)} does not exist")
    command = [sys.executable, str(path)]
    if script.speaks_json:
        command.append("--json")
        if quick:
            command.append("--quick")
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=script.timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout if isinstance(exc.stdout, str) else ""
        return Outcome(
            script,
            "timed out",
            time.monotonic() - started,
            raw=raw,
            detail=f"killed after {script.timeout_s:.0f} s",
        )
    seconds = time.monotonic() - started
    stdout = done.stdout
    stderr_tail = "\n".join(done.stderr.strip().splitlines()[-15:])
    figures: list[Figure] = []
    if script.speaks_json:
        for line in stdout.splitlines():
            document = _figures_document(line)
            if document is not None:
                figures.extend(Figure.from_json(item) for item in document["figures"])
    else:
        for line in stdout.splitlines():
            parsed = parse_foreign_line(script.name, line)
            if parsed is not None:
                figures.append(parsed)
    if done.returncode == 0:
        return Outcome(script, "ok", seconds, figures, raw=stdout, detail=stderr_tail)
    if done.returncode == EXIT_NOT_AVAILABLE:
        return Outcome(script, "not measured", seconds, figures, raw=stdout, detail=stderr_tail)
    return Outcome(
        script,
        "failed",
        seconds,
        figures,
        raw=stdout,
        detail=f"exit {done.returncode}\n{stderr_tail}",
    )


def render(outcomes: list[Outcome], *, quick: bool) -> str:
    facts = machine_facts()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance",
        "",
        "Generated by `bench/run` (do not edit by hand; rerun it). Every speed figure is a median"
        " and p99 over many runs; where a floor is shown it is the same path with treadmilld"
        " taken out, measured in the same run, and the ratio is median / floor median.",
        "",
        f"- Date: {now}" + (" (quick smoke run: too few iterations to quote)" if quick else ""),
        f"- CPU: {facts['cpu']}, {facts['cores']} cores",
        f"- Python: {facts['python']}",
        f"- OS: {facts['os']}",
        "",
        "## Figures",
        "",
        markdown_header(),
    ]
    lines.extend(markdown_row(f) for o in outcomes for f in o.figures)
    lines += [
        "",
        "## Scripts",
        "",
        "| Script | Status | Wall time | Detail |",
        "|---|---|---:|---|",
    ]
    for o in outcomes:
        detail = o.detail.strip().splitlines()[-1] if o.detail.strip() else ""
        if o.status == "ok":
            detail = ""
        lines.append(
            f"| bench/{o.script.name}.py | {o.status} | {o.seconds:.1f} s | "
            f"{detail.replace('|', '/')} |"
        )
    foreign = [o for o in outcomes if not o.script.speaks_json and o.raw.strip()]
    if foreign:
        lines += ["", "## Raw output of scripts from other parts", ""]
        for o in foreign:
            lines += [f"`bench/{o.script.name}.py`:", "", "```", o.raw.rstrip(), "```", ""]
    lines += [
        "",
        "## How each figure is measured",
        "",
        "- **estop**: the whole daemon in one process, in real time, with simulated treadmills"
        " in three deceleration classes of the deck (`deceleration_kmh_per_s` 1.0, 0.5 and"
        " 0.25; more treadmills in the slower classes, which take longer per stop), each"
        " walking a forward profile at 3.0 km/h. Once a belt runs steadily at 3.0 km/h (read from"
        " the simulator's model), plus a random wait of up to one Treadmill Data period, a bare"
        " aiomqtt client publishes an emergency stop (QoS 1) to"
        " `<base>/<id>/request/emergency_stop`; every figure is timed from that publish: to the"
        " Stop request reaching the deck's Control Point (its control listener); to the reply"
        " on `response/emergency_stop` (its `belt` values are counted in the note); to measured"
        " standstill, the first Treadmill Data record with speed 0 that the deck sends after the"
        " Stop (read on the simulator side: each treadmill's `model.treadmill_data()`, which the"
        " GATT server calls for every Treadmill Data notification, is wrapped); and to the"
        " daemon's `stop_confirmed` event on `<id>/event`. One emergency stop is in flight at a"
        " time (its publish -> reply window holds a lock that start commands also take); other"
        " treadmills keep streaming data and starting meanwhile. Each treadmill starts a new"
        " stop cycle only while it fits in the window (`--seconds`, 65 s by default): slower"
        " classes get fewer stops per treadmill, and with n under 100 p99 is the maximum."
        " Floors, in the same run: a bare publish->receive hop and a bare round"
        " trip (request -> echo client -> reply) through the same broker, a bare `BleakClient`"
        " Control Point write -> arrival / -> indication on the same simulator. Ratios: Stop at"
        " the deck against the MQTT hop + GATT write->arrival, the reply against the MQTT round"
        " trip + GATT write->indication, standstill and `stop_confirmed` against the physical"
        " floor, the belt speed at the publish / the deck's deceleration, which nothing can"
        " beat. The first zero record comes up to one data period (1 s at 1 Hz) after the belt"
        " stops; `stop_confirmed` needs records at or below 0.1 km/h for"
        " 1 s, at least two (`treadmilld/engine/belt.py`).",
        "- **timewarp**: wall time to run a 45-minute profile against the simulated treadmill on"
        " a `VirtualTimeEventLoop`, through the real client and engine.",
        "- **footprint**: the daemon (`treadmilld run`) as a subprocess with 1 and 8 simulated"
        " treadmills running profiles, at 1 Hz and 4 Hz Treadmill Data: resident memory (VmRSS)"
        " and CPU share (utime+stime over wall time, 100 % = one core) sampled after warm-up;"
        " cold start = spawn to `READY=1` on a NOTIFY_SOCKET we bind.",
        "- **timeliness**: 8 simulated treadmills run the same interval profile at once in real"
        " time (real client and engine, one process). Each ramp's end in the plan is a planned"
        " write of the ramp's final speed; lateness = when that Set Target Speed reached the"
        " treadmill minus the workout's start plus the ramp's planned end (negative = early,"
        " by up to one engine tick). The first ramp, which includes starting the belt, is"
        " reported apart.",
        "- **history**: setpoint lateness as in timeliness, without and with every workout"
        " recorded (`WorkoutRecorder` through the daemon's `HistoryWriter` into SQLite, WAL,"
        " synchronous=FULL), and their ratio; a 45-minute interval workout run in virtual time"
        " on the simulator with its recorder's writes taken down, then made in order on a real"
        " SQLite file: each write's wall time (one a second in the daemon) and the total; that"
        " file's growth per workout hour.",
        "- **state_rate**: the whole daemon in one process, in real time, against a throwaway"
        " mosquitto, with 8 simulated treadmills sending Treadmill Data at 1 Hz: 4 connected and"
        " idle, 4 walking the built-in `forward-walk` (the window opens 3 s after every one of"
        " their belts is measured moving). A bare aiomqtt client subscribed to `<base>/+/state`"
        " counts each treadmill's state publications over one 60 s window (the retained copy"
        " a subscription starts with is not counted); each treadmill is one sample, scaled to"
        " a minute. The note gives how often the engine announced a state change"
        " (`StateChanged`, on every Treadmill Data record and every phase change) in the same"
        " window: what a bridge publishing on every announcement would send. Rounding and the"
        " publish-on-change rule are in docs/mqtt.md.",
        "- **codec**, **sim**: measured by those parts' own scripts (see their raw output).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark; write docs/performance.md")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument(
        "--only", action="append", default=[], help="run only this script (repeatable)"
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "docs" / "performance.md", help="Markdown file"
    )
    args = parser.parse_args()
    outcomes: list[Outcome] = []
    for script in SCRIPTS:
        if args.only and script.name not in args.only:
            continue
        print(f"bench/{script.name}.py ...", flush=True)
        outcome = run_script(script, quick=args.quick)
        outcomes.append(outcome)
        print(f"  {outcome.status} in {outcome.seconds:.1f} s", flush=True)
        for figure in outcome.figures:
            print(f"  {figure.line()}", flush=True)
        if outcome.status not in ("ok",) and outcome.detail:
            print("  " + outcome.detail.replace("\n", "\n  "), flush=True)
    args.output.write_text(render(outcomes, quick=args.quick), encoding="utf-8")
    print(f"wrote {args.output}")
    failed = [o for o in outcomes if o.status in ("failed", "timed out")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
