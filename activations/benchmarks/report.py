"""From records to tables, goals and plots.

Ratios are computed within one run (``run_id``) and one case: ``x peer`` is
the peer's median time divided by ours, so above 1 means ours is faster.
Peers are matched at the same thread count; peers that have no thread
setting (naive NumPy, JAX) match every thread count.  ``% copy`` is our
effective bandwidth over the fastest copy ceiling measured in the same case
at the same thread count.
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .providers import CPU_PEERS, GPU_PEERS

PEER_ORDER = CPU_PEERS + GPU_PEERS

#: the issue's CPU goals for the NumPy backend (elementwise: float32, largest size measured)
GOAL_VS_NAIVE = 3.0  # geomean of naive_numpy / ours
GOAL_VS_TORCH = 1.0  # geomean of torch_out / ours at the same thread count
GOAL_FLOOR = 0.67  # no activation below this ratio to torch
GOAL_SOFTMAX = 1.5  # softmax at most this many times torch's time


def runs(records: Sequence[dict]) -> list[str]:
    """run ids in the order they first appear."""
    return list(OrderedDict((r.get("run_id"), None) for r in records))


def latest(records: Sequence[dict]) -> list[dict]:
    ids = runs(records)
    return [r for r in records if r.get("run_id") == ids[-1]] if ids else []


def geomean(values: Iterable[float]) -> float | None:
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


@dataclass
class Row:
    """One of our measurements with everything it is compared to."""

    rec: dict
    ceiling: dict | None = None
    peers: dict[str, dict] = field(default_factory=dict)

    @property
    def vs(self) -> dict[str, float]:
        t = self.rec["time_ms"]
        return {p: r["time_ms"] / t for p, r in self.peers.items()}

    @property
    def pct_ceiling(self) -> float | None:
        if self.ceiling is None:
            return None
        return 100.0 * self.rec["gbps"] / self.ceiling["gbps"]

    @property
    def section(self) -> tuple:
        r = self.rec
        if r.get("tag") == "overhead":  # one table: every call kind side by side
            return ("overhead", "", "", r["dtype"], r.get("threads"), False)
        return (r.get("tag") or "", r["kind"], r["direction"], r["dtype"], r.get("threads"), bool(r.get("bias")))

    @property
    def size(self) -> int:
        return int(self.rec["numel"])


def _case_key(r: dict) -> tuple:
    return (r.get("run_id"), r["label"], r["direction"], r["dtype"], tuple(r["shape"]), bool(r.get("bias")),
            bool(r.get("out", True)), r.get("tag") or "")


def build_rows(records: Sequence[dict]) -> list[Row]:
    by_case: dict[tuple, list[dict]] = OrderedDict()
    for r in records:
        by_case.setdefault(_case_key(r), []).append(r)
    rows = []
    for recs in by_case.values():
        ok = [r for r in recs if r.get("status") == "ok"]
        for ours in (r for r in ok if r.get("role") == "ours"):
            t = ours.get("threads")
            ceilings = [r for r in ok if r.get("role") == "ceiling" and r.get("threads") in (t, None)]
            ceiling = max(ceilings, key=lambda r: r["gbps"], default=None)
            peers: dict[str, dict] = {}
            for r in ok:
                if r.get("role") != "peer":
                    continue
                if r.get("threads") not in (t, None):
                    continue
                prev = peers.get(r["provider"])
                if prev is None or (prev.get("threads") is None and r.get("threads") == t):
                    peers[r["provider"]] = r
            rows.append(Row(ours, ceiling, peers))
    return rows


def peer_columns(rows: Sequence[Row]) -> list[str]:
    seen = {p for row in rows for p in row.peers}
    return [p for p in PEER_ORDER if p in seen] + sorted(seen - set(PEER_ORDER))


# ---------------------------------------------------------------- formatting
def fmt_time(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1.0:
        return f"{ms * 1e3:.1f} µs"
    if ms < 100:
        return f"{ms:.2f} ms"
    return f"{ms:.0f} ms"


def fmt_spread(rec: dict) -> str:
    """'12.34 ms (12.1-12.9)': median, then the 20th-80th percentiles in the same unit."""
    ms, lo, hi = rec["time_ms"], rec.get("time_ms_p20"), rec.get("time_ms_p80")
    if lo is None or hi is None:
        return fmt_time(ms)
    if ms < 1.0:
        return f"{ms * 1e3:.1f} µs ({lo * 1e3:.1f}-{hi * 1e3:.1f})"
    return f"{fmt_time(ms)} ({lo:.{2 if ms < 100 else 0}f}-{hi:.{2 if ms < 100 else 0}f})"


def fmt_ratio(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}x" if v < 10 else f"{v:.1f}x"


def fmt_size(rec: dict) -> str:
    shape = rec["shape"]
    if len(shape) == 1:
        n = shape[0]
        return f"2^{n.bit_length() - 1}" if n > 0 and n & (n - 1) == 0 else str(n)
    return "x".join(str(s) for s in shape)


def section_title(section: tuple) -> str:
    tag, kind, direction, dtype, threads, bias = section
    if tag == "overhead":
        parts = ["call overhead (8 elements: time per call, ours and peers)", dtype]
    else:
        parts = [kind, direction, dtype]
    if bias:
        parts.append("fused bias")
    if threads is not None:
        parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
    return ", ".join(parts)


def _sections(rows: Sequence[Row]) -> "OrderedDict[tuple, list[Row]]":
    out: OrderedDict[tuple, list[Row]] = OrderedDict()
    tags = {"": 0, "overhead": 1}
    kinds = {"elementwise": 0, "gated": 1, "rowwise": 2}
    dirs = {"forward": 0, "backward": 1}
    dtypes = {"float32": 0, "bfloat16": 1, "float16": 2, "float64": 3}
    # sorted() is stable: rows keep their run order inside a section
    for row in sorted(rows, key=lambda r: (tags.get(r.section[0], 2), kinds.get(r.section[1], 3),
                                             dirs.get(r.section[2], 2), r.section[5], dtypes.get(r.section[3], 4),
                                             r.section[4] or 0)):
        out.setdefault(row.section, []).append(row)
    return out


def table_lines(rows: Sequence[Row], markdown: bool = False) -> list[str]:
    """The result tables: one per section, geometric means of the ratios at the end of each."""
    lines: list[str] = []
    peers = peer_columns(rows)
    for section, srows in _sections(rows).items():
        overhead = section[0] == "overhead"
        cols = peers
        if overhead:
            header = ["name", "call", "backend", "time per call"] + [f"{p}" for p in cols]
        else:
            header = ["name", "size", "backend", "time (p20-p80)" if markdown else "time", "GB/s", "% copy"]
            header += [f"x {p}" for p in cols]
        host = any(row.rec.get("cpu_time_ms") is not None for row in srows)
        if host:  # GPU runs: what the Python side spends per call, beside the GPU time
            header.insert(4, "host time")
        body = []
        for row in srows:
            r = row.rec
            if overhead:
                call = ("grad" if r["direction"] == "backward" else "apply") + (" out=" if r.get("out") else "")
                cells = [r["label"], call, r["provider"], fmt_time(r["time_ms"])]
                cells += [fmt_time(row.peers[p]["time_ms"]) if p in row.peers else "-" for p in cols]
                if host:
                    cells.insert(4, fmt_time(r.get("cpu_time_ms")))
            else:
                spread = fmt_spread(r) if markdown else fmt_time(r["time_ms"])
                pct = row.pct_ceiling
                cells = [r["label"], fmt_size(r), r["provider"], spread, f"{r['gbps']:.1f}",
                         "-" if pct is None else f"{pct:.0f}%"]
                vs = row.vs
                cells += [fmt_ratio(vs.get(p)) for p in cols]
                if host:
                    cells.insert(4, fmt_time(r.get("cpu_time_ms")))
            body.append(cells)
        if not overhead and len(srows) > 1:
            gm = ["geomean", "", "", "", "", ""] + ([""] if host else [])
            for p in cols:
                g = geomean(row.vs.get(p) for row in srows)
                gm.append(fmt_ratio(g))
            body.append(gm)
        title = section_title(section)
        if markdown:
            lines += [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(c if i or c != "geomean" else "**geomean**" for i, c in enumerate(cells)) + " |"
                      for cells in body]
            lines.append("")
        else:
            widths = [max(len(str(c)) for c in col) for col in zip(header, *body)]
            lines.append(title)
            lines.append("  ".join(h.ljust(w) if i < 3 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
            for cells in body:
                lines.append("  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w)
                                       for i, (c, w) in enumerate(zip(cells, widths))))
            lines.append("")
    return lines


# --------------------------------------------------------------------- goals
@dataclass
class GoalResult:
    threads: int | None
    backend: str
    size: int
    vs_naive: float | None
    vs_torch_out: float | None
    below_floor: list[tuple[str, float, float, float, str]]  # label, ratio, ours ms, torch ms, which torch
    softmax: list[tuple[str, float, float, float]]  # shape, ratio, ours ms, torch ms
    per_activation: list[tuple[str, float | None, float | None, float | None, float]]


def cpu_goals(rows: Sequence[Row], backend: str = "numpy") -> list[GoalResult]:
    """The issue's CPU goals, per thread count, from the forward float32 rows."""
    results = []
    threads = sorted({r.rec.get("threads") for r in rows if r.rec["provider"] == backend} - {None})
    for t in threads:
        ew = [r for r in rows if r.rec["provider"] == backend and r.rec.get("threads") == t and not r.section[0]
              and r.rec["kind"] == "elementwise" and r.rec["direction"] == "forward" and r.rec["dtype"] == "float32"
              and not r.rec.get("bias")]
        if not ew:
            continue
        size = max(r.size for r in ew)
        ew = [r for r in ew if r.size == size]
        per = []
        below = []
        for r in ew:
            vs = r.vs
            torch_key = "torch_out" if "torch_out" in vs else ("torch" if "torch" in vs else None)
            tv = vs.get(torch_key) if torch_key else None
            per.append((r.rec["label"], vs.get("naive_numpy"), vs.get("torch_out"), vs.get("torch"), r.rec["time_ms"]))
            if tv is not None and tv < GOAL_FLOOR:
                below.append((r.rec["label"], tv, r.rec["time_ms"], r.peers[torch_key]["time_ms"], torch_key))
        sm = []
        for r in rows:
            rr = r.rec
            if (rr["provider"] == backend and rr.get("threads") == t and rr["name"] == "softmax" and not r.section[0]
                    and rr["direction"] == "forward" and rr["dtype"] == "float32" and "torch_out" in r.peers):
                sm.append(("x".join(map(str, rr["shape"])), r.vs["torch_out"], rr["time_ms"], r.peers["torch_out"]["time_ms"]))
        results.append(GoalResult(
            threads=t, backend=backend, size=size,
            vs_naive=geomean(p[1] for p in per), vs_torch_out=geomean(p[2] for p in per),
            below_floor=sorted(below, key=lambda b: b[1]), softmax=sm, per_activation=per,
        ))
    return results


