"""The catalogue: one frozen record per activation.  Data only.

Defaults follow ``keras.activations`` where Keras has the function and torch
otherwise; every default that differs between Keras, torch and JAX is stated
in the record's ``defaults_note`` (shown by ``describe`` and in docstrings).
Formulas and kink conventions: ``describe(name)`` and the README.
"""
from __future__ import annotations

from types import MappingProxyType

from .registry import REQUIRED, Activation, Kind, Param, Registry, Rows

E, R, G = Kind.ELEMENTWISE, Kind.ROWWISE, Kind.GATED

# SELU constants to full precision (Klambauer et al. 2017; same digits as
# torch SELU_ALPHA/SELU_SCALE and the Keras numpy backend).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
# tanh-GELU constants: sqrt(2/pi) and the cubic coefficient (Hendrycks & Gimpel 2016).
GELU_K0 = 0.7978845608028654
GELU_K1 = 0.044715
# x - tanh(x) = x^3 N(x^2) / D(x^2) for |x| < TANH_SHRINK_RATIONAL_END, where the subtraction
# would cancel: the 9-level convergent of Lambert's continued fraction x^3 / (x^2 + 3 + x^2 / (5 +
# x^2 / (7 + ...))) (positive coefficients, highest power first; relative error < 5e-19 there).
# kernels/functors.cuh uses the same in double and the 5-level one in float.
TANH_SHRINK_RATIONAL_END = 1.05
TANH_SHRINK_N = (1.0, 1430.0, 289575.0, 16081065.0, 218243025.0)
TANH_SHRINK_D = (1.0, 1485.0, 315315.0, 18918900.0, 310134825.0, 654729075.0)
# Taylor coefficients of x - tanh(x) = x^3 * sum c_k x^(2k), k = 0..8 (truncation error < 1e-16
# for |x| < 0.2).
TANH_SHRINK_SERIES = (
    1.0 / 3.0,
    -2.0 / 15.0,
    17.0 / 315.0,
    -62.0 / 2835.0,
    1382.0 / 155925.0,
    -21844.0 / 6081075.0,
    929569.0 / 638512875.0,
    -6404582.0 / 10854718875.0,
    443861162.0 / 1856156927625.0,
)

_GELU_APPROX = Param(
    "approximate",
    "none",
    type="choice",
    choices=(("none", "none"), ("tanh", "tanh"), (False, "none"), (True, "tanh")),
    doc="'none' (exact, erf) or 'tanh' (tanh approximation); False/True accepted as in Keras/JAX",
)


# The gated family's common parameters.  Kernel floats: p0 = limit, p1 = offset, p2 = the unit's
# own (alpha or approximate); the layout is read by the host (how the loops index x).
_LIMIT = Param(
    "limit", None, type="optional_float", low=0.0,
    doc="clamp (>= 0): the gate half to at most limit, the linear half to [-limit, limit]; None: no clamp",
)
_OFFSET = Param("offset", 0.0, doc="added to the linear half after its clamp (GPT-OSS: 1)")
_LAYOUT = Param(
    "layout", "concat", type="choice", kernel=False,
    choices=(("concat", "concat"), ("interleaved", "interleaved")),
    doc="'concat': x = a | b, the halves one after the other along axis; "
    "'interleaved': a = x[0::2], b = x[1::2] along axis",
)


def _alpha(doc: str) -> Param:
    return Param("alpha", 1.0, doc=doc)


def _clamped(gate: str, linear: str) -> str:
    return f"{gate} -> min({gate}, limit) and {linear} -> clip({linear}, -limit, limit) + offset first"
_CLAMP_GRAD = (
    "through the clamps: 0 where one cuts (gate > limit, |linear| > limit), the derivative where the "
    "input lies inside, bounds included (torch.clamp's convention)"
)
_GATED_DEFAULTS = (
    "limit=None, offset=0, alpha=1, layout='concat' give the unclamped unit, bit for bit as without them."
)
_GATED_NOTES = (
    "limit and offset clamp the halves as GPT-OSS's SwiGLU does (models trained with the clamp "
    "give garbage without it). NaN in either half gives NaN."
)

