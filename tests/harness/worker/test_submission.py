import pickle
import textwrap

import pytest
import torch

from harness.core.errors import HarnessError
from harness.core.weights import load_weights, sha256_file
from harness.worker.submission import load_submission
from tests.conftest import SUBMISSIONS

SHIPPED = ["fmnist_standard", "fmnist_pgd_linf", "fmnist_trades_linf"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_submissions_load(name, fmnist_test):
    sub = load_submission(SUBMISSIONS / f"{name}.py")
    assert sub.name == name
    assert not sub.model.training
    assert sub.weights_sha256 == sha256_file(SUBMISSIONS / f"{name}.pt")
    assert (SUBMISSIONS / f"{name}.pt").stat().st_size < 5 * 2**20
    x, _ = fmnist_test
    with torch.no_grad():
        assert sub.model(x[:4]).shape == (4, 10)
        # fully convolutional with global pooling: a 2x2 composite still gives one row of logits
        assert sub.model(torch.rand(3, 1, 56, 56)).shape == (3, 10)


def _write(tmp_path, source: str, name: str = "sub.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


GOOD_HEADER = """
import torch
METADATA = {"name": "x", "dataset": "fashion-mnist", "architecture": "linear"}
"""


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def load_model(:\n    pass\n", "syntax error at line 1"),
        ("import does_not_exist\n", "failed to import: ModuleNotFoundError"),
        (GOOD_HEADER, "defines no load_model"),
        ("def load_model():\n    return None\n", "defines no METADATA"),
        (GOOD_HEADER + "def load_model():\n    return 3\n", "returned int, not a torch.nn.Module"),
        (GOOD_HEADER + "def load_model():\n    raise RuntimeError('boom')\n", "raised RuntimeError: boom"),
        ('METADATA = {"name": "x"}\ndef load_model():\n    pass\n', "lacks dataset, architecture"),
    ],
)
def test_broken_submissions_give_one_clear_error(tmp_path, source, message):
    with pytest.raises(HarnessError, match=message) as info:
        load_submission(_write(tmp_path, source))
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(HarnessError, match="not an existing .py file"):
        load_submission(tmp_path / "nope.py")


def test_corrupt_weights(tmp_path):
    path = tmp_path / "w.pt"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(HarnessError, match="corrupt or not a torch/safetensors file"):
        load_weights(path)


class _Evil:
    def __reduce__(self):
        return (print, ("this would run arbitrary code",))


def test_weights_needing_arbitrary_unpickling_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": _Evil()}, path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(HarnessError, match="needs arbitrary code to unpickle and was refused"):
        load_weights(path)


def test_safetensors_weights_load(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"weight": torch.arange(4.0)}, str(path))
    assert torch.equal(load_weights(path)["weight"], torch.arange(4.0))
