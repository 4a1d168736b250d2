"""alpha-entmax (``apply("entmax", x, alpha=...)``) on every backend against an oracle written here:
tau by scipy's brentq on the row-sum equation in float64, y from it, dx from the closed form of the
Jacobian, dalpha by central differences of the oracle.  Scalar and per-row alpha, masks, -inf,
fully masked and NaN rows, any axis and tuples of axes, the identities with sparsemax (alpha = 2)
and entmax15 (alpha = 1.5), argument errors, torch (gradcheck, the module) and JAX gradients.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

import activations
import reference as R
from test_rowwise_params import SIM, host_library, run  # noqa: F401  (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

ALPHAS = (1.1, 1.25, 1.5, 2.0, 3.0, 5.0)
DTYPES = (np.float16, R.BFLOAT16, np.float32, np.float64)
#: (rtol, atol) of the outputs (values in [0, 1]) per dtype: 16-bit outputs round once; float32 rows
#: are computed in float32 (the exponent 1 / (alpha - 1) multiplies tau's error, up to 10 at 1.1)
TOL = {np.dtype(np.float16): (4e-3, 1e-3), np.dtype(R.BFLOAT16): (3e-2, 8e-3),
       np.dtype(np.float32): (3e-5, 2e-6), np.dtype(np.float64): (1e-10, 1e-13)}


# ------------------------------------------------------------------ oracle
def compute_alpha(alpha, dtype):
    """alpha as the kernels see it: rounded to the compute precision (float32 below float64)."""
    cdt = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    return np.asarray(alpha, np.float64).astype(cdt).astype(np.float64)


def oracle_row(z, alpha, keep=None):
    """alpha-entmax of one row (float64): max(a z - tau, 0)^(1/a), a = alpha - 1, sum = 1; entries
    masked out or -inf give 0; a NaN/+inf row or a row of -inf gives NaN; fully masked gives 0."""
    z = np.asarray(z, np.float64)
    keep = np.ones(z.shape, bool) if keep is None else keep
    out = np.zeros(z.shape)
    if not keep.any():
        return out
    v = z[keep]
    if np.isnan(v).any() or (v == np.inf).any() or not (v > -np.inf).any():
        return np.full(z.shape, np.nan) * keep
    fin = keep & (z > -np.inf)
    a = alpha - 1.0
    zs = a * (z[fin] - z[fin].max())
    n = zs.size

    def excess(tau):
        return np.sum(np.maximum(zs - tau, 0.0) ** (1.0 / a)) - 1.0

    lo, hi = -1.0, -(1.0 / n) ** a
    tau = hi if excess(hi) >= 0 else brentq(excess, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=1000)
    out[fin] = np.maximum(zs - tau, 0.0) ** (1.0 / a)
    return out


def oracle(x, alpha, axis=-1, where=None):
    """Rows along ``axis``; alpha a float or an array broadcastable to the row shape."""
    x = np.asarray(x, np.float64)
    keep = np.ones(x.shape, bool) if where is None else np.broadcast_to(where, x.shape)
    rshape = tuple(1 if d == axis % x.ndim else s for d, s in enumerate(x.shape))
    al = np.broadcast_to(np.asarray(alpha, np.float64), rshape)
    xm, km, am = (np.moveaxis(a, axis, -1) for a in (x, keep, al))
    out = np.zeros(xm.shape)
    for idx in np.ndindex(*xm.shape[:-1]):
        out[idx] = oracle_row(xm[idx], float(am[idx][0]), km[idx])
    return np.moveaxis(out, -1, axis)


def oracle_dx(y, dy, alpha, axis=-1):
    """dx = g (dy - sum(g dy) / sum(g)), g = y^(2 - alpha) on the support, from the oracle's y."""
    rshape = tuple(1 if d == axis % y.ndim else s for d, s in enumerate(y.shape))
    al = np.broadcast_to(np.asarray(alpha, np.float64), rshape)
    g = np.where(y > 0, np.where(y > 0, y, 1.0) ** (2.0 - al), 0.0)
    sg = g.sum(axis=axis, keepdims=True)
    mean = (g * dy).sum(axis=axis, keepdims=True) / np.where(sg > 0, sg, 1.0)
    return g * (dy - mean)


def oracle_dalpha(x, dy, alpha, axis=-1, where=None, h=1e-5):
    """d/dalpha of sum(dy * y) by central differences of the oracle, summed to alpha's shape."""
    alpha = np.asarray(alpha, np.float64)
    grad = np.zeros(alpha.shape)
    for idx in np.ndindex(*alpha.shape):
        up, dn = alpha.copy(), alpha.copy()
        up[idx] += h
        dn[idx] -= h
        grad[idx] = ((oracle(x, up, axis, where) - oracle(x, dn, axis, where)) * dy).sum() / (2 * h)
    return grad


