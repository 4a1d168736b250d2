"""How Dask-backed ``apply``/``grad`` scale with the number of worker processes.

    python bench/dask_scaling.py                 # 1 and 2 workers, about a minute
    python bench/dask_scaling.py --workers 1,2,4 --rows 8192 --repeat 5

Each row times one lazy result computed on a ``distributed.LocalCluster`` of
N single-threaded worker processes (``ACTIVATIONS_NUM_THREADS=1`` in each, so
a worker is one core).  The input is generated and persisted on the workers
first and results stay there (``persist`` + ``wait``): the times are the
computation and the scheduling, not moving arrays to this process.  The NumPy
rows are the same work as one ``apply``/``grad`` call in this process.
Reported: the median of ``--repeat`` runs of the wall time, and of the CPU time of the
busiest worker process (what the wall time would be with a core per worker and nothing
else running), and the speed-ups over 1 worker of both.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def _cases(rows: int, cols: int, chunk_rows: int, chunk_cols: int):
    """(label, build(x, dy, bias) -> lazy result, numpy(x, dy, bias) -> result)."""
    import activations

    return [
        (
            "gelu forward",
            lambda x, dy, b: activations.apply("gelu", x),
            lambda x, dy, b: activations.apply("gelu", x),
        ),
        (
            "gelu backward + dbias",
            lambda x, dy, b: activations.grad("gelu", x, dy, bias=b),
            lambda x, dy, b: activations.grad("gelu", x, dy, bias=b),
        ),
        (
            f"softmax forward, axis in {cols // chunk_cols} chunks",
            lambda x, dy, b: activations.apply("softmax", x),
            lambda x, dy, b: activations.apply("softmax", x),
        ),
        (
            f"softmax backward, axis in {cols // chunk_cols} chunks",
            lambda x, dy, b: activations.grad("softmax", x, dy),
            lambda x, dy, b: activations.grad("softmax", x, dy),
        ),
        (
            f"swiglu forward, axis in {cols // chunk_cols} chunks (paired halves)",
            lambda x, dy, b: activations.apply("swiglu", x),
            lambda x, dy, b: activations.apply("swiglu", x),
        ),
    ]


def _same(block):
    return block


def _time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _time_cluster(client, fn, repeat: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of the busiest worker process).

    The second number does not grow when other programs compete for the cores, so on a
    shared machine it shows how the work splits over the workers when the wall time cannot.
    """
    walls, busiest = [], []
    for _ in range(repeat):
        before = client.run(time.process_time)
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        after = client.run(time.process_time)
        busiest.append(max(after[w] - before[w] for w in after))
    return statistics.median(walls), statistics.median(busiest)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=8192)
    ap.add_argument("--chunk-rows", type=int, default=512)
    ap.add_argument("--chunk-cols", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    import dask.array as da
    import distributed

    counts = [int(n) for n in args.workers.split(",")]
    shape, chunks = (args.rows, args.cols), (args.chunk_rows, args.chunk_cols)
    cases = _cases(args.rows, args.cols, args.chunk_rows, args.chunk_cols)
    mib = args.rows * args.cols * 4 / 2**20
    print(f"float32 {shape}, {mib:.0f} MiB, chunks {chunks}; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}; median of {args.repeat}")

    seconds: dict[tuple[str, str], float] = {}
    cpu: dict[tuple[str, int], float] = {}
    # the same work as single calls in this process, one thread and the default pool
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    b = rng.standard_normal(args.cols, dtype=np.float32)
    from activations.backends.cpu import engine

    for threads in ("1", str(engine.cores())):
        os.environ["ACTIVATIONS_NUM_THREADS"] = threads
        for label, _, ref in cases:
            ref(x, dy, b)  # warm: the first call loads the engine and starts its threads
            seconds[(label, f"numpy {threads}t")] = _time(lambda: ref(x, dy, b), args.repeat)
    os.environ.pop("ACTIVATIONS_NUM_THREADS")
    del x, dy

    env = {"ACTIVATIONS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    for n in counts:
        with distributed.LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, env=env, silence_logs=40
        ) as cluster, distributed.Client(cluster) as client:
            gen = da.random.default_rng(0)
            xd = gen.standard_normal(shape, chunks=chunks, dtype=np.float32)
            dyd = gen.standard_normal(shape, chunks=chunks, dtype=np.float32)
            xd, dyd = client.persist([xd, dyd])
            distributed.wait([xd, dyd])
            client.run(lambda: __import__("activations").apply("gelu", np.ones(4)))  # warm imports
            for label, build, _ in cases:

                def run():
                    # fresh keys every run (an identity task renames the inputs), so the
                    # scheduler cannot hand back a result it still holds from the last run
                    tag = uuid.uuid4().hex
                    xr, dyr = (a.map_blocks(_same, name=f"{k}-{tag}") for k, a in (("x", xd), ("dy", dyd)))
                    lazy = build(xr, dyr, b)
                    result = client.persist(list(lazy) if isinstance(lazy, tuple) else [lazy])
                    distributed.wait(result)
                    del result

                run()  # graph caches, first-touch allocations
                seconds[(label, f"dask {n}w")], cpu[(label, n)] = _time_cluster(client, run, args.repeat)

    threads = list(dict.fromkeys(["numpy 1t", f"numpy {engine.cores()}t"]))
    columns = threads + [f"dask {n}w" for n in counts]
    last = counts[-1]
    head = "| case | " + " | ".join(columns) + " | " + " | ".join(f"busiest worker CPU, {n}w" for n in counts)
    if 1 in counts and last != 1:
        head += f" | wall speed-up {last}w/1w | CPU speed-up {last}w/1w"
    head += " |"
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}\n")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for label, _, _ in cases:
        row = [f"{seconds[(label, c)] * 1e3:.0f} ms" for c in columns]
        row += [f"{cpu[(label, n)] * 1e3:.0f} ms" for n in counts]
        if 1 in counts and last != 1:
            row.append(f"{seconds[(label, 'dask 1w')] / seconds[(label, f'dask {last}w')]:.2f}x")
            row.append(f"{cpu[(label, 1)] / cpu[(label, last)]:.2f}x")
        print(f"| {label} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
