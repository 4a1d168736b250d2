"""FP8 output (docs/semantics.md, "FP8 output"): the formats, the validated request, the amax
layout, and the NumPy port of the conversion of ``kernels/fp8.cuh``.

``apply(name, x, out_dtype=float8_e4m3fn | float8_e5m2, scale=s, amax=..., rounding=..., seed=...)``
writes ``saturate(round(f(x) * s))`` and returns :class:`Quantized` ``(values, amax)``.
"""
from __future__ import annotations

import functools
import math
import numbers
import operator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import _dtypes


class Quantized(NamedTuple):
    """What ``apply(..., out_dtype=<fp8>)`` returns: the FP8 values and amax = max |f(x)| (before
    the scale) as float32, over the tensor (shape ()), each row or each group of 128."""

    values: Any
    amax: Any


@dataclass(frozen=True)
class Format:
    """One FP8 format as kernels/fp8.cuh's fp8::spec (code: its ``format`` argument)."""

    dtype: np.dtype
    code: int
    mant: int
    emin: int
    max_code: int
    nan_code: int

    @property
    def largest(self) -> float:
        return float(np.array(self.max_code, np.uint8).view(self.dtype).astype(np.float64))


#: the FP8 format names (formats() holds their records)
FORMAT_NAMES: tuple[str, ...] = ("float8_e4m3fn", "float8_e5m2")


@functools.cache
def formats() -> dict[str, Format]:
    """The FP8 formats by name.  ml_dtypes is imported here, at the first FP8 request: its import
    takes most of a second on some machines, which every other call of the package would pay."""
    import ml_dtypes

    return {
        "float8_e4m3fn": Format(np.dtype(ml_dtypes.float8_e4m3fn), 0, 3, -6, 0x7E, 0x7F),
        "float8_e5m2": Format(np.dtype(ml_dtypes.float8_e5m2), 1, 2, -14, 0x7B, 0x7E),
    }
AMAX_MODES: tuple[str, ...] = ("tensor", "row", "group")
ROUNDINGS: tuple[str, ...] = ("nearest", "stochastic")
GROUP = 128  # elements of an amax group along the last axis
NOISE_KEY = 0xA0761D6478BD642F  # fp8::kNoiseKey: the rounding noise is hash(seed ^ NOISE_KEY, i)


