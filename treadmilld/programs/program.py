"""The program format: TOML files validated by strict pydantic models, like profiles.

A program is an ordered list of stages. Each stage names a profile of the profile library, the
sessions a week it asks for, the rule to advance to the next stage and the rule to step back to
the previous one. docs/programs.md describes the format for people writing programs; the
progression itself is in `treadmilld/programs/progression.py`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from treadmilld.engine.profile_models import PROFILE_NAME_PATTERN
from treadmilld.engine.toml_files import FileIssue, FileProblemsError, TomlFormat

# Effort and pain are reported on 0-10 scales (issue 15, item 5), so thresholds live there too.
MAX_SCORE = 10
# A program longer than this is a typo or a generated file; the seed's starter has five stages.
MAX_STAGES = 20
# Weekly targets as profiles allow them (`Profile.sessions_per_week`, 1 to 14).
MAX_SESSIONS_PER_WEEK = 14
# A window longer than a year would count sessions nobody remembers.
MAX_WINDOW_DAYS = 366
# Clinical programs keep the incline at 0 % for the first two sessions: the "Clinical / first 2
# sessions" column of the default safety limits (retro-walking reference, section 4).
CLINICAL_NO_INCLINE_SESSIONS = 2


@dataclass(frozen=True, slots=True)
class ProgramIssue(FileIssue):
    """One problem with one program file: where, what, and how to fix it. The `field` is as
    written, e.g. "stages[2].advance.max_pain", or "(toml)" for syntax errors."""


class ProgramError(FileProblemsError[ProgramIssue]):
    """A program file is invalid; `issues` lists every problem found, each with a hint."""

    noun = "program"


class ProgramRulesError(ProgramError):
    """Raised inside validation for rules across fields; each issue names its own field, so
    the loader only fills in the file."""


class AdvanceRule(BaseModel):
    """Advance when `sessions` sessions of this stage, each run to its end (no abort, no stop)
    and each reported at effort <= `max_effort` and pain <= `max_pain`, started within
    `within_days` days of each other."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sessions: int = Field(ge=1, le=100)
    within_days: int = Field(ge=1, le=MAX_WINDOW_DAYS)
    max_effort: int = Field(ge=0, le=MAX_SCORE)
    max_pain: int = Field(ge=0, le=MAX_SCORE)