def test_oracle_against_closed_forms():
    """alpha = 2 is sparsemax, alpha = 1.5 entmax15 (tests/reference.py, sorted closed forms)."""
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 40):
        z = rng.normal(size=n) * 2
        np.testing.assert_allclose(oracle_row(z, 2.0), R.forward("sparsemax", z), atol=1e-14)
        np.testing.assert_allclose(oracle_row(z, 1.5), R.forward("entmax15", z), atol=1e-13)
        assert abs(oracle_row(z, 1.1).sum() - 1) < 1e-12


# ---------------------------------------------------------------- helpers
def simulated(run):
    """The Numba kernels under the CUDA simulator: one Python thread per CUDA thread, and every
    bisection step two block reductions, so a row costs it seconds.  It runs a sample of each sweep
    (the same kernel at every alpha and dtype; the compiled kernels are checked by compile_ptx)."""
    return run.name == "numba" and SIM


def dtypes_of(run):
    return [np.float32, np.float64] if simulated(run) else DTYPES


#: the alphas the Numba simulator runs: both ends of the range
SIM_ALPHAS = (1.1, 5.0)


def skip_slow_simulation(run, alpha):
    if simulated(run) and alpha not in SIM_ALPHAS:
        pytest.skip(f"the Numba simulator runs alpha in {SIM_ALPHAS} (the same kernel at every alpha)")


def rounded(x, dtype):
    return np.asarray(x, np.float64).astype(dtype)


def grad_of(run, x, dy, **kw):
    """run.grad for a call that may return (dx, dalpha): each result back as NumPy."""
    if run.masks_too and kw.get("where") is not None:
        kw["where"] = run.to(np.asarray(kw["where"]))
    got = activations.grad("entmax", run.to(x), run.to(dy), backend=run.backend, **kw)
    if isinstance(got, tuple):
        return tuple(np.asarray(run.back(g) if not isinstance(g, np.ndarray) else g) for g in got)
    return run.back(got)


def edge_error(want, alpha, dtype):
    """For alpha > 2 the map is only Hoelder continuous at the support's edge (y = u^(1/a), a > 1,
    u = a z - tau >= 0): an error d in tau moves an entry near the edge by up to d^(1/a), and by
    about d y^(1 - a) / a elsewhere (g / a, g = y^(2 - alpha)), whatever the algorithm; d is a few
    units of the compute precision (float32 below float64).  Per entry: that bound (0 for alpha <= 2)."""
    if np.max(alpha) <= 2:
        return 0.0
    a = np.asarray(alpha, np.float64) - 1.0
    d = 16 * (2.0**-53 if np.dtype(dtype) == np.float64 else 2.0**-24)
    g_over_a = np.where(want > 0, np.where(want > 0, want, 1.0) ** (1.0 - a), np.inf) / a
    return np.minimum(d ** (1.0 / a), d * g_over_a)


def close(got, want, dtype, what, alpha=2.0, axis=-1):
    rtol, atol = TOL[np.dtype(dtype)]
    got = np.asarray(got, np.float64)
    assert got.shape == want.shape, what
    if np.ndim(alpha):
        alpha = np.expand_dims(np.asarray(alpha), axis) if np.ndim(alpha) < want.ndim else alpha
    err = np.abs(got - want)
    # an entry's own edge error, and its row's: the row sums to 1, so the others share it
    own = np.broadcast_to(edge_error(want, alpha, dtype), want.shape)
    inside = np.where(want > 0, own, 0.0)
    shared = inside.sum(axis=axis, keepdims=True) + own.max(axis=axis, keepdims=True) if want.ndim else own
    bound = atol + rtol * np.abs(want) + own + shared
    bad = ~(err <= bound) & ~(np.isnan(got) & np.isnan(want))
    assert not bad.any(), f"{what}: got {got[bad][:5]}, want {want[bad][:5]} (bound {np.broadcast_to(bound, want.shape)[bad][:5]})"


# ---------------------------------------------------------------- forward
@pytest.mark.parametrize("alpha", ALPHAS)
def test_forward_rows(run, alpha, rng):
    skip_slow_simulation(run, alpha)
    n = 9 if simulated(run) else 33
    for dtype in dtypes_of(run):
        x = rounded(rng.normal(size=(3, n)) * 3, dtype)
        y = run.apply("entmax", x, alpha=alpha)
        assert y.dtype == x.dtype
        a = float(compute_alpha(alpha, dtype))
        close(y, oracle(x, a), dtype, f"{run.name} {np.dtype(dtype)} alpha {alpha}", a)


