"""Feature visualisation inside a run: the reference encoder, the parent-side scores, storage, figures, leaderboard."""

import json
import shutil

import pytest
import torch
from matplotlib.image import imread

from harness.core.config import RunConfig
from harness.core.errors import HarnessError
from harness.data import load_examples
from harness.pipeline.featurevis import real_images
from harness.pipeline.resolve import resolve_featurevis
from harness.reference import HERE, load_reference, reference_spec
from metrics.featurevis import scoring
from metrics.featurevis.pipeline import FeatureVisConfig, visualise
from metrics.featurevis.seeds import derive_seeds
from metrics.registry import FEATUREVIS_METHOD, FEATUREVIS_NOOP_METHOD, METRICS
from tests.conftest import SUBMISSIONS, run_cli

QUICK = [
    "--featurevis",
    "--featurevis-option",
    "n_inversion=4",
    "--featurevis-option",
    "inversion_steps=30",
    "--featurevis-option",
    "per_class=3",
    "--featurevis-option",
    "generation_steps=10",
]


def test_reference_encoder_is_verified_and_classifies_real_images(data_dir):
    judge = load_reference("fashion-mnist")
    x, y = load_examples("fashion-mnist", n=500, data_dir=data_dir)
    with torch.no_grad():
        accuracy = float((judge(x).argmax(1) == y).double().mean())
    assert accuracy > 0.8, accuracy  # a real classifier, not random weights (chance is 0.1)
    features = scoring.Reference(judge).features(x[:4])
    assert features.shape == (4, 192)


