"""Row-wise activations (softmax, log_softmax, softmin, sparsemax) against the oracle.

Any axis, masks (where=), special rows (inf, NaN, huge logits), invariants,
16-bit inputs accumulated in float32, out=, bias, layouts, and the backward
by directional finite differences.
"""
from __future__ import annotations

import numpy as np
import pytest

import activations
import reference as R

ROWWISE = activations.names("rowwise")
PROBABILITIES = ("softmax", "softmin", "sparsemax", "entmax15", "entmax")  # rows sum to 1


def cases(names=ROWWISE, dtypes=R.DTYPES):
    return [pytest.param(n, dt, id=f"{n}-{dt.name}") for n in names for dt in dtypes]


def check(name, x, dtype, backend, what, axis=-1, where=None, rng=None, bias=None):
    """Forward and backward against the oracle; returns (y, dx)."""
    kw = {} if where is None else {"where": where}
    if bias is not None:
        kw["bias"] = bias
    y = activations.apply(name, x, axis=axis, backend=backend, **kw)
    assert y.dtype == x.dtype and y.shape == x.shape, f"{name} {what}: got {y.shape} {y.dtype}"
    R.assert_close(y, R.forward(name, x, axis=axis, **kw), dtype, what=f"forward, {what}, axis={axis}")
    rng = rng or np.random.default_rng(0)
    dy = R.random_cotangent(rng, x.shape, dtype)
    g = activations.grad(name, x, dy, axis=axis, backend=backend, **kw)
    exp = R.backward(name, x, dy, axis=axis, **kw)
    if bias is not None:
        dx, db = g
        R.assert_close(db, R.dbias(exp), dtype, what=f"dbias, {what}, axis={axis}")
    else:
        dx = g
    assert dx.dtype == x.dtype and dx.shape == x.shape
    R.assert_close(dx, exp, dtype, what=f"backward, {what}, axis={axis}")
    return y, dx


# --------------------------------------------------------------- random rows
@pytest.mark.parametrize("name,dtype", cases())
def test_random_rows(name, dtype, rng, backend):
    x = R.random_inputs(rng, (5, 1029), name, dtype)
    check(name, x, dtype, backend, "random (5, 1029)", rng=rng)


@pytest.mark.parametrize("name,dtype", cases())
def test_row_lengths(name, dtype, rng, backend):
    for n in (1, 2, 3, 31, 33, 1023, 1025):
        x = R.random_inputs(rng, (3, n), name, dtype)
        check(name, x, dtype, backend, f"row length {n}", rng=rng)
    check(name, R.random_inputs(rng, 17, name, dtype), dtype, backend, "1-D", rng=rng)


@pytest.mark.parametrize("name,dtype", cases())
def test_every_axis_of_3d(name, dtype, rng, backend):
    x = R.random_inputs(rng, (3, 4, 5), name, dtype)
    for axis in (0, 1, 2, -1, -2, -3):
        check(name, x, dtype, backend, "3-D", axis=axis, rng=rng)


@pytest.mark.parametrize("name,dtype", cases())
def test_non_contiguous(name, dtype, rng, backend):
    base = R.random_inputs(rng, (8, 12), name, dtype)
    for label, x in {"transposed": base.T, "strided": base[::2, 1::2], "reversed": base[::-1, ::-1]}.items():
        for axis in (-1, 0):
            check(name, x, dtype, backend, label, axis=axis, rng=rng)


@pytest.mark.slow
@pytest.mark.parametrize("name", ROWWISE)
def test_many_rows_cross_blocks(name, rng, backend):
    # 700 rows of 61: more than one 32 Ki block of rows
    x = R.random_inputs(rng, (700, 61), name, R.F32)
    check(name, x, R.F32, backend, "(700, 61)", rng=rng)
    check(name, x, R.F32, backend, "(700, 61)", axis=0, rng=rng)


