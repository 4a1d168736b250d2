#!/usr/bin/env python3
"""Coefficient generator for kernels/cpu/vmath.h (developer script, not shipped).

Every polynomial of vmath.h is a (near-)minimax fit computed here with mpmath at 160 bits: a
discrete linear Remez exchange on a dense Chebyshev-distributed grid, minimizing the maximum
*weighted* error (weights chosen so that the quantity minimized is the relative error of the
function the polynomial feeds), then rounded to the working precision (float or double) and
re-measured.  The Payne-Hanek tables for sin are exact multiples of 2/pi computed here too.

Usage (needs mpmath; gmpy2 makes it faster but is not required):
    python kernels/cpu/fit_vmath.py --list            # the blocks
    python kernels/cpu/fit_vmath.py exp_f32 log_f64   # print those blocks as C literals
    python kernels/cpu/fit_vmath.py --header kernels/cpu/vmath.h all
                                                      # rewrite every block in place (~30 s)
    python kernels/cpu/fit_vmath.py --header kernels/common.cuh gpu
                                                      # the GPU's copies (GPU_BLOCKS below)

Each printed block names this script and the block, the interval, the fitted form and the
measured maximum error of the rounded coefficients (2^-k, relative unless noted).  With
--header the blocks between vmath.h's BEGIN/END GENERATED markers are replaced by name.
The output is deterministic: rerunning reproduces the header's literals bit for bit.

Polynomial degrees are chosen in BLOCKS below; the error each block contributes to its
function is discussed in vmath.h's opening comment.
"""
from __future__ import annotations

import sys

import mpmath as mp

mp.mp.prec = 160
MPF = mp.mpf


# --------------------------------------------------------------------------------------------
# Remez
# --------------------------------------------------------------------------------------------
def remez(F, basis, a, b, W=None, npts=1200, maxiter=60):
    """Discrete linear Remez: coefficients c minimizing max_t |W(t) (F(t) - sum c_j basis_j(t))|
    over a cosine-spaced grid of [a, b].  Returns (c, max weighted error on the grid)."""
    a, b = MPF(a), MPF(b)
    n = len(basis)
    grid = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / (npts - 1)) for i in range(npts)]
    Fv = [F(t) for t in grid]
    Wv = [W(t) if W else MPF(1) for t in grid]
    Bv = [[phi(t) for phi in basis] for t in grid]
    ref = sorted({int(mp.nint((npts - 1) * (1 - mp.cos(mp.pi * i / n)) / 2)) for i in range(n + 1)})
    assert len(ref) == n + 1
    best = None
    for _ in range(maxiter):
        A = mp.matrix(n + 1, n + 1)
        rhs = mp.matrix(n + 1, 1)
        for r, i in enumerate(ref):
            for j in range(n):
                A[r, j] = Bv[i][j]
            A[r, n] = (-1) ** r / Wv[i]
            rhs[r] = Fv[i]
        sol = mp.lu_solve(A, rhs)
        c = [sol[j] for j in range(n)]
        E = abs(sol[n])
        err = [Wv[k] * (Fv[k] - mp.fsum(c[j] * Bv[k][j] for j in range(n))) for k in range(npts)]
        ext = []  # one extremum per run of equal sign
        k = 0
        while k < npts:
            s = mp.sign(err[k])
            if s == 0:
                k += 1
                continue
            m = k
            while k < npts and mp.sign(err[k]) in (s, 0):
                if abs(err[k]) > abs(err[m]):
                    m = k
                k += 1
            ext.append(m)
        while len(ext) > n + 1:  # drop the smallest, keeping the signs alternating
            vals = [abs(err[i]) for i in ext]
            j = vals.index(min(vals))
            if j in (0, len(ext) - 1):
                ext.pop(j)
            elif vals[j - 1] < vals[j + 1]:
                ext.pop(j)
                ext.pop(j - 1)
            else:
                ext.pop(j + 1)
                ext.pop(j)
        mx = max(abs(e) for e in err)
        if best is None or mx < best[1]:
            best = (c, mx)
        if len(ext) < n + 1 or mx - E <= mx * MPF("1e-6"):
            break
        ref = ext
    return best


