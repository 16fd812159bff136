"""A model with zero input gradients (the standard model behind input quantisation) must not top any
interpretability column: its attributions are all zero, so every attribution score is n/a with the reason, and its
feature visualisations never leave their seeds, so they are n/a too."""

import pytest

from harness import store
from harness.core.config import RunConfig
from harness.pipeline.evaluate import evaluate
from harness.report.analysis import analyse
from metrics.registry import HEADLINE, METRICS
from tests.conftest import SUBMISSIONS

MASKED = '''
from pathlib import Path

import torch

from harness.architectures import build
from harness.submission import load_weights

METADATA = {{"name": "masked", "dataset": "fashion-mnist", "architecture": "gap-cnn", "eps": "0.1",
            "training": {{"method": "standard"}}}}


class Quantised(torch.nn.Module):
    """Rounds the input to 8 bits (a straight round: zero gradient everywhere), then the standard model."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 255) / 255)


def load_model():
    model = build("gap-cnn", in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path({weights!r})))
    return Quantised(model).eval()
'''

QUICK = dict(
    n_examples=4,
    batch_size=4,
    attack="apgd-ce",
    n_explain=4,
    n_sanity=2,  # each sanity image is re-explained once per randomised layer
    n_composites=4,
    trusted=True,
    progress=False,
    methods="expected_gradients,integrated_gradients",
    metrics="abpc,deletion_relative,relevance_mass_ratio,gridpg,randomisation,sparseness",
    featurevis=True,
    method_options=(
        "expected_gradients.n_samples=16",
        "integrated_gradients.n_trials=1",
        "integrated_gradients.n_steps=8",
    ),
    featurevis_options=("n_inversion=4", "inversion_steps=10", "per_class=2", "generation_steps=5"),
)


@pytest.fixture(scope="module")
def board(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("masking")
    masked = root / "masked.py"
    masked.write_text(MASKED.format(weights=str(SUBMISSIONS / "fmnist_standard.pt")))
    db = f"sqlite:///{root / 'r.db'}"
    for model in (SUBMISSIONS / "fmnist_standard.py", masked):
        evaluate(RunConfig(model=model, db=db, data_dir=data_dir, **QUICK))
    with store.transaction(store.open_database(db)) as s:
        (found,) = analyse(s)
    return found


@pytest.mark.slow
def test_zero_gradients_give_degenerate_maps_and_n_a_scores(board):
    masked = next(e for e in board.entries if e.model == "masked")
    assert masked.degenerate("expected_gradients")["zero"] == 4
    for (method, metric), score in masked.scores.items():
        if method in ("expected_gradients", "integrated_gradients", "featurevis"):
            assert score.mean is None and score.na, (method, metric, score)


@pytest.mark.slow
def test_the_masked_model_tops_no_column(board):
    standard = next(e for e in board.entries if e.model == "fmnist_standard")
    masked = next(e for e in board.entries if e.model == "masked")
    compared = 0
    for pair in HEADLINE:
        mine, theirs = masked.scores.get(pair), standard.scores.get(pair)
        if mine is None or mine.mean is None:
            continue
        compared += 1
        higher = METRICS.get(pair[1]).higher_is_better
        assert (mine.mean < theirs.mean) if higher else (mine.mean > theirs.mean), pair
    assert compared == 0  # every headline score of the masked model is n/a
    assert any(standard.scores[p].mean is not None for p in HEADLINE if p in standard.scores)
