"""`python -m activations check-kernels`: compile every GPU kernel without a GPU; report resources.

The checks are :mod:`activations.tools.check_kernels`; this command prints their table (and the
performance model), optionally writes JSON, and exits 1 on any compile error, register spill or
failed SASS check.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..tools.check_kernels import (CHECKERS, DEFAULT_ARCHS, MODEL_ARCH, CheckResult, KernelReport, Options,
                                   summarize)

HELP = "compile every GPU kernel for sm_80/sm_90 without a GPU: registers, spills, shared memory"


def add_arguments(parser) -> None:
    parser.add_argument("--arch", nargs="+", default=list(DEFAULT_ARCHS), metavar="SM",
                        help="target architectures (default: sm_80 sm_90)")
    parser.add_argument("--json", metavar="PATH", help="also write every kernel's report as JSON")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME",
                        help="only these kernel modules (activation names, colsum, or module keys: softmax_block_bf16)")
    parser.add_argument("--dtype", nargs="+", default=[], choices=("f16", "bf16", "f32", "f64"), metavar="DT",
                        help="only these dtypes (f16 bf16 f32 f64)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel compiler processes")
    parser.add_argument("--checker", nargs="+", default=[], choices=["cuda-c", "numba"],
                        help="only these kernel families (default: all)")
    parser.add_argument("--sass", action="store_true",
                        help="disassemble (cuobjdump) and check that elementwise kernels use 128-bit loads/stores")
    parser.add_argument("--sass-dir", metavar="DIR", help="write each kernel's SASS (sm_90) to DIR/<entry>.sass")
    parser.add_argument("--model", action="store_true",
                        help="print the static H100 performance model per kernel (in --json unless --no-model)")
    parser.add_argument("--no-model", action="store_true",
                        help="leave the model out of --json (it disassembles every module: about 1 s each)")
    parser.add_argument("--summary", action="store_true", help="one line per module instead of one per kernel")


def run(args) -> int:
    model = bool(getattr(args, "model", False) or args.json) and not getattr(args, "no_model", False)
    opts = Options(tuple(args.arch), tuple(args.only), tuple(args.dtype), max(1, args.jobs), args.sass,
                   getattr(args, "sass_dir", None), model)
    start = time.perf_counter()
    result = CheckResult()
    for name, checker in CHECKERS.items():
        if args.checker and name not in args.checker:
            continue
        part = checker(opts)
        result.kernels += part.kernels
        result.errors += [f"{name}: {e}" for e in part.errors]
        result.notes += [f"{name}: {n}" for n in part.notes]
    seconds = time.perf_counter() - start
    print_table(result, opts.archs, summary=args.summary)
    if getattr(args, "model", False):
        print()
        print_model(result)
    summary = summarize(result, opts.archs, seconds)
    print()
    print(summary["text"])
    for note in result.notes:
        print("note: " + note)
    for err in result.errors:
        print("error: " + err, file=sys.stderr)
    if args.json:
        data = {"archs": list(opts.archs), "summary": {k: v for k, v in summary.items() if k != "text"},
                "errors": result.errors, "notes": result.notes, "kernels": [asdict(k) for k in result.kernels]}
        Path(args.json).write_text(json.dumps(data, indent=1))
    return 1 if result.errors or summary["spilling_kernels"] else 0


# ------------------------------------------------------------------ report
def print_table(result: CheckResult, archs, summary: bool = False) -> None:
    rows: dict[str, dict[str, KernelReport]] = {}
    for k in result.kernels:
        per_arch = rows.setdefault(k.module if summary else k.kernel, {})
        per_arch[k.arch] = _worse(per_arch.get(k.arch), k) if summary else k
    width = max((len(name) for name in rows), default=10)
    header = "  ".join(f"{a:>5} regs spill stack smem" for a in archs)
    print(f"{'module' if summary else 'kernel':<{width}}  {header}")
    for name, per_arch in rows.items():
        cells = []
        for a in archs:
            k = per_arch.get(a)
            cells.append(f"{'':>5} {k.registers:>4} {k.spill_stores + k.spill_loads:>5} {k.stack:>5} {k.shared:>4}"
                         if k else f"{'':>5} {'-':>4} {'-':>5} {'-':>5} {'-':>4}")
        print(f"{name:<{width}}  " + "  ".join(cells))


def _worse(a: KernelReport | None, b: KernelReport) -> KernelReport:
    """Per-module summary row: the largest of each resource over the module's kernels."""
    if a is None:
        return KernelReport(b.checker, b.module, b.module, b.arch, b.registers, b.spill_stores, b.spill_loads,
                            b.stack, b.shared)
    return KernelReport(a.checker, a.module, a.module, a.arch, max(a.registers, b.registers),
                        a.spill_stores + b.spill_stores, a.spill_loads + b.spill_loads, max(a.stack, b.stack),
                        max(a.shared, b.shared))


def print_model(result: CheckResult) -> None:
    rows = [k for k in result.kernels if k.model]
    if not rows:
        print("performance model: no modelled kernel selected")
        return
    width = max(len(k.kernel) for k in rows)
    print(f"{'kernel (H100 model, ' + MODEL_ARCH + ')':<{width}}  instr/elem  sfu/elem  in-flight/SM  occupancy  "
          "predicted  bound")
    for k in rows:
        m = k.model
        print(f"{k.kernel:<{width}}  {m['instructions_per_element']:>10.1f}  {m['sfu_per_element']:>8.2f}  "
              f"{m['loads_in_flight_bytes_per_sm'] // 1024:>10} KB  {m['occupancy']:>9.2f}  "
              f"{m['predicted_h100_fraction']:>8.0%}  {m['bound']}")