# ----------------------------------------------------------------- invariants
@pytest.mark.parametrize("name,dtype", cases())
def test_invariants(name, dtype, rng, backend):
    x = R.random_inputs(rng, (6, 50), name, dtype)
    y = activations.apply(name, x, backend=backend).astype(np.float64)
    rtol = R.tolerance(dtype)[0]
    if name in PROBABILITIES:
        assert (y >= 0).all() and (y <= 1).all(), f"{name} ({dtype.name}): outside [0, 1]: {y.min()}, {y.max()}"
        sums = y.sum(axis=-1)
        np.testing.assert_allclose(sums, 1.0, rtol=0, atol=50 * rtol, err_msg=f"{name} ({dtype.name}): rows do not sum to 1")
    else:
        assert (y <= 0).all(), f"log_softmax ({dtype.name}) above 0: {y.max()}"
        lse = np.log(np.exp(y).sum(axis=-1))
        np.testing.assert_allclose(lse, 0.0, atol=50 * rtol, err_msg=f"log_softmax ({dtype.name}): logsumexp(y) != 0")
    for n in (1, 7, 64):  # a constant row is uniform
        c = R.cast(np.full((2, n), 2.5), dtype)
        yc = activations.apply(name, c, backend=backend).astype(np.float64)
        want = -np.log(n) if name == "log_softmax" else 1.0 / n
        np.testing.assert_allclose(yc, want, rtol=2 * rtol, err_msg=f"{name} ({dtype.name}): constant row of {n}")


@pytest.mark.parametrize("dtype", [R.F16, R.F32, R.F64], ids=["float16", "float32", "float64"])
def test_large_logits(dtype, backend):
    # max-subtracted: exp(1000) would overflow
    x = np.array([1000.0, 1001.0], dtype)
    y = activations.apply("softmax", x, backend=backend).astype(np.float64)
    np.testing.assert_allclose(y, [0.2689414213699951, 0.7310585786300049], rtol=R.tolerance(dtype)[0])
    y = activations.apply("softmin", -x, backend=backend).astype(np.float64)
    np.testing.assert_allclose(y, [0.2689414213699951, 0.7310585786300049], rtol=R.tolerance(dtype)[0])
    y = activations.apply("log_softmax", np.array([1.0, 1000.0, -np.inf], dtype), backend=backend).astype(np.float64)
    assert y[2] == -np.inf, f"log_softmax([1, 1000, -inf])[2] = {y[2]}"
    np.testing.assert_allclose(y[:2], [-999.0, 0.0], rtol=R.tolerance(dtype)[0], atol=0)


@pytest.mark.parametrize("name,dtype", cases())
def test_special_rows(name, dtype, backend):
    rows = [
        [1.0, np.inf, 2.0, 0.5],  # +inf: NaN row (torch, JAX)
        [-np.inf, -np.inf, -np.inf, -np.inf],  # nothing but -inf: NaN row
        [1.0, np.nan, 2.0, 0.5],  # NaN anywhere: NaN row
        [0.0, -np.inf, 1.0, -np.inf],  # some -inf: those entries drop out
        [3.0, 3.0, 3.0, 3.0],
        [60000.0, -60000.0, 0.0, 1.0],
    ]
    x = R.cast(rows, dtype)
    y = activations.apply(name, x, backend=backend)
    R.assert_close(y, R.forward(name, x), dtype, what="special rows")
    dy = R.cast(np.tile([1.0, -0.5, 0.25, 2.0], (len(rows), 1)), dtype)
    dx = activations.grad(name, x, dy, backend=backend)
    R.assert_close(dx, R.backward(name, x, dy), dtype, what="special rows")
    y64 = y.astype(np.float64)
    if name != "softmin":  # softmin sees -x: its NaN rows are the -inf ones
        assert np.isnan(y64[:3]).all(), f"{name} ({dtype.name}): rows with +inf / all -inf / NaN must be NaN: {y64[:3]}"
    if name in ("softmax", "sparsemax", "entmax15"):
        assert y64[3, 1] == 0 and y64[3, 3] == 0
    if name == "log_softmax":
        assert y64[3, 1] == -np.inf and y64[3, 3] == -np.inf


# ------------------------------------------------------------------ where=
@pytest.mark.parametrize("name,dtype", cases())
def test_where_mask(name, dtype, rng, backend):
    x = R.random_inputs(rng, (6, 9), name, dtype)
    mask = rng.random((6, 9)) < 0.7
    mask[2] = False  # a fully masked row
    mask[3] = [True] + [False] * 8  # one entry left
    y, dx = check(name, x, dtype, backend, "random mask", where=mask, rng=rng)
    y64, dx64 = y.astype(np.float64), dx.astype(np.float64)
    assert (y64[~mask] == 0).all(), f"{name} ({dtype.name}): masked outputs must be 0, got {y64[~mask]}"
    assert (dx64[~mask] == 0).all(), f"{name} ({dtype.name}): masked gradients must be 0"
    assert (y64[2] == 0).all() and (dx64[2] == 0).all(), f"{name}: a fully masked row gives 0 and dx 0"
    if name in PROBABILITIES:
        np.testing.assert_allclose(y64[[0, 1, 3, 4, 5]].sum(-1), 1.0, atol=50 * R.tolerance(dtype)[0])
    # masked entries are left out of max and sum: NaN and inf there change nothing
    xb = x.copy()
    xb[~mask] = R.cast(np.where(rng.random((~mask).sum()) < 0.5, np.nan, np.inf), dtype)
    yb = activations.apply(name, xb, where=mask, backend=backend)
    np.testing.assert_array_equal(yb.astype(np.float64), y64, err_msg=f"{name}: masked NaN/inf leaked into the row")