@pytest.mark.parametrize("alpha", (1.25, 2.0, 5.0))
def test_forward_axes_and_masks(run, alpha, rng):
    skip_slow_simulation(run, alpha)
    for dtype in (np.float32,) if simulated(run) else (np.float32, np.float64):
        shape = (2, 5, 3) if simulated(run) else (4, 5, 3)
        x = rounded(rng.normal(size=shape) * 2, dtype)
        mask = rng.random(shape) > 0.3
        mask[:, 0, 0] = False  # a fully masked row along axis 2 and column entries along 0
        for axis in (1,) if simulated(run) else (0, 1, 2, -1):
            y = run.apply("entmax", x, alpha=alpha, axis=axis, where=mask)
            close(y, oracle(x, alpha, axis, mask), dtype, f"{run.name} axis {axis} mask", alpha, axis)
        y = run.apply("entmax", x, alpha=alpha, axis=(0, 2))
        merged = np.moveaxis(x, 1, 0).reshape(5, -1)
        want = np.moveaxis(oracle(merged, alpha).reshape(5, shape[0], 3), 0, 1)
        close(y, want, dtype, f"{run.name} axes (0, 2)", alpha, (0, 2))


def test_identities(run, rng):
    """alpha = 2 is sparsemax and alpha = 1.5 entmax15, on the same backend."""
    for dtype in (np.float32,) if simulated(run) else (np.float32, np.float64):
        x = rounded(rng.normal(size=(2 if simulated(run) else 5, 12)) * 2, dtype)
        for alpha, other in ((2.0, "sparsemax"), (1.5, "entmax15")):
            close(run.apply("entmax", x, alpha=alpha), np.asarray(run.apply(other, x), np.float64), dtype,
                  f"{run.name} alpha {alpha} vs {other}")
            dy = rounded(rng.normal(size=x.shape), dtype)
            want = np.asarray(run.grad(other, x, dy), np.float64)
            close(grad_of(run, x, dy, alpha=alpha), want, dtype, f"{run.name} dx alpha {alpha} vs {other}")


def test_special_rows(run):
    x = np.array([[1.0, -np.inf, 0.5, -np.inf],   # -inf entries: 0
                  [0.0, 1.0, np.nan, 2.0],         # NaN: NaN row
                  [-np.inf] * 4,                   # all -inf: NaN row
                  [3.0, 1.0, 2.0, 0.0]])           # fully masked below
    mask = np.ones(x.shape, bool)
    mask[3] = False
    dy = np.array([[0.3, -1.0, 0.2, 0.5]] * 4)
    y = run.apply("entmax", x, alpha=1.3, where=mask)
    np.testing.assert_allclose(y[0], oracle_row(x[0], 1.3), rtol=1e-10, atol=1e-13)
    assert y[0, 1] == 0 and y[0, 3] == 0
    assert np.isnan(y[1]).all() and np.isnan(y[2]).all()
    assert (y[3] == 0).all()
    alpha = np.array([[1.3], [1.3], [1.3], [1.3]])
    dx, dalpha = grad_of(run, x, dy, alpha=alpha, where=mask)
    assert np.isfinite(dx[0]).all() and dx[0, 1] == 0
    assert np.isnan(dx[1]).all() and np.isnan(dx[2]).all()
    assert (dx[3] == 0).all()
    assert np.isfinite(dalpha[0, 0]) and np.isnan(dalpha[1, 0]) and np.isnan(dalpha[2, 0]) and dalpha[3, 0] == 0


# --------------------------------------------------------------- gradients
@pytest.mark.parametrize("alpha", ALPHAS)
def test_dx(run, alpha, rng):
    """Against the Jacobian's closed form at the oracle's y; for alpha > 2, where y itself is
    ill-conditioned at the support's edge (edge_error) and g = y^(2 - alpha) grows without bound
    there, at the backend's own y (float32 and float64, whose y is the computed one)."""
    skip_slow_simulation(run, alpha)
    for dtype in (np.float32,) if simulated(run) else DTYPES:
        if alpha > 2 and np.dtype(dtype).itemsize == 2:
            continue
        x = rounded(rng.normal(size=(3, 11)) * 2, dtype)
        dy = rounded(rng.normal(size=x.shape), dtype)
        a = float(compute_alpha(alpha, dtype))
        y = oracle(x, a) if alpha <= 2 else np.asarray(run.apply("entmax", x, alpha=alpha), np.float64)
        want = oracle_dx(y, np.asarray(dy, np.float64), a)
        got = np.asarray(grad_of(run, x, dy, alpha=alpha), np.float64)
        # dx = g (dy - mean): g = y^(2 - alpha) is large near the support's edge for alpha > 2
        scale = max(1.0, np.abs(want).max())
        rtol, atol = TOL[np.dtype(dtype)]
        np.testing.assert_allclose(got, want, rtol=rtol * 4, atol=atol * 4 * scale,
                                   err_msg=f"{run.name} {np.dtype(dtype)} alpha {alpha}")