def goal_lines(results: Sequence[GoalResult], markdown: bool = False) -> list[str]:
    lines = []
    for g in results:
        n = f"2^{g.size.bit_length() - 1}"
        head = f"CPU goals, {g.backend} backend, {g.threads} thread(s), elementwise forward float32 at {n}:"
        lines.append(("**" + head + "**") if markdown else head)
        bullet = "- " if markdown else "  "

        def verdict(ok: bool | None) -> str:
            return "n/a" if ok is None else ("met" if ok else "MISSED")

        v = g.vs_naive
        lines.append(f"{bullet}geomean vs naive NumPy: {fmt_ratio(v)} (goal >= {GOAL_VS_NAIVE:g}x: "
                     f"{verdict(None if v is None else v >= GOAL_VS_NAIVE)})")
        v = g.vs_torch_out
        lines.append(f"{bullet}geomean vs torch out= ({g.threads} thread(s)): {fmt_ratio(v)} (goal >= "
                     f"{GOAL_VS_TORCH:g}x: {verdict(None if v is None else v >= GOAL_VS_TORCH)})")
        if g.below_floor:
            worst = ", ".join(f"{lab} {r:.2f}x ({o:.2f} vs {t:.2f} ms{'' if k == 'torch_out' else ', ' + k})"
                              for lab, r, o, t, k in g.below_floor)
            lines.append(f"{bullet}below {GOAL_FLOOR}x of torch: {worst}")
        else:
            lines.append(f"{bullet}no activation below {GOAL_FLOOR}x of torch")
        if g.softmax:
            sm = ", ".join(f"{s} {r:.2f}x ({o:.2f} vs {t:.2f} ms){'' if r >= 1 / GOAL_SOFTMAX else ' MISSED'}"
                           for s, r, o, t in g.softmax)
            lines.append(f"{bullet}softmax vs torch out= (goal >= {1 / GOAL_SOFTMAX:.2f}x, i.e. within "
                         f"{GOAL_SOFTMAX}x): {sm}")
        lines.append("")
    return lines