@dataclass(frozen=True)
class Request:
    """A validated FP8 output request.  ``scale`` is already in the compute precision of x."""

    format: Format
    scale: float
    amax: str
    stochastic: bool
    seed: int  # the user's seed (0 for nearest)

    @property
    def noise_seed(self) -> int:
        return (self.seed ^ NOISE_KEY) & 0xFFFFFFFFFFFFFFFF

    @property
    def mode(self) -> int:
        return AMAX_MODES.index(self.amax)

    def amax_shape(self, out_shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.amax == "tensor":
            return ()
        if self.amax == "row":
            return out_shape[:-1]
        return out_shape[:-1] + (-(-out_shape[-1] // GROUP),)

    def segments(self, out_shape: tuple[int, ...]) -> tuple[int, int]:
        """(cols, groups per row) of the kernels' amax segments (fp8::Sink)."""
        cols = max(1, out_shape[-1]) if out_shape else 1
        return cols, (-(-cols // GROUP) if self.amax == "group" else 1)


def format_of(out_dtype: Any, what: str = "out_dtype") -> Format:
    """The FP8 format named by ``out_dtype`` (a type, dtype or name); TypeError otherwise."""
    name = out_dtype if isinstance(out_dtype, str) else None
    if name is None:
        try:
            name = np.dtype(out_dtype).name
        except TypeError:
            name = getattr(out_dtype, "__name__", None) or str(out_dtype)
    name = str(name).replace("torch.", "")
    if name not in FORMAT_NAMES:
        raise TypeError(
            f"{what} must be ml_dtypes.float8_e4m3fn or ml_dtypes.float8_e5m2 (a type, dtype or their "
            f"names), got {out_dtype!r}"
        )
    return formats()[name]


def request(record_name: str, x_dtype: np.dtype, out_dtype: Any, scale: Any, amax: Any, rounding: Any,
            seed: Any) -> Request:
    """Validate the FP8 arguments of one call (ValueError / TypeError naming the argument)."""
    fmt = format_of(out_dtype)
    if scale is None:
        scale = 1.0
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{record_name}(): scale must be a real number, got {type(scale).__name__} {scale!r:.40}")
    cdt = _dtypes.compute_dtype(x_dtype)
    with np.errstate(over="ignore", under="ignore"):
        s = float(np.asarray(float(scale), np.float64).astype(cdt))
    if not (math.isfinite(float(scale)) and float(scale) > 0 and math.isfinite(s) and s > 0):
        raise ValueError(
            f"{record_name}(): scale must be finite and > 0 in {np.dtype(cdt).name} (the precision {x_dtype} "
            f"input is computed in), got {scale!r}"
        )
    amax = "tensor" if amax is None else amax
    if not isinstance(amax, str) or amax not in AMAX_MODES:
        raise ValueError(f"{record_name}(): amax must be one of {', '.join(map(repr, AMAX_MODES))}, got {amax!r}")
    rounding = "nearest" if rounding is None else rounding
    if not isinstance(rounding, str) or rounding not in ROUNDINGS:
        raise ValueError(f"{record_name}(): rounding must be 'nearest' or 'stochastic', got {rounding!r}")
    stochastic = rounding == "stochastic"
    if stochastic:
        if seed is None:
            raise ValueError(f"{record_name}(): rounding='stochastic' needs seed= (an int)")
        if isinstance(seed, (bool, np.bool_)):
            raise TypeError(f"{record_name}(): seed must be an int, got bool")
        try:
            seed = operator.index(seed)
        except TypeError:
            raise TypeError(f"{record_name}(): seed must be an int, got {type(seed).__name__} {seed!r:.40}") from None
        if not 0 <= seed < 2**64:
            raise ValueError(f"{record_name}(): seed must be in [0, 2**64), got {seed}")
    else:
        seed = 0
    return Request(fmt, s, amax, stochastic, int(seed))


def as_format(codes: Any, fmt: Format) -> Any:
    """uint8 codes as the format's dtype where the array library has it (NumPy; CuPy has no FP8
    dtype: its results stay uint8 arrays holding the FP8 bit patterns)."""
    try:
        return codes.view(fmt.dtype)
    except (TypeError, ValueError):
        return codes


# ------------------------------------------------------------------ NumPy port
_U = np.uint64


def encode(v: np.ndarray, fmt: Format, noise: np.ndarray | None = None) -> np.ndarray:
    """kernels/fp8.cuh's fp8::encode over a float64 array (the codes as uint8), formula for
    formula; ``noise`` (uint64, v's shape) selects stochastic rounding."""
    b = np.ascontiguousarray(v, np.float64).view(np.uint64)
    sign = ((b >> _U(63)) << _U(7)).astype(np.uint64)
    a = b & _U(0x7FFFFFFFFFFFFFFF)
    e = (a >> _U(52)).astype(np.int64) - 1023
    mant = a & _U(0x000FFFFFFFFFFFFF)
    sub = e == -1023
    e = np.where(sub, -1022, e)
    mant = np.where(sub, mant, mant | _U(1 << 52))
    shift = 52 - fmt.mant + np.maximum(0, fmt.emin - e)
    small = shift <= 63
    sh = np.minimum(shift, 63).astype(np.uint64)
    kept = np.where(small, mant >> sh, _U(0))
    one = _U(1) << sh
    rem = mant & (one - _U(1))
    if noise is None:
        half = one >> _U(1)
        up = small & ((rem > half) | ((rem == half) & ((kept & _U(1)) == _U(1))))
    else:
        noise = np.asarray(noise, np.uint64)
        r = noise >> (_U(64) - np.where(small, sh, _U(1)))
        up_small = (rem != _U(0)) & (rem >= one - r)
        deep = np.minimum(np.maximum(shift - 63, 0), 63).astype(np.uint64)
        up_tiny = (shift < 127) & ((noise >> _U(1)) < (mant >> deep))
        up = np.where(small, up_small, up_tiny)
    base = np.where(e >= fmt.emin, (np.maximum(e - fmt.emin, 0).astype(np.uint64) << _U(fmt.mant)), _U(0))
    code = np.minimum(base + kept + up.astype(np.uint64), _U(fmt.max_code))
    code = np.where(a == 0, _U(0), code)
    code = np.where(a > _U(0x7FF0000000000000), _U(fmt.nan_code), code)
    return (sign | code).astype(np.uint8)


def amax_of(r: np.ndarray, req: Request, out_shape: tuple[int, ...]) -> np.ndarray:
    """max |r| as float32 over the request's segments, NaN propagated (r has out_shape)."""
    mag = np.abs(np.asarray(r).astype(np.float32, copy=False)).reshape(out_shape)
    shape = req.amax_shape(out_shape)
    if req.amax == "tensor":
        return np.asarray(mag.max() if mag.size else 0.0, np.float32).reshape(())
    if req.amax == "row":
        if mag.size == 0:
            return np.zeros(shape, np.float32)
        return mag.max(axis=-1, initial=0.0).astype(np.float32)
    n = out_shape[-1]
    pad = shape[-1] * GROUP - n
    padded = np.concatenate([mag, np.zeros(out_shape[:-1] + (pad,), np.float32)], axis=-1) if pad else mag
    grouped = padded.reshape(shape + (GROUP,))
    return grouped.max(axis=-1, initial=0.0).astype(np.float32) if grouped.size else np.zeros(shape, np.float32)
