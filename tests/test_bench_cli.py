"""`python -m activations bench` and `plot` on tiny grids: formats, skipped peers, images."""
from __future__ import annotations

import csv
import re
import sys

import pytest

from activations.tools.benchmarks import cases as C
from activations.tools.benchmarks import report
from activations.tools.benchmarks.runner import FIELDS, load
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
        assert r["cache_bytes"] is None or r["cache_bytes"] >= 1 << 16  # the last-level cache, when known
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
    # sizes 2^10..2^12 stay in the cache: no GB/s or % copy columns; ratios say which way they go
    assert "| name | size | backend | time (p20-p80) | naive_numpy / ours |" in text
    assert "| relu | 2^10 | numpy |" in text
    assert "**geomean**" in text
    assert "above 1x: ours is faster" in text
    assert "## Summary" in text and "vs naive NumPy" in text
    assert "call overhead" in text


def test_bench_prints_a_report(capsys, tmp_path):
    rc = bench("--names", "relu", "tanh", "--no-overhead")
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    # where it ran and what "ours" is, then a one-line legend of the columns
    assert lines[0].startswith("Measured on ") and "numpy backend = " in lines[0]
    assert lines[1].startswith("How to read: ") and "peer time / our time (above 1x: ours is faster)" in lines[1]
    assert "elementwise, forward, float32, 1 thread" in out
    # the ratio columns carry their direction on the line above them
    title = lines.index("elementwise, forward, float32, 1 thread")
    assert lines[title + 1].strip() == "peer time / our time (above 1x: ours is faster)"
    assert lines[title + 2].split() == ["name", "size", "backend", "time", "naive_numpy"]
    assert "geomean" in out
    # the summary says the ratio in words, and gives no verdict on goals set for 2^24
    assert "Summary: numpy backend, 2 elementwise activations, forward float32 at 2^12" in out
    assert re.search(r"vs naive NumPy +[0-9.]+x (faster|slower)", out)
    assert "judged at 2^24" in out and "MISSED" not in out and ": met" not in out
    # torch was not among the peers: said so, no verdict about it
    assert re.search(r"\n  vs torch +not measured: not among this run's peers", out)
    assert "below 0.67x" not in out


