"""A static performance model of the CUDA C kernels, read from their SASS (no GPU needed).

For each kernel: the instructions its main loop issues per element on the common path, the bytes
of global loads a thread has in flight, the occupancy its registers and shared memory allow, and
from these the predicted fraction of an H100's copy bandwidth.  docs/gpu-backend.md describes the
model, its assumptions and its limits; ``check-kernels --json`` reports it and the tests hold the
kernels to it.

Counting rules (SASS of ``cuobjdump -sass``):

* loops are backward branches; the model looks at innermost loops that load element data (global
  or shared loads of the widest width in the loop, not the 8-bit mask loads);
* elementwise and gated kernels: the main loop is the cheapest loop with 128-bit loads (the vector
  loop without bias when the compiler or the source split the two);
* row-wise kernels: every pass (loop) is summed, preferring the 128-bit loops and the loops without
  mask loads where such variants exist;
* both sides of every branch inside a loop count (a warp whose lanes disagree runs both, and a
  uniform test left in the loop still costs its instructions), except out-of-line slow paths: a
  short branch region holding a ``CALL`` (division slow path, 64-bit remainder) is not counted;
* NOPs do not count, double-precision arithmetic counts twice (64 FP64 lanes per clock per SM).
"""
from __future__ import annotations

import bisect
import functools
import math
import re
from dataclasses import dataclass

# --------------------------------------------------------------- the machine
#: H100 SXM: SMs, clock, thread-instructions and SFU operations per clock per SM, DRAM copy
#: bandwidth, the loads in flight per SM that cover DRAM latency (Little's law: about 12 B/clock
#: per SM times ~1200 clocks), registers, threads, blocks and shared memory per SM
H100 = {
    "sms": 132, "clock_hz": 1.83e9, "issue_per_clock": 128, "sfu_per_clock": 16, "copy_bytes_s": 3.0e12,
    "in_flight_needed": 15 * 1024, "registers": 65536, "threads": 2048, "blocks": 32,
    "shared": 228 * 1024, "shared_per_block_reserved": 1024, "register_unit": 256, "shared_unit": 128,
}


def copy_bytes_per_clock(machine: dict = H100) -> float:
    """DRAM bytes per clock per SM at copy bandwidth (about 12.4 on the H100)."""
    return machine["copy_bytes_s"] / machine["sms"] / machine["clock_hz"]


# ------------------------------------------------------------------- SASS
_LINE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(@!?U?P[T0-9]+\s+)?([A-Z0-9_.]+)([^;]*);")
_TARGET = re.compile(r"0x([0-9a-f]+)")


@dataclass(frozen=True)
class Instr:
    addr: int
    pred: str
    op: str
    args: str

    @property
    def base(self) -> str:
        return self.op.split(".", 1)[0]

    def branch_target(self) -> int | None:
        if self.base not in ("BRA", "BRX"):
            return None
        m = _TARGET.search(self.args)
        return int(m.group(1), 16) if m else None

    def load_bytes(self) -> tuple[str, int] | None:
        """('global' | 'shared', bytes) of a load, else None."""
        space = {"LDG": "global", "LDS": "shared"}.get(self.base)
        if space is None:
            return None
        width = 4
        for mod in self.op.split(".")[1:]:
            if mod in ("U8", "S8"):
                width = 1
            elif mod in ("U16", "S16"):
                width = 2
            elif mod.isdigit():
                width = int(mod) // 8
        return space, width


def parse_sass(text: str) -> list[Instr]:
    out = []
    for line in text.splitlines():
        m = _LINE.search(line)
        if m:
            out.append(Instr(int(m.group(1), 16), (m.group(2) or "").strip(), m.group(3), m.group(4).strip()))
    return out


_DOUBLE = {"DADD", "DMUL", "DFMA", "DSETP", "DMNMX"}


