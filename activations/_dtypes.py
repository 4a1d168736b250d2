"""Floating dtypes the package accepts, and how each is computed.

float16 and bfloat16 are loaded and stored as such and computed in float32;
float32 and float64 are computed in their own precision.  bfloat16 is the
``ml_dtypes`` NumPy dtype (the one CuPy uses too); without ml_dtypes it is
simply not offered.
"""
from __future__ import annotations

import numpy as np

FLOAT16 = np.dtype(np.float16)
FLOAT32 = np.dtype(np.float32)
FLOAT64 = np.dtype(np.float64)
_STANDARD: dict[np.dtype, str] = {FLOAT16: "f16", FLOAT32: "f32", FLOAT64: "f64"}
#: float16, float32, float64 in native byte order (bfloat16 is checked apart: see is_bfloat16)
NATIVE_FLOATS = frozenset(_STANDARD)
_LAZY = ("BFLOAT16", "SHORT_NAMES", "SUPPORTED")


def _bfloat16() -> np.dtype | None:
    try:  # ml_dtypes is a small dependency, but keep the package usable without it
        import ml_dtypes
    except ImportError:  # pragma: no cover - exercised only without ml_dtypes
        return None
    return np.dtype(ml_dtypes.bfloat16)


def __getattr__(name: str):
    # BFLOAT16 (the ml_dtypes dtype, None without ml_dtypes), SHORT_NAMES (dtype -> short name used
    # in kernel entry points and reports) and SUPPORTED: made on first use, because importing
    # ml_dtypes takes a second or more (an array of bfloat16 means it was imported already).
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    bf16 = _bfloat16()
    short = dict(_STANDARD)
    if bf16 is not None:
        short[bf16] = "bf16"
    globals().update(BFLOAT16=bf16, SHORT_NAMES=short, SUPPORTED=tuple(short))
    return globals()[name]


def is_bfloat16(dtype) -> bool:
    """Is ``dtype`` ml_dtypes' bfloat16 (without importing ml_dtypes when it cannot be)."""
    return getattr(dtype, "name", None) == "bfloat16" and dtype == __getattr__("BFLOAT16")


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The precision the math runs in for arrays of ``dtype``."""
    return FLOAT64 if np.dtype(dtype) == FLOAT64 else FLOAT32


def short_name(dtype: np.dtype) -> str:
    dt = np.dtype(dtype)
    return _STANDARD.get(dt) or __getattr__("SHORT_NAMES")[dt]


def from_name(name: str) -> np.dtype:
    """'float32', 'f32', 'bfloat16', 'bf16', ... -> dtype (ValueError if unknown)."""
    for dt, short in __getattr__("SHORT_NAMES").items():
        if name in (short, dt.name):
            return dt
    valid = ", ".join(dt.name for dt in __getattr__("SUPPORTED"))
    raise ValueError(f"unknown dtype {name!r}; valid: {valid}")


def check_supported(dtype, what: str = "x") -> np.dtype:
    """Return ``dtype`` if it is a supported float type, else raise TypeError saying what to do."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{what} has dtype {dtype!r}, which is not a NumPy dtype") from exc
    if dt in _STANDARD or is_bfloat16(dt):
        return dt
    valid = ", ".join(d.name for d in __getattr__("SUPPORTED"))
    if dt.kind in "biuc" or dt == np.dtype(bool):
        kind = {"b": "bool", "i": "integer", "u": "integer", "c": "complex"}[dt.kind]
        raise TypeError(
            f"{what} has {kind} dtype {dt.name}; activations need a floating array "
            f"({valid}): cast first, e.g. x.astype('float32')"
        )
    raise TypeError(f"{what} has unsupported dtype {dt.name}; supported: {valid}")