def test_dx_matches_differences(run, rng):
    x = rng.normal(size=(2, 8)) * 2
    dy = rng.normal(size=x.shape)
    v = rng.normal(size=x.shape)
    for alpha in (1.7,) if simulated(run) else (1.25, 1.7, 2.5):
        h = 1e-6
        fd = ((oracle(x + h * v, alpha) - oracle(x - h * v, alpha)) * dy).sum() / (2 * h)
        an = float((grad_of(run, x, dy, alpha=alpha) * v).sum())
        assert abs(an - fd) <= 1e-6 * max(1.0, abs(fd)), (run.name, alpha, an, fd)


@pytest.mark.parametrize("shape, axis, ashape", [
    ((4, 9), -1, (4, 1)),          # one alpha per row
    ((4, 9), -1, ()),              # a 0-d array: one for all, its gradient summed
    ((2, 3, 7), -1, (2, 1, 1)),    # per head
    ((3, 6, 2), 1, (3, 1, 2)),     # rows along a middle axis
    ((2, 5, 3), (1, 2), (2, 1, 1)),  # a tuple of axes
])
def test_per_row_alpha_and_dalpha(run, shape, axis, ashape, rng):
    if simulated(run) and not (ashape == (4, 1) or isinstance(axis, tuple)):
        pytest.skip("the Numba simulator runs one alpha per row, and per head over a tuple of axes")
    x = rng.normal(size=shape) * 2
    dy = rng.normal(size=shape)
    alpha = np.asarray(1.1 + 2.4 * rng.random(ashape))  # an array even when 0-d
    y = run.apply("entmax", x, alpha=alpha, axis=axis)
    if isinstance(axis, tuple):  # merge the axes by hand for the oracle
        lead = shape[0]
        merged = x.reshape(lead, -1)
        want = oracle(merged, np.asarray(alpha).reshape(lead, 1) if np.ndim(alpha) else alpha).reshape(shape)
        flat_dy = dy.reshape(lead, -1)
        fd = oracle_dalpha(merged, flat_dy, np.asarray(alpha).reshape(-1, 1) if np.ndim(alpha) else alpha)
        fd = fd.reshape(np.shape(alpha))
        ydx = oracle_dx(want.reshape(lead, -1), flat_dy,
                        np.asarray(alpha).reshape(lead, 1) if np.ndim(alpha) else alpha).reshape(shape)
    else:
        want = oracle(x, alpha, axis)
        fd = oracle_dalpha(x, dy, alpha, axis)
        ydx = oracle_dx(want, dy, alpha, axis)
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-13)
    dx, dalpha = grad_of(run, x, dy, alpha=alpha, axis=axis)
    assert dalpha.shape == np.shape(alpha) and dalpha.dtype == np.float64
    np.testing.assert_allclose(dx, ydx, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dalpha, fd, rtol=1e-6, atol=1e-8, err_msg=run.name)


def test_dalpha_float32_and_bias(run, rng):
    """float32 x and alpha: dalpha in float32 near the float64 differences; a bias adds dbias."""
    x = rng.normal(size=(3, 10)).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    alpha = np.array([[1.2], [1.6], [2.8]], np.float32)
    a64 = alpha.astype(np.float64)
    dx, dalpha = grad_of(run, x, dy, alpha=alpha)
    assert dalpha.dtype == np.float32 and dalpha.shape == (3, 1)
    np.testing.assert_allclose(dalpha, oracle_dalpha(x, dy.astype(np.float64), a64), rtol=2e-3, atol=2e-4)
    bias = rng.normal(size=10).astype(np.float32)
    got = activations.grad("entmax", run.to(x), run.to(dy), bias=run.to(bias), alpha=alpha, backend=run.backend)
    assert len(got) == 3  # dx, dbias, dalpha
    fd = oracle_dalpha(x.astype(np.float64) + bias, dy.astype(np.float64), a64)
    np.testing.assert_allclose(np.asarray(run.back(got[2]) if not isinstance(got[2], np.ndarray) else got[2]),
                               fd, rtol=2e-3, atol=2e-4)