def rnd(c, prec):
    with mp.workprec(prec):
        return +c


def measure(F, basis, c, a, b, W=None, npts=4000):
    a, b = MPF(a), MPF(b)
    m = MPF(0)
    for i in range(npts):
        t = (a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / (npts - 1))
        e = abs((W(t) if W else 1) * (F(t) - mp.fsum(cj * phi(t) for cj, phi in zip(c, basis))))
        m = max(m, e)
    return m


def fit(F, basis, a, b, W, prec, refit=True):
    """prec: bits per coefficient, one number for all or a list (e.g. 48 for float pairs)."""
    precs = prec if isinstance(prec, (list, tuple)) else [prec] * len(basis)
    return _fit(F, basis, a, b, W, precs, refit)


def _fit(F, basis, a, b, W, precs, refit):
    """Remez, then round to `prec` bits.  With refit, coefficients are rounded one at a time
    (lowest index first) and the rounding error of each is compensated by the coefficients
    not yet rounded (weighted least squares on Chebyshev nodes): for ill-conditioned bases
    (erfcx) plain rounding would lose several bits."""
    c, e = remez(F, basis, a, b, W)
    c = list(c)
    n = len(basis)
    if refit and n > 1:
        a_, b_ = MPF(a), MPF(b)
        m = 6 * n
        nodes = [(a_ + b_) / 2 - (b_ - a_) / 2 * mp.cos(mp.pi * (i + MPF(0.5)) / m) for i in range(m)]
        wts = [W(t) if W else MPF(1) for t in nodes]
        B = [[phi(t) for phi in basis] for t in nodes]
        for j in range(n):
            cj = rnd(c[j], precs[j])
            delta = c[j] - cj
            c[j] = cj
            rest = list(range(j + 1, n))
            if not rest or delta == 0:
                continue
            A = mp.matrix(m, len(rest))
            y = mp.matrix(m, 1)
            for k in range(m):
                for q, i in enumerate(rest):
                    A[k, q] = wts[k] * B[k][i]
                y[k] = wts[k] * delta * B[k][j]
            d, _ = mp.qr_solve(A, y)
            for q, i in enumerate(rest):
                c[i] += d[q]
    else:
        c = [rnd(x, q) for x, q in zip(c, precs)]
    e = measure(F, basis, c, a, b, W)
    return c, e


def lit(c, prec):
    """C literal: hex float, exact."""
    v = float(c)
    h = v.hex()
    if prec == 24:
        mant, exp = h.split("p")
        mant = mant.rstrip("0")
        if mant.endswith("."):
            mant += "0"
        return f"{mant}p{exp}f"
    return h


def mon(k):
    return lambda t, k=k: t**k


def emit(name, what, cs, prec, err, weight="rel"):
    ty = "float" if prec == 24 else "double"
    lg = mp.log(err, 2) if err > 0 else MPF(-999)
    import textwrap

    head = (f"// [{name}] generated by kernels/cpu/fit_vmath.py {name}: {what}; "
            f"max {weight} err 2^{float(lg):.1f}")
    print("\n//   ".join(textwrap.wrap(head, 98, break_on_hyphens=False)))
    body = ", ".join(lit(c, prec) for c in cs)
    decl = f"static constexpr {ty} {name.upper()}[{len(cs)}] = {{"
    if len(decl) + len(body) + 2 <= 100:
        print(f"{decl}{body}}};")
    else:
        print(decl)
        print("\n".join(textwrap.wrap(body, 96, initial_indent="    ", subsequent_indent="    ")) + "};")


# --------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------
RH = MPF("0.347")  # |r| bound of the exp reductions (ln2/2 = 0.34657 plus slack)