class Program:
    """A kernel's SASS as basic blocks: successors, predecessors, dominators, issue weights."""

    def __init__(self, code: list[Instr]):
        self.code = code
        index = {ins.addr: i for i, ins in enumerate(code)}
        n = len(code)
        self.target = [index.get(t) if (t := ins.branch_target()) is not None else None for ins in code]
        leaders = {0}
        for i, ins in enumerate(code):
            if self.target[i] is not None:
                leaders.add(self.target[i])
            if (self.target[i] is not None or ins.base in ("EXIT", "RET", "CALL")) and i + 1 < n:
                leaders.add(i + 1)
        self.starts = sorted(leaders)
        self.block_of = [0] * n
        for b, s in enumerate(self.starts):
            end = self.starts[b + 1] if b + 1 < len(self.starts) else n
            for i in range(s, end):
                self.block_of[i] = b
        nb = len(self.starts)
        self.last = [(self.starts[b + 1] if b + 1 < nb else n) - 1 for b in range(nb)]
        self.succ: list[list[int]] = []
        for b in range(nb):
            i = self.last[b]
            ins = code[i]
            out: list[int] = []
            if ins.base in ("EXIT", "RET") and not ins.pred:
                pass
            elif self.target[i] is not None:
                out.append(self.block_of[self.target[i]])
                if ins.pred and ins.pred != "@PT" and i + 1 < n:
                    out.append(self.block_of[i + 1])
            elif i + 1 < n:
                out.append(self.block_of[i + 1])
            self.succ.append(out)
        self.pred: list[list[int]] = [[] for _ in range(nb)]
        for b, out in enumerate(self.succ):
            for c in out:
                self.pred[c].append(b)
        self.idom = self._dominators()

    def _dominators(self) -> list[int]:
        """Cooper, Harvey & Kennedy; -1 for unreachable blocks."""
        nb = len(self.starts)
        order, seen, stack = [], {0}, [(0, iter(self.succ[0]))]
        while stack:
            node, it = stack[-1]
            for nxt in it:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, iter(self.succ[nxt])))
                    break
            else:
                order.append(node)
                stack.pop()
        rpo = order[::-1]
        number = {b: k for k, b in enumerate(rpo)}
        idom = [-1] * nb
        idom[0] = 0
        changed = True
        while changed:
            changed = False
            for b in rpo[1:]:
                new = -1
                for p in self.pred[b]:
                    if idom[p] == -1:
                        continue
                    if new == -1:
                        new = p
                        continue
                    x, y = p, new
                    while x != y:
                        while number[x] > number[y]:
                            x = idom[x]
                        while number[y] > number[x]:
                            y = idom[y]
                    new = x
                if new != idom[b]:
                    idom[b] = new
                    changed = True
        return idom

    def dominates(self, a: int, b: int) -> bool:
        while b != a:
            if b == 0 or self.idom[b] == -1:
                return False
            b = self.idom[b]
        return True

    def instructions(self, blocks) -> list[int]:
        return [i for b in sorted(blocks) for i in range(self.starts[b], self.last[b] + 1)]


@dataclass
class Loop:
    header: int  # block that starts an iteration
    latch: int  # block ending in the backward branch
    body: frozenset = frozenset()  # blocks of the natural loop
    count: float = 0.0  # issue slots on the common path of one iteration
    sfu: float = 0.0
    global_bytes: int = 0  # element loads of one iteration, per thread
    shared_bytes: int = 0
    wide: bool = False  # has a 128-bit global or shared load
    mask_loads: bool = False  # loads bytes (the row-wise mask)
    body_loads: int = 0  # global load instructions in the loop body, on the common path or not


def all_loops(prog: Program) -> list[Loop]:
    """Natural loops: an edge to a block that dominates its source, and every block that reaches
    that edge without passing its target (the compiler may place part of a loop after the backward
    branch).  Loops sharing a header are merged."""
    by_header: dict[int, Loop] = {}
    for b, out in enumerate(prog.succ):
        if prog.idom[b] == -1:
            continue
        for h in out:
            if not prog.dominates(h, b):
                continue
            body, todo = {h}, [b]
            while todo:
                k = todo.pop()
                if k in body:
                    continue
                body.add(k)
                todo += prog.pred[k]
            old = by_header.get(h)
            if old is None:
                by_header[h] = Loop(h, b, frozenset(body))
            else:
                by_header[h] = Loop(h, max(b, old.latch), old.body | body)
    return list(by_header.values())


#: what an inline slow path never does: touch the elements (a wide load, any store but to local
#: memory, shared memory)
_ELEMENT_ACCESS = ("STG", "STS", "LDS", "ST", "ATOM", "ATOMS", "ATOMG", "RED", "BAR")


