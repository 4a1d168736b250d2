"""Row-wise functors (softmax family) on a block of rows ``z`` (R, N).

    forward(z, mask, y)          # y = f(z) per row
    backward(y, dy, mask, dx)    # vector-Jacobian product from the output

``mask`` is None or a bool (R, N) array (True = keep).  Masked entries are
left out of every max/sum/sort; their outputs and gradients are 0, and a fully
masked row is all 0 (docs/semantics.md).  All in compute precision.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

FORWARD: dict[str, Callable] = {}
BACKWARD: dict[str, Callable] = {}


def _register(table, name):
    def deco(fn):
        table[name] = fn
        return fn

    return deco


def _masked(z, mask, fill):
    return z if mask is None else np.where(mask, z, fill)


def _shifted_exp(z, mask, y):
    """y = exp(z - rowmax) (0 where masked); returns the row sums (R, 1)."""
    zm = _masked(z, mask, -np.inf)
    m = zm.max(axis=1, keepdims=True)
    if mask is not None:
        m[~mask.any(axis=1, keepdims=True)] = 0.0  # fully masked row: nothing to shift
    np.subtract(zm, m, out=y)
    np.exp(y, out=y)
    return y.sum(axis=1, keepdims=True), m


@_register(FORWARD, "softmax")
def softmax_fwd(z, mask, y):
    total, _ = _shifted_exp(z, mask, y)
    if mask is not None:
        total[total == 0] = 1.0  # fully masked: 0 / 1 = 0
    # sum >= 1 (the max contributes exp(0)), so one reciprocal per row is safe and
    # a multiply is cheaper than a divide per element
    np.divide(1.0, total, out=total)
    np.multiply(y, total, out=y)
    if mask is not None:  # stay 0 even when NaN/inf in the unmasked part poisons the row
        np.copyto(y, 0.0, where=~mask)


@_register(FORWARD, "softmin")
def softmin_fwd(z, mask, y):
    softmax_fwd(np.negative(z), mask, y)


@_register(FORWARD, "log_softmax")
def log_softmax_fwd(z, mask, y):
    total, m = _shifted_exp(z, mask, y)
    np.log(total, out=total)
    np.subtract(_masked(z, mask, -np.inf), m, out=y)
    np.subtract(y, total, out=y)
    if mask is not None:
        y[~mask] = 0.0


@_register(FORWARD, "sparsemax")
def sparsemax_fwd(z, mask, y):
    zm = _masked(z, mask, -np.inf)
    # sparsemax is shift invariant: shift each row to max 0 so that tau keeps the precision
    # of the values near the top even for huge logits
    top = zm.max(axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    zm = zm - top
    srt = -np.sort(-zm, axis=1)  # descending; masked -inf go last
    csum = np.cumsum(srt, axis=1)
    k = np.arange(1, z.shape[1] + 1, dtype=z.dtype)
    support = 1.0 + k * srt > csum  # true on a prefix of the sorted row
    support[:, 0] = srt[:, 0] > -np.inf  # the largest is always in it (1 + z > z can round false)
    kz = support.sum(axis=1, keepdims=True)
    idx = np.maximum(kz - 1, 0)
    tau = (np.take_along_axis(csum, idx, axis=1) - 1.0) / np.maximum(kz, 1)
    tau[kz == 0] = np.inf  # fully masked row: all outputs 0
    np.subtract(zm, tau, out=y)
    np.maximum(y, 0.0, out=y)
    # NaN or +inf anywhere in the (unmasked) row, or a row of only -inf, is all NaN (as softmax)
    bad = np.isnan(zm).any(axis=1) | np.isposinf(zm).any(axis=1)
    keep = np.ones_like(zm, bool) if mask is None else mask
    bad |= keep.any(axis=1) & np.all(np.isneginf(zm) | ~keep, axis=1)
    y[bad] = np.nan
    if mask is not None:
        np.copyto(y, 0.0, where=~mask)


def _zero_masked(a, mask):
    return a if mask is None else np.where(mask, a, 0.0)


@_register(BACKWARD, "softmax")
def softmax_bwd(y, dy, mask, dx):
    dy = _zero_masked(dy, mask)
    dot = (dy * y).sum(axis=1, keepdims=True)
    np.subtract(dy, dot, out=dx)
    np.multiply(dx, y, out=dx)
    if mask is not None:
        np.copyto(dx, 0.0, where=~mask)


@_register(BACKWARD, "softmin")
def softmin_bwd(y, dy, mask, dx):
    softmax_bwd(y, dy, mask, dx)
    np.negative(dx, out=dx)


@_register(BACKWARD, "log_softmax")
def log_softmax_bwd(y, dy, mask, dx):
    dy = _zero_masked(dy, mask)
    p = _zero_masked(np.exp(y), mask)  # softmax; masked y is 0, not -inf
    total = dy.sum(axis=1, keepdims=True)
    np.multiply(p, total, out=dx)
    np.subtract(dy, dx, out=dx)
    if mask is not None:
        dx[~mask] = 0.0


@_register(BACKWARD, "sparsemax")
def sparsemax_bwd(y, dy, mask, dx):
    support = (y > 0).astype(y.dtype)
    count = support.sum(axis=1, keepdims=True)
    mean = (dy * support).sum(axis=1, keepdims=True) / np.maximum(count, 1.0)
    np.subtract(dy, mean, out=dx)
    np.multiply(dx, support, out=dx)
    bad = np.isnan(y).any(axis=1)
    dx[bad] = np.nan
    if mask is not None:
        np.copyto(dx, 0.0, where=~mask)
