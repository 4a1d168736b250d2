"""Run a grid: set up each case, time its providers, produce result records.

A record is one flat dict per (case, provider, thread count); the fields are
listed in :data:`FIELDS` (the CSV columns, in order).  Skipped providers and
errors are records too, with ``status`` and ``reason`` and no timing.
"""
from __future__ import annotations

import datetime as _dt
import gc
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .cases import Case
from .providers import THREADS_ENV, Context, agree, make_inputs, runners, snapshot
from .timing import CpuTimer, GpuTimer, time_group

SCHEMA = 1

#: record fields, in CSV column order
FIELDS: tuple[str, ...] = (
    "run_id", "timestamp", "label", "name", "kind", "direction", "dtype", "shape", "numel", "bytes",
    "bias", "out", "tag", "params", "provider", "role", "threads", "status", "reason", "note", "check",
    "time_ms", "time_ms_p20", "time_ms_p80", "cpu_time_ms", "gbps", "rounds", "inner", "timer",
    "load", "device", "device_kind", "cpus", "cache_bytes", "version", "commit", "versions", "backends", "env", "schema",
)

PEER_PACKAGES = ("numpy", "scipy", "ml_dtypes", "torch", "jax", "jaxlib", "cupy", "cupy-cuda12x", "cupy-cuda13x",
                 "numba", "numba-cuda", "dask")


@dataclass
class Settings:
    """Timing knobs (see :mod:`activations.tools.benchmarks.timing`)."""

    budget_s: float = 1.5
    min_rounds: int = 3
    max_rounds: int = 15
    warmup: int = 1
    min_sample_s: float = 0.002
    seed: int = 0
    flush_l2: bool = True


def settings_for(preset: str) -> Settings:
    if preset == "quick":
        return Settings(budget_s=0.4, min_rounds=3, max_rounds=9, min_sample_s=0.001)
    if preset == "full":
        return Settings(budget_s=1.0, min_rounds=3, max_rounds=11)
    return Settings(budget_s=1.0)


# -------------------------------------------------------------- environment
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit(start: Path | None = None) -> str | None:
    """HEAD of the checkout the package runs from (None for an installed wheel)."""
    here = (start or Path(__file__)).resolve()
    for parent in here.parents:
        if (parent / ".git").exists():
            try:
                head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=parent, capture_output=True, text=True, timeout=5)
                if head.returncode != 0:
                    return None
                dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=parent,
                                       capture_output=True, text=True, timeout=5)
                return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
            except (OSError, subprocess.SubprocessError):
                return None
    return None


def _size_text(text: str) -> int | None:
    """'8192K', '32M', '1048576' (sysfs cache sizes) -> bytes."""
    t = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    try:
        return int(t.rstrip("KMG")) * scale
    except ValueError:
        return None


def cache_bytes(device: str = "cpu") -> int | None:
    """The last-level cache: L3 (or the largest level) on a CPU, L2 on a GPU; None when unknown.

    On a CPU, the larger of what the kernel lists (/sys) and what ``getconf`` reads from the
    CPU (a VM may show a slice of the host's cache in one and the whole in the other; data
    that fit the larger one can still be served from it).
    """
    if device == "gpu":
        try:
            import cupy as cp

            return int(cp.cuda.Device().attributes["L2CacheSize"]) or None
        except Exception:
            return None
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            size = _size_text((index / "size").read_text())
        except OSError:
            continue
        if size:
            sizes.append(size)
    for key in ("LEVEL3_CACHE_SIZE", "LEVEL2_CACHE_SIZE"):  # glibc's getconf asks the CPU itself
        try:
            got = subprocess.run(["getconf", key], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            break
        size = _size_text(got.stdout) if got.returncode == 0 and got.stdout.strip() else None
        if size:
            sizes.append(size)
            break
    return max(sizes) if sizes else None


def environment(ctx: Context) -> dict[str, Any]:
    from ... import __version__
    from .providers import gpu_available

    if ctx.device == "gpu":
        ok, name = gpu_available()
        device = name if ok else "gpu (unavailable)"
    else:
        device = _cpu_name()
    versions = {"python": platform.python_version()}
    for dist in PEER_PACKAGES:
        v = _version(dist)
        if v:
            versions[dist] = v
    if ctx.device == "gpu":
        try:
            import cupy as cp

            versions["cuda_runtime"] = str(cp.cuda.runtime.runtimeGetVersion())
            versions["cuda_driver"] = str(cp.cuda.runtime.driverGetVersion())
        except Exception:
            pass
    from ... import dispatch

    backends = {}
    for name in ctx.backends:
        ok, detail = dispatch.status(name)
        backends[name] = detail if ok else f"unavailable: {detail}"
    env_vars = {k: v for k, v in os.environ.items() if k.startswith("ACTIVATIONS_") and k != THREADS_ENV}
    return {
        "run_id": _dt.datetime.now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6],
        "backends": backends,
        "env": env_vars,
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "device_kind": ctx.device,
        "cpus": os.cpu_count(),
        "cache_bytes": cache_bytes(ctx.device),
        "version": __version__,
        "commit": git_commit(),
        "versions": versions,
        "schema": SCHEMA,
    }