@pytest.mark.parametrize("name,dtype", cases())
def test_where_broadcasts(name, dtype, rng, backend):
    x = R.random_inputs(rng, (4, 6), name, dtype)
    for mask in (rng.random(6) < 0.6, rng.random((1, 6)) < 0.6, rng.random((4, 1)) < 0.6):
        check(name, x, dtype, backend, f"mask of shape {mask.shape}", where=mask, rng=rng)
    cube = R.random_inputs(rng, (3, 4, 5), name, dtype)
    check(name, cube, dtype, backend, "3-D, axis 0, mask", axis=0, where=rng.random((3, 4, 5)) < 0.6, rng=rng)


def test_where_masked_log_softmax_is_zero_not_minus_inf(backend):
    y = activations.apply("log_softmax", np.array([1.0, 2.0, 3.0]), where=np.array([True, False, True]), backend=backend)
    assert y[1] == 0.0
    np.testing.assert_allclose(y[[0, 2]], [1 - np.logaddexp(1, 3), 3 - np.logaddexp(1, 3)], rtol=1e-14)


# ---------------------------------------------------------------- sparsemax
SPARSEMAX_EXAMPLES = [
    ([0.0, 0.5], [0.25, 0.75]),
    ([0.1, 0.2, 0.15], [0.28333333333333333, 0.38333333333333333, 0.33333333333333333]),
    ([0.3, 0.3, 0.1, -2.0], [0.4, 0.4, 0.2, 0.0]),
    ([5.0, 1.0, 0.0], [1.0, 0.0, 0.0]),
]


@pytest.mark.parametrize("x,want", SPARSEMAX_EXAMPLES, ids=[str(e[0]) for e in SPARSEMAX_EXAMPLES])
@pytest.mark.parametrize("dtype", [R.F32, R.F64], ids=["float32", "float64"])
def test_sparsemax_examples(x, want, dtype, backend):
    # Keras 3's sparsemax returns [0, 0.5], the input, [0.1, 0.1, 0, 0] here (keras-team/keras#23425)
    y = activations.apply("sparsemax", np.array(x, dtype), backend=backend)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-7, err_msg=f"sparsemax({x})")
    np.testing.assert_allclose(R.forward("sparsemax", np.array(x)), want, rtol=1e-14, atol=1e-15)


def test_sparsemax_backward_on_support(backend):
    x = np.array([0.3, 0.3, 0.1, -2.0])
    dy = np.array([1.0, 2.0, 3.0, 4.0])
    dx = activations.grad("sparsemax", x, dy, backend=backend)
    np.testing.assert_allclose(dx, [-1.0, 0.0, 1.0, 0.0], atol=1e-14)  # m * (dy - mean of dy on the support)


# ------------------------------------------------------- 16-bit accumulation
@pytest.mark.parametrize("name", PROBABILITIES)
@pytest.mark.parametrize("dtype,n", [(R.F16, 4100), (R.BFLOAT16, 600)], ids=["float16", "bfloat16"])
def test_16bit_rows_accumulate_in_float32(name, dtype, n, backend):
    # a float16 sum of 4100 ones stalls at 2048 (bfloat16: 256)
    x = np.zeros((2, n), dtype)
    y = activations.apply(name, x, backend=backend).astype(np.float64)
    np.testing.assert_allclose(y, 1.0 / n, rtol=R.tolerance(dtype)[0], err_msg=f"{name}: uniform row of {n}")
    ls = activations.apply("log_softmax", x, backend=backend).astype(np.float64)
    np.testing.assert_allclose(ls, -np.log(n), rtol=R.tolerance(dtype)[0])
    dy = np.ones((2, n), dtype)
    dy[:, 0] = 3.0
    dx = activations.grad(name, x, dy, backend=backend)
    R.assert_close(dx, R.backward(name, x, dy), dtype, what=f"uniform row of {n}")