def exp_block(name, deg, prec):
    # expm1(r) = r + r^2 P(r); weight: relative error of expm1 (which also bounds exp's).
    F = lambda r: (mp.expm1(r) - r) / r**2
    W = lambda r: r**2 / abs(mp.expm1(r))
    c, e = fit(F, [mon(k) for k in range(0, deg - 1)], -RH, RH, W, prec)
    emit(name, f"expm1(r) = r + r^2 sum c[i] r^i, |r| <= {RH}", c, prec, e)


def expm1_block(name, deg, prec):
    # exp(r) = 1 + r + r^2/2 + r^3 P(r); weight: relative to exp(r)
    F = lambda r: mp.exp(r) - 1 - r - r * r / 2
    W = lambda r: 1 / mp.exp(r)
    c, e = fit(F, [mon(k) for k in range(3, deg + 1)], -RH, RH, W, prec)
    emit(name, f"exp(r) = 1 + r + r^2/2 + sum c[i] r^(i+3), |r| <= {RH}", c, prec, e)


def log_block(name, deg, prec):
    # log1p(f) = f - f^2/2 + s (f^2/2 + R(z)), s = f/(2+f), z = s^2, R(z) = 2 atanh(s)/s - 2.
    zmax = MPF("0.02944")  # (sqrt(2)-1)^2/(sqrt(2)+1)^2 = 0.0294373
    F = lambda z: 2 * mp.atanh(mp.sqrt(z)) / mp.sqrt(z) - 2 if z > 0 else MPF(0)
    c, e = fit(F, [mon(k) for k in range(1, deg + 1)], MPF(10) ** -8, zmax, None, prec)
    emit(name, f"R(z) = 2atanh(s)/s - 2 = sum c[i] z^(i+1), z = s^2 <= {zmax}", c, prec, e, "abs")


def tanh_block(name, T, deg, prec):
    # tanh(x) = x + x^3 P(x^2) for |x| <= T; weight: relative error of tanh.
    F = lambda z: (mp.tanh(mp.sqrt(z)) / mp.sqrt(z) - 1) / z
    W = lambda z: z * mp.sqrt(z) / mp.tanh(mp.sqrt(z))
    c, e = fit(F, [mon(k) for k in range(0, deg + 1)], MPF(10) ** -8, MPF(T) ** 2, W, prec)
    emit(name, f"tanh(x) = x + x^3 sum c[i] x^(2i), |x| <= {T}", c, prec, e)


def erfcx(x):
    return mp.erfc(x) * mp.exp(x * x)


def erfcx_block(name, a0, a1, deg, prec, p="0.25"):
    # erfc(a) = exp(-a^2) * P(t), t = 1/(1 + p a); weight: relative.
    P = MPF(p)
    F = lambda t: erfcx((1 / t - 1) / P)
    W = lambda t: 1 / F(t)
    ta, tb = 1 / (1 + P * MPF(a1)), 1 / (1 + P * MPF(a0))
    c, e = fit(F, [mon(k) for k in range(0, deg + 1)], ta, tb, W, prec)
    emit(name, f"erfc(a) exp(a^2) = sum c[i] t^i, t = 1/(1 + {p} a), {a0} <= a <= {a1}", c, prec, e)


def erf_block(name, a1, deg, prec):
    # erf(x) = x (2/sqrt(pi) + x^2 sum c[i] x^(2i)), |x| <= a1; relative error of erf.
    c0 = 2 / mp.sqrt(mp.pi)
    G = lambda z: mp.erf(mp.sqrt(z)) / mp.sqrt(z)
    F = lambda z: (G(z) - c0) / z
    W = lambda z: z / G(z)
    c, e = fit(F, [mon(k) for k in range(0, deg + 1)], MPF(10) ** -8, MPF(a1) ** 2, W, prec)
    emit(name, f"erf(x) = x (2/sqrt(pi) + x^2 sum c[i] x^(2i)), |x| <= {a1}", c, prec, e)


RS = MPF("0.786")  # |r| bound of the sin reduction (pi/4 = 0.785398 plus slack)


