"""What every Home Assistant discovery config of the daemon is made of: an object id unique
per site, and a template reading one field of the JSON state.
"""

from __future__ import annotations

import re

_NOT_SLUG = re.compile(r"[^a-z0-9_]+")


def node_id(base_topic: str, treadmill_id: str) -> str:
    """A discovery object id unique per site: `treadmilld_tm01`, `gym_north_treadmilld_tm01`."""
    return _NOT_SLUG.sub("_", f"{base_topic}_{treadmill_id}".lower()).strip("_")


def value_template(field: str) -> str:
    """`{{ value_json.<field> }}`: the field as the state has it (`None` renders as HA's
    unknown)."""
    return "{{ value_json." + field + " }}"