@contextmanager
def _threads_env(max_threads: int):
    """Our NumPy backend reads ACTIVATIONS_NUM_THREADS per call; restore it afterwards."""
    saved = os.environ.get(THREADS_ENV)
    os.environ[THREADS_ENV] = str(max_threads)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = saved


def _warm_pool() -> None:
    # The backend's worker pool is sized on first use: create it at the largest
    # thread count so every thread count of the run finds enough workers.
    try:
        import numpy as np

        from ... import apply

        apply("relu", np.zeros(1 << 21, np.float32), backend="numpy")
    except Exception:
        pass


# --------------------------------------------------------------------- run
def run(
    cases: Sequence[Case],
    ctx: Context,
    settings: Settings | None = None,
    *,
    progress: bool = True,
    on_record: Callable[[dict], None] | None = None,
    max_time_s: float | None = None,
) -> list[dict[str, Any]]:
    """Time every case; returns (and streams to ``on_record``) the records.

    With ``max_time_s``, no case is started after that many seconds; the
    cases left out are counted in ``run.last_skipped_cases``.
    """
    import time

    settings = settings or Settings()
    started = time.monotonic()
    run.last_skipped_cases = 0
    env = environment(ctx)
    timer = GpuTimer(flush=settings.flush_l2) if ctx.device == "gpu" else CpuTimer()
    records: list[dict[str, Any]] = []
    bar = _progress(len(cases), progress)
    try:
        with _threads_env(max(ctx.threads or (1,))):
            if ctx.device == "cpu" and "numpy" in ctx.backends:
                _warm_pool()
            for i, case in enumerate(cases):
                if max_time_s is not None and time.monotonic() - started > max_time_s:
                    run.last_skipped_cases = len(cases) - i
                    break
                bar.set_description(case.title)
                for rec in run_case(case, ctx, settings, timer, env):
                    records.append(rec)
                    if on_record is not None:
                        on_record(rec)
                bar.update(1)
    finally:
        bar.close()
    return records


run.last_skipped_cases = 0


