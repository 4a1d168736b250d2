"""`python -m activations bench` and `plot` on tiny grids: formats, skipped peers, images."""
from __future__ import annotations

import csv
import sys

import pytest

from activations.benchmarks import cases as C
from activations.benchmarks import report
from activations.benchmarks.runner import FIELDS, load
from activations.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# a grid that runs in seconds: sizes 2^10..2^12, one small softmax shape, two rounds;
# the NumPy backend against the naive formula unless a test asks for other peers
TINY = ["--sizes", "10", "11", "12", "--shapes", "8x64", "--threads", "1", "--budget", "0", "--rounds", "2",
        "--direction", "forward", "--no-progress", "--backend", "numpy"]


def bench(*args) -> int:
    if "--peers" not in args and "--no-peers" not in args and "--all-peers" not in args:
        args = (*args, "--peers", "naive_numpy")
    args = tuple(a for a in args if a != "--all-peers")
    return main(["bench", *TINY, *args])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny run shared by the format tests (JSON lines, CSV, Markdown)."""
    d = tmp_path_factory.mktemp("bench")
    paths = {k: d / f"out.{k}" for k in ("jsonl", "csv", "md")}
    rc = bench("--names", "relu", "sigmoid", "softmax", "--json", str(paths["jsonl"]), "--csv", str(paths["csv"]),
               "--markdown", str(paths["md"]))
    return rc, paths


def test_bench_runs_and_writes_json_lines(tiny_run):
    rc, paths = tiny_run
    assert rc == 0
    records = load(paths["jsonl"])
    assert records and all(set(FIELDS) <= set(r) for r in records)
    assert len({r["run_id"] for r in records}) == 1
    ours = [r for r in records if r["provider"] == "numpy" and r["status"] == "ok"]
    assert {r["label"] for r in ours} >= {"relu", "sigmoid", "softmax"}
    for r in ours:
        assert r["role"] == "ours" and r["time_ms"] > 0 and r["gbps"] > 0
        assert r["time_ms_p20"] <= r["time_ms"] <= r["time_ms_p80"]
        assert r["bytes"] == C.Case(r["name"], r["direction"], r["dtype"], tuple(r["shape"])).bytes()
        assert r["device_kind"] == "cpu" and r["versions"]["numpy"]
    # the copy ceiling is measured in every non-overhead case
    sized = {(r["label"], tuple(r["shape"])) for r in ours if r["tag"] != "overhead"}
    ceil = {(r["label"], tuple(r["shape"])) for r in records if r["role"] == "ceiling" and r["status"] == "ok"}
    assert sized <= ceil
    # the naive NumPy formula is always available
    assert any(r["provider"] == "naive_numpy" and r["status"] == "ok" for r in records)
    # the overhead cases time a tiny array per call
    assert any(r["tag"] == "overhead" and r["shape"] == [8] for r in ours)


def test_bench_csv_has_the_same_records(tiny_run):
    _, paths = tiny_run
    with open(paths["csv"], newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == FIELDS
        rows = list(reader)
    assert len(rows) == len(load(paths["jsonl"]))
    back = load(paths["csv"])
    ok = [r for r in back if r["status"] == "ok"]
    assert all(isinstance(r["time_ms"], float) and isinstance(r["shape"], list) for r in ok)


def test_bench_markdown_tables(tiny_run):
    _, paths = tiny_run
    text = paths["md"].read_text(encoding="utf-8")
    assert text.startswith("# Benchmark results")
    assert "| name | size | backend | time (p20-p80) | GB/s | % copy |" in text
    assert "| relu | 2^10 | numpy |" in text
    assert "**geomean**" in text
    assert "x naive_numpy" in text
    assert "call overhead" in text


def test_bench_prints_a_table(capsys, tmp_path):
    rc = bench("--names", "relu", "tanh", "--no-overhead")
    out = capsys.readouterr().out
    assert rc == 0
    assert "elementwise, forward, float32, 1 thread" in out
    assert "geomean" in out and "% copy" in out
    assert "CPU goals" in out


def test_missing_peers_are_skipped_not_faked(monkeypatch, tmp_path):
    for mod in ("torch", "jax"):
        monkeypatch.setitem(sys.modules, mod, None)  # import raises ImportError
    out = tmp_path / "r.jsonl"
    md = tmp_path / "r.md"
    assert bench("--names", "gelu", "softmax", "--no-overhead", "--all-peers", "--json", str(out),
                 "--markdown", str(md)) == 0
    records = load(out)
    for peer, why in (("torch", "torch is not installed"), ("torch_out", "torch is not installed"),
                      ("jax", "jax is not installed")):
        mine = [r for r in records if r["provider"] == peer]
        assert mine, peer
        assert all(r["status"] == "skipped" and r["reason"] == why for r in mine)
        assert all(r["time_ms"] is None and r["gbps"] is None for r in mine)
    rows = report.build_rows(records)
    assert all("torch" not in row.peers and "jax" not in row.peers for row in rows)
    text = md.read_text(encoding="utf-8")
    assert "- torch: torch is not installed" in text and "- jax: jax is not installed" in text
    assert "x torch" not in text


def test_peer_without_an_equivalent_is_skipped_with_the_reason(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "r.jsonl"
    assert bench("--names", "sparsemax", "swiglu", "--no-overhead", "--peers", "torch", "torch_out", "--json", str(out)) == 0
    records = load(out)
    sparsemax_torch = [r for r in records if r["label"] == "sparsemax" and r["provider"] == "torch"]
    assert sparsemax_torch and all(r["status"] == "skipped" and "no sparsemax" in r["reason"] for r in sparsemax_torch)
    swiglu_out = [r for r in records if r["label"] == "swiglu" and r["provider"] == "torch_out"]
    assert swiglu_out and all(r["status"] == "skipped" and "out=" in r["reason"] for r in swiglu_out)


def test_from_reports_the_latest_run(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    assert bench("--names", "relu", "--no-overhead", "--no-peers", "--json", str(out)) == 0
    assert bench("--names", "tanh", "--no-overhead", "--no-peers", "--json", str(out)) == 0
    assert len({r["run_id"] for r in load(out)}) == 2
    capsys.readouterr()
    assert main(["bench", "--from", str(out)]) == 0
    text = capsys.readouterr().out
    assert "tanh" in text and "relu " not in text


def test_bench_plot_draws_bandwidth_vs_size(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "bw.png"
    assert bench("--names", "relu", "--no-overhead", "--peers", "naive_numpy", "--plot", str(png)) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_bench_rejects_bad_arguments(capsys):
    assert main(["bench", "--backend", "nope"]) == 2
    assert "unknown backend" in capsys.readouterr().err
    assert main(["bench", "--names", "relux", "--no-progress"]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert main(["bench", "--peers", "tensorflow"]) == 2


def test_bench_gpu_without_a_gpu_fails_clearly(capsys):
    from activations.benchmarks import gpu_available

    if gpu_available()[0]:
        pytest.skip("a GPU is present")
    assert main(["bench", "--device", "gpu", "--quick"]) == 2
    assert "no GPU here" in capsys.readouterr().err


def test_plot_command_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "acts.png"
    rc = main(["plot", "relu", "gelu:approximate=tanh", "leaky_relu", "softmax", "swiglu", "--derivative",
               "--range", "-3", "3", "--params", "negative_slope=0.1", "-o", str(png)])
    assert rc == 0
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_plot_errors(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    png = str(tmp_path / "x.png")
    assert main(["plot", "relu", "--params", "bogus=1", "-o", png]) == 2
    assert "bogus" in capsys.readouterr().err
    assert main(["plot", "gelu:approximate=maybe", "-o", png]) == 2
    assert main(["plot", "relu", "--range", "2", "1", "-o", png]) == 2
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["plot", "relu", "-o", png]) == 2
    assert "matplotlib" in capsys.readouterr().err


def test_grid_presets_and_bytes():
    quick = C.build_grid(C.GridSpec(preset="quick"))
    assert {c.dtype for c in quick} == {"float32"}
    assert {c.name for c in quick if not c.tag} >= set(n for n in C.REGISTRY.names())
    default = C.build_grid(C.GridSpec(preset="default"))
    assert max(c.numel for c in default) == 1 << 24  # the CPU default stops at 2^24
    assert {(65536, 32), (64, 262144)} <= {c.shape for c in default if c.kind == "rowwise"}
    gpu_full = C.build_grid(C.GridSpec(preset="full", device="gpu", names=["relu"]))
    assert max(c.numel for c in gpu_full) == 1 << 28
    f32 = 4
    assert C.Case("relu", "forward", "float32", (1024,)).bytes() == 2 * 1024 * f32
    assert C.Case("relu", "backward", "float32", (1024,)).bytes() == 3 * 1024 * f32
    assert C.Case("swiglu", "forward", "float32", (4, 256)).bytes() == (1024 + 512) * f32
    assert C.Case("gelu", "forward", "float32", (4, 256), bias=True).bytes() == (2 * 1024 + 256) * f32
    assert C.Case("gelu", "forward", "float32", (8,), (("approximate", "tanh"),)).label == "gelu[approximate=tanh]"
    assert C.parse_size("20") == C.parse_size("2^20") == 1 << 20 and C.parse_size("1000") == 1000


def test_report_ratios_and_host_time_column():
    """Formatting of GPU-style records (host time present) and of the peer ratios."""
    base = dict(run_id="r", label="relu", name="relu", kind="elementwise", direction="forward", dtype="float32",
                shape=[1024], numel=1024, bias=False, out=True, tag="", status="ok", threads=None)
    recs = [
        dict(base, provider="cupy", role="ours", time_ms=0.010, time_ms_p20=0.009, time_ms_p80=0.011,
             cpu_time_ms=0.020, gbps=8.0),
        dict(base, provider="torch_cuda", role="peer", time_ms=0.020, time_ms_p20=0.02, time_ms_p80=0.02,
             cpu_time_ms=0.005, gbps=4.0),
        dict(base, provider="copy_sm", role="ceiling", time_ms=0.008, time_ms_p20=0.008, time_ms_p80=0.008,
             cpu_time_ms=0.004, gbps=10.0),
    ]
    rows = report.build_rows(recs)
    assert len(rows) == 1
    assert rows[0].vs == {"torch_cuda": pytest.approx(2.0)}
    assert rows[0].pct_ceiling == pytest.approx(80.0)
    text = "\n".join(report.table_lines(rows))
    assert "host time" in text and "2.00x" in text and "80%" in text