# ------------------------------------------------------------------ markdown
def _notes(records: Sequence[dict]) -> list[str]:
    lines = []
    skipped: OrderedDict[tuple[str, str], int] = OrderedDict()
    errors: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
    mismatches = []
    for r in records:
        if r.get("status") == "skipped":
            key = (r["provider"], r.get("reason") or "")
            skipped[key] = skipped.get(key, 0) + 1
        elif r.get("status") == "error":
            errors.setdefault((r["provider"], r.get("reason") or ""), []).append(r["label"])
        elif (r.get("check") or "").startswith("mismatch"):
            mismatches.append(f"{r['provider']} on {r['label']} {r['direction']} {r['dtype']} {fmt_size(r)}: {r['check']}")
    if skipped:
        lines += ["Skipped (not installed or no equivalent; never replaced by something else):", ""]
        lines += [f"- {p}: {why} ({n} case{'s' if n != 1 else ''})" for (p, why), n in skipped.items()]
        lines.append("")
    if errors:
        lines += ["Errors:", ""]
        for (p, why), labels in errors.items():
            shown = ", ".join(sorted(set(labels))[:8])
            lines.append(f"- {p}: {why} ({shown})")
        lines.append("")
    if mismatches:
        lines += ["Outputs that disagree with ours beyond a loose tolerance (timed anyway):", ""]
        lines += [f"- {m}" for m in mismatches]
        lines.append("")
    return lines