def _load() -> float | None:
    """1-minute load average when the case starts: other work on the machine skews timings."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def run_case(case: Case, ctx: Context, settings: Settings, timer, env: dict[str, Any]) -> list[dict[str, Any]]:
    base = dict(env)
    base.update(
        label=case.label, name=case.name, kind=case.kind, direction=case.direction, dtype=case.dtype,
        shape=list(case.shape), numel=case.numel, bias=case.bias, out=case.out, tag=case.tag,
        params={k: v for k, v in case.params}, timer=timer.name, load=_load(),
    )
    try:
        inputs = make_inputs(case, ctx.device, settings.seed)
    except Exception as exc:  # e.g. out of memory at the largest sizes
        return [dict(base, provider="*", role="", threads=None, status="error", bytes=case.bytes(),
                     reason=f"inputs: {type(exc).__name__}: {exc}".splitlines()[0])]
    got, skipped = runners(case, inputs, ctx)
    with _quiet():  # naive formulas overflow in exp (inf is their answer); no warning spam
        outcomes = time_group(
            [(r.fn, r.prepare) for r in got], timer,
            warmup=settings.warmup, min_rounds=settings.min_rounds, max_rounds=settings.max_rounds,
            budget_s=settings.budget_s, min_sample_s=settings.min_sample_s, seed=settings.seed,
            keep_first=snapshot,
        )
    ref = next((o.first for r, o in zip(got, outcomes) if r.role == "ours" and o.stats is not None), None)
    if ref is None:
        ref = next((o.first for r, o in zip(got, outcomes) if r.role == "peer" and o.stats is not None), None)
    out: list[dict[str, Any]] = []
    for r, o in zip(got, outcomes):
        nbytes = r.bytes if r.bytes is not None else case.bytes()
        rec = dict(base, provider=r.provider, role=r.role, threads=r.threads, bytes=nbytes, note=r.note)
        if o.stats is None:
            rec.update(status="error", reason=o.error)
        else:
            s = o.stats
            check = "ref" if o.first is ref and ref is not None else ""
            if r.role != "ceiling" and o.first is not None and ref is not None and o.first is not ref:
                ok, why = agree(o.first, ref, case.dtype)
                check = "ok" if ok else "mismatch: " + why
            rec.update(
                status="ok", reason="", check=check,
                time_ms=s.p50 * 1e3, time_ms_p20=s.p20 * 1e3, time_ms_p80=s.p80 * 1e3,
                cpu_time_ms=None if s.cpu_p50 is None else s.cpu_p50 * 1e3,
                gbps=nbytes / s.p50 / 1e9, rounds=s.samples, inner=s.inner,
            )
        out.append(rec)
    for sk in skipped:
        out.append(dict(base, provider=sk.provider, role=sk.role, threads=sk.threads, bytes=case.bytes(),
                        status="skipped", reason=sk.reason))
    del inputs, got, outcomes
    gc.collect()
    return out


@contextmanager
def _quiet():
    import warnings

    import numpy as np

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


class _NoBar:
    def __init__(self, total: int):
        self.total, self.n = total, 0

    def set_description(self, text: str) -> None:
        self.text = text

    def update(self, k: int) -> None:
        self.n += k

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar(total)
    try:
        from tqdm import tqdm
    except ImportError:
        return _TextBar(total)
    return tqdm(total=total, file=sys.stderr, unit="case", dynamic_ncols=True, leave=False)


class _TextBar(_NoBar):
    """Fallback without tqdm: one line per tenth of the run on stderr."""

    def update(self, k: int) -> None:
        before = self.n * 10 // max(self.total, 1)
        self.n += k
        if self.n * 10 // max(self.total, 1) != before or self.n == self.total:
            print(f"bench: {self.n}/{self.total} cases", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ output
def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


def append_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps({k: rec.get(k) for k in FIELDS}, sort_keys=False, default=str) + "\n")


def append_csv(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
    import csv

    new = not Path(path).exists() or Path(path).stat().st_size == 0
    with open(path, "a", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(FIELDS), extrasaction="ignore")
        if new:
            w.writeheader()
        for rec in records:
            w.writerow({k: _cell(rec.get(k)) for k in FIELDS})


def load(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records from a JSON-lines (or CSV) results file."""
    p = Path(path)
    if p.suffix.lower() == ".csv":
        import csv

        out = []
        with open(p, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                out.append(_from_csv(row))
        return out
    out = []
    with open(p, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


_NUMERIC = {"load": float, "numel": int, "bytes": int, "threads": int, "rounds": int, "inner": int, "cpus": int,
            "cache_bytes": int, "schema": int,
            "time_ms": float, "time_ms_p20": float, "time_ms_p80": float, "cpu_time_ms": float, "gbps": float}


def _from_csv(row: dict[str, str]) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    for k, v in row.items():
        if v == "":
            rec[k] = None
        elif k in _NUMERIC:
            rec[k] = _NUMERIC[k](float(v)) if _NUMERIC[k] is int else float(v)
        elif k in ("shape", "params", "versions", "backends", "env"):
            rec[k] = json.loads(v)
        elif k in ("bias", "out"):
            rec[k] = v == "True"
        else:
            rec[k] = v
    return rec
