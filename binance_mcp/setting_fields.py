"""What a setting's pydantic field says about itself: its variables, bounds, choices, default as the docs show it,
and its meaning, for the generated docs, ``--help`` and the out-of-range messages (settings.py)."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import AliasChoices
from pydantic.fields import FieldInfo


def _extra(field: FieldInfo) -> dict[str, Any]:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def env_names(field: FieldInfo) -> list[str]:
    """The variables of a setting, the first one its own, the others read too."""
    alias = field.validation_alias
    return [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else []


def _bound(field: FieldInfo, key: str) -> float | None:
    return next((getattr(m, key) for m in field.metadata if getattr(m, key, None) is not None), None)


def _bounds(field: FieldInfo) -> str | None:
    """What a bounded setting accepts, for its out-of-range message (every bounded setting is in seconds)."""
    low, high = _bound(field, "ge"), _bound(field, "le")
    if _extra(field).get("bounds") or low is None:
        return _extra(field).get("bounds")
    return f"between {low:g} and {high:g} seconds" if high is not None else f"{low:g} or more"


def _choices(field: FieldInfo) -> str:
    values = [str(v) for v in get_args(field.annotation)]
    return ", ".join(values[:-1]) + " or " + values[-1] if len(values) > 1 else "".join(values)


def _shown(field: FieldInfo) -> str:
    if "shown" in _extra(field):
        return _extra(field)["shown"]
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _meaning(field: FieldInfo) -> str:
    names = env_names(field)
    also = f" ({', '.join(names[1:])} is read too)" if names[1:] else ""
    low, high = _bound(field, "ge"), _bound(field, "le")
    limits = f" ({low:g} to {high:g})" if low is not None and high is not None else ""
    return f"{field.description}{limits}{also}"