def sin_block(name, deg, prec, rs=RS):
    F = lambda z: (mp.sin(mp.sqrt(z)) / mp.sqrt(z) - 1) / z
    W = lambda z: z * mp.sqrt(z) / mp.sin(mp.sqrt(z))
    c, e = fit(F, [mon(k) for k in range(0, deg + 1)], MPF(10) ** -8, rs**2, W, prec)
    emit(name, f"sin(r) = r + r^3 sum c[i] r^(2i), |r| <= {rs}", c, prec, e)


def cos_block(name, deg, prec, rs=RS):
    F = lambda z: (mp.cos(mp.sqrt(z)) - 1 + z / 2) / z**2
    W = lambda z: z**2 / mp.cos(mp.sqrt(z))
    c, e = fit(F, [mon(k) for k in range(0, deg + 1)], MPF(10) ** -8, rs**2, W, prec)
    emit(name, f"cos(r) = 1 - r^2/2 + r^4 sum c[i] r^(2i), |r| <= {rs}", c, prec, e)


# |r| bound of the float sin/cos fast path: pi/4 + the error of j (|x| <= 2^16, no-FMA build)
RS_F = MPF("0.8")


def sincos_f32_block(name, which, deg):
    # float fast path: sin(r) = r + r^3 S(r^2), cos(r) = 1 - r^2/2 + r^4 C(r^2), |r| <= RS_F
    (sin_block if which == "sin" else cos_block)(name, deg, 24, RS_F)


def gauss_block(name, deg, prec):
    # 2 exp(-s/2) = 2 + s B(s), |s| <= 2 RH (s = x^2 - 2k ln2 in gauss/normcdf); weight: relative
    # error of 2 exp(-s/2) (the rounded B enters multiplied by s).
    F = lambda s: (2 * mp.exp(-s / 2) - 2) / s if s != 0 else MPF(-1)
    W = lambda s: abs(s) / (2 * mp.exp(-s / 2)) if s != 0 else MPF(10) ** -12
    c, e = fit(F, [mon(k) for k in range(0, deg + 1)], -2 * RH, 2 * RH, W, prec)
    emit(name, f"2 exp(-s/2) = 2 + s sum c[i] s^i, |s| <= {2 * RH}", c, prec, e)


NCDF_A = MPF("14.5")   # a = |x| clamp of the float normcdf
NCDF_TC = MPF("0.375")  # expansion point of its polynomial (v = t - TC exact for t >= 1/8)


def ncdf_block(name, deg, prec):
    # float normcdf: Phi(-a) = exp(-a^2/2) R(a), R(a) = erfcx(a/sqrt2)/2 (Mills ratio / sqrt(2 pi)).
    # R(a) (1 + a) = 1/2 + w is nearly constant (0.40 .. 0.53); w = y Q(v) with y = 1 - t =
    # a/(2 + a) (computed with relative precision for small a) and Q a polynomial in v = t - TC,
    # t = 1/(1 + a/2), 0 <= a <= NCDF_A; weight y: the absolute error of w (added to 1/2).
    def Q(v):
        t = v + NCDF_TC
        y = 1 - t
        if y == 0:  # a = 0: w ~ w'(0) a, a ~ 2y
            return 2 * (MPF(1) / 2 - 1 / mp.sqrt(2 * mp.pi))
        a = (1 / t - 1) * 2
        return (erfcx(a / mp.sqrt(2)) / 2 * (1 + a) - MPF(1) / 2) / y
    vmin, vmax = 1 / (1 + NCDF_A / 2) - NCDF_TC, 1 - NCDF_TC
    W = lambda v: max(vmax - v, MPF(10) ** -30)
    c, e = fit(Q, [mon(k) for k in range(0, deg + 1)], vmin, vmax, W, prec)
    emit(name, f"(erfcx(a/sqrt2)/2 (1 + a) - 1/2)/y = sum c[i] v^i, y = a/(2 + a), v = 1 - y - "
         f"{NCDF_TC}, 0 <= a <= {NCDF_A}", c, prec, e, "abs (times y)")


