"""The CuPy backend without a GPU: a stand-in for CuPy (NumPy memory, pretend devices, launches
recorded instead of run, activations.tools.benchmarks.overhead) checks which device a call runs on, and
`bench --overhead` runs on it."""
from __future__ import annotations

import numpy as np
import pytest

import activations
from activations.tools.benchmarks import overhead
from activations.cli import bench_cmd


@pytest.fixture
def standin():
    launches = []
    be = overhead.standin_backend(on_launch=lambda name, device, grid, block, args: launches.append((name, device)))
    with overhead.registered(be, "cupy"):
        yield be, be._cupy(), launches
    assert overhead.StandinDevice.current == 0


@pytest.mark.parametrize("device", [0, 1])
def test_a_call_runs_on_the_device_of_its_array(standin, device):
    be, cp, launches = standin
    with cp.cuda.Device(device):
        x = cp.asarray(np.linspace(-3, 3, 4 * 64, dtype=np.float32).reshape(4, 64))
        bias = cp.asarray(np.zeros(64, np.float32))
        dy = cp.asarray(np.ones((4, 64), np.float32))
    assert x.device.id == device and overhead.StandinDevice.current == 0
    y = activations.apply("gelu", x)  # automatic selection; device 0 is current
    dx, dbias = activations.grad("gelu", x, dy, bias=bias)  # kernel, then the column sums
    p = activations.apply("softmax", x, backend="cupy")
    names = [name for name, _ in launches]
    assert "act_gelu_fwd_f32" in names and "act_gelu_bwd_f32" in names and "act_colsum_final_f32" in names
    assert {d for _, d in launches} == {device}
    assert all(a.device.id == device for a in (y, dx, dbias, p))
    assert set(be._launchers) == {device}
    assert overhead.StandinDevice.current == 0  # the caller's device again


def test_bench_overhead_prints_the_numbers(capsys, monkeypatch):
    monkeypatch.setattr(overhead, "per_call_us", lambda fn, calls=0, rounds=0: (fn(), 1.0)[1])
    parser = __import__("argparse").ArgumentParser()
    bench_cmd.add_arguments(parser)
    assert bench_cmd.run(parser.parse_args(["--overhead"])) == 0
    out = capsys.readouterr().out
    assert "cupy host overhead: 1.0 us" in out and "front end: 1.0 us" in out and "cpu: " in out
    assert "of which the stand-in: 1.0 us" in out