def _cold(prog: Program, body: frozenset) -> set[int]:
    """Blocks of slow paths in a loop, the fast path being the side a forward conditional branch
    jumps to: an out-of-line stub (at most 8 instructions, one of them a CALL), or an inline
    region with a loop of its own that touches no element (sin/cos's Payne-Hanek reduction of
    huge arguments, reading its table with scalar loads)."""
    cold: set[int] = set()
    code = prog.code
    for b in body:
        i = prog.last[b]
        j = prog.target[i]
        if j is None or not code[i].pred or j <= i:
            continue
        region = range(i + 1, j)
        if not all(prog.block_of[k] in body for k in region):
            continue
        stub = j - i - 1 <= 8 and any(code[k].base == "CALL" for k in region)
        inline = any(prog.target[k] is not None and i < prog.target[k] <= k for k in region) and not any(
            code[k].base in _ELEMENT_ACCESS or (code[k].base == "LDG" and ".128" in code[k].op) for k in region)
        if stub or inline:
            cold.update(prog.block_of[k] for k in region)
    return cold


# ------------------------------------------------- uniform (warp-invariant) values
_REG = re.compile(r"\b(U?R\d+|U?P\d)\b")
_VARYING_OPS = {"S2R", "LDG", "LDS", "LDL", "SHFL", "ATOM", "ATOMS", "ATOMG", "RED", "LD", "VOTE", "MATCH",
                "LDSM", "CS2R", "POPC", "FLO", "REDUX"}
_PRED_WRITERS = {"ISETP", "FSETP", "DSETP", "HSETP2", "PLOP3", "PSETP", "UISETP", "UPLOP3", "R2P", "VOTEU"}
_NO_DEST = {"BRA", "BRX", "CALL", "RET", "EXIT", "BSSY", "BSYNC", "WARPSYNC", "BAR", "NOP", "STG", "STS", "STL",
            "ST", "YIELD", "MEMBAR", "DEPBAR", "ERRBAR", "CCTL"}


def _dests(ins: Instr) -> tuple[list[str], list[str]]:
    """(destination operands, source operands), roughly: the first operand is written; predicate
    compares also write the second; an add or shift with a carry-out writes the predicate right
    after the destination."""
    ops = [a.strip() for a in ins.args.split(",") if a.strip()]
    if not ops or ins.base in _NO_DEST:
        return [], ops
    n = 2 if ins.base in _PRED_WRITERS else 1
    if n == 1 and len(ops) > 2 and re.fullmatch(r"U?P\d", ops[1]) and ins.base in (
            "IADD3", "LEA", "IMAD", "SHF", "LOP3", "UIADD3", "ULEA"):
        n = 2
    return ops[:n], ops[n:]


_DOUBLE_RESULT = {"DADD", "DMUL", "DFMA", "DMNMX"}


def _expand(reg: str, op: str) -> list[str]:
    """A destination and the registers a wide write also fills (R8 of LDG.E.128: R8..R11)."""
    m = re.fullmatch(r"(U?R)(\d+)(?:\.\w+)?", reg)
    if not m:
        return [reg]
    width = 1
    base, *mods = op.split(".")
    for mod in mods:
        if mod in ("64", "WIDE"):
            width = 2
        elif mod == "128":
            width = 4
    # double results fill a register pair (DADD R20 writes R20 and R21), as do conversions to a
    # 64-bit type (the first type of F2F, I2F and FRND, of F2I when it names one)
    if base in _DOUBLE_RESULT or (mods and ((base in ("F2F", "I2F", "FRND") and mods[0] == "F64")
                                            or (base == "F2I" and mods[0] in ("U64", "S64")))):
        width = 2
    return [f"{m.group(1)}{int(m.group(2)) + k}" for k in range(width)]


