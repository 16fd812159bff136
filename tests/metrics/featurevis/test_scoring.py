"""Scoring a run's feature visualisations against their no-op (metrics.featurevis.scoring): a zero-step optimisation
scores exactly the no-op's values with a gain of 0; the no-op is computed from the parent's own seeds, whatever the
worker sends; the worker's output is refused where it contradicts those seeds; convergence is reported."""

from __future__ import annotations

import copy

import pytest
import torch

from harness.data import load_examples
from harness.reference import load_reference
from metrics.featurevis import scoring
from metrics.featurevis.config import SEED_KINDS, FeatureVisConfig
from metrics.featurevis.generation import generate, target_logit
from metrics.featurevis.inversion import inversion_loss, invert
from metrics.featurevis.pipeline import visualise
from metrics.featurevis.representation import representation_fn
from metrics.featurevis.scores import psnr, ssim
from metrics.featurevis.seeds import derive_seeds
from metrics.registry import FEATUREVIS_METHOD, FEATUREVIS_NOOP_METHOD

CONFIG = FeatureVisConfig(n_inversion=6, inversion_steps=40, inversion_window=10, per_class=3, generation_steps=5)
COMPARED = ("inversion_ssim", "inversion_psnr", "inversion_distance", "generation_fid", "generation_judge_accuracy")
BOOTSTRAP = 20  # FID replicates: the properties tested here hold for any number (the run uses 200)


@pytest.fixture(scope="module")
def run(robust_model, data_dir):
    """The robust model's visualisations of 8 test images, the parent's seeds, real sets and reference."""
    x, y = load_examples("fashion-mnist", n=8, data_dir=data_dir)
    x_train, y_train = load_examples("fashion-mnist", split="train", n=2000, data_dir=data_dir)
    out = visualise(robust_model, x, y, x_train, y_train, config=CONFIG, num_classes=10, device=torch.device("cpu"))
    seeds = derive_seeds(x, y, x_train, y_train, config=CONFIG, num_classes=10)
    real, labels = load_examples("fashion-mnist", n=200, data_dir=data_dir)
    sets = (real, labels, x_train[:30])
    return out, seeds, sets, scoring.Reference(load_reference("fashion-mnist"))


@pytest.fixture(scope="module")
def honest(run):
    out, seeds, sets, reference = run
    return scoring.score(out, seeds, *sets, reference, seed=0, n_bootstrap=BOOTSTRAP)


def _by_key(scored: scoring.Scored) -> dict[tuple[str, str], object]:
    return {(s.method, s.metric): s for s in scored.scores}


def _zero_step(model, seeds) -> dict:
    """What the worker returns when it optimises for zero steps (the seeds, through invert and generate)."""
    fn, how = representation_fn(model)
    targets = seeds.inversion.targets
    kinds = {}
    for kind in SEED_KINDS:
        start = seeds.inversion.seeds[kind]
        result = invert(fn, targets, start, steps=0)
        loss = inversion_loss(fn, start, targets)
        kinds[kind] = {"images": result.images, "loss_seed": loss, "loss_final": loss, "steps": result.steps}
    kinds["other image"]["seed_index"] = seeds.inversion.other_index
    gen = seeds.generation
    images = generate(model, gen.seeds, gen.classes, steps=0)
    logits = target_logit(model, gen.seeds, gen.classes)
    generation = {
        "classes": gen.classes,
        "images": images,
        "seeds": gen.seeds,
        "logit_seed": logits,
        "logit_final": logits,
        "downsample": gen.downsample,
    }
    return {"inversion": {"how": how, "targets": torch.arange(len(targets)), "kinds": kinds}, "generation": generation}


def test_a_zero_step_optimisation_scores_exactly_the_noop(robust_model, run):
    _, seeds, sets, reference = run
    out = _zero_step(robust_model, seeds)
    scoring.validate(out, seeds, 10)
    scored = _by_key(scoring.score(out, seeds, *sets, reference, seed=0, score_unmoved=True, n_bootstrap=BOOTSTRAP))
    for name in COMPARED:
        mine, noop = scored[FEATUREVIS_METHOD, name], scored[FEATUREVIS_NOOP_METHOD, name]
        assert mine.values == noop.values and len(mine.values) > 0, name  # the same images, the same functions
        comparison = mine.details["noop"]
        assert comparison["diff"] == 0 and comparison["interval"] == [0, 0] and not comparison["beats"], name
        assert comparison["gain"] in (0.0, None), name  # None: PSNR, which has no perfect value
    assert (
        scored[FEATUREVIS_METHOD, "generation_fid"].details["interval"]
        == scored[FEATUREVIS_NOOP_METHOD, "generation_fid"].details["interval"]
    )
    assert scored[FEATUREVIS_METHOD, "inversion_ssim"].details["noop"]["gain"] == 0.0
    # by default a part none of whose images moved is n/a (the scores would be the seeds'), its no-op still stored
    default = _by_key(scoring.score(out, seeds, *sets, reference, seed=0, n_bootstrap=BOOTSTRAP))
    for name in (*COMPARED, "inversion_loss"):
        assert default[FEATUREVIS_METHOD, name].values == [], name
        assert "no-op control" in default[FEATUREVIS_METHOD, name].details["not_applicable"], name
    for name in COMPARED:
        assert default[FEATUREVIS_NOOP_METHOD, name].values == scored[FEATUREVIS_NOOP_METHOD, name].values


