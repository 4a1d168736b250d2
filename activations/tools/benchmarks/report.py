"""From records to tables, a summary and plots.

Ratios are computed within one run (``run_id``) and one case: a peer column
holds the peer's median time divided by ours, so above 1x ours is faster.
Peers are matched at the same thread count; peers that have no thread
setting (naive NumPy, JAX) match every thread count.  ``% copy`` is our
effective bandwidth over the fastest copy ceiling measured in the same case
at the same thread count.  GB/s and ``% copy`` are shown only where a case
moves at least twice the last-level cache: smaller data stay in the cache,
and their "bandwidth" says nothing about memory.
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .providers import CPU_PEERS, GPU_PEERS

PEER_ORDER = CPU_PEERS + GPU_PEERS

#: the project's CPU goals for the NumPy backend (elementwise forward float32), judged at GOAL_SIZE
GOAL_SIZE = 1 << 24
GOAL_VS_NAIVE = 3.0  # geomean of naive_numpy / ours
GOAL_VS_TORCH = 1.0  # geomean of torch_out / ours at the same thread count
GOAL_FLOOR = 0.67  # no activation below this ratio to torch
GOAL_SOFTMAX = 1.5  # softmax at most this many times torch's time

#: bandwidth figures need data of at least CACHE_FACTOR x the last-level cache
CACHE_FACTOR = 2
DEFAULT_CACHE = 32 << 20  # records written before cache_bytes existed

RATIO_MEANING = "peer time / our time (above 1x: ours is faster)"
PEER_NAMES = {"naive_numpy": "naive NumPy", "torch_out": "torch out=", "naive_cupy": "naive CuPy",
              "torch_cuda": "torch CUDA", "torch_cuda_out": "torch CUDA out=",
              "torch_compile": "torch.compile", "torch_cuda_compile": "torch.compile CUDA"}


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


def cache_of(rec: dict) -> int:
    return int(rec.get("cache_bytes") or DEFAULT_CACHE)


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
    def out_of_cache(self) -> bool:
        """The case moves at least CACHE_FACTOR x the last-level cache: GB/s measure memory."""
        r = self.rec
        return r.get("tag") != "overhead" and (r.get("bytes") or 0) >= CACHE_FACTOR * cache_of(r)

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


def fmt_speed(v: float | None) -> str:
    """A ratio peer time / our time in words: '2.85x faster', '1.30x slower'."""
    if v is None:
        return "-"
    return f"{fmt_ratio(v)} faster" if v >= 1 else f"{fmt_ratio(1 / v)} slower"


def fmt_bytes(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n} B"


def fmt_size(rec: dict) -> str:
    shape = rec["shape"]
    if len(shape) == 1:
        n = shape[0]
        return f"2^{n.bit_length() - 1}" if n > 0 and n & (n - 1) == 0 else str(n)
    return "x".join(str(s) for s in shape)


def fmt_numel(n: int) -> str:
    return f"2^{n.bit_length() - 1}" if n > 0 and n & (n - 1) == 0 else str(n)


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


def legend_line(rows: Sequence[Row]) -> str:
    """One line that says what every column means (and why bandwidth may be missing)."""
    sized = [r for r in rows if r.rec.get("tag") != "overhead"]
    parts = ["time = median per call", f"peer columns = {RATIO_MEANING}"]
    if sized:
        cache = cache_of(sized[0].rec)
        assumed = "" if sized[0].rec.get("cache_bytes") else ", assumed: not recorded"
        limit = f"{fmt_bytes(CACHE_FACTOR * cache)} ({CACHE_FACTOR}x the {fmt_bytes(cache)} cache{assumed})"
        if any(r.out_of_cache for r in sized):
            parts.append(f"GB/s = bytes read + written per second and % copy = GB/s / a plain copy's, "
                         f"shown for data of {limit} or more")
        else:
            parts.append(f"no GB/s or % copy: every case moves less than {limit}, so it runs from the cache")
    return "How to read: " + "; ".join(parts) + "."


def table_lines(rows: Sequence[Row], markdown: bool = False) -> list[str]:
    """The result tables: one per section, geometric means of the ratios at the end of each.

    Peer columns appear where the peer ran in that section; GB/s and % copy where
    a row's data exceed the cache (:attr:`Row.out_of_cache`).
    """
    lines: list[str] = []
    order = peer_columns(rows)
    for section, srows in _sections(rows).items():
        overhead = section[0] == "overhead"
        cols = [p for p in order if any(p in row.peers for row in srows)]
        host = any(row.rec.get("cpu_time_ms") is not None for row in srows)
        bw = not overhead and any(row.out_of_cache for row in srows)
        if overhead:
            header = ["name", "call", "backend", "time per call"]
        else:
            header = ["name", "size", "backend", "time (p20-p80)" if markdown else "time"]
        if host:  # GPU runs: what the Python side spends per call, beside the GPU time
            header.append("host time")
        if bw:
            header += ["GB/s", "% copy"]
        fixed = len(header)
        if markdown:
            header += [f"{p} per call" if overhead else f"{p} / ours" for p in cols]
        else:
            header += cols
        body = []
        for row in srows:
            r = row.rec
            if overhead:
                call = ("grad" if r["direction"] == "backward" else "apply") + (" out=" if r.get("out") else "")
                cells = [r["label"], call, r["provider"], fmt_time(r["time_ms"])]
            else:
                cells = [r["label"], fmt_size(r), r["provider"], fmt_spread(r) if markdown else fmt_time(r["time_ms"])]
            if host:
                cells.append(fmt_time(r.get("cpu_time_ms")))
            if bw:
                pct = row.pct_ceiling
                shown = row.out_of_cache
                cells += [f"{r['gbps']:.1f}" if shown else "", f"{pct:.0f}%" if shown and pct is not None else ""]
            if overhead:
                cells += [fmt_time(row.peers[p]["time_ms"]) if p in row.peers else "-" for p in cols]
            else:
                vs = row.vs
                cells += [fmt_ratio(vs.get(p)) for p in cols]
            body.append(cells)
        if not overhead and len(srows) > 1 and cols:
            gm = ["geomean"] + [""] * (fixed - 1)
            gm += [fmt_ratio(geomean(row.vs.get(p) for row in srows)) for p in cols]
            body.append(gm)
        title = section_title(section)
        if markdown:
            lines += [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(c if i or c != "geomean" else "**geomean**" for i, c in enumerate(cells)) + " |"
                      for cells in body]
            lines.append("")
            continue
        widths = [max(len(str(c)) for c in col) for col in zip(header, *body)]

        def fmt(cells):
            return "  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        lines.append(title)
        if cols:  # what the peer columns hold, above them
            indent = sum(widths[:fixed]) + 2 * fixed
            lines.append(" " * indent + ("peers' time per call" if overhead else RATIO_MEANING))
        lines.append(fmt(header))
        lines += [fmt(cells) for cells in body]
        lines.append("")
    return lines


# ------------------------------------------------------------------- summary
@dataclass
class GoalResult:
    threads: int | None
    backend: str
    size: int
    count: int  # activations measured at that size
    vs_naive: float | None
    vs_torch_out: float | None
    below_floor: list[tuple[str, float, float, float, str]]  # label, ratio, ours ms, torch ms, which torch
    slowest: tuple[str, float, float, float, str] | None  # the lowest ratio to torch, same fields
    softmax: list[tuple[str, float, float, float]]  # shape, ratio, ours ms, torch ms
    per_activation: list[tuple[str, float | None, float | None, float | None, float]]


def cpu_goals(rows: Sequence[Row], backend: str = "numpy") -> list[GoalResult]:
    """The summary numbers, per thread count, from the forward float32 rows (largest size measured)."""
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
        vs_torch = []
        for r in ew:
            vs = r.vs
            torch_key = "torch_out" if "torch_out" in vs else ("torch" if "torch" in vs else None)
            per.append((r.rec["label"], vs.get("naive_numpy"), vs.get("torch_out"), vs.get("torch"), r.rec["time_ms"]))
            if torch_key is not None:
                vs_torch.append((r.rec["label"], vs[torch_key], r.rec["time_ms"], r.peers[torch_key]["time_ms"],
                                 torch_key))
        vs_torch.sort(key=lambda b: b[1])
        sm = []
        for r in rows:
            rr = r.rec
            if (rr["provider"] == backend and rr.get("threads") == t and rr["name"] == "softmax" and not r.section[0]
                    and rr["direction"] == "forward" and rr["dtype"] == "float32" and "torch_out" in r.peers):
                sm.append(("x".join(map(str, rr["shape"])), r.vs["torch_out"], rr["time_ms"], r.peers["torch_out"]["time_ms"]))
        results.append(GoalResult(
            threads=t, backend=backend, size=size, count=len(ew),
            vs_naive=geomean(p[1] for p in per), vs_torch_out=geomean(p[2] for p in per),
            below_floor=[b for b in vs_torch if b[1] < GOAL_FLOOR], slowest=vs_torch[0] if vs_torch else None,
            softmax=sm, per_activation=per,
        ))
    return results


def not_measured(records: Sequence[dict], provider: str) -> str | None:
    """Why a peer has no measurement at all in these records (None: it has some).

    'torch is not installed (pip install torch)', or the first reason it was skipped.
    """
    mine = [r for r in records if r.get("provider") == provider]
    if any(r.get("status") == "ok" for r in mine):
        return None
    if not mine:
        return "not among this run's peers (see --peers)"
    reasons = [r.get("reason") or r.get("status") or "" for r in mine]
    for why in reasons:
        if why.endswith(" is not installed"):
            return f"{why} (pip install {why.split()[0]})"
    for why in reasons:
        if "failed to import" in why:
            return why
    return reasons[0]


def summary_lines(results: Sequence[GoalResult], records: Sequence[dict] = (), markdown: bool = False) -> list[str]:
    """The summary: one column per thread count, ratios in words, peers that were not measured said so.

    The project's goals get a verdict only when the summary's size is the goals' size.
    """
    if not results:
        return []
    g0 = results[0]
    judged = g0.size == GOAL_SIZE
    n = fmt_numel(g0.size)
    head = (f"{'' if markdown else 'Summary: '}{g0.backend} backend, {g0.count} elementwise activations, "
            f"forward float32 at {n} (geometric mean of peer time / our time)")
    cols = [f"{g.threads} thread{'s' if g.threads != 1 else ''}" for g in results]
    table: list[tuple[str, list[str] | str, str]] = []  # (what, cells or one note, goal)

    def goal(name: str, target: str, ok: list[bool | None]) -> str:
        if not judged:
            return ""
        missed = [c for c, v in zip(cols, ok) if v is False]
        if all(v is None for v in ok):
            return f"{target}: not judged"
        return f"{target}: " + ("met" if not missed else "missed at " + ", ".join(missed))

    naive_why = not_measured(records, "naive_numpy") if records else None
    if all(g.vs_naive is None for g in results):
        table.append(("vs naive NumPy", "not measured: " + (naive_why or "no naive formula ran"), ""))
    else:
        table.append(("vs naive NumPy", [fmt_speed(g.vs_naive) for g in results],
                      goal("naive", f"at least {GOAL_VS_NAIVE:g}x faster",
                           [None if g.vs_naive is None else g.vs_naive >= GOAL_VS_NAIVE for g in results])))
    torch_why = (not_measured(records, "torch_out") and not_measured(records, "torch")) if records else None
    if all(g.slowest is None for g in results):
        why = torch_why or not_measured(records, "torch") or "no activation here has a torch equivalent"
        table.append(("vs torch", "not measured: " + why, ""))
    else:
        if any(g.vs_torch_out is not None for g in results):
            table.append(("vs torch out=", [fmt_speed(g.vs_torch_out) for g in results],
                          goal("torch", "at least as fast" if GOAL_VS_TORCH == 1 else f">= {GOAL_VS_TORCH:g}x", [None if g.vs_torch_out is None
                                                                 else g.vs_torch_out >= GOAL_VS_TORCH for g in results])))
        table.append(("slowest vs torch",
                      [f"{g.slowest[0]} {fmt_speed(g.slowest[1])}" if g.slowest else "-" for g in results],
                      goal("floor", f"none over {1 / GOAL_FLOOR:.1f}x slower",
                           [None if g.slowest is None else not g.below_floor for g in results])))
        shapes = list(OrderedDict((s[0], None) for g in results for s in g.softmax))
        for shape in shapes:
            cells, ok = [], []
            for g in results:
                got = [s for s in g.softmax if s[0] == shape]
                cells.append(fmt_speed(got[0][1]) if got else "-")
                ok.append(got[0][1] >= 1 / GOAL_SOFTMAX if got else None)
            table.append((f"softmax {shape} vs torch out=", cells,
                          goal("softmax", f"at most {GOAL_SOFTMAX:g}x slower", ok)))
    with_goal = judged and any(row[2] for row in table)
    lines: list[str] = []
    if markdown:
        lines += [head + ":", "", "| | " + " | ".join(cols + (["goal"] if with_goal else [])) + " |",
                  "|---|" + "---|" * (len(cols) + with_goal)]
        for what, cells, gl in table:
            if isinstance(cells, str):
                lines.append(f"| {what} | {cells} |" + " |" * (len(cols) - 1 + with_goal))
            else:
                lines.append(f"| {what} | " + " | ".join(cells + ([gl] if with_goal else [])) + " |")
        lines.append("")
    else:
        lines.append(head + ":")
        w0 = max(len(what) for what, _, _ in table)
        widths = [max([len(c)] + [len(cells[i]) for _, cells, _ in table if not isinstance(cells, str)])
                  for i, c in enumerate(cols)]
        lines.append(("  " + " " * w0 + "  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths))
                      + ("  goal" if with_goal else "")).rstrip())
        for what, cells, gl in table:
            if isinstance(cells, str):
                lines.append(f"  {what.ljust(w0)}  {cells}")
            else:
                lines.append(("  " + what.ljust(w0) + "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths))
                              + (f"  {gl}" if with_goal else "")).rstrip())
    if not judged:
        note = (f"The project's goals are judged at {fmt_numel(GOAL_SIZE)} elements (the default grid: "
                f"`bench` without --quick); this run measured {n}.")
        lines.append(note if markdown else "  " + note)
    lines.append("")
    return lines


def goal_lines(results: Sequence[GoalResult], markdown: bool = False) -> list[str]:
    """Former name of :func:`summary_lines` (without the reasons a peer was not measured)."""
    return summary_lines(results, markdown=markdown)


# ----------------------------------------------------------------- the notes
def _install_hint(why: str) -> str:
    return f"{why} (pip install {why.split()[0]})" if why.endswith(" is not installed") else why


def note_lines(records: Sequence[dict]) -> list[str]:
    """Terminal notes: peers not measured at all (and why), '-' cells, errors, disagreements."""
    lines = []
    providers = list(OrderedDict((r["provider"], None) for r in records if r.get("role") == "peer"))
    absent: OrderedDict[str, list[str]] = OrderedDict()
    partial: OrderedDict[str, int] = OrderedDict()
    for p in providers:
        why = not_measured(records, p)
        if why is not None:
            absent.setdefault(why, []).append(p)
        else:
            n = sum(1 for r in records if r["provider"] == p and r.get("status") == "skipped")
            if n:
                partial[p] = n
    for why, ps in absent.items():
        lines.append(f"Not measured: {', '.join(ps)}: {why}.")
    if partial:
        counts = ", ".join(f"{p} {n} case{'s' if n != 1 else ''}" for p, n in partial.items())
        lines.append(f"'-' in a peer column: that peer has no equivalent function ({counts}; "
                     f"--markdown lists the reasons).")
    errors = [r for r in records if r.get("status") == "error"]
    if errors:
        e = errors[0]
        lines.append(f"Errors: {len(errors)} (e.g. {e['provider']} on {e['label']} {e['direction']}: "
                     f"{(e.get('reason') or '')[:160]})")
    mism = [r for r in records if (r.get("check") or "").startswith("mismatch")]
    if mism:
        lines.append("Outputs disagreeing with ours (timed anyway): "
                     + "; ".join(f"{r['provider']} {r['label']} {r['direction']}" for r in mism[:6])
                     + ("; ..." if len(mism) > 6 else ""))
    return lines


def device_line(records: Sequence[dict]) -> str:
    """Where it ran and what 'ours' is: 'Measured on X (2 CPUs, 8 MiB cache); ours: numpy backend = ...'."""
    r0 = records[0]
    what = "CPUs" if r0.get("device_kind") == "cpu" else "host CPUs"
    cache = f", {fmt_bytes(r0['cache_bytes'])} last-level cache" if r0.get("cache_bytes") else ""
    ours = list(OrderedDict((r["provider"], None) for r in records if r.get("role") == "ours"))
    backends = r0.get("backends") or {}

    def short(text: str) -> str:
        return text if len(text) <= 110 else text[:107] + "..."

    parts = [f"{b} backend = {short(backends[b])}" if b in backends else f"{b} backend" for b in ours]
    return f"Measured on {r0.get('device')} ({r0.get('cpus')} {what}{cache}); ours: " + "; ".join(parts) + "."


def text_report(records: Sequence[dict]) -> list[str]:
    """What `bench` prints: where, the legend, the tables, the summary (CPU runs), the notes."""
    rows = build_rows(records)
    lines = ([device_line(records)] if records else []) + [legend_line(rows), ""] + table_lines(rows)
    if records and records[0].get("device_kind") == "cpu":
        lines += summary_lines(cpu_goals(rows), records)
    lines += note_lines(records)
    while lines and not lines[-1]:
        lines.pop()
    return lines


# ------------------------------------------------------------------ markdown
def _notes(records: Sequence[dict]) -> list[str]:
    lines = []
    skipped: OrderedDict[tuple[str, str], int] = OrderedDict()
    errors: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
    mismatches = []
    for r in records:
        if r.get("status") == "skipped":
            key = (r["provider"], _install_hint(r.get("reason") or ""))
            skipped[key] = skipped.get(key, 0) + 1
        elif r.get("status") == "error":
            errors.setdefault((r["provider"], r.get("reason") or ""), []).append(r["label"])
        elif (r.get("check") or "").startswith("mismatch"):
            mismatches.append(f"{r['provider']} on {r['label']} {r['direction']} {r['dtype']} {fmt_size(r)}: {r['check']}")
    if skipped:
        lines += ["Not measured (not installed or no equivalent; never replaced by something else):", ""]
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
        "Median time (20th-80th percentile) of interleaved rounds.  `PEER / ours` columns: the peer's time "
        "divided by ours (above 1x: ours is faster; `-`: that peer has no equivalent, see the notes).  GB/s = "
        "(bytes read + bytes written) / median time and `% copy` = our GB/s over a plain copy's in the same case, "
        f"both only where a case moves at least {CACHE_FACTOR}x the last-level cache "
        f"({fmt_bytes(cache_of(recs[0])) if recs else '?'} here).  See docs/benchmarks.md.",
        "",
    ]
    if recs and recs[0].get("device_kind") == "cpu":
        goals = cpu_goals(rows)
        if goals:
            lines += ["## Summary", ""] + summary_lines(goals, recs, markdown=True)
    lines += ["## Results", ""] + table_lines(rows, markdown=True)
    lines += _notes(recs)
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------- plots
def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-").replace("--", "-")


#: marker per provider (curves that coincide stay distinguishable) and colors far apart
_MARKERS = "osD^vP*Xh<>"
_COLORS = {"numpy": "#1f77b4", "cupy": "#1f77b4", "numba": "#17becf", "dask": "#8c564b",
           "naive_numpy": "#2ca02c", "naive_cupy": "#2ca02c", "torch": "#ff7f0e", "torch_cuda": "#ff7f0e",
           "torch_out": "#d62728", "torch_cuda_out": "#d62728", "jax": "#9467bd", "cupyx": "#9467bd"}


def _figures(records: Sequence[dict]) -> list[tuple[tuple, list[dict], Callable[[dict], int], list[str]]]:
    """(section key, its records, x of a record, labels with >= 3 sizes) for each figure to draw."""
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
    drawable = []
    for key, rs in figures:
        x_of = (lambda r: r["shape"][-1]) if key[0] == "rowwise" else (lambda r: r["numel"])
        by_label: OrderedDict[str, set] = OrderedDict()
        for r in rs:
            if r["role"] == "ours":
                by_label.setdefault(r["label"], set()).add(x_of(r))
        labels = [lab for lab, xs in by_label.items() if len(xs) >= 3]
        if labels:
            drawable.append((key, rs, x_of, labels))
    return drawable


def _cache_edge(points: Sequence[dict], x_of) -> float | None:
    """x where this activation's data outgrow the cache (CACHE_FACTOR x), when the sizes cross it once."""
    pts = sorted(points, key=x_of)
    inside = [Row(p).out_of_cache is False for p in pts]
    if not any(inside):
        return None
    if all(inside):
        return float(x_of(pts[-1])) * 1.5
    k = inside.index(False)
    if any(inside[k:]):  # not monotone in x (row-wise shapes): no single edge
        return None
    return math.sqrt(x_of(pts[k - 1]) * x_of(pts[k])) if k else None


