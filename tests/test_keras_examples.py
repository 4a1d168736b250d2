"""Documented and recorded outputs of the peers (Keras 3.15.1, torch, JAX; see
the shared reference catalogue), and our own documented special values where
we deliberately differ (limits at infinities, NaN propagation, +0.0).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import activations
import reference as R

F32 = np.float32
X5 = np.array([-5.0, -8.0, 0.0, 3.0, 9.0], F32)
X8 = np.array([-3.0, -1.5, -0.5, 0.0, 0.5, 2.5, 7.0, 9.0], F32)

# Keras 3 relu(x, negative_slope, max_value, threshold), recorded on x = [-5, -8, 0, 3, 9]
RELU_TABLE = [
    ({}, [0, 0, 0, 3, 9]),
    ({"threshold": 7}, [0, 0, 0, 0, 9]),
    ({"negative_slope": 0.7}, [-3.5, -5.6, 0, 3, 9]),
    ({"max_value": 5}, [0, 0, 0, 3, 5]),
    ({"max_value": 6}, [0, 0, 0, 3, 6]),
    ({"negative_slope": 0.7, "threshold": 7}, [-8.4, -10.5, -4.9, -2.8, 9]),
    ({"negative_slope": 0.7, "max_value": 5}, [-3.5, -5.6, 0, 3, 5]),
    ({"threshold": 2, "max_value": 5}, [0, 0, 0, 3, 5]),
    ({"negative_slope": 0.5, "threshold": 2, "max_value": 5}, [-3.5, -5, -1, 3, 5]),
    ({"threshold": -2}, [0, 0, 0, 3, 9]),
    ({"negative_slope": 0.5, "threshold": -2}, [-1.5, -3, 0, 3, 9]),
    ({"threshold": 7, "max_value": 8}, [0, 0, 0, 0, 8]),
    ({"max_value": 0}, [0, 0, 0, 0, 0]),
]


def _pid(p):
    return ",".join(f"{k}={v}" for k, v in p.items()) or "defaults"


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=["float16", "float32", "float64"])
@pytest.mark.parametrize("params,want", RELU_TABLE, ids=[_pid(p) for p, _ in RELU_TABLE])
def test_keras_relu_table(params, want, dtype):
    y = activations.apply("relu", X5.astype(dtype), **params)
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=R.tolerance(np.dtype(dtype))[0], atol=0,
                               err_msg=f"relu({_pid(params)}) on {X5.tolist()}")
    # Keras 3 writes +0.0 wherever the output is zero (docs/semantics.md: "+0.0 below the threshold")
    zeros = y == 0
    assert not np.signbit(y[zeros]).any(), f"relu({_pid(params)}): -0.0 in {y}"


@pytest.mark.parametrize(
    "x,params,want",
    [
        ([7.0, 7.0001], {"threshold": 7}, [0.0, 7.0001]),
        ([7.0, 6.0], {"threshold": 7, "negative_slope": 0.5}, [0.0, -0.5]),
        (X8, {"threshold": -2}, [0, -1.5, -0.5, 0, 0.5, 2.5, 7, 9]),
        (X8, {"negative_slope": -0.5}, [1.5, 0.75, 0.25, 0, 0.5, 2.5, 7, 9]),
        ([-3.0, -1.5, 0.5, 9.0], {"threshold": -2, "max_value": 5}, [0, 0, 0.5, 5]),
        ([-10.0, -5.0, 0.0, 5.0, 10.0], {"negative_slope": 0.5}, [-5, -2.5, 0, 5, 10]),
        ([-10.0, -5.0, 0.0, 5.0, 10.0], {"max_value": 5.0}, [0, 0, 0, 5, 5]),
        ([-10.0, -5.0, 0.0, 5.0, 10.0], {"threshold": 5.0}, [0, 0, 0, 0, 10]),
        ([-10.0, -5.0, 0.0, 5.0, 10.0], {"negative_slope": 0.5, "threshold": 2}, [-6, -3.5, -1, 5, 10]),
    ],
    ids=["at-threshold", "at-threshold-slope", "negative-threshold", "negative-slope", "negative-threshold-cap",
         "doc-slope", "doc-cap", "doc-threshold", "layer-slope-threshold"],
)
def test_keras_relu_recorded(x, params, want):
    y = activations.apply("relu", np.asarray(x, F32), **params)
    np.testing.assert_allclose(y, np.asarray(want, F32), rtol=2e-7, atol=0)
    assert not np.signbit(y[y == 0]).any(), "relu writes +0.0"


def test_relu_special_values_follow_our_policy():
    x = np.array([-0.0, 0.0, np.nan, np.inf, -np.inf], F32)
    y = activations.apply("relu", x, negative_slope=0.1)
    # Keras 3 gives [-0, 0, nan, inf, -inf]; ours writes +0.0 for a zero product
    np.testing.assert_array_equal(y, [0.0, 0.0, np.nan, np.inf, -np.inf])
    assert not np.signbit(y[:2]).any()
    y = activations.apply("relu", x, negative_slope=0.1, max_value=5)
    np.testing.assert_array_equal(y, [0.0, 0.0, np.nan, 5.0, -np.inf])
    # Keras 3 maps NaN to 0 on the threshold path; NaN propagates here
    y = activations.apply("relu", x, threshold=1)
    np.testing.assert_array_equal(y, [0.0, 0.0, np.nan, np.inf, 0.0])
    assert not np.signbit(y[[0, 1, 4]]).any()
    y = activations.apply("relu", x)
    np.testing.assert_array_equal(y, [0.0, 0.0, np.nan, np.inf, 0.0])
    assert not np.signbit(y).any(), "relu(-0.0) and relu(-inf) are +0.0"


def test_leaky_relu_defaults_and_large_slopes():
    np.testing.assert_allclose(activations.apply("leaky_relu", X5), [-1.0, -1.6, 0, 3, 9], rtol=1e-7)
    np.testing.assert_allclose(activations.apply("leaky_relu", X5, negative_slope=0.3), [-1.5, -2.4, 0, 3, 9], rtol=1e-7)
    x = np.array([-1.0, 0.0, 1.0], F32)
    assert activations.apply("leaky_relu", x)[0] == F32(-0.2)
    assert activations.apply("leaky_relu", x, negative_slope=0.01)[0] == F32(-0.01)
    # Keras's numpy backend gives [-1, 4] (max(x, a*x)); jax/torch/tf and we give [-2, 2]
    np.testing.assert_array_equal(activations.apply("leaky_relu", np.array([-1.0, 2.0]), negative_slope=2.0), [-2.0, 2.0])
    np.testing.assert_array_equal(activations.apply("relu", np.array([-1.0, 2.0]), negative_slope=2.0), [-2.0, 2.0])


# values at x = [-1, 0, 1] (float32, verified against Keras 3 / torch / JAX)
AT_MINUS1_0_1 = [
    ("hard_sigmoid", {}, [0.33333334, 0.5, 0.6666667]),
    ("hard_sigmoid", {"slope": 0.2}, [0.3, 0.5, 0.7]),  # Keras 2 / tf.keras
    ("gelu", {}, [-0.15865526, 0.0, 0.8413447]),
    ("gelu", {"approximate": "tanh"}, [-0.15880796, 0.0, 0.841192]),
    ("gelu", {"approximate": True}, [-0.15880796, 0.0, 0.841192]),
    ("squareplus", {}, [0.618034, 1.0, 1.618034]),
    ("rrelu", {}, [-0.22916667, 0.0, 1.0]),
    ("sigmoid", {}, [0.26894143, 0.5, 0.7310586]),
    ("softplus", {}, [0.31326166, 0.6931472, 1.3132616]),
    ("selu", {}, [-1.1113307, 0.0, 1.050701]),
    ("elu", {}, [-0.63212055, 0.0, 1.0]),
    ("silu", {}, [-0.26894143, 0.0, 0.7310586]),
    ("mish", {}, [-0.30340147, 0.0, 0.86509836]),
    ("hard_silu", {}, [-0.33333334, 0.0, 0.6666667]),
    ("softsign", {}, [-0.5, 0.0, 0.5]),
    ("log_sigmoid", {}, [-1.3132616, -0.6931472, -0.31326166]),
    ("sparse_plus", {}, [0.0, 0.25, 1.0]),
    ("sparse_sigmoid", {}, [0.0, 0.5, 1.0]),
    ("tanh_shrink", {}, [-0.23840584, 0.0, 0.23840584]),
    ("soft_shrink", {}, [-0.5, 0.0, 0.5]),
    ("hard_shrink", {}, [-1.0, 0.0, 1.0]),
    ("threshold", {"threshold": 0.0, "default_value": -1.0}, [-1.0, -1.0, 1.0]),
]


@pytest.mark.parametrize("name,params,want", AT_MINUS1_0_1, ids=[f"{n}-{_pid(p)}" for n, p, _ in AT_MINUS1_0_1])
def test_reference_values_at_minus1_0_1(name, params, want):
    y = activations.apply(name, np.array([-1.0, 0.0, 1.0], F32), **params)
    np.testing.assert_allclose(y, np.asarray(want, F32), rtol=3e-7, atol=0, err_msg=f"{name}({_pid(params)})")


def test_selu_constants():
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    y = activations.apply("selu", np.array([1.0, -np.inf, -1.0]))
    assert y[0] == scale
    assert y[1] == pytest.approx(-1.7580993408473768599402175208123, rel=1e-15)
    assert y[2] == pytest.approx(scale * alpha * math.expm1(-1.0), rel=1e-15)
    dx = activations.grad("selu", np.array([0.0, 2.0]), np.ones(2))
    assert dx[0] == pytest.approx(scale * alpha, rel=1e-15) and dx[1] == scale  # torch and JAX at 0


def test_softmax_and_sparsemax_recorded():
    np.testing.assert_allclose(activations.apply("softmax", np.array([1000.0, 1001.0], F32)), [0.26894142, 0.73105858], rtol=1e-6)
    np.testing.assert_array_equal(activations.apply("log_softmax", np.array([1.0, 1000.0, -np.inf], F32)), [-999.0, 0.0, -np.inf])
    # correct sparsemax (Keras 3 returns [0, 0.5] here)
    np.testing.assert_allclose(activations.apply("sparsemax", np.array([0.0, 0.5])), [0.25, 0.75], rtol=1e-15)


# --------------------------------------------------- special values (3b)
# inputs -inf / -0.0 / +inf / NaN, float32.  Where every peer gives NaN at an
# infinity (x * sigmoid(x) forms, softsign, squareplus) we give the limit; where
# Keras maps NaN to 0 or default_value (shrinks, threshold) we propagate NaN.
SPECIAL = [
    ("relu", {}, [0, 0, np.inf, np.nan]),
    ("relu6", {}, [0, 0, 6, np.nan]),
    ("leaky_relu", {}, [-np.inf, 0, np.inf, np.nan]),
    ("elu", {}, [-1, 0, np.inf, np.nan]),
    ("selu", {}, [-R.SELU_SCALE * R.SELU_ALPHA, 0, np.inf, np.nan]),
    ("celu", {}, [-1, 0, np.inf, np.nan]),
    ("gelu", {}, [0, 0, np.inf, np.nan]),  # Keras/JAX/TF: nan at -inf; torch: nan at +inf too
    ("gelu", {"approximate": "tanh"}, [0, 0, np.inf, np.nan]),
    ("sigmoid", {}, [0, 0.5, 1, np.nan]),
    ("hard_sigmoid", {}, [0, 0.5, 1, np.nan]),
    ("log_sigmoid", {}, [-np.inf, -math.log(2), 0, np.nan]),
    ("softplus", {}, [0, math.log(2), np.inf, np.nan]),
    ("softsign", {}, [-1, 0, 1, np.nan]),  # peers: nan / -0 / nan
    ("silu", {}, [0, 0, np.inf, np.nan]),  # peers: nan at -inf
    ("hard_silu", {}, [0, 0, np.inf, np.nan]),
    ("mish", {}, [0, 0, np.inf, np.nan]),
    ("tanh", {}, [-1, 0, 1, np.nan]),
    ("hard_tanh", {}, [-1, 0, 1, np.nan]),
    ("tanh_shrink", {}, [-np.inf, 0, np.inf, np.nan]),
    ("soft_shrink", {}, [-np.inf, 0, np.inf, np.nan]),  # Keras: 0 for NaN
    ("hard_shrink", {}, [-np.inf, 0, np.inf, np.nan]),  # Keras: 0 for NaN
    ("threshold", {"threshold": 0.0, "value": -1.0}, [-1, -1, np.inf, np.nan]),  # Keras: -1 for NaN
    ("sparse_plus", {}, [0, 0.25, np.inf, np.nan]),
    ("sparse_sigmoid", {}, [0, 0.5, 1, np.nan]),
    ("squareplus", {}, [0, 1, np.inf, np.nan]),  # peers: nan at -inf
    ("exponential", {}, [0, 1, np.inf, np.nan]),
    ("linear", {}, [-np.inf, 0, np.inf, np.nan]),
    ("lisht", {}, [np.inf, 0, np.inf, np.nan]),
    ("log1mexp", {}, [np.nan, -np.inf, 0, np.nan]),
    ("snake", {}, [-np.inf, 0, np.inf, np.nan]),  # the limit: x + sin^2(x) ~ x
    ("prelu", {"weight": 0.0}, [0, 0, np.inf, np.nan]),
    ("rrelu", {"lower": 0.0, "upper": 0.0}, [0, 0, np.inf, np.nan]),
]


@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
@pytest.mark.parametrize("name,params,want", SPECIAL, ids=[f"{n}-{_pid(p)}" for n, p, _ in SPECIAL])
def test_special_values(name, params, want, dtype):
    x = R.cast([-np.inf, -0.0, np.inf, np.nan], dtype)
    y = activations.apply(name, x, **params).astype(np.float64)
    np.testing.assert_allclose(y, want, rtol=R.tolerance(dtype)[0], atol=0, equal_nan=True,
                               err_msg=f"{name}({_pid(params)}) at [-inf, -0.0, inf, nan] ({dtype.name})")
    np.testing.assert_allclose(R.forward(name, x, **params), want, rtol=R.tolerance(dtype)[0], atol=0, equal_nan=True)


# documented derivative limits at the infinities (docs/semantics.md)
D_LIMITS = [
    ("silu", {}, 0.0, 1.0),
    ("gelu", {}, 0.0, 1.0),
    ("gelu", {"approximate": "tanh"}, 0.0, 1.0),
    ("mish", {}, 0.0, 1.0),
    ("softsign", {}, 0.0, 0.0),
    ("squareplus", {}, 0.0, 1.0),
    ("lisht", {}, -1.0, 1.0),
    ("elu", {}, 0.0, 1.0),
    ("sigmoid", {}, 0.0, 0.0),
    ("tanh", {}, 0.0, 0.0),
    ("log_sigmoid", {}, 1.0, 0.0),
    ("softplus", {}, 0.0, 1.0),
    ("hard_silu", {}, 0.0, 1.0),
    ("relu", {"negative_slope": 0.5}, 0.5, 1.0),
    ("exponential", {}, 0.0, np.inf),
]


@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
@pytest.mark.parametrize("name,params,at_neg,at_pos", D_LIMITS, ids=[f"{n}-{_pid(p)}" for n, p, _, _ in D_LIMITS])
def test_derivative_limits_at_infinity(name, params, at_neg, at_pos, dtype):
    x = R.cast([-np.inf, np.inf], dtype)
    dx = activations.grad(name, x, R.cast([1.0, 1.0], dtype), **params).astype(np.float64)
    assert dx[0] == at_neg and dx[1] == at_pos, f"{name}' at (-inf, inf) = {dx} ({dtype.name}), want ({at_neg}, {at_pos})"


def test_log1mexp_derivative_at_infinity_and_zero():
    dx = activations.grad("log1mexp", np.array([np.inf, 0.0]), np.array([1.0, 1.0]))
    np.testing.assert_array_equal(dx, [0.0, np.inf])


@pytest.mark.parametrize("dtype", R.DTYPES, ids=[d.name for d in R.DTYPES])
def test_softmax_rows_with_infinities(dtype):
    # +inf in a row: NaN (Keras, torch, JAX; TF differs); all -inf: NaN everywhere
    y = activations.apply("softmax", R.cast([[np.inf, 1.0, 2.0], [-np.inf, -np.inf, -np.inf]], dtype)).astype(np.float64)
    assert np.isnan(y).all(), f"softmax rows with inf: {y}"
