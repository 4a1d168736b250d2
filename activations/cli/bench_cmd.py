"""`python -m activations bench`: time the backends against their peers."""
from __future__ import annotations

import argparse
import os
import sys

HELP = "benchmark the backends against naive NumPy/CuPy, torch, JAX and a copy ceiling"

_EPILOG = """\
examples:
  python -m activations bench --quick
  python -m activations bench --names gelu silu softmax --json results.jsonl --markdown results.md
  python -m activations bench --from results.jsonl --plot bandwidth.png
  python -m activations bench --overhead
Peer columns hold the peer's time / our time at the same thread count: above 1x, ours is faster.
GB/s and % copy are shown where a case moves at least twice the last-level cache.
"""


def _csv_list(values):
    out = []
    for v in values or ():
        out += [s for s in v.replace(",", " ").split() if s]
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    grid = parser.add_argument_group("what to run")
    size = grid.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small grid, about a minute")
    size.add_argument("--full", action="store_true", help="every size 2^10..2^28 (2^26 on a CPU), dtype, direction")
    grid.add_argument("--backend", nargs="+", metavar="NAME",
                      help="our backends (numpy, dask, cupy, numba); default: numpy on a CPU, cupy and numba on a GPU")
    grid.add_argument("--device", choices=("cpu", "gpu"), help="default: gpu when CuPy sees one, else cpu")
    grid.add_argument("--names", nargs="+", metavar="NAME", help="activations (names or aliases); default: all")
    grid.add_argument("--dtype", nargs="+", metavar="DTYPE", help="float32, bfloat16, float16, float64")
    grid.add_argument("--sizes", nargs="+", metavar="N",
                      help="elementwise/gated sizes: exponents (20), 2^20 or element counts")
    grid.add_argument("--shapes", nargs="+", metavar="RxC", help="softmax-family shapes, e.g. 4096x4096")
    grid.add_argument("--direction", choices=("forward", "backward", "both"), default="both")
    grid.add_argument("--threads", nargs="+", metavar="N",
                      help="CPU thread counts, each peer at the same count (default: 1 and all cores)")
    grid.add_argument("--peers", nargs="+", metavar="NAME",
                      help="peers to include (naive_numpy torch torch_out jax torch_compile naive_cupy torch_cuda "
                           "torch_cuda_out cupyx torch_cuda_compile; torch_compile only when named)")
    grid.add_argument("--no-peers", action="store_true", help="our backends and the copy ceiling only")
    grid.add_argument("--no-overhead", action="store_true", help="skip the tiny-array call-overhead cases")
    grid.add_argument("--overhead", action="store_true",
                      help="only the Python cost of a call: the CuPy backend with a no-op launch (no GPU "
                           "needed) and the shared front end on a tiny NumPy array")
    grid.add_argument("--bias", action="store_true", help="add fused-bias cases at the chosen sizes")
    timing = parser.add_argument_group("timing")
    timing.add_argument("--budget", type=float, metavar="S", help="seconds of timed rounds per case")
    timing.add_argument("--rounds", type=int, metavar="N", help="minimum rounds per case")
    timing.add_argument("--seed", type=int, default=0)
    timing.add_argument("--max-time", type=float, metavar="S",
                        help="start no new case after S seconds (report what was measured)")
    out = parser.add_argument_group("output")
    out.add_argument("--json", metavar="PATH", help="append the records to a JSON-lines file")
    out.add_argument("--csv", metavar="PATH", help="append the records to a CSV file")
    out.add_argument("--markdown", metavar="PATH", help="write the tables as Markdown")
    out.add_argument("--plot", metavar="PATH", help="bandwidth-vs-size PNG(s) (needs matplotlib)")
    out.add_argument("--title", default="Benchmark results", help="title of the Markdown report")
    out.add_argument("--from", dest="from_path", metavar="PATH",
                     help="do not run: report the latest run in a JSON-lines/CSV results file")
    out.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    from ..tools.benchmarks import cases as C
    from ..tools.benchmarks import report
    from ..tools.benchmarks import runner as R
    from ..tools.benchmarks.providers import CPU_BACKENDS, CPU_PEERS, GPU_BACKENDS, GPU_PEERS, Context, gpu_available

    if getattr(args, "overhead", False):
        from ..tools.benchmarks import overhead

        print("\n".join(overhead.report()))
        return 0

    if args.plot:  # fail before a long run, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("bench: --plot needs matplotlib: pip install matplotlib (part of the [bench] extra)",
                  file=sys.stderr)
            return 2

    if args.from_path:
        try:
            records = R.load(args.from_path)
        except (OSError, ValueError) as exc:
            print(f"bench: cannot read {args.from_path}: {exc}", file=sys.stderr)
            return 2
        if not records:
            print(f"bench: {args.from_path} holds no records", file=sys.stderr)
            return 1
        return _report(report.latest(records), args, report)

    try:
        ctx, spec, settings = _plan(args, C, R, CPU_BACKENDS, GPU_BACKENDS, CPU_PEERS, GPU_PEERS, Context, gpu_available)
        cases = C.build_grid(spec)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if not cases:
        print("bench: nothing to run (the filters leave no case)", file=sys.stderr)
        return 2
    threads = ", ".join(map(str, ctx.threads)) if ctx.device == "cpu" else "n/a"
    print(f"bench: {len(cases)} cases on the {ctx.device} ({spec.preset} grid); backends {', '.join(ctx.backends)}; "
          f"threads {threads}", file=sys.stderr)

    sinks = []
    if args.json:
        sinks.append(lambda rec: R.append_jsonl(args.json, [rec]))
    if args.csv:
        sinks.append(lambda rec: R.append_csv(args.csv, [rec]))

    records: list[dict] = []

    def on_record(rec):
        records.append(rec)  # streamed, so an interrupt keeps what was measured
        for sink in sinks:
            sink(rec)

    interrupted = False
    try:
        R.run(cases, ctx, settings, progress=not args.no_progress, on_record=on_record, max_time_s=args.max_time)
        if R.run.last_skipped_cases:
            print(f"bench: --max-time reached: {R.run.last_skipped_cases} of {len(cases)} cases not run",
                  file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
        print("bench: interrupted; reporting what was measured", file=sys.stderr)
    if not records:
        return 130 if interrupted else 1
    code = _report(records, args, report)
    return 130 if interrupted else code


def _plan(args, C, R, CPU_BACKENDS, GPU_BACKENDS, CPU_PEERS, GPU_PEERS, Context, gpu_available):
    from .. import dispatch

    backends = _csv_list(args.backend)
    for b in backends:
        if b not in CPU_BACKENDS + GPU_BACKENDS:
            raise ValueError(f"unknown backend {b!r}; valid: {', '.join(CPU_BACKENDS + GPU_BACKENDS)}")
    device = args.device
    if device is None and backends:
        kinds = {"gpu" if b in GPU_BACKENDS else "cpu" for b in backends}
        if len(kinds) > 1:
            raise ValueError("CPU and GPU backends are measured in separate runs: use --device or split --backend")
        device = kinds.pop()
    if device is None:
        device = "gpu" if gpu_available()[0] else "cpu"
    if device == "gpu":
        ok, why = gpu_available()
        if not ok:
            raise ValueError(f"no GPU here ({why}); run without --device gpu to benchmark the CPU path")
    if not backends:
        # the CPU path is the NumPy backend; Dask (chunks run by that backend) only when asked for
        pool = GPU_BACKENDS if device == "gpu" else CPU_BACKENDS[:1]
        backends = [b for b in pool if dispatch.status(b)[0]] or [pool[0]]
    preset = "quick" if args.quick else "full" if args.full else "default"
    threads: tuple[int, ...] = (1,)
    if device == "cpu":
        if args.threads:
            threads = tuple(int(t) for t in _csv_list(args.threads))
            if any(t < 1 for t in threads):
                raise ValueError("thread counts must be >= 1")
        else:
            ncpu = os.cpu_count() or 1
            threads = tuple(sorted({1, min(ncpu, 8)}))
    peers = None
    if args.no_peers:
        peers = ()
    elif args.peers:
        peers = tuple(_csv_list(args.peers))
        bad = [p for p in peers if p not in CPU_PEERS + GPU_PEERS]
        if bad:
            raise ValueError(f"unknown peer(s) {', '.join(bad)}; valid: {', '.join(CPU_PEERS + GPU_PEERS)}")
    sizes = [C.parse_size(s) for s in _csv_list(args.sizes)] if args.sizes else None
    shapes = [C.parse_shape(s) for s in _csv_list(args.shapes)] if args.shapes else None
    dtypes = _csv_list(args.dtype) or None
    if dtypes:
        from .._dtypes import from_name

        dtypes = [from_name(d).name for d in dtypes]  # ValueError lists the valid ones
    directions = None if args.direction == "both" else (args.direction,)
    spec = C.GridSpec(
        preset=preset, device=device, names=_csv_list(args.names) or None, dtypes=dtypes, sizes=sizes,
        shapes=shapes, directions=directions, overhead=not args.no_overhead, bias=True if args.bias else None,
    )
    settings = R.settings_for(preset)
    if args.budget is not None:
        settings.budget_s = args.budget
    if args.rounds is not None:
        settings.min_rounds = max(1, args.rounds)
        settings.max_rounds = max(settings.max_rounds, settings.min_rounds)
    settings.seed = args.seed
    ctx = Context(device=device, backends=tuple(backends), threads=threads, peers=peers)
    return ctx, spec, settings


def _report(records, args, report) -> int:
    lines = report.text_report(records)
    try:
        print("\n".join(lines))
    except BrokenPipeError:
        pass
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(report.markdown(records, title=args.title))
        print(f"bench: wrote {args.markdown}", file=sys.stderr)
    if args.plot:
        try:
            files = report.plot(records, args.plot)
        except ImportError:
            print("bench: --plot needs matplotlib: pip install matplotlib", file=sys.stderr)
            return 2
        if files:
            print(f"bench: wrote {', '.join(files)}", file=sys.stderr)
        else:
            print("bench: nothing to plot (no activation measured at three or more sizes)", file=sys.stderr)
    ok = any(r.get("status") == "ok" and r.get("role") == "ours" for r in records)
    return 0 if ok else 1
