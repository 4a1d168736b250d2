"""One command on a GPU machine: the GPU test suite, then the benchmark, then the report.

    python bench/gpu_report.py                  # full grid, 2^10..2^28
    python bench/gpu_report.py --preset default --max-time 420

Writes bench/results/<device-slug>.md (test summary, tables, notes), its
records <device-slug>.jsonl and the bandwidth plots <device-slug>[-section].png.
Exits 2 at once, saying why, when no CUDA device is visible.
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("quick", "default", "full"), default="full")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="output folder")
    parser.add_argument("--skip-tests", action="store_true", help="benchmark only")
    parser.add_argument("--test-timeout", type=float, default=900.0, help="seconds for the test suite")
    parser.add_argument("--max-time", type=float, default=None, help="start no new benchmark case after S seconds")
    parser.add_argument("--names", nargs="+", help="restrict the benchmark to these activations")
    args = parser.parse_args(argv)

    from activations.benchmarks import GridSpec, build_grid, gpu_available, run, settings_for
    from activations.benchmarks import report
    from activations.benchmarks.providers import GPU_BACKENDS, Context
    from activations.benchmarks.runner import append_jsonl

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
