"""Sub-populations of per-device parameter objects."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["PerDevice"]

T = TypeVar("T", bound="PerDevice")


class PerDevice:
    """Mixin for dataclasses whose array fields lead with the device axis.

    ``take(idx)`` returns the same kind of object for devices ``idx`` (an index array, a slice
    or a boolean mask); scalar fields are kept as they are.
    """

    def take(self: T, idx: ArrayLike | slice) -> T:
        """Sub-population ``idx``."""
        sub: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and value.ndim >= 1:
                sub[f.name] = value[idx]
        return dataclasses.replace(self, **sub)  # type: ignore[type-var]