def test_not_installed_torch_is_reported_as_not_measured(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # import raises ImportError
    assert bench("--names", "relu", "sigmoid", "--no-overhead", "--peers", "naive_numpy", "torch", "torch_out") == 0
    out = capsys.readouterr().out
    assert re.search(r"\n  vs torch +not measured: torch is not installed \(pip install torch\)\n", out)
    assert "Not measured: torch, torch_out: torch is not installed (pip install torch)." in out
    assert "slowest vs torch" not in out and "no activation below" not in out
    header = next(line for line in out.splitlines() if line.startswith("name "))
    assert "torch" not in header  # no empty torch columns


def test_dask_rows_only_when_asked(monkeypatch, tmp_path, capsys):
    from activations import dispatch

    real = dispatch.status
    monkeypatch.setattr(dispatch, "status", lambda name: (True, "dask here") if name == "dask" else real(name))
    args = [a for a in TINY if a not in ("--backend", "numpy")] + ["--names", "relu", "--no-overhead", "--no-peers"]
    out = tmp_path / "r.jsonl"
    assert main(["bench", *args, "--json", str(out)]) == 0
    assert {r["provider"] for r in load(out) if r["role"] == "ours"} == {"numpy"}
    assert " dask " not in capsys.readouterr().out
    assert main(["bench", *args, "--backend", "numpy", "dask", "--json", str(out)]) == 0
    assert {r["provider"] for r in report.latest(load(out)) if r["role"] == "ours"} == {"numpy", "dask"}


def _records(cache, sizes, threads=1):
    """Synthetic CPU records: ours twice as fast as naive NumPy, at half a copy's bandwidth."""
    recs = []
    for n in sizes:
        base = dict(run_id="r", label="relu", name="relu", kind="elementwise", direction="forward", dtype="float32",
                    shape=[n], numel=n, bytes=8 * n, bias=False, out=True, tag="", status="ok", threads=threads,
                    cache_bytes=cache, device="cpu0", device_kind="cpu", cpus=2, backends={"numpy": "engine"})
        t = n * 1e-6
        recs += [dict(base, provider="numpy", role="ours", time_ms=t, gbps=8 * n / t / 1e6),
                 dict(base, provider="naive_numpy", role="peer", threads=None, time_ms=2 * t, gbps=4 * n / t / 1e6),
                 dict(base, provider="copy", role="ceiling", time_ms=t / 2, gbps=16 * n / t / 1e6)]
    return recs


def test_bandwidth_only_for_data_beyond_the_cache():
    from activations.tools.benchmarks.runner import _size_text

    assert _size_text("8192K\n") == 8 << 20 and _size_text("32M") == 32 << 20 and _size_text("67108864") == 64 << 20
    cache = 1 << 20  # GB/s and % copy from 2 MiB of data: 2^18 float32 elements forward
    rows = report.build_rows(_records(cache, [1 << 12, 1 << 18, 1 << 20]))
    assert [r.out_of_cache for r in rows] == [False, True, True]
    lines = report.table_lines(rows)
    assert lines[2].split()[4:6] == ["GB/s", "%"]
    small, big = lines[3].split(), lines[4].split()
    assert "50%" in big and "50%" not in small and len(small) == len(big) - 2
    assert "shown for data of 2 MiB (2x the 1 MiB cache) or more" in report.legend_line(rows)
    # every case in the cache: no bandwidth columns at all, and the legend says why
    rows = report.build_rows(_records(cache, [1 << 10, 1 << 12]))
    text = "\n".join(report.table_lines(rows))
    assert "GB/s" not in text and "%" not in text
    assert "no GB/s or % copy: every case moves less than 2 MiB" in report.legend_line(rows)


def test_summary_judges_goals_only_at_their_size():
    recs = _records(1 << 20, [1 << 24]) + _records(1 << 20, [1 << 24], threads=2)
    for r in recs:
        if r["provider"] == "naive_numpy":
            r["time_ms"] *= 2  # 4x: above the 3x goal
    text = "\n".join(report.text_report(recs))
    assert re.search(r"vs naive NumPy +4\.00x faster +4\.00x faster +at least 3x faster: met", text)
    assert "judged at 2^24" not in text
    rows = report.build_rows(recs)
    res = report.cpu_goals(rows)
    res[1].vs_naive = 2.0
    text = "\n".join(report.summary_lines(res, recs))
    assert "2.00x faster" in text and "at least 3x faster: missed at 2 threads" in text
    res[1].vs_naive = 0.5
    assert "2.00x slower" in "\n".join(report.summary_lines(res, recs))


def test_progress_bar_names_the_case(monkeypatch):
    from activations.tools.benchmarks import runner

    seen = []

    class Bar(runner._NoBar):
        def set_description(self, text):
            seen.append(text)

    monkeypatch.setattr(runner, "_progress", lambda total, enabled: Bar(total))
    assert bench("--names", "relu", "--sizes", "10", "--direction", "backward", "--no-overhead", "--no-peers") == 0
    assert seen == ["relu backward float32 2^10"]
    assert C.Case("gelu", "forward", "float32", (8,), tag="overhead").title == "gelu forward float32 call cost"


def test_torch_out_runs_the_log_softmax_backward(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "r.jsonl"
    assert bench("--names", "log_softmax", "softmax", "sigmoid", "tanh", "--sizes", "10", "--direction", "backward",
                 "--no-overhead", "--peers", "naive_numpy", "torch_out", "--json", str(out)) == 0
    records = load(out)
    got = {r["label"]: r for r in records if r["provider"] == "torch_out"}
    assert got["log_softmax"]["status"] == "ok", got["log_softmax"]["reason"]
    assert got["softmax"]["status"] == "ok", got["softmax"]["reason"]
    # peers whose backward takes y get y, whatever ours consumes: the same numbers as ours
    peers = [r for r in records if r["role"] == "peer"]
    assert len(peers) == 8 and all(r["status"] == "ok" and r["check"] == "ok" for r in peers), \
        [(r["provider"], r["label"], r["check"]) for r in peers]


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
    from activations.tools.benchmarks import gpu_available

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
                shape=[1 << 26], numel=1 << 26, bytes=8 << 26, cache_bytes=50 << 20, bias=False, out=True, tag="",
                status="ok", threads=None)
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
    header = text.splitlines()[2].split()
    assert header[4:8] == ["host", "time", "GB/s", "%"]


def _inside_the_figure(fig):
    """Titles, axis labels and legends lie within the image (nothing clipped or off the figure)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    items = [fig._suptitle] if fig._suptitle is not None else []
    items += list(fig.legends)
    for ax in fig.axes:
        if ax.get_visible():
            items += [ax.title, ax.xaxis.label, ax.yaxis.label]
            items += [ax.get_legend()] if ax.get_legend() is not None else []
    for item in items:
        if hasattr(item, "get_text") and not item.get_text():
            continue
        bb = item.get_window_extent(renderer)
        assert bb.x0 >= box.x0 - 1 and bb.x1 <= box.x1 + 1 and bb.y0 >= box.y0 - 1 and bb.y1 <= box.y1 + 1, item


def test_plot_of_many_curves_uses_small_multiples(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    import numpy as np

    from activations.cli import plot_cmd

    names = ["relu", "relu6", "sigmoid", "silu", "swish", "tanh", "softmax"]
    png = tmp_path / "many.png"
    assert main(["plot", *names, "--derivative", "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC
    # identical curves are drawn once, under both names (and the command says so)
    assert "relu = relu6; sigmoid = softmax of [x, 0]; silu = swish: identical on [-5, 5]" in capsys.readouterr().err
    x = np.linspace(-5, 5, 101)
    evaluated = [(n, "elementwise", f(x), None) for n, f in
                 (("silu", lambda v: v / (1 + np.exp(-v))), ("tanh", np.tanh), ("swish", lambda v: v / (1 + np.exp(-v))))]
    groups = plot_cmd.merge_identical(evaluated)
    assert [g[0] for g in groups] == [["silu", "swish"], ["tanh"]]
    # many curves: one panel each, titled, nothing off the figure
    groups = [([f"f{i}"], "elementwise", np.sin(x + i), np.cos(x + i)) for i in range(13)]
    fig = plot_cmd.figure(x, groups, derivative=True, title="a rather long title " * 6)
    try:
        shown = [ax for ax in fig.axes if ax.get_visible()]
        assert len(shown) == 13 and [ax.get_title() for ax in shown] == [f"f{i}" for i in range(13)]
        _inside_the_figure(fig)
    finally:
        plt.close(fig)
    # a few curves: one chart, its legend inside
    fig = plot_cmd.figure(x, groups[:3], derivative=True)
    try:
        assert len(fig.axes) == 1 and fig.axes[0].get_legend() is not None
        _inside_the_figure(fig)
    finally:
        plt.close(fig)


def test_bench_plot_draws_every_activation_in_a_grid():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    recs = []
    for i in range(14):
        for r in _records(1 << 20, [1 << 16, 1 << 18, 1 << 20, 1 << 22]):
            recs.append(dict(r, label=f"act{i}", name="relu"))
    figures = report.plot_figures(recs)
    assert len(figures) == 1
    key, fig = figures[0]
    try:
        shown = [ax for ax in fig.axes if ax.get_visible()]
        assert [ax.get_title() for ax in shown] == [f"act{i}" for i in range(14)]  # none left out
        assert all(ax.get_legend() is None for ax in shown) and len(fig.legends) == 1  # one legend
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert labels == ["numpy", "naive_numpy", "copy (ceiling)", "data < 2 MiB (2x cache)"]
        assert shown[0].get_yscale() == "log"
        _inside_the_figure(fig)
    finally:
        plt.close(fig)


def test_torch_compile_peer_runs_only_when_named(tmp_path):
    """Inductor's kernel is timed and its output checked against ours; the default peers leave it out."""
    pytest.importorskip("torch")
    out = tmp_path / "r.jsonl"
    assert bench("--names", "sigmoid", "softmax", "--sizes", "10", "--direction", "backward", "--no-overhead",
                 "--peers", "torch_compile", "--json", str(out)) == 0
    got = [r for r in load(out) if r["provider"] == "torch_compile"]
    assert len(got) == 2 and all(r["status"] == "ok" and r["check"] == "ok" for r in got), \
        [(r["label"], r["status"], r["reason"], r["check"]) for r in got]
    default = tmp_path / "d.jsonl"
    assert bench("--names", "sigmoid", "--sizes", "10", "--no-overhead", "--all-peers", "--json", str(default)) == 0
    providers = {r["provider"] for r in load(default)}
    assert "torch_out" in providers and "torch_compile" not in providers
