"""One command on a GPU machine: the GPU test suite, then the benchmark, then the report.

    python bench/gpu_report.py                  # full grid, 2^10..2^28
    python bench/gpu_report.py --preset default --max-time 420

Writes bench/results/<device-slug>.md (test summary, tables, measured next to
modelled, notes), its records <device-slug>.jsonl and the bandwidth plots
<device-slug>[-section].png.  The model is the static one of
`python -m activations check-kernels --model` (bench/results/model-sm_90.json,
written by --write-model on a machine with NVRTC and cuobjdump), so that a
measurement can correct it.  The peers are every GPU peer of activations.tools.benchmarks.providers,
torch.compile (Inductor's Triton kernels, compiled before timing) among them.  Exits 2 at once, saying why, when no CUDA device is
visible.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def slug(text: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in text.lower())
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-") or "gpu"


def run_tests(timeout: float) -> tuple[int, str]:
    """pytest tests/ with the GPU tests selected; (exit code, summary tail)."""
    cmd = [sys.executable, "-m", "pytest", "tests/", "-m", "gpu or not gpu", "-q", "-rfEs", "-p", "no:cacheprovider"]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return 124, f"timed out after {timeout:.0f} s\n" + "\n".join(out.splitlines()[-40:])
    lines = (proc.stdout + proc.stderr).splitlines()
    return proc.returncode, "\n".join(lines[-60:])


MODEL = ROOT / "bench" / "results" / "model-sm_90.json"


def write_model(path: Path = MODEL) -> int:
    """The static model's predicted fraction of copy bandwidth per kernel (f16, bf16, f32), as JSON."""
    import json
    import tempfile

    from activations.cli import check_kernels_cmd as ck

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "k.json"
        parser = argparse.ArgumentParser()
        ck.add_arguments(parser)
        rc = ck.run(parser.parse_args(["--checker", "cuda-c", "--arch", "sm_90", "--dtype", "f16", "bf16", "f32",
                                       "--summary", "--json", str(out)]))
        data = json.loads(out.read_text())
    model = {k["kernel"]: {"predicted": k["model"]["predicted_h100_fraction"],
                           "instructions_per_element": k["model"]["instructions_per_element"],
                           "bound": k["model"]["bound"]}
             for k in data["kernels"] if k.get("model")}
    path.write_text(json.dumps(dict(sorted(model.items())), indent=0) + "\n")
    print(f"gpu_report: wrote {path} ({len(model)} kernels)", file=sys.stderr)
    return rc