# ----------------------------------------------------- out=, bias, empty, 0-d
@pytest.mark.parametrize("name,dtype", cases())
def test_out_and_in_place(name, dtype, rng, backend):
    x = R.random_inputs(rng, (4, 10), name, dtype)
    dy = R.random_cotangent(rng, x.shape, dtype)
    for axis in (-1, 0):
        exp_y = R.forward(name, x, axis=axis)
        out = np.full(x.shape, np.nan, dtype)
        assert activations.apply(name, x, axis=axis, out=out, backend=backend) is out
        R.assert_close(out, exp_y, dtype, what=f"out=, axis={axis}")
        xc = x.copy()
        activations.apply(name, xc, axis=axis, out=xc, backend=backend)
        R.assert_close(xc, exp_y, dtype, what=f"in place, axis={axis}")
        exp_dx = R.backward(name, x, dy, axis=axis)
        dxo = np.full(x.shape, np.nan, dtype)
        assert activations.grad(name, x, dy, axis=axis, out=dxo, backend=backend) is dxo
        R.assert_close(dxo, exp_dx, dtype, what=f"grad out=, axis={axis}")
        dyc = dy.copy()
        activations.grad(name, x, dyc, axis=axis, out=dyc, backend=backend)
        R.assert_close(dyc, exp_dx, dtype, what=f"grad out=dy, axis={axis}")


@pytest.mark.parametrize("name,dtype", cases())
def test_fused_bias(name, dtype, rng, backend):
    x = R.random_inputs(rng, (3, 4, 6), name, dtype)
    bias = R.cast(rng.normal(0, 1, 6), dtype)
    for axis in (-1, 1):  # the bias always runs along the last axis
        check(name, x, dtype, backend, "bias", axis=axis, bias=bias, rng=rng)
    mask = rng.random(x.shape) < 0.7
    check(name, x, dtype, backend, "bias and mask", bias=bias, where=mask, rng=rng)


@pytest.mark.parametrize("name", ROWWISE)
def test_empty_and_zero_d(name, backend):
    for shape, axis in [((0, 5), -1), ((5, 0), -1), ((2, 0, 3), 1), ((2, 0, 3), 0), ((0,), 0)]:
        x = np.zeros(shape, np.float32)
        y = activations.apply(name, x, axis=axis, backend=backend)
        assert y.shape == shape and y.dtype == np.float32, f"{name}: empty {shape} axis {axis} gave {y.shape}"
        dx = activations.grad(name, x, np.zeros(shape, np.float32), axis=axis, backend=backend)
        assert dx.shape == shape
    with pytest.raises(ValueError, match="0-d|axis"):
        activations.apply(name, np.float32(1.0), backend=backend)


# ------------------------------------------------------ finite differences
@pytest.mark.parametrize("name", ROWWISE)
def test_backward_matches_directional_differences(name, rng, backend):
    x = rng.normal(0, 2, (6, 9))
    for axis in (-1, 0):
        dy = rng.normal(0, 1, x.shape)
        v = rng.normal(0, 1, x.shape)
        if name == "sparsemax":  # piecewise linear: no entry may cross the threshold tau
            rows = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
            gaps = [np.abs(r - R.sparsemax_row(r)[1]).min() for r in rows]
            assert min(gaps) > 1e-4, "pick another seed: an entry sits at the support boundary"
        h = 1e-6
        fp = activations.apply(name, x + h * v, axis=axis, backend=backend)
        fm = activations.apply(name, x - h * v, axis=axis, backend=backend)
        fd = float(((fp - fm) / (2 * h) * dy).sum())
        dx = activations.grad(name, x, dy, axis=axis, backend=backend)
        an = float((dx * v).sum())
        assert an == pytest.approx(fd, rel=1e-6, abs=1e-8), f"{name} axis {axis}: <grad, v> = {an}, differences give {fd}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_more_than_a_million_elements(name, rng, backend):
    # above the NumPy backend's threading threshold (2^20), along either axis
    x = R.random_inputs(rng, (1031, 1031), name, R.F32)
    for axis in (-1, 0):
        y = activations.apply(name, x, axis=axis, backend=backend)
        R.assert_close(y, R.forward(name, x, axis=axis), R.F32, what=f"1031 x 1031, axis={axis}")