def test_the_noop_comes_from_the_parents_seeds_whatever_the_worker_sends(run, honest):
    out, seeds, sets, reference = run
    honest = _by_key(honest)
    forged = copy.deepcopy(out)
    forged["generation"]["seeds"] = forged["generation"]["images"].clone()  # "my seeds were my results"
    forged["inversion"]["kinds"]["other image"]["seed_index"] = torch.zeros(6, dtype=torch.int64)
    for kind in SEED_KINDS:  # losses and steps are the worker's own diagnostics: they change no no-op number
        forged["inversion"]["kinds"][kind]["loss_seed"] = forged["inversion"]["kinds"][kind]["loss_final"].clone()
    scoring.validate(forged, seeds, 10)
    again = _by_key(scoring.score(forged, seeds, *sets, reference, seed=0, n_bootstrap=BOOTSTRAP))
    for name in COMPARED:
        assert again[FEATUREVIS_NOOP_METHOD, name].values == honest[FEATUREVIS_NOOP_METHOD, name].values, name
        assert again[FEATUREVIS_METHOD, name].details["noop"] == honest[FEATUREVIS_METHOD, name].details["noop"]
    # and the no-op is what the parent's seeds score: SSIM and PSNR of each seed with its target, kinds in order
    targets = seeds.inversion.targets
    expected = torch.cat([ssim(seeds.inversion.seeds[k], targets) for k in SEED_KINDS]).double().tolist()
    assert honest[FEATUREVIS_NOOP_METHOD, "inversion_ssim"].values == expected
    expected = torch.cat([psnr(seeds.inversion.seeds[k], targets) for k in SEED_KINDS]).double().tolist()
    assert honest[FEATUREVIS_NOOP_METHOD, "inversion_psnr"].values == expected


def test_scores_carry_their_noop_comparison_and_the_convergence(run, honest):
    out = run[0]
    scored = honest
    found = _by_key(scored)
    for name in COMPARED:
        mine, noop = found[FEATUREVIS_METHOD, name], found[FEATUREVIS_NOOP_METHOD, name]
        assert len(mine.values) == len(noop.values), name
        c = mine.details["noop"]
        assert c["mean"] == pytest.approx(sum(noop.values) / len(noop.values), rel=1e-12), name
        assert c["interval"][0] <= c["diff"] <= c["interval"][1], name
        better = c["interval"][0] > 0 if mine.details["higher_is_better"] else c["interval"][1] < 0
        assert c["beats"] == (better and (c["p_value"] is None or c["p_value"] < 0.025)), name
    # the robust model's generations move far from the Gaussian seeds towards real images
    fid = found[FEATUREVIS_METHOD, "generation_fid"].details["noop"]
    assert fid["diff"] < 0 and 0 < fid["gain"] < 1
    inv = scored.convergence["inversion"]
    assert (inv["cap"], inv["window"], inv["tol"]) == (40, 10, 0.01)
    steps = torch.cat([out["inversion"]["kinds"][k]["steps"] for k in SEED_KINDS]).double()
    assert inv["steps_mean"] == float(steps.mean()) and inv["steps_max"] == int(steps.max()) <= 40
    assert inv["converged"] == float((steps < 40).double().mean()) and inv["moved"] == 1.0
    assert inv["loss_final"] < inv["loss_seed"]
    assert found[FEATUREVIS_METHOD, "inversion_loss"].details["convergence"] == inv
    gen = scored.convergence["generation"]
    assert gen["steps"] == 5 and gen["moved"] == 1.0 and gen["logit_final"] > gen["logit_seed"]
    assert 0 < gen["distance_mean"] <= 5 * 0.25 + 1e-4  # 5 steps of L2 length 0.25
    assert found[FEATUREVIS_METHOD, "generation_fid"].details["convergence"] == gen


def test_output_that_contradicts_the_parents_seeds_is_refused(run):
    out, seeds, _, _ = run
    bad = copy.deepcopy(out)
    bad["generation"]["classes"] = bad["generation"]["classes"].flip(0)  # claim other classes: the judge is harness's
    with pytest.raises(ValueError, match="generation classes"):
        scoring.validate(bad, seeds, 10)
    bad = copy.deepcopy(out)
    far = seeds.generation.seeds.clone()
    far[0] = (far[0] < 0.5).float()  # every pixel moved by at least 0.5
    assert float((far[0] - seeds.generation.seeds[0]).norm()) > 15.1  # out of any eps-15 optimisation's reach
    bad["generation"]["images"] = far
    with pytest.raises(ValueError, match="outside the L2 ball of 15 around the harness's own seeds"):
        scoring.validate(bad, seeds, 10)
    bad = copy.deepcopy(out)
    bad["inversion"]["kinds"]["noise"]["steps"] = torch.full((6,), 41)
    with pytest.raises(ValueError, match=r"steps outside \[0, 40\]"):
        scoring.validate(bad, seeds, 10)
    bad["inversion"]["kinds"]["noise"]["steps"] = torch.full((6,), 3.5)
    with pytest.raises(ValueError, match="inversion steps"):
        scoring.validate(bad, seeds, 10)
    bad = copy.deepcopy(out)
    bad["inversion"]["targets"] = torch.arange(5)
    with pytest.raises(ValueError, match="inversion targets"):
        scoring.validate(bad, seeds, 10)