class Uniformity:
    """Whether a register or predicate holds the same value in every lane of a warp at an
    instruction: its nearest earlier definition (in address order) reads only kernel arguments,
    constants, uniform registers and such values.  Thread indices, loads and shuffles vary; a value
    with no earlier definition (carried around a loop) counts as varying.  Each definition looks
    only at strictly earlier ones, so one pass in address order decides them all (no recursion, no
    cut-off whose verdict would depend on the order in which a set of registers is visited)."""

    def __init__(self, code: list[Instr]):
        self.defs: dict[str, list[int]] = {}
        self.verdicts: dict[str, list[bool]] = {}
        for k, ins in enumerate(code):
            dests, srcs = _dests(ins)
            regs = _REG.findall(" ".join(srcs)) + (_REG.findall(ins.pred) if ins.pred else [])
            same = not (ins.base in _VARYING_OPS or "SR_TID" in ins.args or "SR_LANEID" in ins.args) \
                and all(self.uniform(r, k) for r in regs)
            for d in dests:
                for r in _expand(d, ins.op):
                    self.defs.setdefault(r, []).append(k)
                    self.verdicts.setdefault(r, []).append(same)

    def uniform(self, reg: str, at: int) -> bool:
        if reg in ("RZ", "PT", "URZ", "UPT") or reg.startswith(("UR", "UP")):
            return True
        k = bisect.bisect_left(self.defs.get(reg, []), at) - 1
        return k >= 0 and self.verdicts[reg][k]


def _weight(ins: Instr) -> float:
    if ins.base == "NOP":
        return 0.0
    return 2.0 if ins.base in _DOUBLE else 1.0


#: 16-bit kernels recompute in double the results within a few float ulps of a rounding tie of the
#: 16-bit type (kernels/functors.cuh, near_tie): bfloat16 within TIE_ULPS, 2 TIE_ULPS + 1 of the
#: 2^16 float values per bfloat16 ulp (0.11%); float16 within TIE_ULPS_F16 + 16 (m - 1), on average
#: 2 (TIE_ULPS_F16 + 7.5) + 1 of the 2^13 per float16 ulp (0.61%); tiny results, which bfloat16
#: also recomputes, left out.  A warp runs that code where one of its 32 lanes takes it (predict).
_DROPPED_BITS = {"f16": 13, "bf16": 16}


@functools.lru_cache(maxsize=None)
def tie_ulps(name: str) -> int:
    from ..backends.cuda import source as _cuda_source

    text = (_cuda_source.kernels_dir() / "functors.cuh").read_text()
    return int(re.search(rf"constexpr unsigned {name} = (\d+);", text).group(1))


def rare_fraction(dtype: str) -> float:
    """The share of a 16-bit dtype's results that take the near-tie correction (0 for the others)."""
    if dtype not in _DROPPED_BITS:
        return 0.0
    half = tie_ulps("TIE_ULPS") if dtype == "bf16" else tie_ulps("TIE_ULPS_F16") + 7.5
    return (2 * half + 1) / 2 ** _DROPPED_BITS[dtype]


def rare_weight(fraction: float) -> float:
    """The chance that one of a warp's 32 lanes takes a branch each lane takes with ``fraction``."""
    return 1 - (1 - fraction) ** 32