class StepBackRule(BaseModel):
    """Step back to the previous stage when the rider reports pain above `pain_above`, or, with
    `on_safety_abort`, when a session ends in a safety abort (`is_safety_abort`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Pain is 0-10, so above 10 could never happen: 9 is the loosest rule that can fire.
    pain_above: int = Field(ge=0, le=MAX_SCORE - 1)
    on_safety_abort: bool = True


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = Field(pattern=PROFILE_NAME_PATTERN)
    sessions_per_week: int = Field(ge=1, le=MAX_SESSIONS_PER_WEEK)
    # None on the last stage only: there is nothing to advance to.
    advance: AdvanceRule | None = None
    step_back: StepBackRule
    note: str | None = Field(default=None, min_length=1, max_length=500)


class Program(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=PROFILE_NAME_PATTERN)
    title: str = Field(min_length=1, max_length=100)
    description: str = Field(min_length=1)
    sources: list[str] = Field(min_length=1)
    # Advancing needs a therapist's confirm, and the first sessions are held at 0 % incline.
    clinical: bool = False
    stages: list[Stage] = Field(min_length=1, max_length=MAX_STAGES)

    @model_validator(mode="after")
    def _stages_lead_somewhere(self) -> Program:
        issues = stage_rule_issues(self.stages, file=f"program {self.name!r}")
        if issues:
            raise ProgramRulesError(issues)
        return self

    def max_incline_pct_for_session(self, session_number: int) -> float | None:
        """The highest incline the start path may allow in the rider's `session_number`-th
        session of this program (1 for the first), or None when the program sets no cap of its
        own (the safety limits still apply). Clinical programs: 0 % in sessions 1 and 2."""
        if session_number < 1:
            raise ValueError(f"session numbers start at 1, not {session_number}; count from 1")
        if self.clinical and session_number <= CLINICAL_NO_INCLINE_SESSIONS:
            return 0.0
        return None


def stage_rule_issues(stages: Sequence[Stage], *, file: str) -> list[ProgramIssue]:
    """Rules across a stage's fields and across stages: every stage but the last can be left
    forward, the last has nowhere to advance to, an advance rule can be met at the stage's own
    weekly target, and no pain that advances also steps back."""
    issues: list[ProgramIssue] = []
    last = len(stages) - 1
    for index, stage in enumerate(stages):
        here = f"stages[{index}]"
        rule = stage.advance
        if rule is None:
            if index != last:
                issues.append(
                    ProgramIssue(
                        file,
                        f"{here}.advance",
                        f"stage {index} has no advance rule, so the rider never reaches the "
                        f"{last - index} stage(s) after it",
                        "add [stages.advance] with sessions, within_days, max_effort and "
                        "max_pain, or remove the stages after it",
                    )
                )
            continue
        if index == last:
            issues.append(
                ProgramIssue(
                    file,
                    f"{here}.advance",
                    "the last stage has no next stage to advance to",
                    "remove [stages.advance] from the last stage, or add a stage after it",
                )
            )
        weeks_needed = math.ceil(rule.sessions / stage.sessions_per_week)
        # Sessions spread over `weeks_needed` calendar weeks lie less than that many weeks
        # apart, however the rider places them in each week.
        if weeks_needed * 7 > rule.within_days:
            issues.append(
                ProgramIssue(
                    file,
                    f"{here}.advance.within_days",
                    f"at {stage.sessions_per_week} session(s) a week, {rule.sessions} sessions "
                    f"take {weeks_needed} week(s), more than the {rule.within_days}-day window "
                    "holds, so a rider on target may never advance",
                    f"set within_days to at least {weeks_needed * 7} "
                    f"(sessions_per_week {stage.sessions_per_week}), or lower sessions",
                )
            )
        if stage.step_back.pain_above < rule.max_pain:
            issues.append(
                ProgramIssue(
                    file,
                    f"{here}.step_back.pain_above",
                    f"pain {stage.step_back.pain_above + 1} to {rule.max_pain} would count "
                    "towards advancing and step back at the same time",
                    f"set pain_above to at least {rule.max_pain} (advance.max_pain), or lower "
                    "advance.max_pain",
                )
            )
    return issues


def profile_reference_issues(
    program: Program, profile_names: Collection[str], *, file: str
) -> list[ProgramIssue]:
    """Each stage's profile must be in the profile library (`profile_names`): checked when a
    program loads and again whenever the profile library reloads."""
    issues: list[ProgramIssue] = []
    known = sorted(profile_names)
    for index, stage in enumerate(program.stages):
        if stage.profile in profile_names:
            continue
        close = difflib.get_close_matches(stage.profile, known, n=1)
        suggestion = f"did you mean {close[0]!r}? " if close else ""
        issues.append(
            ProgramIssue(
                file,
                f"stages[{index}].profile",
                f"no profile named {stage.profile!r} in the profile library",
                f"{suggestion}use one of: {', '.join(known) or 'none (the library is empty)'}; "
                "or add the profile first",
            )
        )
    return issues


# ---------------------------------------------------------------------------------------------
# Loading, with every error of a file collected and explained: `engine/toml_files.py` reads
# programs as it reads profiles; `PROGRAM_FORMAT` holds what is a program's own.

PROGRAM_FORMAT = TomlFormat(
    root=Program,
    issue=ProgramIssue,
    error=ProgramError,
    docs="docs/programs.md",
    models_by_key={"stages": Stage, "advance": AdvanceRule, "step_back": StepBackRule},
    hints={
        "model_type": "write a table, e.g. [stages.advance] followed by its fields",
        "string_pattern_mismatch": "use lowercase letters, digits and dashes, e.g. my-program",
        "too_long": "shorten the list",
        "string_too_long": "shorten the text",
    },
)


def parse_program(
    text: str,
    *,
    file: str,
    expected_name: str | None = None,
    profile_names: Collection[str] | None = None,
) -> Program:
    """Parse and validate one program; raises `ProgramError` listing every problem. With
    `profile_names`, every stage's profile must be one of them."""
    program = PROGRAM_FORMAT.parse(text, file=file)
    issues = PROGRAM_FORMAT.misnamed(program.name, file=file, expected_name=expected_name)
    if profile_names is not None:
        issues.extend(profile_reference_issues(program, profile_names, file=file))
    if issues:
        raise ProgramError(issues)
    return program


def load_program(path: Path, profile_names: Collection[str] | None = None) -> Program:
    """Load `path`; the program's name must match the file name (without `.toml`)."""
    text = PROGRAM_FORMAT.read_text(path)
    return parse_program(text, file=str(path), expected_name=path.stem, profile_names=profile_names)
