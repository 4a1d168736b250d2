"""A torch MLP trained through this package's activations: two concentric rings, a few seconds on a CPU.

    python examples/torch_mlp.py              # eager
    python examples/torch_mlp.py --compile    # torch.compile(fullgraph=True): no graph breaks

The hidden layers use ``activations.torch.GELU`` and ``SwiGLU``; their backward passes are the
package's fused gradients (autograd through ``torch.library`` custom ops).
"""
from __future__ import annotations

import argparse
import math
import time

import torch

import activations.torch as at


def rings(n: int, generator: torch.Generator, noise: float = 0.08):
    """``n`` points on two noisy rings (radius 1: label 0, radius 0.5: label 1)."""
    angle = torch.rand(n, generator=generator) * 2 * math.pi
    label = torch.randint(0, 2, (n,), generator=generator).float()
    radius = torch.where(label == 1, 0.5, 1.0)
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    return x + noise * torch.randn(x.shape, generator=generator), label


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(2, 32), at.GELU(),
        torch.nn.Linear(32, 32), at.SwiGLU(),          # 32 -> 16: silu(a) * b
        torch.nn.Linear(16, 1),
    )


def train(steps: int = 200, compile: bool = False, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    x, y = rings(1024, g)
    xt, yt = rings(512, g)
    torch.manual_seed(seed)
    model = mlp()
    forward = torch.compile(model, fullgraph=True) if compile else model
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for step in range(steps):
        batch = torch.randint(0, len(x), (128,), generator=g)
        opt.zero_grad()
        loss = loss_fn(forward(x[batch]).squeeze(1), y[batch])
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = ((forward(xt).squeeze(1) > 0).float() == yt).float().mean().item()
    return {"loss": loss.item(), "accuracy": accuracy, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--compile", action="store_true", help="train the torch.compile'd model")
    args = parser.parse_args()
    r = train(args.steps, args.compile)
    print(f"{args.steps} steps in {r['seconds']:.1f} s: final loss {r['loss']:.4f}, test accuracy {r['accuracy']:.3f}")


if __name__ == "__main__":
    main()