def emit_pairs(name, what, cs, precs, err, weight="rel"):
    """Literals for kernels/common.cuh and the Numba port: a coefficient fitted to 48 bits is a
    float pair hi + lo, one fitted to 24 bits a float."""
    lg = mp.log(err, 2) if err > 0 else MPF(-999)
    print(f"// [{name}] generated by kernels/cpu/fit_vmath.py {name}: {what}; max {weight} err "
          f"2^{float(lg):.1f}")
    for i, (c, q) in enumerate(zip(cs, precs)):
        hi = rnd(c, 24)
        lo = f", {lit(rnd(c - hi, 24), 24)}" if q > 24 else ""
        print(f"//   c[{i}] = {lit(hi, 24)}{lo}")


def exp_pair_block(name, deg, pairs):
    # float exp_neg_split: exp(u) = 1 + u + u^2/2 + sum c[i] u^(i+3), |u| <= RH, the first `pairs`
    # coefficients as float pairs (their Horner steps are pair steps)
    F = lambda r: mp.exp(r) - 1 - r - r * r / 2
    W = lambda r: 1 / mp.exp(r)
    precs = [48] * pairs + [24] * (deg - 2 - pairs)
    c, e = fit(F, [mon(k) for k in range(3, deg + 1)], -RH, RH, W, precs)
    emit_pairs(name, f"exp(u) = 1 + u + u^2/2 + sum c[i] u^(i+3), |u| <= {RH}", c, precs, e)


GELU_A = MPF("14.8")   # a = |x| clamp of the float gelu'
GELU_TC = MPF("0.625")  # expansion point: v = t - TC, t = 1/(1 + a/4)


def gelu_mills_block(name, deg, pairs):
    # float gelu': the Mills ratio M(a) = Phi(-a)/phi(a) = sqrt(2 pi) t F(t), t = 1/(1 + a/4), F a polynomial
    # in v = t - TC, 0 <= a <= GELU_A.  gelu' = phi(a) (M - a) (x < 0) needs M to the relative
    # precision |M - a| / M of h (|M - a| taken >= 0.3 near the zero at a = 0.75): that weight.
    def mills(a):
        return mp.sqrt(mp.pi / 2) * erfcx(a / mp.sqrt(2))

    def parts(v):
        t = v + GELU_TC
        a = (1 / t - 1) * 4
        return t, a, mills(a)

    def F(v):
        t, a, m = parts(v)
        return m / (t * mp.sqrt(2 * mp.pi))

    def W(v):
        t, a, m = parts(v)
        return t / max(abs(a - m), MPF("0.3"))

    precs = [48] * pairs + [24] * (deg + 1 - pairs)
    vmin, vmax = 1 / (1 + GELU_A / 4) - GELU_TC, 1 - GELU_TC
    c, e = fit(F, [mon(k) for k in range(0, deg + 1)], vmin, vmax, W, precs)
    emit_pairs(name, f"M(a) (1 + a/4) / sqrt(2 pi) = sum c[i] v^i, v = 1/(1 + a/4) - {GELU_TC}, 0 <= a <= "
               f"{GELU_A}, M the Mills ratio", c, precs, e, "rel (times M / max(|M - a|, 0.3))")


def split(v, bits):
    """v = hi + lo with hi holding `bits` significant bits (so k*hi is exact for small k)."""
    e = mp.floor(mp.log(abs(v), 2))
    q = MPF(2) ** (e - bits + 1)
    hi = mp.nint(v / q) * q
    return hi, v - hi


