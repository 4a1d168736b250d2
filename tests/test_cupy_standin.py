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
    def timed(fns, calls=0, rounds=0, scopes=None):  # each function run once in its scope; no timing
        scopes = scopes or {}
        for key, fn in fns.items():
            with scopes.get(key, __import__("contextlib").nullcontext)():
                fn()
        return {key: {"total": 3.0, "standin": 1.25}.get(key, 1.0) for key in fns}

    monkeypatch.setattr(overhead, "per_call_us", timed)
    parser = __import__("argparse").ArgumentParser()
    bench_cmd.add_arguments(parser)
    assert bench_cmd.run(parser.parse_args(["--overhead"])) == 0
    out = capsys.readouterr().out
    assert "cupy host overhead: 1.8 us ours" in out and "front end: 1.0 us" in out and "cpu: " in out
    assert "the whole call 3.0 us less the stand-in's own 1.2 us" in out


def test_overhead_measures_the_call_and_the_standins_share():
    got = overhead.measure("gelu", calls=3, rounds=2)
    assert set(got) == {"total", "standin", "ours", "front", "numpy", "yardstick"}
    assert all(v > 0 for k, v in got.items() if k != "ours") and got["ours"] == got["total"] - got["standin"]
    assert overhead.StandinDevice.current == 0


@pytest.mark.parametrize("name", ["gelu", "relu"])
def test_standin_share_makes_the_operations_of_a_call(standin, name):
    """What bench --overhead subtracts as the stand-in's own cost is exactly what the stand-in does
    in one call: the same devices made and entered, allocations, addresses and launches."""
    be, cp, launches = standin
    x = cp.empty(256, np.float32)
    x[...] = 0.5
    share = overhead._standin_ops(be, x, name)
    activations.apply(name, x)  # x's address worked out once, as in the timed loop
    with overhead.standin_operations() as call:
        activations.apply(name, x)
    with overhead.standin_operations() as ops:
        share()
    assert call == ops and call["launch"] == 1 and call["empty"] == 1 and call["device entered"] == 1
    # the counting is gone afterwards
    with overhead.standin_operations() as after:
        pass
    activations.apply(name, x)
    assert not after