class Analysis:
    """Loops and their common paths in one kernel's SASS."""

    def __init__(self, sass: str):
        self.prog = Program(parse_sass(sass))
        self.uni = Uniformity(self.prog.code)
        self.loops = all_loops(self.prog)
        code = self.prog.code
        self.block_weight = [sum(_weight(code[i]) for i in range(s, self.prog.last[b] + 1))
                             for b, s in enumerate(self.prog.starts)]
        self._paths: dict[tuple, set[int]] = {}

    def common_path(self, loop: Loop, wanted: frozenset = frozenset()) -> set[int]:
        """The blocks of one iteration of a loop on its common path: both sides of a branch that may
        diverge, the cheaper side of a branch on a uniform value (the specialization for the
        defaults: no bias, no weight, default parameters) unless it skips more of the ``wanted``
        blocks (the headers of the passes over a row); cold slow-path stubs left out."""
        key = (loop.header, loop.latch, wanted)
        if key in self._paths:
            return self._paths[key]
        prog, code = self.prog, self.prog.code
        body, cold = loop.body, _cold(prog, loop.body)

        def successors(b: int, decide: dict[int, bool]) -> list[int]:
            if b == loop.latch:
                return []
            out = [c for c in prog.succ[b] if c in body and c != loop.header]
            if b in decide:
                t = prog.target[prog.last[b]]
                tb = prog.block_of[t] if t is not None else None
                out = [c for c in out if (c == tb) == decide[b]]
            return out

        def reach(decide: dict[int, bool]) -> set[int]:
            seen, todo = set(), [loop.header]
            while todo:
                b = todo.pop()
                if b not in seen:
                    seen.add(b)
                    todo += successors(b, decide)
            return seen

        def cost(seen: set[int]) -> float:
            return sum(self.block_weight[b] for b in seen if b not in cold)

        decide: dict[int, bool] = {}
        current = reach(decide)
        for b in sorted(body):
            i = prog.last[b]
            ins = code[i]
            if b == loop.latch or prog.target[i] is None or not ins.pred or ins.pred == "@PT" or b not in current:
                continue
            if len([c for c in prog.succ[b] if c in body and c != loop.header]) < 2:
                continue
            if not self.uni.uniform(ins.pred.lstrip("@!"), i):
                continue
            options = []
            for taken in (True, False):
                seen = reach({**decide, b: taken})
                if loop.latch in seen:  # the iteration must go on to the next one
                    options.append((-len(wanted & seen), cost(seen), taken, seen))
            if options:
                best = min(options, key=lambda o: o[:3])
                decide[b] = best[2]
                current = best[3]
        path = {b for b in current if b not in cold}
        self._paths[key] = path
        return path

    def measure(self, loop: Loop) -> Loop:
        code = self.prog.code
        widths: dict[str, int] = {}
        loads = []
        path = self.common_path(loop)
        on_path = self.prog.instructions(path)
        # every global load of the loop, on the common path or not: the version of a loop for a bias
        # or a weight has more than the version without
        loop.body_loads = sum(1 for i in self.prog.instructions(loop.body) if code[i].base == "LDG")
        for i in on_path:
            ins = code[i]
            loop.count += _weight(ins)
            if ins.base == "MUFU":
                loop.sfu += 1.0
            lb = ins.load_bytes()
            if ".CONSTANT" in ins.op:
                lb = None  # a table in constant memory (double sin's), not element data
            if lb and lb[0] == "shared" and not self._varying_address(ins, i):
                lb = None  # the same address in every lane: a reduction's scratch, not the row
            if lb:
                if lb[1] == 1:
                    loop.mask_loads = True
                    continue
                loads.append(lb)
                widths[lb[0]] = max(widths.get(lb[0], 0), lb[1])
        for space, width in loads:
            if width == widths[space]:  # element data: the widest loads (not scalar side loads)
                if space == "global":
                    loop.global_bytes += width
                else:
                    loop.shared_bytes += width

        loop.wide = 16 in widths.values()
        return loop

    def _varying_address(self, ins: Instr, at: int) -> bool:
        m = re.search(r"\[([^\]]*)\]\s*$", ins.args)
        regs = _REG.findall(m.group(1)) if m else []
        return any(not self.uni.uniform(r, at) for r in regs)

    def element_loops(self, passes: bool = False) -> list[Loop]:
        """Innermost loops that load element data.  ``passes``: only the loops on the common path of
        their enclosing loop (the passes over a row; not the versions for a mask or a strided row)."""
        loops = self.loops
        # innermost, but a loop inside a slow path (cold) does not hide the loop around it
        cold = {a.header: _cold(self.prog, a.body) for a in loops}
        inner = [a for a in loops if not any(b is not a and b.body < a.body and not b.body <= cold[a.header]
                                                 for b in loops)]
        found = [lp for lp in (self.measure(lp) for lp in inner) if lp.global_bytes or lp.shared_bytes]
        if not passes:
            return found
        headers = frozenset(lp.header for lp in found)
        keep = []
        for lp in found:
            parents = [b for b in loops if lp.body < b.body]
            if not parents or lp.header in self.common_path(min(parents, key=lambda b: len(b.body)), headers):
                keep.append(lp)
        return keep


def element_loops(sass: str, passes: bool = False) -> list[Loop]:
    return Analysis(sass).element_loops(passes)


# ------------------------------------------------------------------ kernels
@dataclass(frozen=True)
class KernelShape:
    """What the model needs to know of a kernel besides its SASS (the launch layer's choices)."""

    family: str  # elementwise, gated, row, colsum
    dtype_bytes: int
    cache_bytes: int = 0  # row path: bytes per cached element in shared memory
    arrays: int = 1  # arrays a pass reads per element (x; x and dy; a and b; ...)
    moved_bytes: float = 0.0  # global bytes per element the kernel moves
    useful_bytes: float = 0.0  # bytes per element a copy-like kernel would move (fwd 2, bwd 3 items)
    threads: int = 256  # threads per block at launch
    shared: int = 0  # dynamic shared memory per block at launch
    point: str = ""  # the row length modelled, for row paths
    passes: bool = False  # row path with several loops over the row (block, long): summed
    rare_fraction: float = 0.0  # 16-bit elementwise and gated: the share of results corrected near a tie