def constants():
    print("// [constants] generated by kernels/cpu/fit_vmath.py constants")
    ln2 = mp.log(2)
    for nm, bits, prec in (("LN2_F32", 16, 24), ("LN2_F64", 42, 53)):
        hi, lo = split(ln2, bits)
        lo = rnd(lo, prec)
        print(f"//   {nm}: ln2 = HI + LO, HI with {bits} bits (k*HI exact for |k| < 2^{prec - bits})")
        print(f"static constexpr {'float' if prec == 24 else 'double'} {nm}_HI = {lit(hi, prec)}, "
              f"{nm}_LO = {lit(lo, prec)};")
    print(f"static constexpr float LOG2E_F32 = {lit(rnd(1 / ln2, 24), 24)};")
    print(f"static constexpr double LOG2E_F64 = {lit(rnd(1 / ln2, 53), 53)};")
    print(f"static constexpr double LN2_D = {lit(rnd(ln2, 53), 53)};")
    s = 1 / mp.sqrt(2)
    sh = rnd(s, 53)
    print(f"static constexpr double RSQRT2_HI = {lit(sh, 53)},")
    print(f"                        RSQRT2_LO = {lit(rnd(s - sh, 53), 53)};")
    t = 2 / mp.sqrt(mp.pi)
    th = rnd(t, 53)
    print(f"static constexpr double TWO_RSQRTPI = {lit(th, 53)},")
    print(f"                        TWO_RSQRTPI_LO = {lit(rnd(t - th, 53), 53)};")
    h = mp.pi / 2
    hh = rnd(h, 53)
    print(f"static constexpr double PIO2_HI = {lit(hh, 53)}, PIO2_LO = {lit(rnd(h - hh, 53), 53)};")
    p1 = rnd(h, 24)
    p2 = rnd(h - p1, 24)
    p3 = rnd(h - p1 - p2, 24)
    print("//   PIO2_F32: pi/2 = P1 + P2 + P3 + O(2^-76), three floats (sin/cos fast reduction)")
    print(f"static constexpr float PIO2_F32_1 = {lit(p1, 24)}, PIO2_F32_2 = {lit(p2, 24)},")
    print(f"                       PIO2_F32_3 = {lit(p3, 24)};")
    print(f"static constexpr float TWOOPI_F32 = {lit(rnd(2 / mp.pi, 24), 24)};")


def ph_tables():
    """Payne-Hanek: row j holds G_j = (2^E0 * 2/pi) mod 4 split into doubles, E0 = the
    exponent that makes the mantissa-with-low-exponent-bits M' an integer (see vmath.h)."""
    with mp.workprec(1400):
        twoopi = 2 / mp.pi

        def G(E0):
            g = twoopi * MPF(2) ** E0
            return g - 4 * mp.floor(g / 4)

        def chunks(g, n):
            out = []
            for _ in range(n):
                c = rnd(g, 53)
                out.append(c)
                g -= c
            return out

        print("// [sin_ph] generated by kernels/cpu/fit_vmath.py sin_ph: Payne-Hanek tables")
        print("//   row j (j = float biased exponent >> 3): (2^(8j-150) * 2/pi) mod 4 = g0 + g1")
        print("static const double SIN_PH_F32[32][2] = {")
        for j in range(32):
            cs = chunks(G(8 * j - 150), 2)
            print("    {" + ", ".join(lit(c, 53) for c in cs) + "},")
        print("};")
        print("//   row i (i = (double biased exponent >> 4) - 62):")
        print("//   (2^(16(i+62)-1075) * 2/pi) mod 4 = g0 + g1 + g2 + g3")
        print("static const double SIN_PH_F64[66][4] = {")
        for i in range(66):
            cs = chunks(G(16 * (i + 62) - 1075), 4)
            ls = [lit(c, 53) for c in cs]
            print("    {" + ", ".join(ls[:2]) + ",\n     " + ", ".join(ls[2:]) + "},")
        print("};")


