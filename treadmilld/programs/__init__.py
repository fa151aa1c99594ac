"""Programs: stages of profiles a rider moves through (docs/programs.md)."""

from treadmilld.programs.library import (
    ProgramLibrary,
    ProgramReload,
    UnknownProgramError,
    builtin_programs_dir,
)
from treadmilld.programs.program import (
    CLINICAL_NO_INCLINE_SESSIONS,
    AdvanceRule,
    Program,
    ProgramError,
    ProgramIssue,
    Stage,
    StepBackRule,
    load_program,
    parse_program,
)

__all__ = [
    "CLINICAL_NO_INCLINE_SESSIONS",
    "AdvanceRule",
    "Program",
    "ProgramError",
    "ProgramIssue",
    "ProgramLibrary",
    "ProgramReload",
    "Stage",
    "StepBackRule",
    "UnknownProgramError",
    "builtin_programs_dir",
    "load_program",
    "parse_program",
]
