"""activations.keras on Keras's torch, JAX and numpy backends.

Keras chooses its backend once, at import, so each backend runs in a child process
(``KERAS_BACKEND=...``): the layer and the ``activation=`` callable against Keras's own
activations, serialization through ``model.save`` / ``load_model``, and the concentric-circles
model of ``examples/keras_circles.py`` trained with ``fit`` to the accuracy Keras's own
activations reach.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if importlib.util.find_spec("keras") is None:
    pytest.skip("keras is not installed", allow_module_level=True)

CHILD = r'''
import json, os, sys, tempfile
import numpy as np
import keras
import activations.keras as ak

backend = keras.backend.backend()
out = {"backend": backend}
rng = np.random.default_rng(0)
x = rng.normal(0.0, 2.0, (5, 8)).astype("float32")
x[np.abs(x) < 0.01] += 0.02  # off relu's kink

# the layer and the callable against Keras's own activations
pairs = [
    (ak.Activation("gelu"), lambda v: keras.activations.gelu(v, approximate=False)),
    (ak.Activation("gelu", approximate="tanh"), lambda v: keras.activations.gelu(v, approximate=True)),
    (ak.Activation("relu", threshold=0.5, max_value=3.0),
     lambda v: keras.activations.relu(v, threshold=0.5, max_value=3.0)),
    (ak.Activation("softmax", axis=0), lambda v: keras.activations.softmax(v, axis=0)),
    (ak.get("silu"), keras.activations.silu),
    (ak.get("log_softmax"), keras.activations.log_softmax),
    (ak.get("mish"), keras.activations.mish),
]
errors = []
for ours, theirs in pairs:
    got = keras.ops.convert_to_numpy(ours(keras.ops.convert_to_tensor(x)))
    want = keras.ops.convert_to_numpy(theirs(keras.ops.convert_to_tensor(x)))
    errors.append(float(np.max(np.abs(got - want) / (1.0 + np.abs(want)))))
out["max_error_vs_keras"] = max(errors)

# GPT-OSS's SwiGLU (activations.GPT_OSS_SWIGLU) against its formula in keras.ops, and its gradient
import activations
gx = rng.normal(0.0, 6.0, (4, 32)).astype("float32")
gx[np.abs(np.abs(gx) - 7.0) < 1e-3] = 3.0  # off the bounds: jnp.minimum splits a tie's gradient


def gpt_oss(v):
    g, u = v[..., ::2], v[..., 1::2]
    g, u = keras.ops.minimum(g, 7.0), keras.ops.clip(u, -7.0, 7.0)
    return g * keras.ops.sigmoid(1.702 * g) * (u + 1.0)


gate = ak.Activation("swiglu", **activations.GPT_OSS_SWIGLU)
got = keras.ops.convert_to_numpy(gate(keras.ops.convert_to_tensor(gx)))
want = keras.ops.convert_to_numpy(gpt_oss(keras.ops.convert_to_tensor(gx)))
out["gpt_oss_error"] = float(np.max(np.abs(got - want) / (1.0 + np.abs(want))))
out["gpt_oss_config"] = ak.Activation.from_config(gate.get_config()).params
if backend == "torch":
    import torch
    grads = []
    for f in (gate, gpt_oss):
        t = torch.tensor(gx, requires_grad=True)
        f(t).sum().backward()
        grads.append(t.grad.numpy())
    out["gpt_oss_grad_error"] = float(np.max(np.abs(grads[0] - grads[1]) / (1.0 + np.abs(grads[1]))))
elif backend == "jax":
    import jax
    grads = [np.asarray(jax.grad(lambda v: f(v).sum())(gx)) for f in (gate, gpt_oss)]
    out["gpt_oss_grad_error"] = float(np.max(np.abs(grads[0] - grads[1]) / (1.0 + np.abs(grads[1]))))

# a model with both, saved and loaded
model = keras.Sequential([
    keras.Input((8,)),
    keras.layers.Dense(12, activation=ak.get("gelu", approximate="tanh")),
    ak.Activation("swiglu", name="gate"),
    keras.layers.Dense(3, activation=ak.get("softmax")),
])
out["gate_shape"] = list(model.get_layer("gate").output.shape)
y = model.predict(x, verbose=0)
out["rows_sum_to_one"] = bool(np.allclose(y.sum(-1), 1.0, atol=1e-5))
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
out["reloaded_same"] = bool(np.array_equal(loaded.predict(x, verbose=0), y))
out["reloaded_config"] = loaded.get_layer("gate").get_config()["activation"]

if backend == "numpy":  # a backend without an integration is named in the error
    keras.backend.backend = lambda: "tensorflow"
    try:
        ak.get("gelu")(x)
    except ValueError as exc:
        out["unsupported"] = str(exc)
else:  # the numpy backend has no training
    sys.path.insert(0, "examples")
    import keras_circles
    out["ours"] = keras_circles.train(True)
    out["keras"] = keras_circles.train(False)
print("RESULT " + json.dumps(out))
'''


def _run(backend: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


@pytest.mark.parametrize("keras_backend", ["torch", "jax", "numpy"])
def test_keras_backend(keras_backend):
    backend = keras_backend
    needs = {"torch": "torch", "jax": "jax", "numpy": None}[backend]
    if needs and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed")
    r = _run(backend)
    assert r["backend"] == backend
    assert r["max_error_vs_keras"] < 1e-5, r
    assert r["gpt_oss_error"] < 1e-5, r
    assert r["gpt_oss_config"] == {"alpha": 1.702, "limit": 7.0, "offset": 1.0, "layout": "interleaved"}, r
    if backend != "numpy":  # no gradients there
        assert r["gpt_oss_grad_error"] < 1e-5, r
    assert r["gate_shape"] == [None, 6], r
    assert r["rows_sum_to_one"] and r["reloaded_same"], r
    assert r["reloaded_config"] == "swiglu"
    if backend == "numpy":
        assert "runs on Keras's torch, jax, numpy backends; this Keras runs 'tensorflow'" in r["unsupported"]
        return
    ours, theirs = r["ours"], r["keras"]
    # two rings: no linear model gets far past 0.5; both reach the same accuracy
    assert theirs["accuracy"] >= 0.95, theirs
    assert ours["accuracy"] >= theirs["accuracy"] - 0.01, (ours, theirs)
    # the same initial weights and the same math: the training curves agree too
    assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-3, abs=1e-4)
