"""The lazy bridge to `treadmilld_sim`: imported only when a simulated treadmill is wanted, so
a gym's install never needs Bumble."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from treadmilld.app.settings import ConfigError, TreadmillSettings, describe_problems

SIM_MISSING_HINT = (
    "simulated treadmills need the treadmilld-sim package: in a clone of the repository run "
    "`uv sync` (it is a workspace member); otherwise `pip install 'treadmilld[sim]'`"
)


def import_simulator() -> Any:
    """The `treadmilld_sim` module, or a ConfigError telling the user what to install."""
    try:
        import treadmilld_sim  # noqa: PLC0415 - lazily, only for simulated treadmills
    except ImportError as error:
        raise ConfigError(SIM_MISSING_HINT) from error
    return treadmilld_sim


def simulated_config(index: int, treadmill: TreadmillSettings) -> Any:
    """The treadmill's `simulated = {...}` table as a `SimulatedTreadmillConfig`."""
    simulator = import_simulator()
    values = dict(treadmill.simulated or {})
    # The advertised name: readable in a scan, and unique per treadmill by default.
    values.setdefault("name", f"SIM-{treadmill.id.upper()}"[:29])
    try:
        return simulator.SimulatedTreadmillConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(
            f"treadmill {treadmill.id!r} has a bad simulated table:\n"
            + describe_problems(error, prefix=f"treadmills[{index}].simulated")
        ) from None