def header_lines(records: Sequence[dict]) -> list[str]:
    if not records:
        return ["(no records)"]
    r0 = records[0]
    versions = r0.get("versions") or {}
    vtext = ", ".join(f"{k} {v}" for k, v in versions.items())
    threads = sorted({r.get("threads") for r in records if r.get("threads") is not None})
    loads = [r["load"] for r in records if r.get("load") is not None]
    backends = "; ".join(f"{k}: {v}" for k, v in (r0.get("backends") or {}).items())
    env = ", ".join(f"{k}={v}" for k, v in (r0.get("env") or {}).items())
    extra = []
    if loads:
        extra.append(f"- 1-minute load average during the run: {min(loads):.1f} to {max(loads):.1f} "
                     f"(with {r0.get('cpus')} CPUs; above that, other work shared the cores)")
    if backends:
        extra.append(f"- backends: {backends}")
    if env:
        extra.append(f"- environment: {env}")
    return [
        f"- device: {r0.get('device')} ({r0.get('device_kind')}, {r0.get('cpus')} CPUs visible)",
        f"- date: {r0.get('timestamp')}, run {r0.get('run_id')}",
        f"- activations {r0.get('version')}, commit {r0.get('commit') or 'unknown (not a git checkout)'}",
        f"- versions: {vtext}",
        f"- thread counts: {', '.join(map(str, threads)) or 'n/a'}; timer: {r0.get('timer')}",
    ] + extra


def markdown(records: Sequence[dict], title: str = "Benchmark results") -> str:
    recs = latest(records)
    rows = build_rows(recs)
    lines = [f"# {title}", ""] + header_lines(recs) + [""]
    lines += [
        "Median time (20th-80th percentile) of interleaved rounds; GB/s = (bytes read + bytes written) / median "
        "time; `% copy` = our GB/s over the copy ceiling measured in the same case; `x peer` = peer time / our "
        "time (above 1: ours is faster).  See docs/benchmarks.md.",
        "",
    ]
    if recs and recs[0].get("device_kind") == "cpu":
        goals = cpu_goals(rows)
        if goals:
            lines += ["## Goals", ""] + goal_lines(goals, markdown=True)
    lines += ["## Results", ""] + table_lines(rows, markdown=True)
    lines += _notes(recs)
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------- plots
def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-").replace("--", "-")


