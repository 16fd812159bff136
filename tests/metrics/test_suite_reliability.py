"""The suite's reliability part (``metrics.suite_reliability``): MetaQuantus's input test as MetaQuantus runs it
(clean explanations, clean masks), the stored verdict recomputable from the stored details, and metrics that are
not assessed never counting as reliable."""

from __future__ import annotations

import math

import pytest
import torch

from metrics.composites import object_masks
from metrics.suite_reliability import (
    ITERATIONS,
    NOT_ASSESSED,
    PERTURBATIONS,
    reliability_methods,
    reliability_metrics,
    reliability_scores,
    stored_verdict,
)
from tests.metrics.test_reliability import _tiny_cnn, gradient, saliency


@pytest.fixture(scope="module")
def scored(images):
    x, y = images  # 8 of them: the model test explains them 20 times
    return reliability_scores(
        _tiny_cnn().eval(),
        x[:8],
        y[:8],
        metrics=("sparseness", "relevance_mass_ratio"),
        explain_fns={"gradient": gradient, "saliency": saliency},
        masks=object_masks,
        seed=0,
        batch_size=64,
    )


def test_input_test_scores_the_clean_explanations_on_the_clean_masks(scored):
    # MetaQuantus 0.0.5's input test explains x, not x_hat, and keeps s_batch: a metric of the attributions and the
    # masks alone then cannot move there, whatever the noise. Every difference is 0: IAC_NR = 1, IAC_AR = 0,
    # IEC_NR = 1, IEC_AR = 0 in every iteration (when >= 2 images count), so the input test's MC is 0.5 with no
    # spread. (Explaining x_hat, or masking x_hat, as before, moved both.)
    for name in ("sparseness", "relevance_mass_ratio"):
        values, details = scored[name]
        counts = details["kept_counts"]["input"]
        assert min(min(row) for row in counts["nr"] + counts["ar"]) >= 2, "the derivation needs >= 2 kept images"
        assert details["by_test"]["input"] == {"mc": 0.5, "mc_std": 0.0}, name
        assert details["settings"]["input_explanations"] == "original"
        assert len(values) == 2 * ITERATIONS


def test_stored_verdict_recomputes_the_workers(scored):
    for name, (_, details) in scored.items():
        v = stored_verdict(name, details)
        assert v.status == details["status"] and v.reliable == details["reliable"]
        assert v.thresholds == (
            details["thresholds"]["noise_resilience"],
            details["thresholds"]["adversary_reactivity"],
        )
        assert (v.noise_resilience, v.adversary_reactivity) == (
            details["noise_resilience"],
            details["adversary_reactivity"],
        )
        counts = details["kept_counts"]
        assert set(counts) == {"model", "input"}
        assert [len(counts["model"]["nr"]), len(counts["model"]["nr"][0])] == [ITERATIONS, PERTURBATIONS]
        # a worker's verdict is not trusted: forging it changes nothing recomputed
        forged = {**details, "reliable": True, "status": "reliable", "thresholds": {}}
        assert stored_verdict(name, forged) == v
    # sparseness cannot react in the input test and hardly in the model test on this random CNN: not reliable
    assert scored["sparseness"][1]["status"] == "not reliable"
    assert "noise metric" in scored["sparseness"][1]["reason"]


def test_not_assessed_is_never_reliable(scored):
    for metric, reason in NOT_ASSESSED.items():
        v = stored_verdict(metric, None)
        assert (v.status, v.reliable, v.reason) == ("not assessed", False, reason)
        assert metric not in reliability_metrics((metric, "abpc"))
    assert stored_verdict("abpc", None).status == "not assessed"
    old = {k: v for k, v in scored["sparseness"][1].items() if k != "kept_counts"}  # stored under the 0.5 rule
    v = stored_verdict("sparseness", old)
    assert (v.status, v.reliable) == ("not assessed", False) and "before the noise threshold" in v.reason
    assert v.noise_resilience == old["noise_resilience"] and v.adversary_reactivity == old["adversary_reactivity"]
    nan = {**scored["sparseness"][1], "iac_ar": None}
    assert stored_verdict("abpc", nan).status == "not assessed" and math.isnan(stored_verdict("abpc", nan).p_values[0])
    with pytest.raises(ValueError, match="lack criteria"):
        stored_verdict("abpc", {"kept_counts": {}})
    with pytest.raises(ValueError, match="lack kept_counts, methods or settings"):
        stored_verdict("abpc", {**scored["sparseness"][1], "kept_counts": {"model": {"nr": [[1]]}}})


def test_reliability_uses_the_runs_methods_without_controls():
    methods = ("expected_gradients", "integrated_gradients", "control_random", "control_input")
    assert reliability_methods(methods) == ("expected_gradients", "integrated_gradients")
    assert reliability_methods(("saliency",)) == ("saliency",)


def test_a_suite_without_methods_cannot_score_reliability(images):
    from metrics.suite import SuiteConfig, run_suite

    x, y = images
    config = SuiteConfig(methods=(), metrics=("sparseness",), controls=(), n_explain=2, reliability=True)
    with pytest.raises(ValueError, match="reliability is measured with the suite's own attribution methods"):
        run_suite(
            _tiny_cnn().eval(),
            x,
            y,
            y,
            config=config,
            num_classes=10,
            has_object_masks=True,
            background=None,
            device=torch.device("cpu"),
            progress=False,
        )
