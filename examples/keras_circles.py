"""Two concentric rings that no linear model separates, learned by a small Keras model.

Runs on Keras's torch or JAX backend (choose with KERAS_BACKEND) in a few seconds on a CPU:

    KERAS_BACKEND=torch python examples/keras_circles.py
    KERAS_BACKEND=jax python examples/keras_circles.py

The same model is trained twice from the same initial weights: once with this package's
activations (``activations.keras``), once with Keras's own, and both accuracies are printed.
"""
from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import activations.keras as ak  # noqa: E402


def circles(n: int, seed: int, noise: float = 0.08, factor: float = 0.5):
    """``n`` points on two noisy rings (radius 1 and ``factor``), labels 0 (outer) and 1 (inner)."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    label = rng.integers(0, 2, n)
    radius = np.where(label == 1, factor, 1.0)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    x += rng.normal(0.0, noise, x.shape)
    return x.astype("float32"), label.astype("float32")


def model(ours: bool) -> keras.Model:
    act = ak.get if ours else (lambda name: name)
    return keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(16, activation=act("gelu")),
        keras.layers.Dense(16, activation=act("silu")),
        keras.layers.Dense(1, activation=act("sigmoid")),
    ])


def train(ours: bool, epochs: int = 12, points: int = 480, seed: int = 0) -> dict:
    """Train on ``points`` points, evaluate on 400 others; the same initial weights for both variants."""
    x, y = circles(points, seed)
    xt, yt = circles(400, seed + 1)
    keras.utils.set_random_seed(seed)
    m = model(ours)
    m.compile(optimizer=keras.optimizers.Adam(0.03), loss="binary_crossentropy", metrics=["accuracy"])
    history = m.fit(x, y, batch_size=48, epochs=epochs, shuffle=True, verbose=0)
    loss, accuracy = m.evaluate(xt, yt, verbose=0)
    return {"accuracy": float(accuracy), "loss": float(loss), "train_loss": [float(v) for v in history.history["loss"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--points", type=int, default=480, help="training points")
    parser.add_argument("--json", action="store_true", help="print one JSON line (for the tests)")
    args = parser.parse_args()
    result = {"backend": keras.backend.backend(),
              "ours": train(True, args.epochs, args.points), "keras": train(False, args.epochs, args.points)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"Keras backend: {result['backend']}")
    for key, label in (("ours", "activations.keras"), ("keras", "Keras's own activations")):
        r = result[key]
        print(f"{label:>24}: test accuracy {r['accuracy']:.3f}, test loss {r['loss']:.4f}")


if __name__ == "__main__":
    main()