def plot(records: Sequence[dict], path: str | os.PathLike, max_panels: int = 12) -> list[str]:
    """Bandwidth vs size (log2 x axis) with the copy ceiling, one figure per section.

    Only sections where an activation has at least three sizes are drawn; a
    single figure is written to ``path``, several to ``<stem>-<section><suffix>``.
    Returns the files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [r for r in latest(records) if r.get("status") == "ok" and not r.get("tag")]
    groups: OrderedDict[tuple, list[dict]] = OrderedDict()
    for r in recs:
        key = (r["kind"], r["direction"], r["dtype"], r.get("threads"), bool(r.get("bias")))
        groups.setdefault(key, []).append(r)
    # threads-agnostic peers and ceilings belong to every thread count's figure
    figures = []
    for key in list(groups):
        if key[3] is None:
            continue
        same = [r for k, v in groups.items() if k[:3] == key[:3] and k[4] == key[4] and k[3] is None for r in v]
        figures.append((key, groups[key] + same))
    if not any(k[3] is not None for k in groups):
        figures = list(groups.items())
    out_files = []
    path = Path(path)
    drawable = []
    for key, rs in figures:
        x_of = (lambda r: r["shape"][-1]) if key[0] == "rowwise" else (lambda r: r["numel"])
        by_label: OrderedDict[str, list[dict]] = OrderedDict()
        for r in rs:
            if r["role"] == "ceiling":
                continue
            by_label.setdefault(r["label"], []).append(r)
        labels = [lab for lab, v in by_label.items()
                  if len({x_of(r) for r in v if r["role"] == "ours"}) >= 3]
        if labels:
            drawable.append((key, rs, x_of, labels[:max_panels]))
    device = recs[0].get("device", "") if recs else ""
    # one color per provider in every panel and figure
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    order = [p for p in ("numpy", "dask", "cupy", "numba") + PEER_ORDER]
    order += sorted({r["provider"] for r in recs} - set(order))
    color = {p: palette[i % len(palette)] for i, p in enumerate(order)}
    for key, rs, x_of, labels in drawable:
        kind, direction, dtype, threads, bias = key
        n = len(labels)
        ncols = min(3, n)
        nrows = math.ceil(n / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.6 * nrows), squeeze=False)
        ceilings = [r for r in rs if r["role"] == "ceiling"]
        for ax, label in zip(axes.flat, labels):
            mine = [r for r in rs if r["label"] == label and r["role"] != "ceiling"]
            shapes_here = {tuple(r["shape"]) for r in mine}
            provs = OrderedDict()
            for r in mine:
                provs.setdefault((r["provider"], r.get("threads")), []).append(r)
            for (prov, t), pts in provs.items():
                pts = sorted(pts, key=x_of)
                style = "-o" if pts[0]["role"] == "ours" else "--."
                ax.plot([x_of(p) for p in pts], [p["gbps"] for p in pts], style, ms=3.5,
                        lw=1.6 if style == "-o" else 1.0, label=prov, color=color.get(prov))
            ceil = {}
            for c in ceilings:
                if tuple(c["shape"]) in shapes_here:
                    x = x_of(c)
                    ceil[x] = max(ceil.get(x, 0.0), c["gbps"])
            if ceil:
                xs = sorted(ceil)
                ax.plot(xs, [ceil[x] for x in xs], color="black", ls=":", lw=1.5, label="copy ceiling")
            ax.set_xscale("log", base=2)
            ax.set_title(label, fontsize=10)
            ax.set_xlabel("row length" if kind == "rowwise" else "elements")
            ax.set_ylabel("GB/s (read + write)")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=7, loc="best")
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        title = f"{kind} {direction}, {dtype}" + (", fused bias" if bias else "") + \
                (f", {threads} thread(s)" if threads is not None else "") + (f" - {device}" if device else "")
        fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        if len(drawable) == 1:
            target = path
        else:
            suffix = _slug(f"{kind}-{direction}-{dtype}" + ("-bias" if bias else "") + (f"-{threads}t" if threads else ""))
            target = path.with_name(f"{path.stem}-{suffix}{path.suffix or '.png'}")
        fig.savefig(target, dpi=110)
        plt.close(fig)
        out_files.append(str(target))
    return out_files
