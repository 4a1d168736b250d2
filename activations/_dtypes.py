"""Floating dtypes the package accepts, and how each is computed.

float16 and bfloat16 are loaded and stored as such and computed in float32;
float32 and float64 are computed in their own precision.  bfloat16 is the
``ml_dtypes`` NumPy dtype (the one CuPy uses too); without ml_dtypes it is
simply not offered.
"""
from __future__ import annotations

import numpy as np

try:  # ml_dtypes is a small dependency, but keep the package usable without it
    import ml_dtypes as _ml_dtypes

    BFLOAT16: np.dtype | None = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - exercised only without ml_dtypes
    BFLOAT16 = None

FLOAT16 = np.dtype(np.float16)
FLOAT32 = np.dtype(np.float32)
FLOAT64 = np.dtype(np.float64)

#: dtype -> short name used in kernel entry points and reports
SHORT_NAMES: dict[np.dtype, str] = {FLOAT16: "f16", FLOAT32: "f32", FLOAT64: "f64"}
if BFLOAT16 is not None:
    SHORT_NAMES[BFLOAT16] = "bf16"

SUPPORTED: tuple[np.dtype, ...] = tuple(SHORT_NAMES)


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The precision the math runs in for arrays of ``dtype``."""
    return FLOAT64 if np.dtype(dtype) == FLOAT64 else FLOAT32


def short_name(dtype: np.dtype) -> str:
    return SHORT_NAMES[np.dtype(dtype)]


def from_name(name: str) -> np.dtype:
    """'float32', 'f32', 'bfloat16', 'bf16', ... -> dtype (ValueError if unknown)."""
    for dt, short in SHORT_NAMES.items():
        if name in (short, dt.name):
            return dt
    valid = ", ".join(dt.name for dt in SUPPORTED)
    raise ValueError(f"unknown dtype {name!r}; valid: {valid}")


def check_supported(dtype, what: str = "x") -> np.dtype:
    """Return ``dtype`` if it is a supported float type, else raise TypeError saying what to do."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{what} has dtype {dtype!r}, which is not a NumPy dtype") from exc
    if dt in SHORT_NAMES:
        return dt
    valid = ", ".join(d.name for d in SUPPORTED)
    if dt.kind in "biuc" or dt == np.dtype(bool):
        kind = {"b": "bool", "i": "integer", "u": "integer", "c": "complex"}[dt.kind]
        raise TypeError(
            f"{what} has {kind} dtype {dt.name}; activations need a floating array "
            f"({valid}): cast first, e.g. x.astype('float32')"
        )
    raise TypeError(f"{what} has unsupported dtype {dt.name}; supported: {valid}")
