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