#: GPT-OSS's SwiGLU: apply("swiglu", x, **GPT_OSS_SWIGLU) = g * sigmoid(1.702 g) * (clip(u, -7, 7) + 1),
#: g = min(x[..., 0::2], 7), u = x[..., 1::2] (gpt-oss, OpenAI 2025).
GPT_OSS_SWIGLU = MappingProxyType({"alpha": 1.702, "limit": 7.0, "offset": 1.0, "layout": "interleaved"})


# softmax, log_softmax and softmin: a temperature (kernel argument; the float32 range, since
# 16-bit and float32 rows compute in float32) and the "+1" (quiet) form with an implicit 0 logit.
_TEMPERED = (
    Param("temperature", 1.0, low=0.0, low_open=True, high=3.4028234663852886e38, nonzero=True,
          doc="T > 0: the row is x / T (softmin: -x / T), formed shifted, (x - max) / T; T < 1 sharpens, "
          "T > 1 flattens"),
    Param("quiet", False, type="bool",
          doc="add an implicit logit 0 to every row: exp(z_i) / (1 + sum_j exp(z_j)); rows sum to less than 1"),
)


def _slope(default: float, doc: str, aliases: tuple[str, ...] = ()) -> Param:
    return Param("negative_slope", default, doc=doc, aliases=aliases)