def plot_figures(records: Sequence[dict], ncols: int = 4):
    """One matplotlib figure per section: a grid of small panels, one per activation, shared axes.

    Every panel shows GB/s against size (log-log) for ours and each peer, the copy
    ceiling dotted, and the sizes whose data fit in the cache shaded.  One legend for
    the figure, above the panels.  Returns [(section key, figure)].
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    drawable = _figures(records)
    recs = latest(records)
    device = recs[0].get("device", "") if recs else ""
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    order = [p for p in ("numpy", "dask", "cupy", "numba") + PEER_ORDER]
    order += sorted({r["provider"] for r in recs} - set(order))
    color = {p: palette[i % len(palette)] for i, p in enumerate(order)}
    color.update(_COLORS)
    marker = {p: _MARKERS[i % len(_MARKERS)] for i, p in enumerate(order)}
    out = []
    for key, rs, x_of, labels in drawable:
        kind, direction, dtype, threads, bias = key
        n = len(labels)
        cols = min(ncols, n)
        nrows = math.ceil(n / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(max(3.3 * cols + 0.6, 6.5), 2.5 * nrows + 1.5), squeeze=False,
                                 sharex=True, sharey=True, layout="constrained")
        ceilings = [r for r in rs if r["role"] == "ceiling"]
        seen: OrderedDict[str, Line2D] = OrderedDict()
        shaded = False
        for ax, label in zip(axes.flat, labels):
            mine = [r for r in rs if r["label"] == label and r["role"] != "ceiling"]
            shapes_here = {tuple(r["shape"]) for r in mine}
            provs: OrderedDict[str, list[dict]] = OrderedDict()
            for r in mine:
                provs.setdefault(r["provider"], []).append(r)
            for prov, pts in provs.items():
                pts = sorted(pts, key=x_of)
                ours = pts[0]["role"] == "ours"
                (line,) = ax.plot([x_of(p) for p in pts], [p["gbps"] for p in pts], marker=marker[prov],
                                  ms=4.5 if ours else 3.5, lw=2.0 if ours else 1.1, ls="-" if ours else "--",
                                  color=color[prov], alpha=1.0 if ours else 0.8, zorder=3 if ours else 2,
                                  mfc=color[prov] if ours else "none", label=prov)
                seen.setdefault(prov, line)
            ceil: dict[int, float] = {}
            for c in ceilings:
                if tuple(c["shape"]) in shapes_here:
                    ceil[x_of(c)] = max(ceil.get(x_of(c), 0.0), c["gbps"])
            if ceil:
                xs = sorted(ceil)
                (line,) = ax.plot(xs, [ceil[x] for x in xs], color="black", ls=":", lw=1.4, zorder=1,
                                  label="copy (ceiling)")
                seen.setdefault("copy (ceiling)", line)
            ours_pts = [r for r in mine if r["role"] == "ours"]
            edge = _cache_edge(ours_pts, x_of)
            if edge is not None:
                ax.axvspan(min(x_of(r) for r in ours_pts) / 1.5, edge, color="0.5", alpha=0.12, lw=0, zorder=0)
                shaded = True
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(label, fontsize=10)
            ax.grid(True, which="major", alpha=0.3)
            ax.tick_params(labelsize=8)
        for ax in axes[-1]:
            ax.set_xlabel("row length" if kind == "rowwise" else "elements", fontsize=9)
        for ax in axes[:, 0]:
            ax.set_ylabel("GB/s (read + write)", fontsize=9)
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
            # the panel above an empty slot carries the x tick labels
            above = axes.flat[list(axes.flat).index(ax) - cols]
            above.xaxis.set_tick_params(labelbottom=True)
            above.set_xlabel("row length" if kind == "rowwise" else "elements", fontsize=9)
        handles = list(seen.values())
        if shaded:
            cache = cache_of(rs[0])
            handles.append(Patch(color="0.5", alpha=0.25,
                                 label=f"data < {fmt_bytes(CACHE_FACTOR * cache)} ({CACHE_FACTOR}x cache)"))
        title = (f"{kind} {direction}, {dtype}" + (", fused bias" if bias else "")
                 + (f", {threads} thread{'s' if threads != 1 else ''}" if threads is not None else "")
                 + (f" - {device}" if device else ""))
        fig.suptitle(title, fontsize=12)
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), max(3, cols + 1)), fontsize=9,
                   frameon=False)
        out.append((key, fig))
    return out


def plot(records: Sequence[dict], path: str | os.PathLike, ncols: int = 4) -> list[str]:
    """Bandwidth vs size with the copy ceiling, one PNG per section (see :func:`plot_figures`).

    Only sections where an activation has at least three sizes are drawn; a
    single figure is written to ``path``, several to ``<stem>-<section><suffix>``.
    Returns the files written.
    """
    import matplotlib.pyplot as plt

    figures = plot_figures(records, ncols=ncols)
    path = Path(path)
    out_files = []
    for key, fig in figures:
        kind, direction, dtype, threads, bias = key
        if len(figures) == 1:
            target = path
        else:
            suffix = _slug(f"{kind}-{direction}-{dtype}" + ("-bias" if bias else "") + (f"-{threads}t" if threads else ""))
            target = path.with_name(f"{path.stem}-{suffix}{path.suffix or '.png'}")
        fig.savefig(target, dpi=110)
        plt.close(fig)
        out_files.append(str(target))
    return out_files