def test_reference_encoder_with_other_bytes_is_refused(tmp_path):
    spec = reference_spec("fashion-mnist")
    shutil.copy(HERE / spec.weights, tmp_path / spec.weights)
    with open(tmp_path / spec.weights, "r+b") as fh:  # flip one byte inside the tensor data
        fh.seek(-100, 2)
        byte = fh.read(1)
        fh.seek(-100, 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(HarnessError, match="sha256"):
        load_reference("fashion-mnist", directory=tmp_path)
    with pytest.raises(HarnessError, match="ships no reference"):
        load_reference("cifar10")


def test_featurevis_is_on_for_the_default_suite_only():
    assert resolve_featurevis(RunConfig(model=SUBMISSIONS / "x.py")) is not None
    assert resolve_featurevis(RunConfig(model=SUBMISSIONS / "x.py", metrics="abpc")) is None
    on = resolve_featurevis(
        RunConfig(
            model=SUBMISSIONS / "x.py", metrics="none", featurevis=True, featurevis_options=("inversion_steps=7",)
        )
    )
    assert on is not None and on.inversion_steps == 7
    with pytest.raises(HarnessError, match="featurevis-option"):
        resolve_featurevis(RunConfig(model=SUBMISSIONS / "x.py", featurevis=True, featurevis_options=("nope=1",)))
    with pytest.raises(HarnessError, match="positive"):
        resolve_featurevis(RunConfig(model=SUBMISSIONS / "x.py", featurevis=True, featurevis_options=("per_class=0",)))


@pytest.fixture(scope="module")
def small_output(robust_model, data_dir):
    x, y = load_examples("fashion-mnist", n=6, data_dir=data_dir)
    x_train, y_train = load_examples("fashion-mnist", split="train", n=2000, data_dir=data_dir)
    config = FeatureVisConfig(n_inversion=4, inversion_steps=20, per_class=2, generation_steps=5)
    out = visualise(
        robust_model.eval(), x, y, x_train, y_train, config=config, num_classes=10, device=torch.device("cpu")
    )
    return out, derive_seeds(x, y, x_train, y_train, config=config, num_classes=10)


def test_worker_output_is_validated(small_output):
    out, seeds = small_output
    scoring.validate(out, seeds, 10)
    bad = {"inversion": out["inversion"], "generation": dict(out["generation"])}
    bad["generation"]["images"] = out["generation"]["images"] * 2.0  # outside [0, 1]
    with pytest.raises(ValueError, match="outside"):
        scoring.validate(bad, seeds, 10)
    bad["generation"]["images"] = out["generation"]["images"][:, :, :10]
    with pytest.raises(ValueError, match="shape"):
        scoring.validate(bad, seeds, 10)
    bad = {
        "inversion": out["inversion"],
        "generation": {**out["generation"], "classes": out["generation"]["classes"] + 20},
    }
    with pytest.raises(ValueError, match="classes"):
        scoring.validate(bad, seeds, 10)


def test_scores_compare_with_the_harness_images(small_output, data_dir):
    out, seeds = small_output
    x = seeds.inversion.targets
    reference = scoring.Reference(load_reference("fashion-mnist"))
    real, labels, train = real_images("fashion-mnist", data_dir, 20, 0)
    scored = scoring.score(out, seeds, real, labels, train, reference, seed=0, n_bootstrap=50).scores
    scores = {s.metric: s for s in scored if s.method == FEATUREVIS_METHOD}
    assert set(scores) == {n for n, spec in METRICS.items() if spec.stage == "featurevis"}
    controls = {s.metric for s in scored if s.method == FEATUREVIS_NOOP_METHOD}
    assert controls == set(scores) - {"inversion_loss"}  # the no-op of every score the parent can compute
    n = 4 * 2  # 4 targets x 2 seed kinds
    assert len(scores["inversion_ssim"].values) == n and len(scores["generation_judge_accuracy"].values) == 20
    # a perfect inversion (the target itself) scores SSIM 1 and distance 0: the parent compares with its own x
    perfect = {
        "inversion": {
            **out["inversion"],
            "kinds": {k: {**v, "images": x[:4].clone()} for k, v in out["inversion"]["kinds"].items()},
        },
        "generation": {"skipped": "not needed"},
    }
    scored = scoring.score(perfect, seeds, real, labels, train, reference, seed=0, n_bootstrap=50).scores
    exact = {s.metric: s for s in scored if s.method == FEATUREVIS_METHOD}
    assert min(exact["inversion_ssim"].values) > 0.999
    assert max(exact["inversion_distance"].values) < 1e-4
    assert exact["inversion_ssim"].details["noop"]["gain"] > 0.999  # all the way from the seeds to the targets
    assert exact["generation_fid"].details["not_applicable"] == "not needed"
    fid = scores["generation_fid"]
    low, high = fid.details["interval"]
    assert fid.values[0] > fid.details["real_data_fid"] and low <= high


@pytest.mark.slow
def test_run_stores_featurevis_scores_figures_and_leaderboard(tmp_path, data_dir):
    db = tmp_path / "results" / "r.db"
    db.parent.mkdir()  # figures go next to the database, under results/figures/
    url = f"sqlite:///{db}"
    proc = run_cli(
        "run",
        "--model",
        str(SUBMISSIONS / "fmnist_pgd_linf.py"),
        "--n-examples",
        "8",
        "--attack",
        "apgd-ce",
        "--methods",
        "saliency",
        "--metrics",
        "sparseness",
        "--n-explain",
        "4",
        "--quiet",
        "--db",
        url,
        "--data-dir",
        str(data_dir),
        *QUICK,
    )
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(run_cli("results", "--json", "--db", url).stdout)
    fv = record["metrics"]["featurevis"]
    assert set(fv) == {n for n, spec in METRICS.items() if spec.stage == "featurevis"}
    assert 0 < fv["inversion_ssim"]["mean"] < 1 and fv["inversion_ssim"]["n"] == 8
    assert fv["generation_fid"]["mean"] > 0 and fv["generation_judge_accuracy"]["n"] == 30
    noop = record["metrics"]["featurevis_noop"]  # the control, recomputed by the parent from its own seeds
    assert set(noop) == set(fv) - {"inversion_loss"} and noop["inversion_ssim"]["n"] == 8
    assert fv["inversion_ssim"]["details"]["noop"]["mean"] == pytest.approx(noop["inversion_ssim"]["mean"])
    steps = fv["inversion_loss"]["details"]["convergence"]
    assert steps["cap"] == 30 and 0 < steps["steps_mean"] <= steps["steps_max"] <= 30
    folder = db.parent / "runs" / record["run_id"]
    for name in ("attributions", "adversarial", "inversions", "generated"):
        image = imread(folder / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 100, name
    again = run_cli(
        "run",
        "--model",
        str(SUBMISSIONS / "fmnist_pgd_linf.py"),
        "--n-examples",
        "8",
        "--attack",
        "apgd-ce",
        "--methods",
        "saliency",
        "--metrics",
        "sparseness",
        "--n-explain",
        "4",
        "--quiet",
        "--db",
        url,
        "--data-dir",
        str(data_dir),
        *QUICK[:-2],
        "--featurevis-option",
        "generation_steps=11",
    )
    assert again.returncode == 2 and "other settings" in again.stderr
    out = tmp_path / "leaderboard.md"
    assert run_cli("leaderboard", "--db", url, "--out", str(out)).returncode == 0
    text = out.read_text()
    assert "FID ↓" in text and "Judge acc. ↑" in text and "Feature visualisation detail" in text
    assert f"(results/runs/{record['run_id']})" in text and "](results/plots/" in text
    assert list((db.parent / "plots").glob("*.png"))