RECORDS: tuple[Activation, ...] = (
    # ------------------------------------------------------------ rectifiers
    Activation(
        "relu", E, "Rectified linear unit with Keras 3's slope, cap and threshold.",
        formula="x > threshold: x (clipped to [0, max_value] when max_value is given); "
        "x <= threshold: negative_slope * (x - threshold)",
        derivative="x > threshold: 1 (0 outside (0, max_value) when max_value is given); x <= threshold: negative_slope",
        output_range="[0, inf) by default",
        params=(
            _slope(0.0, "slope below the threshold"),
            Param("max_value", None, type="optional_float", low=0.0, doc="saturation cap (>= 0); None means no cap"),
            Param("threshold", 0.0, doc="values at or below it are 'off' (strict x > threshold passes)"),
        ),
        defaults_note="Keras 3 semantics: strict '>' for the threshold and +0.0 below it "
        "(relu([-5,-8,0,3,9], threshold=7) = [0,0,0,0,9]); torch/JAX relu have no parameters.",
        notes="relu'(0) = 0 as in torch and JAX. The negative branch is never bounded by max_value.",
    ),
    Activation(
        "relu6", E, "ReLU capped at 6.",
        formula="min(max(x, 0), 6)", derivative="1 on (0, 6), else 0", output_range="[0, 6]",
    ),
    Activation(
        "leaky_relu", E, "Leaky ReLU.",
        formula="x > 0: x; else negative_slope * x", derivative="x > 0: 1; else negative_slope (so slope at 0, as torch)",
        output_range="(-inf, inf)",
        params=(_slope(0.2, "slope for x <= 0", aliases=("alpha",)),),
        defaults_note="negative_slope=0.2 as keras.activations.leaky_relu and tf.nn; torch and JAX use 0.01, "
        "keras.layers.LeakyReLU 0.3. Keras 2 called it alpha (accepted as an alias).",
        notes="Correct for slopes above 1 (Keras's numpy backend uses max(x, a*x), which is not).",
    ),
    Activation(
        "prelu", E, "Parametric ReLU with a learnable slope (scalar or one per last-axis channel).",
        formula="x > 0: x; else weight * x", derivative="dx: x > 0: 1; else weight.  dweight: sum of dy * x where x <= 0",
        output_range="(-inf, inf)",
        params=(Param("weight", 0.25, type="weight", doc="slope: a float or a 1-D array along the last axis"),),
        defaults_note="weight=0.25 as torch.nn.PReLU's init; Keras PReLU initializes alpha to 0. torch "
        "broadcasts the weight over dim 1 (channels); here it runs along the last axis like bias.",
        notes="grad() returns (dx, dweight), dweight with the weight's shape.",
    ),
    Activation(
        "rrelu", E, "Randomized leaky ReLU.",
        formula="x > 0: x; else a * x, a = (lower + upper)/2 in eval mode, a ~ U(lower, upper) per element in training",
        derivative="x > 0: 1; else a (the same a as the forward)",
        output_range="(-inf, inf)",
        params=(
            Param("lower", 1.0 / 8.0, doc="lower bound of the slope"),
            Param("upper", 1.0 / 3.0, doc="upper bound of the slope"),
            Param("training", False, type="bool", doc="draw a random slope per element"),
            Param("seed", 0, type="int", doc="seed of the counter-based slope draw in training mode"),
        ),
        constraints=(("lower", "<=", "upper"),),
        drawn_slope=("lower", "upper", "training"),
        defaults_note="lower=1/8, upper=1/3, training=False as torch.nn.functional.rrelu.",
        notes="Training-mode slopes come from a counter-based hash of (seed, flat index), so the backward "
        "recomputes the same slopes and every backend draws the same ones.",
    ),
    Activation(
        "elu", E, "Exponential linear unit.",
        formula="x > 0: x; else alpha * expm1(x)", derivative="x > 0: 1; else alpha * exp(x) (alpha at 0, as torch)",
        output_range="(-alpha, inf) for alpha > 0",
        params=(Param("alpha", 1.0, doc="scale of the negative branch"),),
        defaults_note="alpha=1.0 everywhere; tf.nn.elu has no alpha.",
        notes="Evaluated with expm1 for accuracy near 0.",
    ),
    Activation(
        "selu", E, "Scaled ELU with the self-normalizing constants.",
        formula="scale * (x > 0: x; else alpha * expm1(x)), alpha=1.6732632423543772, scale=1.0507009873554805",
        derivative="scale * (x > 0: 1; else alpha * exp(x)); scale*alpha at 0 (torch, JAX)",
        output_range="(-scale*alpha, inf)",
        defaults_note="Full-precision constants as torch, JAX and the Keras numpy backend.",
        references=("Klambauer et al., 2017, arXiv:1706.02515",),
    ),
    Activation(
        "celu", E, "Continuously differentiable ELU.",
        formula="x > 0: x; else alpha * expm1(x / alpha)", derivative="x > 0: 1; else exp(x / alpha)",
        output_range="(-alpha, inf) for alpha > 0",
        params=(Param("alpha", 1.0, nonzero=True, doc="nonzero scale"),),
        defaults_note="alpha=1.0 everywhere; alpha=0 raises (as torch; Keras returns NaN).",
        references=("Barron, 2017, arXiv:1704.07483",),
    ),
    # ------------------------------------------------------- smooth gates
    Activation(
        "gelu", E, "Gaussian error linear unit.",
        formula="exact: x * Phi(x) = 0.5 * x * erfc(-x / sqrt(2)); "
        "tanh: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))",
        derivative="exact: Phi(x) + x * phi(x); tanh: 0.5(1+t) + 0.5 x (1-t^2) sqrt(2/pi) (1 + 3*0.044715 x^2)",
        output_range="[-0.17, inf)",
        params=(_GELU_APPROX,),
        defaults_note="exact by default as keras.activations.gelu, torch and tf.nn.gelu; keras.ops.gelu "
        "and jax.nn.gelu default to the tanh approximation.",
        notes="erfc form keeps the far-negative tail accurate (torch's 1+erf form returns -0 below -6 in "
        "float32). gelu(-inf) = 0, gelu(+inf) = inf.",
        references=("Hendrycks & Gimpel, 2016, arXiv:1606.08415",),
    ),
    Activation(
        "sigmoid", E, "Logistic sigmoid.",
        formula="1 / (1 + exp(-x))", derivative="sigmoid(x) sigmoid(-x) = e / (1 + e)^2, e = exp(-|x|)", output_range="[0, 1]",
    ),
    Activation(
        "hard_sigmoid", E, "Piecewise-linear sigmoid.",
        formula="clip((x + offset/slope) / (1/slope), 0, 1); the defaults give relu6(x + 3) / 6 exactly",
        derivative="slope where -offset/slope < x < (1 - offset)/slope, else 0",
        output_range="[0, 1]", aliases=("hardsigmoid",),
        params=(
            Param("slope", 1.0 / 6.0, low=0.0, low_open=True, doc="slope of the linear part"),
            Param("offset", 0.5, doc="value at x = 0"),
        ),
        defaults_note="slope=1/6, offset=0.5 (relu6(x+3)/6) as Keras 3, torch and JAX; Keras 2 / tf.keras "
        "used slope=0.2 (pass slope=0.2 for it).",
    ),
    Activation(
        "log_sigmoid", E, "Logarithm of the sigmoid.",
        formula="min(x, 0) - log1p(exp(-|x|))", derivative="sigmoid(-x) = 1 - sigmoid(x)",
        output_range="(-inf, 0]", aliases=("logsigmoid",),
    ),
    Activation(
        "softplus", E, "Smooth ReLU.",
        formula="log1p(exp(beta * x)) / beta, or x when beta * x > threshold",
        derivative="sigmoid(beta * x), or 1 when beta * x > threshold",
        output_range="(0, inf)",
        params=(
            Param("beta", 1.0, low=0.0, low_open=True, doc="sharpness"),
            Param("threshold", None, type="optional_float", doc="switch to the identity when beta*x exceeds it; None: never"),
        ),
        defaults_note="Keras and JAX have no parameters and compute the exact function (threshold=None here); "
        "torch has beta=1, threshold=20 (pass threshold=20 for torch's results).",
        notes="Computed as max(bx, 0) + log1p(exp(-|bx|)), exact in every dtype.",
    ),
    Activation(
        "softsign", E, "x / (1 + |x|).",
        formula="x / (1 + |x|)", derivative="1 / (1 + |x|)^2", output_range="[-1, 1]",
        notes="softsign(+-inf) = +-1 (every peer returns NaN).",
    ),
    Activation(
        "silu", E, "Sigmoid-weighted linear unit (swish).",
        formula="x * sigmoid(x)", derivative="s * (1 + x * (1 - s)), s = sigmoid(x)",
        output_range="[-0.28, inf)", aliases=("swish",),
        notes="silu(-inf) = 0 (peers return NaN).",
        references=("Ramachandran et al., 2017, arXiv:1710.05941",),
    ),
    Activation(
        "hard_silu", E, "Hard swish: x * relu6(x + 3) / 6.",
        formula="x * relu6(x + 3) / 6", derivative="x < -3: 0; x > 3: 1; else (2x + 3) / 6; 0 at -3 and 1 at 3 (torch >= 2.7)",
        output_range="[-0.375, inf)", aliases=("hard_swish", "hardswish"),
        references=("Howard et al., 2019, arXiv:1905.02244",),
    ),
    Activation(
        "mish", E, "x * tanh(softplus(x)).",
        formula="x * tanh(softplus(x))", derivative="tanh(sp) + x * sigmoid(x) * (1 - tanh(sp)^2)",
        output_range="[-0.31, inf)", notes="mish(-inf) = 0.",
        references=("Misra, 2019, arXiv:1908.08681",),
    ),
    Activation(
        "tanh", E, "Hyperbolic tangent.", formula="tanh(x)", derivative="sech^2 x = 4e / (1 + e)^2, e = exp(-2|x|)", output_range="[-1, 1]",
    ),
    Activation(
        "hard_tanh", E, "Clip to [min_val, max_val].",
        formula="clip(x, min_val, max_val)", derivative="1 on (min_val, max_val), else 0 (torch's open interval)",
        output_range="[min_val, max_val]", aliases=("hardtanh",),
        params=(
            Param("min_val", -1.0, doc="lower bound"),
            Param("max_val", 1.0, doc="upper bound"),
        ),
        constraints=(("min_val", "<=", "max_val"),),
        defaults_note="Keras and JAX fix the bounds at -1, 1; only torch has min_val/max_val.",
    ),
    Activation(
        "tanh_shrink", E, "x - tanh(x).", formula="x - tanh(x)", derivative="tanh(x)^2",
        output_range="(-inf, inf)", aliases=("tanhshrink",),
    ),
    Activation(
        "soft_shrink", E, "Soft thresholding.",
        formula="x > t: x - t; x < -t: x + t; else 0", derivative="1 where |x| > t, else 0",
        output_range="(-inf, inf)", aliases=("softshrink",),
        params=(Param("threshold", 0.5, aliases=("lambd",), low=0.0, doc="half-width t of the dead zone"),),
        defaults_note="Keras names it threshold, torch lambd (both accepted); 0.5 in both. "
        "NaN propagates (Keras maps it to 0).",
    ),
    Activation(
        "hard_shrink", E, "Hard thresholding.",
        formula="x if |x| > t else 0", derivative="1 where |x| > t, else 0",
        output_range="(-inf, inf)", aliases=("hardshrink",),
        params=(Param("threshold", 0.5, aliases=("lambd",), low=0.0, doc="half-width t of the dead zone"),),
        defaults_note="Keras names it threshold, torch lambd (both accepted); 0.5 in both. NaN propagates.",
    ),
    Activation(
        "threshold", E, "Replace values at or below a threshold.",
        formula="x > threshold: x; else value", derivative="1 where x > threshold, else 0",
        output_range="(-inf, inf)",
        params=(
            Param("threshold", REQUIRED, doc="cut-off (strict x > threshold keeps x)"),
            Param("value", REQUIRED, aliases=("default_value",), doc="replacement"),
        ),
        defaults_note="Both required, as Keras (threshold, default_value) and torch (threshold, value). "
        "NaN propagates (torch); Keras maps NaN to default_value.",
    ),
    Activation(
        "sparse_plus", E, "Piecewise-quadratic softplus.",
        formula="x <= -1: 0; -1 < x < 1: (x + 1)^2 / 4; x >= 1: x", derivative="0 / (x + 1)/2 / 1",
        output_range="[0, inf)",
    ),
    Activation(
        "sparse_sigmoid", E, "Piecewise-linear sigmoid of sparse_plus.",
        formula="x <= -1: 0; -1 < x < 1: (x + 1) / 2; x >= 1: 1", derivative="1/2 on (-1, 1), else 0",
        output_range="[0, 1]",
    ),
    Activation(
        "squareplus", E, "Algebraic softplus.",
        formula="(x + sqrt(x^2 + b)) / 2", derivative="(1 + x / sqrt(x^2 + b)) / 2",
        output_range="[0, inf)",
        params=(Param("b", 4.0, low=0.0, doc="curvature near 0"),),
        defaults_note="b=4 in Keras and JAX.",
        notes="Computed with hypot and, for x < 0, as b / (2(sqrt(x^2+b) - x)): no overflow, no cancellation; "
        "squareplus(-inf) = 0.",
        references=("Barron, 2021, arXiv:2112.11687",),
    ),
    Activation(
        "exponential", E, "exp(x).", formula="exp(x)", derivative="exp(x) = y", output_range="[0, inf)", grad_from="y",
    ),
    Activation(
        "linear", E, "Identity.", formula="x", derivative="1", output_range="(-inf, inf)", aliases=("identity",),
    ),
    Activation(
        "log1mexp", E, "log(1 - exp(-x)) for x >= 0.",
        formula="x < ln 2: log(-expm1(-x)); else log1p(-exp(-x))", derivative="1 / expm1(x)",
        output_range="(-inf, 0]", notes="NaN for x < 0, -inf at 0 (as JAX).",
        references=("Maechler, 2012, 'Accurately computing log(1 - exp(-|a|))'",),
    ),
    Activation(
        "lisht", E, "x * tanh(x).", formula="x * tanh(x)", derivative="tanh(x) + x * (1 - tanh(x)^2)",
        output_range="[0, inf)", references=("Roy et al., 2019, arXiv:1901.05894",),
    ),
    Activation(
        "snake", E, "Periodic activation x + sin^2(f x) / f.",
        formula="x + sin(f x)^2 / f", derivative="1 + sin(2 f x)", output_range="(-inf, inf)",
        params=(Param("frequency", 1.0, nonzero=True, doc="f, nonzero"),),
        defaults_note="frequency=1 as tensorflow_addons.activations.snake.",
        references=("Ziyin et al., 2020, arXiv:2006.08195",),
    ),
    # ------------------------------------------------------------- row-wise
    Activation(
        "softmax", R, "Normalized exponential along an axis, with a temperature and the quiet (+1) form.",
        formula="z - max z = (x - max x) / temperature; exp(z - max) / sum(exp(z - max)); "
        "quiet: exp(z) / (1 + sum exp(z)), shifted by max(max z, 0)",
        derivative="dx = y * (dy - sum(dy * y)) / temperature (the same with quiet)",
        output_range="[0, 1], rows sum to 1 (quiet: to less than 1)", grad_from="y", params=_TEMPERED,
        rows=Rows("softmax"),
        notes="Max-subtracted. where= masks entries out: masked outputs are 0 and a fully masked row is all 0. "
        "With quiet=True a row of -inf gives 0s instead of NaN (the implicit logit is never -inf).",
        references=("Hinton et al., 2015, arXiv:1503.02531 (temperature)",
                    "Miller, 2023, 'Attention Is Off By One' (quiet softmax)"),
    ),
    Activation(
        "log_softmax", R, "Logarithm of softmax along an axis, with a temperature and the quiet (+1) form.",
        formula="z - max z = (x - max x) / temperature; z - max - log(sum(exp(z - max))); "
        "quiet: z - M - log(exp(-M) + sum exp(z - M)), M = max(max z, 0)",
        derivative="dx = (dy - exp(y) * sum(dy)) / temperature (the same with quiet)",
        output_range="(-inf, 0]", grad_from="y", params=_TEMPERED, rows=Rows("softmax", log=True),
        notes="Masked outputs (where=) are 0, not -inf (JAX gives -inf), so a masked loss never meets -inf * 0.",
    ),
    Activation(
        "softmin", R, "softmax(-x) along an axis, with a temperature and the quiet (+1) form.",
        formula="z - max z = (-x - max(-x)) / temperature; exp(z - max) / sum(exp(z - max)); "
        "quiet: exp(z) / (1 + sum exp(z))",
        derivative="dx = -y * (dy - sum(dy * y)) / temperature",
        output_range="[0, 1], rows sum to 1 (quiet: to less than 1)", grad_from="y", params=_TEMPERED,
        rows=Rows("softmax", negate=True),
        defaults_note="torch.nn.functional.softmin; Keras and JAX have none.",
    ),
    Activation(
        "sparsemax", R, "Euclidean projection onto the probability simplex.",
        formula="max(x - tau, 0), tau = (sum of the k largest - 1) / k, "
        "k = max{k : 1 + k z_(k) > sum_{j<=k} z_(j)}",
        derivative="dx = m * (dy - sum(dy * m) / sum(m)), m = (y > 0)",
        output_range="[0, 1], rows sum to 1", grad_from="y", rows=Rows("sparsemax"),
        notes="Correct for any support size (Keras 3's sparsemax is not: keras-team/keras#23425).",
        references=("Martins & Astudillo, 2016, arXiv:1602.02068",),
    ),
    Activation(
        "entmax15", R, "1.5-entmax: a sparse softmax between softmax and sparsemax.",
        formula="max(x / 2 - tau, 0)^2, tau such that the row sums to 1 (exact: the sorted closed form "
        "tau_k = mean_k - sqrt((1 - k var_k) / k) over the k largest of x / 2, k the largest with tau_k <= "
        "x_(k) / 2; the kernels find the same tau by Newton steps from below and that closed form)",
        derivative="dx = g * (dy - sum(g * dy) / sum(g)), g = sqrt(y)",
        output_range="[0, 1], rows sum to 1", grad_from="y", aliases=("entmax_15", "entmax_1_5"),
        rows=Rows("entmax15"),
        notes="where= masks entries out (0, dx 0); a fully masked row is all 0 with dx 0 (the entmax "
        "package fails there). A NaN or +inf in the row, or a row of -inf, gives a NaN row as sparsemax.",
        references=("Peters, Niculae & Martins, 2019, arXiv:1905.05702",),
    ),
    Activation(
        "entmax", R, "alpha-entmax: the sparse softmax family between softmax (alpha -> 1) and sparsemax "
        "(alpha = 2), alpha a scalar or one per row (learnable).",
        formula="max(z_i - tau, 0)^(1 / (alpha - 1)), z = (alpha - 1) x, tau such that the row sums to 1; "
        "tau by bisection on [max z - 1, max z - n^(1 - alpha)] (60 steps in float64 on the CPU; 30 in float32 "
        "on the GPU for 16- and 32-bit x), then the row divided by its sum",
        derivative="dx = g * (dy - sum(g * dy) / sum(g)), g = y^(2 - alpha) on the support (0 off it); "
        "dalpha = sum(dy * (y - q)) / (alpha - 1)^2 - sum(dy * (y log y - q S)) / (alpha - 1), "
        "q = g / sum(g), S = sum(y log y), per row, summed to alpha's shape",
        output_range="[0, 1], rows sum to 1", grad_from="y",
        aliases=("alpha_entmax", "entmax_bisect"), rows=Rows("entmax"),
        params=(
            Param("alpha", 1.5, type="row", low=1.0, low_open=True,
                  doc="alpha > 1 (1.5: entmax15, 2: sparsemax); a float, or an array broadcastable to the row "
                  "shape (x's shape with the axis, or each axis of a tuple, kept as 1): one alpha per row"),
        ),
        defaults_note="alpha=1.5 as entmax.entmax_bisect; alpha = 1 (softmax's limit) is refused: call softmax.",
        notes="grad() returns (dx, dalpha) when alpha is an array (dalpha with alpha's shape and dtype), dx "
        "alone for a float alpha. where= masks entries out (0, dx 0); a fully masked row is all 0 with dx 0 "
        "and dalpha 0 (the entmax package gives NaN there). A NaN or +inf in the row, or a row of -inf, gives "
        "a NaN row as sparsemax. Accuracy degrades as alpha nears 1 (the exponent 1/(alpha - 1) grows): "
        "docs/accuracy.md.",
        references=("Peters, Niculae & Martins, 2019, arXiv:1905.05702",
                    "Correia, Niculae & Martins, 2019, arXiv:1909.00015 (learnable alpha, its gradient)"),
    ),
    # ---------------------------------------------------------------- gated
    Activation(
        "glu", G, "Gated linear unit: the first half gated by the sigmoid of the second.",
        formula="a * sigmoid(alpha * b), x = a | b along axis; " + _clamped("b", "a"),
        derivative="da = dy * s; db = dy * alpha * a * s * (1 - s), s = sigmoid(alpha * b); " + _CLAMP_GRAD,
        output_range="(-inf, inf)",
        params=(_LIMIT, _OFFSET, _alpha("slope of the gate's sigmoid"), _LAYOUT), gate=1,
        defaults_note=_GATED_DEFAULTS,
        notes="The gate is the second half b (odd elements when interleaved); " + _GATED_NOTES,
        references=("Dauphin et al., 2016, arXiv:1612.08083",),
    ),
    Activation(
        "swiglu", G, "SiLU-gated linear unit.",
        formula="a * sigmoid(alpha * a) * b (silu(a) * b at alpha = 1), x = a | b along axis; " + _clamped("a", "b"),
        derivative="da = dy * b * silu'(alpha * a); db = dy * a * sigmoid(alpha * a); " + _CLAMP_GRAD,
        output_range="(-inf, inf)",
        params=(_LIMIT, _OFFSET, _alpha("slope of the gate's sigmoid (GPT-OSS: 1.702)"), _LAYOUT),
        defaults_note=_GATED_DEFAULTS + " GPT-OSS's unit: activations.GPT_OSS_SWIGLU = "
        "dict(alpha=1.702, limit=7.0, offset=1.0, layout='interleaved').",
        notes="The gate is the first half a (even elements when interleaved); " + _GATED_NOTES,
        references=("Shazeer, 2020, arXiv:2002.05202", "OpenAI, 2025, gpt-oss reference implementation (gpt_oss/torch/model.py, swiglu)"),
    ),
    Activation(
        "geglu", G, "GELU-gated linear unit.",
        formula="gelu(a) * b, x = a | b along axis; " + _clamped("a", "b"),
        derivative="da = dy * b * gelu'(a); db = dy * gelu(a); " + _CLAMP_GRAD,
        output_range="(-inf, inf)", params=(_LIMIT, _OFFSET, _GELU_APPROX, _LAYOUT),
        defaults_note="approximate='none' (exact GELU) like our gelu; many fused GeGLU kernels use 'tanh'. "
        + _GATED_DEFAULTS,
        notes="The gate is the first half a (even elements when interleaved); " + _GATED_NOTES,
        references=("Shazeer, 2020, arXiv:2002.05202",),
    ),
    Activation(
        "reglu", G, "ReLU-gated linear unit.",
        formula="relu(a) * b, x = a | b along axis; " + _clamped("a", "b"),
        derivative="da = dy * b * 1[a > 0]; db = dy * relu(a); " + _CLAMP_GRAD,
        output_range="(-inf, inf)", params=(_LIMIT, _OFFSET, _LAYOUT),
        defaults_note=_GATED_DEFAULTS,
        notes="The gate is the first half a (even elements when interleaved); " + _GATED_NOTES,
        references=("Shazeer, 2020, arXiv:2002.05202",),
    ),
)

REGISTRY = Registry(RECORDS)