# -------------------------------------------------------------- arguments
@pytest.mark.parametrize("alpha, error", [
    (1.0, "alpha"), (0.5, "alpha"), (float("nan"), "NaN"), (float("inf"), "finite"), (-2.0, "alpha"),
    (1 + 1e-9, "float32"),  # 1 in the float32 the kernels compute in
    ("2", "float or an array"),
])
def test_bad_alpha_scalar(alpha, error):
    x = np.ones((2, 3), np.float32)
    out = np.full((2, 3), 7.0, np.float32)
    with pytest.raises((ValueError, TypeError), match=error):
        activations.apply("entmax", x, alpha=alpha, out=out)
    assert (out == 7).all()


@pytest.mark.parametrize("alpha, error", [
    (np.array([[1.5], [1.0]]), "alpha"), (np.array([[1.5], [np.nan]]), "NaN"),
    (np.ones((2, 3)) * 1.5, "row shape"), (np.ones((3, 1)) * 1.5, "row shape"),
    (np.array([[True], [False]]), "real numbers"),
])
def test_bad_alpha_array(alpha, error):
    x = np.ones((2, 3))
    out = np.full((2, 3), 7.0)
    with pytest.raises((ValueError, TypeError), match=error):
        activations.apply("entmax", x, alpha=alpha, out=out)
    with pytest.raises((ValueError, TypeError), match=error):
        activations.grad("entmax", x, x, alpha=alpha, out=out)
    assert (out == 7).all()


def test_catalogue_entry():
    rec = activations.REGISTRY.get("entmax") if hasattr(activations, "REGISTRY") else None
    text = activations.describe("entmax")
    assert "alpha" in text and "dalpha" in text
    assert "entmax" in activations.names("rowwise")
    assert rec is None or rec.param_names == ("alpha",)
    x = np.array([0.5, 1.0, -0.3])
    np.testing.assert_allclose(activations.apply("entmax_bisect", x), activations.apply("entmax15", x), atol=1e-12)


# ------------------------------------------------------------------ torch
def test_torch_gradcheck_x_and_alpha():
    torch = pytest.importorskip("torch")
    from activations import torch as at

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    alpha = torch.tensor([[1.3], [1.8], [2.6]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: at.apply("entmax", a, alpha=b), (x, alpha), eps=1e-6, atol=1e-6)
    scalar = torch.tensor(1.4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: at.apply("entmax", a, alpha=b), (x, scalar), eps=1e-6, atol=1e-6)


def test_torch_module_learns_alpha():
    torch = pytest.importorskip("torch")
    from activations import torch as at

    m = at.Entmax(alpha=1.5, dim=-1, learnable=True, shape=(2, 1, 1), dtype=torch.float64)
    x = torch.randn(2, 3, 5, dtype=torch.float64)
    y = m(x)
    (y * torch.arange(5.0, dtype=torch.float64)).sum().backward()
    assert m.alpha.grad is not None and m.alpha.grad.shape == (2, 1, 1)
    want = oracle_dalpha(x.numpy(), np.broadcast_to(np.arange(5.0), (2, 3, 5)), np.full((2, 1, 1), 1.5))
    np.testing.assert_allclose(m.alpha.grad.numpy(), want, rtol=1e-6, atol=1e-9)
    fixed = at.Entmax(alpha=2.0)
    torch.testing.assert_close(fixed(x), at.apply("sparsemax", x))
    with pytest.raises(ValueError, match="alpha"):
        at.Entmax(alpha=1.0)


# -------------------------------------------------------------------- JAX
def test_jax_grad_x_and_alpha():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    from activations import jax as aj

    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(3, 7)).astype(np.float32))
    w = jnp.asarray(rng.normal(size=(3, 7)).astype(np.float32))
    alpha = jnp.asarray(np.array([[1.3], [2.0], [3.5]], np.float32))

    def loss(x, alpha):
        return (aj.apply("entmax", x, alpha=alpha) * w).sum()

    dx, dalpha = jax.grad(loss, argnums=(0, 1))(x, alpha)
    x64, w64, a64 = (np.asarray(v, np.float64) for v in (x, w, alpha))
    np.testing.assert_allclose(np.asarray(dalpha), oracle_dalpha(x64, w64, a64), rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(np.asarray(dx), oracle_dx(oracle(x64, a64), w64, a64), rtol=1e-3, atol=1e-4)
