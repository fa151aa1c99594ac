"""Golden plans: the planner's output for every built-in profile, committed as JSON.

Regenerate after a deliberate planner or profile change, then review the diff:
    uv run --frozen python -m tests.engine.golden_plans
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import LimitSet, SafetyLimits, effective_limits
from treadmilld.engine.planner import plan_workout

GOLDEN_DIR = Path(__file__).parent / "golden"

# name of the golden file -> (profile, limits it is planned under)
CASES: dict[str, tuple[str, SafetyLimits]] = {
    **{
        name: (name, SafetyLimits())
        for name in (
            "p1-starter-a",
            "p1-starter-b",
            "p1-starter-c",
            "p2-retro-core",
            "p3-knee-oa",
            "p4-neuro-gait",
            "p5-uphill-retro",
            "p6-backward-jog",
            "p7-post-op-knee",
            "forward-walk",
            "hr-zone-retro",
        )
    },
    "p6-backward-jog.jog-unlocked": (
        "p6-backward-jog",
        SafetyLimits(general=LimitSet(backward_jog_unlocked=True)),
    ),
}


def planned(case: str) -> dict[str, Any]:
    name, limits = CASES[case]
    profile = ProfileLibrary().get(name)
    plan = plan_workout(
        profile, effective_limits(limits, clinical=profile.clinical, profile=profile.limits)
    )
    return plan.to_json_dict()


def golden_path(case: str) -> Path:
    return GOLDEN_DIR / f"{case}.json"


def main() -> None:
    GOLDEN_DIR.mkdir(exist_ok=True)
    for case in CASES:
        golden_path(case).write_text(json.dumps(planned(case), indent=1) + "\n")


if __name__ == "__main__":
    main()
