"""RobustBench model_info: export a run, import it (and a published-style file) back as reported entries."""

import json
from datetime import datetime

from harness import storage
from tests.conftest import run_cli


def _db_with_run(path):
    sessions = storage.open_database(f"sqlite:///{path}")
    with storage.transaction(sessions) as s:
        model = storage.get_or_create_model(s, name="mine", source="mine.py", file_sha256="ef" * 32,
                                            weights_sha256=None, info={"name": "mine", "architecture": "gap-cnn",
                                                                       "authors": "Me"})  # fmt: skip
        s.add(storage.RunRecord(id="run000000001", model_id=model.id, dataset="fashion-mnist", threat_model="Linf",
                                eps=0.1, eps_text="0.1", n_examples=1000, seed=0, attack="standard", config_key="k",
                                status=storage.COMPLETE, clean_acc=0.8612, robust_acc=0.7042, config={},
                                provenance={}, created_at=datetime(2026, 1, 1)))  # fmt: skip
    return f"sqlite:///{path}"


def test_export_import_round_trip(tmp_path):
    db = _db_with_run(tmp_path / "a.db")
    assert run_cli("export", "--run", "run000000001", "--format", "robustbench", "--db", db,
                   "--out", str(tmp_path / "info")).returncode == 0  # fmt: skip
    path = tmp_path / "info" / "fashion-mnist" / "Linf" / "mine.json"
    info = json.loads(path.read_text())
    for key in ("link", "name", "authors", "additional_data", "number_forward_passes", "dataset", "venue",
                "architecture", "eps", "clean_acc", "reported", "autoattack_acc"):  # fmt: skip
        assert key in info
    assert (info["clean_acc"], info["autoattack_acc"], info["eps"]) == ("86.12", "70.42", "0.1")

    # a published entry in RobustBench's layout (no robint_bench key), next to our own export
    published = tmp_path / "info" / "fashion-mnist" / "Linf" / "Someone2024Robust.json"
    published.write_text(json.dumps({"link": "https://example.org", "name": "A paper", "authors": "A. Someone",
                                     "additional_data": False, "number_forward_passes": 1, "dataset": "fashion-mnist",
                                     "venue": "arXiv", "architecture": "ResNet-18", "eps": "0.1", "clean_acc": "90.00",
                                     "reported": "81.00", "autoattack_acc": "80.50"}))  # fmt: skip
    fresh = f"sqlite:///{tmp_path / 'b.db'}"
    imported = [run_cli("import-robustbench", str(tmp_path / "info"), "--db", fresh).stdout for _ in range(2)]
    assert "imported 2 new reported entries" in imported[0] and "imported 0 new" in imported[1]
    out = tmp_path / "lb.md"
    assert run_cli("leaderboard", "--db", fresh, "--out", str(out)).returncode == 0
    text = out.read_text()
    assert "| mine | 86.1 | 70.4 | gap-cnn |" in text
    assert "| Someone2024Robust | 90.0 | 80.5 | ResNet-18 | A paper |" in text

    # next to the measured run: a "reported" column on the measured row
    assert run_cli("import-robustbench", str(published), "--db", db).returncode == 0
    assert run_cli("import-robustbench", str(path), "--db", db).returncode == 0
    assert run_cli("leaderboard", "--db", db, "--out", str(out)).returncode == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| 1 | mine"))
    assert "86.1 / 70.4" in row


def test_not_a_model_info_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"hello": 1}))
    proc = run_cli("import-robustbench", str(bad), "--db", f"sqlite:///{tmp_path / 'c.db'}")
    assert proc.returncode == 2 and "is not a RobustBench model_info file" in proc.stderr
