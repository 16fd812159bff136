"""`robint-bench zoo` end to end on two tiny models: trains them, evaluates them, archives the runs; run again
against a fresh database, it trains nothing, reuses the archived runs and rewrites no archive file."""

import json

import pytest

from harness.core.errors import HarnessError
from harness.pipeline.zoo import unevaluated
from harness.store.archive import archive_files, read_archive
from harness.train.zoo import load_spec, recorded_command, train_command
from tests.conftest import run_cli

SPEC = {
    "format": "robint-bench-zoo/1",
    "evaluate": {"n_examples": 8, "attack": "apgd-ce", "methods": "saliency", "metrics": "sparseness"},
    "models": [
        {
            "name": "tiny_standard",
            "train": {"method": "standard", "epochs": 1, "n_train": 256, "batch_size": 64, "eval_n": 32},
        },
        {
            "name": "tiny_fgsm",
            "train": {
                "method": "fgsm-rs",
                "arch": "resnet8-gap",
                "eps": "0.05",
                "epochs": 1,
                "n_train": 256,
                "check_n": 64,
                "batch_size": 64,
                "eval_n": 32,
                "seed": 3,
            },
            "evaluate": {"eps": "0.05"},
        },
    ],
}


@pytest.mark.slow
def test_zoo_trains_evaluates_and_archives_then_skips_everything(tmp_path, data_dir):
    zoo_dir, archive = tmp_path / "zoo", tmp_path / "archive"
    zoo_dir.mkdir()
    (zoo_dir / "zoo.json").write_text(json.dumps(SPEC))
    common = ["--spec", str(zoo_dir / "zoo.json"), "--archive", str(archive), "--data-dir", str(data_dir)]
    common += ["--no-featurevis", "--quiet"]
    first = run_cli("zoo", *common, "--db", f"sqlite:///{tmp_path / 'a.db'}")
    assert first.returncode == 0, first.stderr
    assert "train tiny_standard: trained" in first.stdout and "train tiny_fgsm: trained" in first.stdout

    spec = load_spec(zoo_dir / "zoo.json")
    for entry in spec.entries:
        assert entry.submission.is_file() and entry.weights.is_file() and not entry.checkpoint.exists()
        command = recorded_command(entry.submission)
        assert command == train_command(entry, data_dir=data_dir) and command.endswith(f"--out {entry.submission}")
    assert "--method fgsm-rs --eps 0.05 --epochs 1 --arch resnet8-gap --seed 3" in recorded_command(
        spec.entries[1].submission
    )

    files = archive_files([archive])
    assert [f.name.split("-")[0] for f in files] == ["tiny_fgsm", "tiny_standard"]
    assert all(f.name.endswith(".json.gz") for f in files)
    records = {r["model"]["name"]: r for r in (json.loads(read_archive(f)[1]) for f in files)}
    for name, eps in (("tiny_standard", 0.1), ("tiny_fgsm", 0.05)):
        run = records[name]["run"]
        assert (run["n_examples"], run["attack"], run["threat_model"], run["eps"]) == (8, "apgd-ce", "Linf", eps)
        assert {(m["method"], m["metric"]) for m in records[name]["metrics"]} >= {("saliency", "sparseness")}
        assert f"eval {name}: stored run {run['id']}" in first.stdout
        assert records[name]["model"]["info"]["training"]["method"] in ("standard", "fgsm-rs")
    stamps = {f: f.stat().st_mtime_ns for f in files}
    assert unevaluated(spec, archive) == []  # what a GPU session would evaluate: nothing, until a setting changes
    assert unevaluated(spec, archive, {"attack": "standard"}) == ["tiny_standard", "tiny_fgsm"]
    assert unevaluated(spec, tmp_path / "empty") == ["tiny_standard", "tiny_fgsm"]

    again = run_cli("zoo", *common, "--db", f"sqlite:///{tmp_path / 'fresh.db'}")  # a fresh clone's database
    assert again.returncode == 0, again.stderr
    assert "train tiny_standard: exists, not trained" in again.stdout
    for name in ("tiny_standard", "tiny_fgsm"):
        assert f"eval {name}: reused run {records[name]['run']['id']}" in again.stdout
    assert archive_files([archive]) == files and {f: f.stat().st_mtime_ns for f in files} == stamps


def test_a_changed_spec_entry_is_not_silently_kept(tmp_path):
    spec_path = tmp_path / "zoo.json"
    spec_path.write_text(json.dumps(SPEC))
    entry = load_spec(spec_path).entries[0]
    entry.submission.write_text(f"METADATA = {{'training': {{'command': {train_command(entry)!r}}}}}\n")
    entry.weights.write_bytes(b"")
    from harness.train.zoo import train_missing

    assert [t.status for t in train_missing(load_spec(spec_path), only=["tiny_standard"])] == ["exists"]
    changed = json.loads(json.dumps(SPEC))
    changed["models"][0]["train"]["epochs"] = 2
    spec_path.write_text(json.dumps(changed))
    with pytest.raises(HarnessError, match="delete .*tiny_standard.py"):
        train_missing(load_spec(spec_path), only=["tiny_standard"])


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([{"name": "a", "train": {"method": "standard", "epoch": 3}}], "unknown keys epoch"),
        ([{"name": "a", "train": {"method": "standard"}, "submission": "x.py"}], "exactly one of"),
        ([{"name": "a", "train": {"method": "standard"}}, {"name": "a", "submission": "x.py"}], "repeated name"),
        ([{"name": "../a", "train": {"method": "standard"}}], "bad or repeated name"),
    ],
)
def test_bad_specs_are_one_clear_error(tmp_path, models, message):
    path = tmp_path / "zoo.json"
    path.write_text(json.dumps({"format": "robint-bench-zoo/1", "models": models}))
    with pytest.raises(HarnessError, match=message):
        load_spec(path)