@dataclass
class Prediction:
    instructions_per_element: float
    sfu_per_element: float
    loads_in_flight_bytes_per_thread: int
    loads_in_flight_bytes_per_sm: int
    occupancy: float  # resident threads / 2048
    resident_threads: int
    predicted_h100_fraction: float
    bound: str  # memory, latency, issue, sfu
    loops: int  # loops counted: the main loop, or a row path's passes
    vector_loads: bool  # the counted loops load 128 bits at a time
    correction_per_element: float = 0.0  # of instructions_per_element: the 16-bit rounding correction

    def as_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def resident_threads(registers: int, threads: int, shared: int, static_shared: int = 0,
                     machine: dict = H100) -> int:
    """Threads per SM the register file, shared memory and the block limit allow."""
    ru, su = machine["register_unit"], machine["shared_unit"]
    warps = -(-threads // 32)
    per_warp = -(-max(registers, 1) * 32 // ru) * ru
    blocks = machine["registers"] // (per_warp * warps)
    smem = shared + static_shared
    if smem:
        per_block = -(-smem // su) * su + machine["shared_per_block_reserved"]
        blocks = min(blocks, machine["shared"] // per_block)
    blocks = min(blocks, machine["blocks"], machine["threads"] // threads)
    return max(0, blocks) * threads


def _main_loops(sass: str, shape: KernelShape) -> list[Loop]:
    """The loops the model counts: a row path's passes, else the main loop (see predict)."""
    passes = shape.family == "row" and shape.passes
    loops = element_loops(sass, passes)

    def elements(lp: Loop) -> float:
        return _elements(lp, shape)

    if any(lp.wide for lp in loops):
        loops = [lp for lp in loops if lp.wide]
    if shape.family == "row" and any(not lp.mask_loads for lp in loops):
        loops = [lp for lp in loops if not lp.mask_loads]
    loops = [lp for lp in loops if elements(lp) > 0]
    if passes or not loops:
        return loops
    # the loops with the fewest global loads (no bias or weight); of the copies a parameter picks
    # between (gelu's approximate), the costlier
    fewest = min(lp.body_loads for lp in loops)
    return [max((lp for lp in loops if lp.body_loads == fewest), key=lambda lp: lp.count / elements(lp))]


def _elements(lp: Loop, shape: KernelShape) -> float:
    """Elements one iteration handles: its element bytes over the bytes per element of the arrays."""
    per = lp.global_bytes / shape.dtype_bytes + (lp.shared_bytes / shape.cache_bytes if shape.cache_bytes else 0)
    return per / shape.arrays


def predict(sass: str, shape: KernelShape, registers: int, static_shared: int = 0,
            machine: dict = H100, sass_without_correction: str | None = None) -> Prediction | None:
    """The model for one kernel, or None when no element loop is found.

    A 16-bit elementwise or gated kernel computes again in double the results near a rounding tie
    of its type (kernels/functors.cuh, store_once): rare code that a warp runs where one of its
    lanes needs it.  ``sass_without_correction`` is the same kernel compiled without that code
    (ACT_MODEL_NO_CORRECTION: the near-tie test kept): its main loop is the common path, and the
    difference to the kernel's own, every branch counted, is the correction, counted at
    rare_weight(shape.rare_fraction) per element.  Without it the correction counts in full."""
    chosen = _main_loops(sass, shape)
    if not chosen:
        return None
    ipe = sum(lp.count / _elements(lp, shape) for lp in chosen)
    spe = sum(lp.sfu / _elements(lp, shape) for lp in chosen)
    correction = 0.0
    if shape.rare_fraction and sass_without_correction is not None:
        base = _main_loops(sass_without_correction, shape)
        if base:
            w = rare_weight(shape.rare_fraction)
            base_ipe = sum(lp.count / _elements(lp, shape) for lp in base)
            base_spe = sum(lp.sfu / _elements(lp, shape) for lp in base)
            correction = w * max(0.0, ipe - base_ipe)
            ipe = base_ipe + correction
            spe = base_spe + w * max(0.0, spe - base_spe)
    global_loops = [lp for lp in chosen if lp.global_bytes]
    per_thread = min((lp.global_bytes for lp in global_loops), default=0)
    threads = resident_threads(registers, shape.threads, shape.shared, static_shared, machine)
    in_flight = per_thread * threads
    bw = copy_bytes_per_clock(machine)
    rates = {  # elements per clock per SM under each limit
        "memory": bw / shape.moved_bytes,
        "latency": bw * min(1.0, in_flight / machine["in_flight_needed"]) / shape.moved_bytes,
        "issue": machine["issue_per_clock"] / ipe if ipe else math.inf,
        "sfu": machine["sfu_per_clock"] / spe if spe else math.inf,
    }
    bound = min(rates, key=lambda k: (rates[k], k != "memory"))
    fraction = rates[bound] * shape.useful_bytes / bw
    return Prediction(ipe, spe, per_thread, in_flight, threads / machine["threads"], threads, fraction, bound,
                      len(chosen), all(lp.wide for lp in chosen), correction)


# --------------------------------------------------------- the kernels' shapes
#: the H100 as the launch layer sees it (for the block sizes and shared memory of row paths)
def _h100_info():
    from ..backends.cuda.ops import DeviceInfo

    return DeviceInfo(sm_count=132, max_threads_per_block=1024, max_threads_per_sm=2048,
                      shared_per_block=48 * 1024, shared_per_block_optin=227 * 1024)


#: row lengths at which the row-wise paths are modelled (warp paths: their full width)
BLOCK_POINT = 8192
LONG_POINT = 131072
_ITEM = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8}


def kernel_shape(module, entry: str) -> KernelShape | None:
    """The model's view of one entry point of a ``_cuda_source.KernelModule``; None for the kernels
    the model does not cover (sparsemax, column sums)."""
    from ..backends.cuda import ops as _cuda_ops

    t = _ITEM[module.dtype]
    bwd = "_bwd_" in entry
    if module.kind == "elementwise":
        items = 3 if bwd else 2
        return KernelShape("elementwise", t, arrays=2 if bwd else 1, moved_bytes=items * t, useful_bytes=items * t,
                           threads=_cuda_ops.ELEMENTWISE_THREADS, rare_fraction=rare_fraction(module.dtype))
    if module.kind == "gated":  # per output element: a, b (and dy) in; y (da, db) out
        items = 5 if bwd else 3
        return KernelShape("gated", t, arrays=3 if bwd else 2, moved_bytes=items * t, useful_bytes=items * t,
                           threads=_cuda_ops.ELEMENTWISE_THREADS, rare_fraction=rare_fraction(module.dtype))
    if module.kind != "rowwise":
        return None
    import numpy as np

    dtype = {"f16": np.float16, "f32": np.float32, "f64": np.float64}.get(module.dtype)
    if dtype is None:
        import ml_dtypes

        dtype = ml_dtypes.bfloat16
    useful = (3 if bwd else 2) * t
    reads = _cuda_ops.ROW_GLOBAL_READS.get(module.path, 1)
    moved = useful + (reads - 1) * (2 if bwd else 1) * t  # x (and dy) read again by later passes
    if module.path.startswith("warp"):
        items, lanes = (int(v) for v in module.path[4:].split("x"))
        n, point = items * lanes, f"n={items * lanes}"
    elif module.path == "column":
        n, point = 4096, "n=4096, rows inner apart"
    else:
        n = BLOCK_POINT if module.path == "block" else LONG_POINT
        point = f"n={n}"
    # rows along the last axis, aligned, no mask: the block and long kernels' 16-byte-pack path
    path = _cuda_ops.row_path(module.name, n, 1 if module.path != "column" else 64, np.dtype(dtype), _h100_info(),
                              backward=bwd, packed=True)
    if path.name != module.path:
        return None
    cache = _cuda_ops.row_cache_bytes(np.dtype(dtype), packed=True) if module.path == "block" else 0
    return KernelShape("row", t, cache_bytes=cache, arrays=2 if bwd else 1, moved_bytes=moved, useful_bytes=useful,
                       threads=path.threads, shared=path.shared, point=point,
                       passes=module.path in ("block", "long"))
