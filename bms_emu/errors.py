"""Errors shared by the pure models and the config layer (no dependencies)."""

from __future__ import annotations

from typing import Any

__all__ = ["FieldProblem"]


class FieldProblem(ValueError):
    """A value problem about one key (``key`` is a dotted path below the object raising it).

    Raised by validators of config objects and by ``__post_init__`` of the pure models' spec
    dataclasses, so config errors can say ``ntc.sensor_cells: got [16]: ...`` instead of blaming
    the whole mapping.
    """

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{key}: got {value!r}: {allowed}")


def check_spec_fields(spec: Any, positive: tuple[str, ...] = ()) -> None:
    """Validate a spec dataclass: every ``*sigma*`` field >= 0 and the ``positive`` fields > 0.

    Raises :class:`FieldProblem` naming the first bad field.
    """
    for name in getattr(spec, "__dataclass_fields__", {}):
        value = getattr(spec, name)
        if "sigma" in name and not value >= 0:
            raise FieldProblem(name, value, "a spread must be >= 0")
    for name in positive:
        value = getattr(spec, name)
        if not value > 0:
            raise FieldProblem(name, value, "must be > 0")
