"""The catalogue and registry: records, names, parameters, docs."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

import activations
import reference as R
from activations import catalogue
from activations.registry import REQUIRED, Activation, Kind, Param, Registry

REGISTRY = activations.REGISTRY
RECORDS = list(REGISTRY)
NAMES = [r.name for r in RECORDS]
SEMANTICS = Path(__file__).resolve().parents[1] / "docs" / "semantics.md"

#: names every user of Keras 3 / torch / JAX may type
PEER_NAMES = (
    "relu leaky_relu relu6 softmax celu elu selu softplus softsign squareplus soft_shrink sparse_plus silu gelu "
    "glu tanh tanh_shrink threshold sigmoid sparse_sigmoid exponential hard_sigmoid hard_silu hard_tanh hard_shrink "
    "linear mish log_softmax log_sigmoid sparsemax swish hard_swish hardswish hardsigmoid logsigmoid softmin hardtanh "
    "tanhshrink softshrink hardshrink identity prelu rrelu log1mexp lisht snake swiglu geglu reglu"
).split()


def test_counts_and_kinds():
    assert len(REGISTRY) == len(NAMES) == 41
    assert len(activations.names("elementwise")) == 31
    assert activations.names("rowwise") == ["softmax", "log_softmax", "softmin", "sparsemax", "entmax15", "entmax"]
    assert activations.names("gated") == ["glu", "swiglu", "geglu", "reglu"]
    assert activations.names(Kind.GATED) == activations.names("gated")
    assert sorted(activations.names()) == sorted(NAMES)
    with pytest.raises(ValueError):
        activations.names("pointwise")


def test_names_and_aliases_are_unique_snake_case():
    spellings = REGISTRY.all_spellings()
    assert len(spellings) == len(set(spellings))
    for s in spellings:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", s), f"{s!r} is not snake_case"
    for rec in RECORDS:
        for alias in rec.aliases:
            assert REGISTRY.get(alias) is rec
            assert alias not in NAMES, f"alias {alias!r} of {rec.name} is also a canonical name"
    assert set(activations.names(aliases=True)) == set(spellings)
    assert "swish" in activations.names("elementwise", aliases=True)
    assert "swish" not in activations.names("rowwise", aliases=True)


@pytest.mark.parametrize("name", PEER_NAMES)
def test_peer_names_resolve(name):
    assert name in REGISTRY
    assert REGISTRY.get(name).name in NAMES


def test_lookup_normalizes_case_and_dashes():
    assert REGISTRY.get("Leaky-ReLU").name == "leaky_relu"
    assert REGISTRY.get("  GELU ").name == "gelu"
    assert "LOG-SOFTMAX" in REGISTRY
    assert 3 not in REGISTRY
    rec = REGISTRY.get("gelu")
    assert REGISTRY.get(rec) is rec


def test_unknown_name_message():
    with pytest.raises(ValueError) as e:
        REGISTRY.get("softmaxx")
    msg = str(e.value)
    assert "'softmax'" in msg and "did you mean" in msg and "41" in msg
    with pytest.raises(ValueError) as e:
        REGISTRY.get("x" * 200)
    assert len(str(e.value)) < 200, "a long unknown name is shortened in the message"
    with pytest.raises(TypeError):
        REGISTRY.get(None)


@pytest.mark.parametrize("rec", RECORDS, ids=NAMES)
def test_record_is_complete(rec):
    for field in ("summary", "formula", "derivative", "output_range"):
        assert getattr(rec, field).strip(), f"{rec.name}: empty {field}"
    assert isinstance(rec.kind, Kind)
    assert rec.grad_from in ("x", "y")
    for p in rec.params:
        assert p.doc.strip(), f"{rec.name}.{p.name} has no doc"
        assert p.type in ("float", "optional_float", "bool", "int", "choice", "weight", "row")
        if p.type == "choice":
            assert p.default in p.canonical_choices()
    names = [p.name for p in rec.params] + [a for p in rec.params for a in p.aliases]
    assert len(names) == len(set(names))
    for left, op, right in rec.constraints:
        assert op in ("<", "<=") and left in rec.param_names and right in rec.param_names


@pytest.mark.parametrize("rec", RECORDS, ids=NAMES)
def test_defaults_validate(rec):
    required = {p.name for p in rec.params if p.default is REQUIRED}
    if required:
        with pytest.raises(TypeError, match="missing required"):
            rec.bind({})
        assert rec.name == "threshold" and required == {"threshold", "value"}
        return
    bound = rec.bind({})
    for p in rec.params:
        assert p.validate(p.default, rec.name) == bound[p.name]
    assert len(bound.kernel_floats()) == len([p for p in rec.params if p.type not in ("weight", "int") and p.kernel])


def test_grad_from_y_only_where_documented():
    # docs/semantics.md: exponential and the row-wise family work from y (sigmoid and tanh from x,
    # which keeps their tails accurate)
    from_y = {r.name for r in RECORDS if r.grad_from == "y"}
    assert from_y == {"exponential", "softmax", "log_softmax", "softmin", "sparsemax", "entmax15", "entmax"}


DEFAULTS = [
    ("leaky_relu", "negative_slope", 0.2),
    ("prelu", "weight", 0.25),
    ("rrelu", "lower", 1 / 8),
    ("rrelu", "upper", 1 / 3),
    ("rrelu", "training", False),
    ("rrelu", "seed", 0),
    ("elu", "alpha", 1.0),
    ("celu", "alpha", 1.0),
    ("gelu", "approximate", "none"),
    ("geglu", "approximate", "none"),
    ("hard_sigmoid", "slope", 1 / 6),
    ("hard_sigmoid", "offset", 0.5),
    ("softplus", "beta", 1.0),
    ("softplus", "threshold", None),
    ("hard_tanh", "min_val", -1.0),
    ("hard_tanh", "max_val", 1.0),
    ("soft_shrink", "threshold", 0.5),
    ("hard_shrink", "threshold", 0.5),
    ("squareplus", "b", 4.0),
    ("snake", "frequency", 1.0),
    ("relu", "negative_slope", 0.0),
    ("relu", "max_value", None),
    ("relu", "threshold", 0.0),
]


@pytest.mark.parametrize("name,param,value", DEFAULTS, ids=[f"{n}.{p}" for n, p, _ in DEFAULTS])
def test_documented_defaults(name, param, value):
    assert REGISTRY.get(name).bind({} if name != "threshold" else {"threshold": 0, "value": 0})[param] == value


def test_constants_match_the_oracle():
    assert catalogue.SELU_ALPHA == R.SELU_ALPHA == 1.6732632423543772
    assert catalogue.SELU_SCALE == R.SELU_SCALE == 1.0507009873554805
    assert catalogue.GELU_K0 == pytest.approx(math.sqrt(2 / math.pi), rel=1e-16)
    assert catalogue.GELU_K1 == 0.044715


def test_choice_and_alias_binding():
    gelu = REGISTRY.get("gelu")
    assert gelu.bind({"approximate": True})["approximate"] == "tanh"
    assert gelu.bind({"approximate": False})["approximate"] == "none"
    assert gelu.bind({"approximate": "tanh"}).kernel_floats() == (1.0,)
    assert gelu.bind({}).kernel_floats() == (0.0,)
    assert REGISTRY.get("leaky_relu").bind({"alpha": 0.3})["negative_slope"] == 0.3
    assert REGISTRY.get("soft_shrink").bind({"lambd": 0.25})["threshold"] == 0.25
    assert REGISTRY.get("threshold").bind({"threshold": 1, "default_value": 2})["value"] == 2.0


def test_kernel_floats_and_seed():
    relu = REGISTRY.get("relu").bind({})
    assert relu.kernel_floats() == (0.0, math.inf, 0.0)
    assert REGISTRY.get("relu").bind({"max_value": 6, "threshold": 1}).kernel_floats() == (0.0, 6.0, 1.0)
    rr = REGISTRY.get("rrelu").bind({"training": True, "seed": 42})
    assert rr.kernel_floats() == (0.125, 1 / 3, 1.0) and rr.seed() == 42
    assert REGISTRY.get("prelu").bind({}).kernel_floats() == ()
    assert REGISTRY.get("softplus").bind({}).kernel_floats() == (1.0, math.inf)
    assert REGISTRY.get("elu").bind({}).seed() == 0
    # gated: p0 = limit, p1 = offset, p2 = the unit's own; the layout is the host's, not a kernel float
    assert REGISTRY.get("swiglu").bind({}).kernel_floats() == (math.inf, 0.0, 1.0)
    gpt = REGISTRY.get("swiglu").bind(dict(catalogue.GPT_OSS_SWIGLU))
    assert gpt.kernel_floats() == (7.0, 1.0, 1.702) and gpt["layout"] == "interleaved"
    assert REGISTRY.get("geglu").bind({"approximate": "tanh", "limit": 3}).kernel_floats() == (3.0, 0.0, 1.0)
    assert REGISTRY.get("reglu").bind({"layout": "interleaved"}).kernel_floats() == (math.inf, 0.0)


def _semantics_table() -> dict[str, list[str]]:
    rows = {}
    in_table = False
    for line in SEMANTICS.read_text().splitlines():
        if line.startswith("| name | kernel floats"):
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                break
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set(cells[0]) <= {"-"}:
                continue
            text = re.sub(r"\(.*?\)", "", cells[1])  # drop "(+inf = none)" and the like
            params = [p.strip().split()[0] for p in text.split(",")] if text.strip() != "none" else []
            for name in cells[0].split(","):
                rows[name.strip()] = params
    return rows


def test_kernel_float_order_matches_docs():
    table = _semantics_table()
    assert "relu" in table and "all others" in table
    for rec in RECORDS:
        want = table.get(rec.name, [])
        got = [p.name for p in rec.params if p.type not in ("weight", "int") and p.kernel]
        assert got == want, f"{rec.name}: kernel floats {got}, docs/semantics.md says {want}"


@pytest.mark.parametrize("rec", RECORDS, ids=NAMES)
def test_describe(rec):
    text = activations.describe(rec.name)
    assert text == rec.describe()
    assert rec.name in text and rec.formula in text and rec.derivative in text and rec.output_range in text
    for p in rec.params:
        assert p.name in text and p.doc in text
        assert ("required" if p.default is REQUIRED else repr(p.default)) in text
    for alias in rec.aliases:
        assert activations.describe(alias) == text


def test_get_and_module_attributes():
    f = activations.get("swish")
    assert f is activations.get("silu") and f.record.name == "silu"
    assert f.__name__ == "silu" and f.__doc__ == activations.describe("silu")
    assert repr(f) == "<activation silu>"
    assert activations.get(None) is activations.get("linear")
    assert activations.gelu is activations.get("gelu")
    assert activations.hard_swish is activations.get("hard_silu")
    assert callable(activations.softmax) and callable(activations.softmax.grad)
    with pytest.raises(AttributeError):
        activations.not_an_activation
    with pytest.raises(ValueError):
        activations.get("nope")
    listing = dir(activations)
    assert "gelu" in listing and "swish" in listing and "apply" in listing
    assert set(activations.__all__) <= set(listing)


def test_registry_rejects_inconsistent_records():
    a = Activation("a", Kind.ELEMENTWISE, "s", formula="x", derivative="1", output_range="r")
    with pytest.raises(ValueError, match="duplicate"):
        Registry((a, Activation("b", Kind.ELEMENTWISE, "s", formula="x", derivative="1", output_range="r", aliases=("a",))))
    with pytest.raises(ValueError, match="grad_from"):
        Activation("c", Kind.ELEMENTWISE, "s", formula="x", derivative="1", output_range="r", grad_from="z")
    with pytest.raises(ValueError, match="duplicate"):
        Activation("d", Kind.ELEMENTWISE, "s", formula="x", derivative="1", output_range="r",
                   params=(Param("p", 1.0, aliases=("q",)), Param("q", 2.0)))


def test_param_validation_details():
    p = Param("alpha", 1.0, low=0.0, low_open=True)
    assert p.validate(2, "f") == 2.0 and isinstance(p.validate(2, "f"), float)
    with pytest.raises(ValueError, match="> 0"):
        p.validate(0.0, "f")
    q = Param("t", 0.5, low=0.0)
    assert q.validate(0.0, "f") == 0.0
    with pytest.raises(ValueError, match=">= 0"):
        q.validate(-1e-300, "f")
    r = Param("m", None, type="optional_float")
    assert r.validate(None, "f") is None and r.validate(math.inf, "f") == math.inf
    with pytest.raises(ValueError, match="finite"):
        Param("s", 1.0).validate(-math.inf, "f")


def test_param_checks_one_value_and_every_element():
    """The public range checks the interface and the Keras layer use for a per-row parameter."""
    p = Param("alpha", 1.5, type="row", low=1.0, low_open=True)
    p.check_value(1.25, "f(): alpha")
    with pytest.raises(ValueError, match=r"f\(\): alpha must be > 1.0, got 1.0"):
        p.check_value(1.0, "f(): alpha")
    p.check_elements(np.array([[1.5], [2.0], [1.5]]), "f(): alpha")
    with pytest.raises(ValueError, match=r"an element\) must be > 1.0, got 0.5"):
        p.check_elements(np.array([2.0, 0.5, 1.0]), "f(): alpha (an element)")  # the smallest bad one
    with pytest.raises(ValueError, match="must not hold NaN"):
        p.check_elements(np.array([2.0, np.nan]), "f(): alpha")
    with pytest.raises(ValueError, match="finite"):
        p.check_elements(np.array([np.inf]), "f(): alpha")


def test_weighted_records_are_those_with_a_weight_parameter():
    """The backends ask the record, not the name, whether a call has a weight and a dweight."""
    weighted = [n for n in activations.names() if REGISTRY.get(n).weighted]
    assert weighted == ["prelu"]
