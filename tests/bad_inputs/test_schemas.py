"""What a worker may report, checked without starting one: METADATA, each message of each step, the protocol's
limits, and the escaping of stored text (the fast half of the bad-input corpus; test_hostile.py runs the CLI)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harness.attack.registry import parse_attack
from harness.attack.sanity import masking_flags, run_flags, stateful_flags
from harness.core.errors import HarnessError
from harness.pipeline import validate
from harness.pipeline.attack import probe_points
from harness.pipeline.budgets import Budgets, parse_timeout
from harness.pipeline.fresh import gradient_step
from harness.report.escape import html_text, markdown_cell, markdown_text, plot_text, terminal
from harness.store.archive import safe_name
from harness.worker.protocol import MAX_DEPTH, decode, encode
from metrics.suite import SuiteConfig

GOOD = {"name": "fmnist_standard", "dataset": "fashion-mnist", "architecture": "gap-cnn"}

# --- METADATA ---------------------------------------------------------------------------------------------------


def test_the_shipped_metadata_passes_unchanged():
    shipped = {
        **GOOD,
        "threat_model": "Linf",
        "eps": "0.1",
        "weights": "fmnist_standard.pt",
        "authors": "robint-bench reference trainer",
        "clean_acc": 0.909,
        "training": {"method": "standard", "eps": None, "epochs": 8, "optimizer": "Adam, one-cycle lr max 0.002"},
    }
    assert validate.metadata(shipped) == shipped


BAD_METADATA = [
    ({"name": "$\\foo{$"}, "METADATA name"),
    ({"name": "evil\n# Heading | <script>"}, "METADATA name"),
    ({"name": "x" * (1 << 20)}, "METADATA name"),
    ({"name": "../../baseline"}, "METADATA name"),
    ({"name": 7}, "METADATA name"),
    ({"training": {"method": 7}}, "METADATA training method '7'"),
    ({"training": {"method": "pgd at"}}, "METADATA training method"),
    ({"training": {"nested": {"deep": 1}}}, "METADATA training nested must be text"),
    ({"training": "pgd-at"}, "METADATA training must be a dict"),
    ({"architecture": "a\x1b[31mb"}, "METADATA architecture contains control characters"),
    ({"architecture": "x" * 201}, "METADATA architecture is 201 characters long"),
    ({"dataset": ""}, "METADATA dataset must be non-empty text"),
    ({"eps": -1}, "METADATA eps -1 is not a positive number"),
    ({"eps": float("nan")}, "malformed eps"),
    ({"eps": True}, "METADATA eps must be a number"),
    ({"eps": "8/0"}, "malformed eps"),
    ({"clean_acc": 93.0}, "METADATA clean_acc 93.0 is outside [0, 1]"),
    ({"threat_model": "L7"}, "unknown threat model 'L7'"),
    ({"number_forward_passes": 0}, "must be a positive integer"),
    ({"my key": 1}, "METADATA key 'my key' is not allowed"),
    ({"extra": [1, 2]}, "METADATA extra must be text"),
]


@pytest.mark.parametrize(("change", "fragment"), BAD_METADATA, ids=range(len(BAD_METADATA)))
def test_hostile_metadata_is_one_clear_error(change, fragment):
    with pytest.raises(HarnessError) as info:
        validate.metadata({**GOOD, **change})
    assert fragment in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_metadata_must_be_a_dict_and_the_loaded_message_nothing_more():
    with pytest.raises(HarnessError, match="METADATA is a list"):
        validate.metadata([])
    with pytest.raises(HarnessError, match="malformed 'loaded'"):
        validate.loaded({"op": "loaded", "metadata": GOOD, "eps": 1e-6})
    assert validate.loaded({"op": "loaded", "metadata": GOOD}) == GOOD


# --- the contract check -----------------------------------------------------------------------------------------

PROBE = {"logit_scale": 20.0, "zero_gradient_fraction": 0.0, "gradient_scale": 3.0, "nonfinite_gradient_fraction": 0.0}


def test_checked_accepts_known_flags_and_a_probe_only():
    checked = validate.checked({"op": "checked", "flags": ["randomised"], "device": "cuda:0", "probe": PROBE})
    assert (checked.flags, checked.device, checked.probe) == (["randomised"], "cuda:0", PROBE)
    for bad in (
        {"flags": ["looks-robust"]},
        {"device": "cpu; rm -rf /"},
        {"probe": {**PROBE, "logit_scale": math.nan}},
        {"probe": {**PROBE, "zero_gradient_fraction": 2.0}},
        {"probe": {"logit_scale": 1.0}},
    ):
        with pytest.raises(HarnessError, match="the worker returned"):
            validate.checked({"op": "checked", "flags": [], "device": "cpu", "probe": PROBE, **bad})


def test_masking_flags_from_the_probe():
    assert masking_flags(PROBE) == []  # the shipped models: logits ~20, gradients ~10 (contract.gradient_probe)
    scaled = masking_flags({**PROBE, "logit_scale": 1.08e31, "zero_gradient_fraction": 0.9375})
    assert [f["code"] for f in scaled] == ["gradient-masking-suspected"]
    assert "logits reach 1.08e+31" in scaled[0]["message"] and "94% of the probed" in scaled[0]["message"]
    exploding = masking_flags({**PROBE, "gradient_scale": 1e6, "nonfinite_gradient_fraction": 0.5})
    assert "exploding" in exploding[0]["message"] and "non-finite" in exploding[0]["message"]


def test_autoattacks_own_warnings_and_disagreements_become_flags():
    warnings = ['it seems to be a randomized defense! Please use version="rand". See flags_doc.md for details.']
    flags = run_flags({"accuracy_after": {}, "warnings": warnings}, [], {}, 0.9, 100, "apgd-ce")
    assert [f["code"] for f in flags] == ["randomised"] and "AutoAttack's own check" in flags[0]["message"]
    dynamic = run_flags({"warnings": ["it seems to be a dynamic defense! The evaluation ..."]}, [], {}, 0.9, 100, "x")
    assert [f["code"] for f in dynamic] == ["dynamic-defence"]
    chunks = {"0": {"reclassified": {"disagreements": 1}}, "8": {"probe": {"disagreements": 3}}}
    assert "1 adversarial example(s) and 3 random point(s)" in stateful_flags(chunks)[0]["message"]
    assert stateful_flags({"0": {"reclassified": {"disagreements": 0}, "probe": {"disagreements": 0}}}) == []
    parent_made = {"code": "gradient-masking-suspected", "message": "m"}
    assert run_flags({}, [parent_made], {}, 0.9, 100, "standard") == [parent_made]


# --- the attack -------------------------------------------------------------------------------------------------


def _chunk(start=0, end=2, **change):
    message = {
        "op": "chunk",
        "start": start,
        "end": end,
        "clean_pred": np.zeros(end - start, dtype=np.int64),
        "adv_pred": np.ones(end - start, dtype=np.int64),
        "x_adv": np.zeros((end - start, 1, 4, 4), dtype=np.float32),
        "accuracy_after": {"clean": 1.0, "apgd-ce": 0.5},
        "warnings": ["there are 2 points with zero gradient!\x1b[31m"],
    }
    return {**message, **change}


def test_only_requested_chunks_of_the_right_shape_are_accepted():
    schema = validate.AttackSchema([(0, 2), (2, 4)], num_classes=10, shape=(1, 4, 4))
    chunk = schema.chunk(_chunk())
    assert chunk.warnings == ["there are 2 points with zero gradient!\\x1b[31m"]  # stored escaped
    with pytest.raises(HarnessError, match="never requested"):
        schema.chunk(_chunk())  # twice
    with pytest.raises(HarnessError, match="no attack results for the requested examples 2..4"):
        schema.finish()
    bad = [
        {"start": 4, "end": 6},
        {"start": True, "end": 2},
        {"clean_pred": np.zeros(2, dtype=np.float32)},
        {"adv_pred": np.array([0, 10])},
        {"x_adv": np.zeros((2, 1, 4, 5), dtype=np.float32)},
        {"x_adv": np.full((2, 1, 4, 4), np.nan, dtype=np.float32)},
        {"x_adv": np.zeros((2, 1, 4, 4), dtype=np.complex64)},
        {"accuracy_after": {"robust": 0.99}},
        {"accuracy_after": {"clean": 7.0}},
        {"warnings": ["w"] * 33},
        {"extra": 1},
    ]
    for change in bad:
        with pytest.raises(HarnessError, match="the worker returned"):
            validate.AttackSchema([(0, 2), (2, 4)], 10, (1, 4, 4)).chunk(_chunk(**{"start": 2, "end": 4, **change}))


def test_the_attack_log_may_name_only_the_runs_sub_attacks():
    """A run of apgd-ce may not report an accuracy after square (harness.attack.registry says what each attack runs)."""
    attack = parse_attack("apgd-ce")
    schema = validate.AttackSchema([(0, 2)], 10, (1, 4, 4), attack.attacks)
    assert schema.chunk(_chunk()).accuracy_after == {"clean": 1.0, "apgd-ce": 0.5}
    with pytest.raises(HarnessError, match=r"an AutoAttack log for attacks that were not requested \(square\)"):
        validate.AttackSchema([(0, 2)], 10, (1, 4, 4), attack.attacks).chunk(
            _chunk(accuracy_after={"clean": 1.0, "square": 0.5})
        )
    standard = validate.AttackSchema([(0, 2)], 10, (1, 4, 4), parse_attack("standard").attacks)
    assert standard.chunk(_chunk(accuracy_after={"clean": 1.0, "square": 0.5})).accuracy_after["square"] == 0.5


def test_probe_points_lie_inside_the_ball_and_the_unit_box():
    import torch

    x = torch.rand(3, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    for threat, eps in (("Linf", 0.1), ("L2", 0.5)):
        points = torch.as_tensor(probe_points(x, threat_model=threat, eps=eps, seed=0, key=0)).double()
        delta = (points - x.double().repeat_interleave(8, dim=0)).flatten(1)
        norms = delta.abs().amax(1) if threat == "Linf" else delta.norm(dim=1)
        assert points.min() >= 0 and points.max() <= 1 and float(norms.max()) <= eps + 1e-6
        step = gradient_step(
            x.numpy(), points[::8].float().numpy(), np.ones((3, 1, 5, 5), np.int8), threat_model=threat, eps=eps
        )
        delta = (torch.as_tensor(step).double() - x.double()).flatten(1)
        assert float((delta.abs().amax(1) if threat == "Linf" else delta.norm(dim=1)).max()) <= eps + 1e-6
    again = probe_points(x, threat_model="Linf", eps=0.1, seed=0, key=0)
    assert np.array_equal(again, probe_points(x, threat_model="Linf", eps=0.1, seed=0, key=0))


# --- explanations -----------------------------------------------------------------------------------------------

SUITE = SuiteConfig(methods=("saliency",), metrics=("sparseness",), n_explain=4, controls=())


def _explain(**kw):
    return validate.ExplainSchema(SUITE, set(), set(), (1, 4, 4), **kw)


def _attributions(method="saliency", shape=(4, 1, 4, 4)):
    return {"op": "attributions", "method": method, "main": np.zeros(shape, np.float32), "grid": None}


def _score(method="saliency", metric="sparseness", values=(0.5, 0.6), details=None):
    return {"op": "score", "method": method, "metric": metric, "values": list(values), "details": details or {}}


def test_only_requested_scores_with_known_details_are_accepted():
    schema = _explain()
    with pytest.raises(HarnessError, match="before its attributions"):
        _explain().message(_score())
    schema.message(_attributions())
    details = {"family": "forged", "higher_is_better": False, "index": [0, 1], "degenerate": {"zero": 0}}
    stored = schema.message(_score(details=details))
    assert stored["details"]["family"] == "complexity" and stored["details"]["higher_is_better"] is True
    with pytest.raises(HarnessError, match="which was not requested"):
        schema.message(_score())  # twice
    with pytest.raises(HarnessError, match=r"\(expected_gradients, abpc\), which was not requested"):
        schema.message(_score("expected_gradients", "abpc"))
    schema.finish()


def test_reliability_scores_need_no_attributions_and_their_verdict_is_the_parents():
    suite = SuiteConfig(methods=("saliency",), metrics=("sparseness",), n_explain=4, controls=(), reliability=True)
    schema = validate.ExplainSchema(suite, set(), set(), (1, 4, 4))
    criteria = {"iac_nr": 0.9, "iec_nr": 0.7, "iac_ar": 0.2, "iec_ar": 0.4}  # NR 0.8, AR 0.3: not reliable
    forged = {**criteria, "mc": 0.55, "noise_resilience": 1.0, "adversary_reactivity": 1.0, "reliable": True}
    stored = schema.message(_score("reliability", details=forged))["details"]
    assert stored["family"] == "reliability" and stored["reliable"] is False
    assert math.isclose(stored["noise_resilience"], 0.8) and math.isclose(stored["adversary_reactivity"], 0.3)
    with pytest.raises(HarnessError, match="before its attributions"):
        schema.message(_score())  # saliency still needs its own attributions
    incomplete = validate.ExplainSchema(suite, set(), set(), (1, 4, 4))
    with pytest.raises(HarnessError, match="without its criteria"):
        incomplete.message(_score("reliability", details={"mc": 0.5, "iac_nr": 0.5}))
    with pytest.raises(HarnessError, match="a malformed detail 'iac_ar'"):
        incomplete.message(_score("reliability", details={**criteria, "iac_ar": 1.5}))


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        (_attributions("integrated_gradients"), "attributions of 'integrated_gradients', which were not requested"),
        (_attributions(shape=(5, 1, 4, 4)), "of shape (5, 1, 4, 4), expected (4, 1, 4, 4)"),
        (_score(details={"note": "<script>"}), "an unknown detail 'note'"),
        (_score(details={"interval": [0.0, 1.0]}), "an unknown detail 'interval'"),
        (_score(details={"index": [0, 99]}), "a malformed detail 'index'"),
        (_score(values=[math.inf]), "not a finite number"),
        (_score(values=[0.5] * 5), "more than 4 values"),
    ],
    ids=["method", "shape", "free-text", "forged-interval", "index", "inf", "too-many"],
)
def test_forged_explanations_are_refused(message, fragment):
    schema = _explain()
    if message["op"] == "score":
        schema.message(_attributions())
    with pytest.raises(HarnessError) as info:
        schema.message(message)
    assert fragment in str(info.value)


def test_the_longest_legitimate_lines_fit_their_caps():
    x_adv = np.random.default_rng(0).random((250, 1, 28, 28))  # float64, the largest a chunk may be
    chunk = encode(_chunk(0, 250, x_adv=x_adv, clean_pred=np.zeros(250, np.int64), adv_pred=np.zeros(250, np.int64)))
    assert len(chunk) <= validate.max_line_attack(250, (1, 28, 28)) < 2 * len(chunk)
    suite = SuiteConfig(n_explain=100)
    attributions = encode(
        {"op": "attributions", "method": "m", "main": np.zeros((100, 1, 28, 28)), "grid": np.zeros((64, 1, 56, 56))}
    )
    assert len(attributions) <= validate.max_line_explain(suite, (1, 28, 28))


# --- the protocol -----------------------------------------------------------------------------------------------


def test_decode_turns_anything_else_into_one_value_error():
    assert decode(encode({"op": "x", "a": np.arange(3)}))["a"].tolist() == [0, 1, 2]
    deep = '{"op":"loaded","metadata":' + "[" * 200_000 + "]" * 200_000 + "}"
    nested = '{"op":"x","a":' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}"
    pickled = json.dumps({"op": "x", "a": {"__array__": "gASVAAAAAAAAAAB9lC4="}})
    for line in (deep, nested, pickled, "[1]", '{"op": 3}', "\xff\xfe", b"\xff", '{"op":"x","a":{"__array__":7}}'):
        with pytest.raises(ValueError, match="not a protocol message"):
            decode(line)


# --- limits -----------------------------------------------------------------------------------------------------


def test_timeouts_are_finite_by_default_and_documented():
    assert parse_timeout(None) is None and parse_timeout("none") == math.inf and parse_timeout("90") == 90.0
    for bad in ("0", "-5", "nan", "inf5", "soon"):
        with pytest.raises(HarnessError, match="--timeout"):
            parse_timeout(bad)
    from harness.core.config import ResolvedConfig

    resolved = ResolvedConfig("fashion-mnist", "Linf", 0.1, "0.1", 1000, "standard", 0, 250)
    budgets = Budgets.of(600, None, parse_attack(resolved.attack).units, 784)
    chunks = [(i, i + 250) for i in range(0, 1000, 250)]
    total = budgets.total(chunks, SuiteConfig(), None, 10)
    # README: load (stall) + check (10 stalls) + 600 + the fresh worker's load (stall) + per chunk 300 + 15*4*250,
    # classifying 8*250 probes (the attacking worker), 250 step starts and 250 clean images and (8 + 2) x 2 x 250
    # points of the eps-balls (the fresh worker)
    classify = 600 + 300
    per_chunk = 300 + 15 * 4 * 250 + (classify + 0.5 * 2000) + 2 * (classify + 0.5 * 250) + (classify + 0.5 * 5000)
    messages = len(SuiteConfig().methods) + len(SuiteConfig().controls) + len(SuiteConfig().pairs())
    assert total == 600 + 6000 + 600 + 600 + 4 * per_chunk + messages * (600 + 10 * 100)
    assert math.isfinite(total) and budgets.check == 6000 and budgets.load == 600
    unlimited = Budgets.of(600, math.inf, 4, 784)
    assert unlimited.total(chunks, None, None, 10) is None and unlimited.chunk(250) is None


# --- escaping ---------------------------------------------------------------------------------------------------


def test_stored_text_is_escaped_for_every_place_it_is_shown():
    assert terminal("ok \x1b[32m99%\x1b[0m\r\nx\u202e") == "ok \\x1b[32m99%\\x1b[0m\\x0d\\x0ax\\u202e"
    assert len(terminal("x" * 10_000)) == 2000
    assert markdown_text("fmnist_pgd_linf") == "fmnist_pgd_linf"  # honest names are unchanged
    assert markdown_text("a *b* _c_ `d` [e](f) ![g](h) <i> & $j$ ~k~ \\") == (
        "a \\*b\\* \\_c\\_ \\`d\\` \\[e\\](f) \\!\\[g\\](h) &lt;i&gt; &amp; \\$j\\$ \\~k\\~ \\\\"
    )
    assert markdown_cell("a|b\nc") == "a\\|b\\x0ac"
    assert html_text("<b onclick='x'>") == "&lt;b onclick=&#x27;x&#x27;&gt;"
    assert plot_text("$\\foo{$" + "x" * 100) == ("$\\foo{$" + "x" * 100)[:39] + "…"


def test_export_names_are_sanitised():
    assert safe_name("../../baseline-1.json") == "_._.._baseline-1.json"
    assert safe_name(".hidden") == "_hidden" and safe_name("") == "_" and len(safe_name("x" * 500)) == 120
