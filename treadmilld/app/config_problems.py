"""What is wrong with a configuration, worded for people: one line per pydantic problem with
the field's dotted path, what is wrong and what to do, and "did you mean" for a misspelt key.

Used for the config file and environment (`treadmilld.app.settings`), a simulated treadmill's
or heart-rate strap's table (`treadmilld.app.simulation`) and the demo's command-line flags
(`treadmilld.app.demo`).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError


def describe_problems(
    error: ValidationError, *, prefix: str = "", model: type[BaseModel] | None = None
) -> str:
    """`  - field: what is wrong; what to do`, one line per problem, fields under `prefix`.
    With the `model` that was validated, a misspelt key gets "did you mean" its closest
    neighbour."""
    lines = []
    for problem in error.errors(include_url=False):
        field = _dotted([prefix, *problem["loc"]] if prefix else problem["loc"])
        known = known_keys(model, problem["loc"]) if model is not None else []
        lines.append(f"  - {field}: {explain_problem(problem, known=known)}")
    return "\n".join(lines)


def _members(annotation: Any) -> list[Any]:
    """The types an annotation may hold: `X | None`, `Annotated[X, ...]` unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _is_model(candidate: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, BaseModel)


def known_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys allowed where the last item of `loc` stands (an unknown key's neighbours),
    found by walking `model`'s fields along `loc`; [] when the place is not a model."""
    current: list[Any] = [model]
    for item in loc[:-1]:
        models = [m for m in current if _is_model(m)]
        if isinstance(item, int):
            current = [
                arg
                for m in current
                if typing.get_origin(m) in (list, tuple, Sequence)
                for arg in _members(typing.get_args(m)[0])
            ]
        elif any(item in m.model_fields for m in models):
            owner = next(m for m in models if item in m.model_fields)
            current = _members(owner.model_fields[item].annotation)
        elif any(m.__name__ == item for m in models):
            current = [m for m in models if m.__name__ == item]  # a union member's tag
        else:
            current = models  # a validator's tag in the location (e.g. "function-after[...]")
    return sorted({name for m in current if _is_model(m) for name in m.model_fields})


def _dotted(loc: Sequence[int | str]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts) or "(top level)"


def explain_problem(problem: Mapping[str, Any], *, known: Sequence[str] = ()) -> str:
    """What is wrong with one value and what to do, from one pydantic error entry; `known`
    are the keys allowed beside an unknown one (for "did you mean")."""
    kind = problem.get("type", "")
    message = str(problem.get("msg", "invalid value"))
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    if kind == "extra_forbidden":
        loc = problem.get("loc") or ("",)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        if close:
            return f"unknown setting; did you mean {close[0]!r}? (docs/configuration.md lists all)"
        return "unknown setting; remove it or fix its spelling (docs/configuration.md lists all)"
    if kind == "missing":
        return "required; add it"
    given = problem.get("input")
    if kind and kind not in ("value_error", "assertion_error") and not isinstance(given, dict):
        return f"{message} (got {given!r}); see docs/configuration.md"
    return message