def kernel_of(rec: dict, info) -> str | None:
    """The kernel entry a benchmark record of the CuPy backend ran (rows along the last axis)."""
    from activations import _dtypes
    from activations.backends.cuda import ops as _cuda_ops, source as _cuda_source

    dtype = _dtypes.from_name(rec["dtype"])
    short = _dtypes.short_name(dtype)
    direction = "bwd" if rec["direction"] == "backward" else "fwd"
    if rec["kind"] in ("elementwise", "gated"):
        return _cuda_source.entry(rec["name"], direction, short)
    if rec["kind"] != "rowwise" or not rec.get("shape"):
        return None
    n = int(rec["shape"][-1])
    packed = n % (16 // dtype.itemsize) == 0  # benchmark arrays are aligned and unmasked
    path = _cuda_ops.row_path(rec["name"], n, 1, dtype, info, backward=direction == "bwd", packed=packed)
    return _cuda_source.entry(rec["name"], direction, short, path.name)


def model_lines(records, model: dict, info) -> list[str]:
    """Markdown: each out-of-cache measurement of our CUDA C kernels (no bias) next to the model."""
    from activations.tools.benchmarks import report

    lines = []
    for row in report.build_rows(records):
        r = row.rec
        if r.get("provider") != "cupy" or r.get("bias") or not row.out_of_cache or row.pct_ceiling is None:
            continue
        kernel = kernel_of(r, info)
        m = model.get(kernel) if kernel else None
        if m is None:
            continue
        shape = "x".join(map(str, r["shape"]))
        lines.append(f"| {r['label']} | {r['direction']} | {r['dtype']} | {shape} | `{kernel}` | "
                     f"{row.pct_ceiling:.0f}% | {100 * m['predicted']:.0f}% ({m['bound']}) |")
    if not lines:
        return []
    return ["## Measured next to modelled", "",
            "% of copy bandwidth: measured here, and predicted by the static model of "
            "`python -m activations check-kernels --model` (docs/gpu-backend.md) for an H100.", "",
            "| activation | direction | dtype | shape | kernel | measured | modelled |",
            "|---|---|---|---|---|---:|---:|", *lines, ""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("quick", "default", "full"), default="full")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="output folder")
    parser.add_argument("--skip-tests", action="store_true", help="benchmark only")
    parser.add_argument("--test-timeout", type=float, default=900.0, help="seconds for the test suite")
    parser.add_argument("--max-time", type=float, default=None, help="start no new benchmark case after S seconds")
    parser.add_argument("--names", nargs="+", help="restrict the benchmark to these activations")
    parser.add_argument("--model", default=str(MODEL), help="the static model's JSON (see --write-model)")
    parser.add_argument("--write-model", action="store_true",
                        help="only write the model's JSON (needs NVRTC and cuobjdump, not a GPU)")
    args = parser.parse_args(argv)
    if args.write_model:
        return write_model(Path(args.model))

    from activations.tools.benchmarks import GridSpec, build_grid, gpu_available, run, settings_for
    from activations.tools.benchmarks import report
    from activations.tools.benchmarks.providers import GPU_BACKENDS, Context
    from activations.tools.benchmarks.runner import append_jsonl

    ok, name = gpu_available()
    if not ok:
        print(f"gpu_report: no CUDA device here ({name}). This script needs a GPU and CuPy; "
              "on a CPU machine run `python -m activations bench` instead.", file=sys.stderr)
        return 2

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / slug(name)
    jsonl, md, png = base.with_suffix(".jsonl"), base.with_suffix(".md"), base.with_suffix(".png")
    print(f"gpu_report: {name} -> {base}.*", file=sys.stderr)

    tests_rc, tests_tail = None, "not run (--skip-tests)"
    if not args.skip_tests:
        t0 = time.monotonic()
        tests_rc, tests_tail = run_tests(args.test_timeout)
        print(f"gpu_report: tests exit code {tests_rc} in {time.monotonic() - t0:.0f} s", file=sys.stderr)

    from activations import dispatch

    backends = tuple(b for b in GPU_BACKENDS if dispatch.status(b)[0]) or GPU_BACKENDS
    cases = build_grid(GridSpec(preset=args.preset, device="gpu", names=args.names))
    ctx = Context(device="gpu", backends=backends)
    if jsonl.exists():
        jsonl.unlink()  # this file holds one run: the report's
    t0 = time.monotonic()
    records = run(cases, ctx, settings_for(args.preset), on_record=lambda r: append_jsonl(jsonl, [r]),
                  max_time_s=args.max_time)
    left = run.last_skipped_cases
    elapsed = time.monotonic() - t0

    text = report.markdown(records, title=f"GPU report: {name}")
    head, _, rest = text.partition("\n\n")
    extra = [
        "",
        f"Command: `python bench/gpu_report.py --preset {args.preset}"
        + (f" --max-time {args.max_time:g}" if args.max_time else "") + "`; benchmark "
        f"{len(cases) - left} of {len(cases)} cases in {elapsed:.0f} s"
        + (f" ({left} not run: time limit)" if left else "") + ".",
        "",
        "## GPU test suite (`pytest tests/ -m \"gpu or not gpu\"`)",
        "",
        f"exit code: {tests_rc}",
        "",
        "```",
        tests_tail,
        "```",
        "",
    ]
    try:
        import json

        from activations.backends.cuda import BACKEND

        model = json.loads(Path(args.model).read_text())
        extra += model_lines(records, model, BACKEND._current_launcher().info)
    except (OSError, ValueError) as exc:
        extra += [f"(no model next to the measurements: {exc})", ""]
    md.write_text(head + "\n" + "\n".join(extra) + "\n" + rest, encoding="utf-8")
    try:
        plots = report.plot(records, png)
    except ImportError:
        plots = []
        print("gpu_report: matplotlib missing, no plots", file=sys.stderr)
    print(f"gpu_report: wrote {md}, {jsonl}" + (", " + ", ".join(plots) if plots else ""), file=sys.stderr)
    rows = report.build_rows(records)
    print("\n".join(report.table_lines(rows)))
    return 0 if (tests_rc in (0, None)) else 1


if __name__ == "__main__":
    sys.exit(main())