BLOCKS = {
    "exp_f32": lambda: expm1_block("exp_f32", 6, 24),
    "exp_f64": lambda: expm1_block("exp_f64", 12, 53),
    "exp_lite": lambda: exp_block("exp_lite", 7, 53),
    "exp_mid": lambda: expm1_block("exp_mid", 10, 53),
    "log_f32": lambda: log_block("log_f32", 4, 24),
    "log_f64": lambda: log_block("log_f64", 8, 53),
    "tanh_f64": lambda: tanh_block("tanh_f64", "0.3", 7, 53),
    "erfcx_f32": lambda: erfcx_block("erfcx_f32", 0, "10.5", 10, 53, "0.34375"),
    "erf_f64": lambda: erf_block("erf_f64", "0.47", 7, 53),
    "erfcx_f64": lambda: erfcx_block("erfcx_f64", "0.47", "27.5", 21, 53),
    "sin_lite": lambda: sin_block("sin_lite", 3, 53),
    "cos_lite": lambda: cos_block("cos_lite", 3, 53),
    "gauss_f32": lambda: gauss_block("gauss_f32", 5, 24),
    "ncdf_f32": lambda: ncdf_block("ncdf_f32", 11, 24),
    "sin_f32": lambda: sincos_f32_block("sin_f32", "sin", 2),
    "cos_f32": lambda: sincos_f32_block("cos_f32", "cos", 2),
    "sin_f64": lambda: sin_block("sin_f64", 6, 53),
    "cos_f64": lambda: cos_block("cos_f64", 6, 53),
    "constants": constants,
    "sin_ph": ph_tables,
}
#: literals of kernels/common.cuh's float pair formulas (and of their Numba port): printed when
#: named, never written into vmath.h
PAIR_BLOCKS = {
    "exp_pair": lambda: exp_pair_block("exp_pair", 9, 2),
    "gelu_mills": lambda: gelu_mills_block("gelu_mills", 10, 4),
}

#: vmath.h blocks that kernels/common.cuh takes for the GPU's float gelu' (the same fits, printed
#: as __constant__ arrays: DFMA reads them from the constant bank, where a double literal costs
#: two moves); `--header kernels/common.cuh gpu` rewrites them there
GPU_BLOCKS = ("erfcx_f32", "exp_lite")


def gpu_block(name):
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        BLOCKS[name]()
    print(buf.getvalue().replace("static constexpr double", "__constant__ double"), end="")


BEGIN = "// ---- BEGIN GENERATED (kernels/cpu/fit_vmath.py --header vmath.h all) ----"
BEGIN_GPU = "// ---- BEGIN GENERATED (kernels/cpu/fit_vmath.py --header common.cuh gpu) ----"
END = "// ---- END GENERATED ----"


def main(argv):
    header = None
    if argv[:1] == ["--header"]:
        header, argv = argv[1], argv[2:]
    if not argv or argv == ["--list"]:
        print("blocks:", " ".join(BLOCKS), "| printed only:", " ".join(PAIR_BLOCKS), "| gpu:", " ".join(GPU_BLOCKS))
        return
    begin, make = BEGIN, lambda a: BLOCKS[a]()
    if argv == ["gpu"]:
        argv, begin, make = list(GPU_BLOCKS), BEGIN_GPU, gpu_block
    if argv == ["all"]:
        argv = list(BLOCKS)
    if header is None:
        for a in argv:
            (PAIR_BLOCKS.get(a) or (lambda: make(a)))()
            sys.stdout.flush()
        return
    # --header: regenerate the named blocks inside the generated region of the header.
    import contextlib
    import io
    import re

    text = open(header).read()
    i = text.index(begin)
    j = text.index(END, i)
    region = text[i + len(begin) : j]
    for a in argv:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            make(a)
        new = buf.getvalue()
        pat = re.compile(r"// \[" + re.escape(a) + r"\] .*?(?=^// \[|\Z)", re.S | re.M)
        if pat.search(region):
            region = pat.sub(lambda m: new, region, count=1)
        else:
            region = region.rstrip("\n") + "\n" + new
        print(f"updated [{a}]", file=sys.stderr)
    open(header, "w").write(text[: i + len(begin)] + "\n" + region.strip("\n") + "\n" + text[j:])


if __name__ == "__main__":
    main(sys.argv[1:])
