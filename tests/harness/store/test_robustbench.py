"""RobustBench model_info: importing a tree in the real format (tests/harness/store/model_info, written for these
tests: made-up models covering each case RobustBench's own tree has) and exporting runs fit to submit, rendered
through the installed robustbench's own leaderboard code."""

import functools
import json
import shutil
import types
from datetime import datetime
from pathlib import Path

import jinja2
import pytest
from click.testing import CliRunner

from harness import store
from harness.cli import cli
from harness.pipeline.imports import import_archives
from harness.report.analysis import analyse
from harness.report.leaderboard import build_leaderboard
from harness.store.robustbench import eps_section, export_path, model_info, sidecar
from tests.conftest import ROOT, run_cli

TREE = Path(__file__).with_name("model_info")
# What the site's leaderboard.html.j2 reads from each model (robustbench 1.1.1's wheel does not ship that template,
# so the test renders through a stand-in that accesses the same fields, strictly: a missing one is an error).
STAND_IN_TEMPLATE = """<table>{% for model in models %}<tr>
<td>{{ loop.index }}</td><td><a href="{{ model.link }}">{{ model.name }}</a>
{% if model.footnote is defined %}<span>{{ model.footnote }}</span>{% endif %}</td>
<td>{{ model.clean_acc }}%</td><td>{{ model[acc_field] }}%</td>
<td>{{ "&#9745;" if model.additional_data else "&#215;" }}</td><td>{{ model.architecture }}</td>
<td>{{ model.venue }}</td></tr>{% endfor %}</table>"""


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_import_the_real_format_tree(tmp_path):
    db = f"sqlite:///{tmp_path / 'rb.db'}"
    printed = _cli("import-robustbench", str(TREE), "--db", db).splitlines()
    assert printed == [  # a line per board: what was new, which files were flagged and why
        "  cifar10 L2 0.5: 1 new",
        "  cifar10 Linf 8/255: 4 new; flagged: Beta2019Fake (eps 0.031 listed under 8/255), Gamma2020Fake (eps 0.031 "
        "listed under 8/255; AA evaluation potentially unreliable)",
        "  cifar10 corruptions: 2 new",
        "  cifar100 Linf 8/255: 1 new; flagged: Alpha2021Fake (the file says dataset 'cifar10'; imported under its "
        "directory 'cifar100')",
        "  imagenet corruptions: 1 new",
        "imported 9 new reported entries",
    ]
    again = _cli("import-robustbench", str(TREE), "--db", db)
    assert "  cifar10 L2 0.5: 0 new, 1 known\n" in again
    assert again.endswith("imported 0 new reported entries (9 already imported)\n")
    with store.transaction(store.open_database(db)) as s:
        boards = {(b.dataset, b.threat_model, b.eps_text): b for b in analyse(s)}
        text = build_leaderboard(s)
    assert list(boards) == [
        ("cifar10", "Linf", "8/255"),
        ("cifar10", "L2", "0.5"),
        ("cifar10", "corruptions", ""),
        ("cifar100", "Linf", "8/255"),
        ("imagenet", "corruptions", ""),
    ]
    linf = boards["cifar10", "Linf", "8/255"].reported_only
    # eps 0.031 joins 8/255 (Beta, Gamma); ranked by the best known accuracy: Gamma's external 7.40, not its AA 45.00
    assert [r["model_id"] for r in linf] == ["Beta2019Fake", "Delta2022Fake", "Alpha2021Fake", "Gamma2020Fake"]
    gamma = linf[-1]
    assert gamma["eps_note"].startswith("uses eps = 0.031 ≈ 7.9/255 instead of 8/255")
    assert (
        "| 4 | Gamma2020Fake (note 3) (note 4) | [Gamma: k-winners, made up](https://arxiv.org/abs/1905.00003) | "
        "79.28 | 45.00 | 7.40 | yes | no | DenseNet-121 | ICLR 2020 |" in text
    )
    assert (
        "| 3 | Alpha2021Fake | [Alpha: robust training, made up](https://arxiv.org/abs/2101.00001) | 89.12 | "
        "30.35 | 30.35 | no | no |" in text
    )  # two decimals, as in the file
    assert "| 1 | Beta2019Fake (note 1) (note 2) |" in text and "| 53.08 | 53.08 | unknown | no |" in text
    assert (
        "4. Gamma2020Fake: Uses ℓ∞ = 0.031 ≈ 7.9/255 instead of 8/255. 7.40% robust accuracy is due to an "
        "adaptive attack; Note: this evaluation reports less." in text
    )
    # the directory is the truth: cifar100's file says cifar10, lands under cifar100 flagged, and leaves cifar10 alone
    (alpha100,) = boards["cifar100", "Linf", "8/255"].reported_only
    assert (alpha100["clean_acc"], alpha100["autoattack_acc"]) == ("59.23", "28.42")
    assert [f["code"] for f in alpha100["flags"]] == ["dataset-mismatch"]
    assert (
        "⚠ Alpha2021Fake dataset-mismatch: the file says dataset 'cifar10'; imported under its directory "
        "'cifar100'" in text
    )
    # corruptions: one table per data set whatever the eps, ranked by corruptions_acc, with RobustBench's columns
    assert [r["model_id"] for r in boards["cifar10", "corruptions", ""].reported_only] == [
        "Theta2021Fake",
        "Iota2020Fake",
    ]
    assert "## cifar10 — corruptions" in text
    assert (
        "| 1 | Theta2021Fake (note 1) | [Theta: corruptions, made up](https://arxiv.org/abs/2103.00006) | 93.10 "
        "| 84.10 | no |" in text
    )
    assert (
        "| Robust acc, common corruptions (%) | Robust acc, 3D common corruptions (%) | mCE (%) | "
        "mCE, 3D corruptions (%) |" in text
    )
    assert "| 81.38 | 67.55 | 65.90 | 41.70 | 47.97 |" in text
    # stored strings are escaped; a non-http link is not linked
    assert "| Eta &lt;b&gt;bold&lt;/b&gt; \\| piped \\*title\\* |" in text and "javascript:" not in text

    records = json.loads(_cli("results", "--json", "--db", db))
    assert {r["kind"] for r in records} == {"reported"} and len(records) == 9
    gamma_json = next(r for r in records if r["model"] == "Gamma2020Fake")
    assert gamma_json["robust_acc"] == pytest.approx(0.074) and gamma_json["clean_acc"] == pytest.approx(0.7928)
    assert gamma_json["reported"]["external"] == "7.40" and gamma_json["reported"]["unreliable"] is True
    assert gamma_json["run_id"] is None and gamma_json["status"] == "reported"
    assert "reported      Gamma2020Fake" in _cli("results", "--db", db)


def test_a_bad_file_is_one_error_line_and_the_rest_import(tmp_path):
    tree = tmp_path / "model_info"
    shutil.copytree(TREE, tree)
    (tree / "cifar10" / "Linf" / "Broken.json").write_text('{"link": ')
    corrupt = json.loads((tree / "cifar10" / "corruptions" / "Theta2021Fake.json").read_text())
    del corrupt["corruptions_acc"]
    (tree / "cifar10" / "corruptions" / "NoAccuracy.json").write_text(json.dumps(corrupt))
    proc = run_cli("import-robustbench", str(tree), "--db", f"sqlite:///{tmp_path / 'x.db'}")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 2, proc.stderr
    assert lines[0].startswith(f"error: {tree / 'cifar10' / 'Linf' / 'Broken.json'} is not usable JSON: not JSON")
    assert f"{tree / 'cifar10' / 'corruptions' / 'NoAccuracy.json'} is a corruptions entry without" in lines[1]
    assert "imported 9 new reported entries; 2 files could not be imported" in proc.stdout


def test_eps_sections():
    assert eps_section("0.031") == (
        "8/255",
        "uses eps = 0.031 ≈ 7.9/255 instead of 8/255; listed in the 8/255 table, as RobustBench does",
    )
    assert eps_section("0.0157")[0] == "4/255" and eps_section("0.03137", ["8/255"])[0] == "8/255"
    assert eps_section("0.1") == ("0.1", None)  # one significant digit: no rounding of anything
    assert eps_section("0.5", ["0.5"]) == ("0.5", None) and eps_section("0.50") == ("0.5", None)
    assert eps_section("0.035") == ("0.035", None)  # 8.9/255 is not a rounding of 8/255 or 9/255 in use


def _db_with_run(path, *, dataset="cifar10", info=None, attack="standard", n=10000, flags=None):
    sessions = store.open_database(f"sqlite:///{path}")
    with store.transaction(sessions) as s:
        model = store.get_or_create_model(
            s,
            name="mine",
            source="mine.py",
            file_sha256="ef" * 32,
            weights_sha256=None,
            info={"name": "mine", "architecture": "gap-cnn", **(info or {})},
        )
        s.add(
            store.RunRecord(
                id="run000000001",
                model_id=model.id,
                dataset=dataset,
                threat_model="Linf",
                eps=8 / 255,
                eps_text="8/255",
                n_examples=n,
                seed=0,
                attack=attack,
                config_key="k",
                status=store.COMPLETE,
                clean_acc=0.8612,
                robust_acc=0.7042,
                config={},
                provenance={},
                flags=flags or [],
                created_at=datetime(2026, 1, 1),
            )
        )
    return f"sqlite:///{path}"


PAPER = {
    "link": "https://arxiv.org/abs/2601.00009",
    "paper": "Mine: a made-up paper",
    "authors": "M. E.",
    "venue": "ICLR 2026",
    "additional_data": True,
    "architecture": "WideResNet-28-10",
    "reported_acc": 0.715,
    "number_forward_passes": 1,
}


def test_export_refuses_naming_the_missing_fields(tmp_path):
    db = _db_with_run(tmp_path / "a.db", info={"authors": "M. E."})
    proc = run_cli("export", "--run", "run000000001", "--format", "robustbench", "--db", db, "--out", str(tmp_path))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "METADATA of mine lacks link, paper, additional_data, number_forward_passes, venue, reported_acc" in (
        proc.stderr
    )
    assert not list(tmp_path.rglob("mine.json"))


def test_export_is_fit_to_submit_and_marks_unreliable_runs(tmp_path):
    db = _db_with_run(tmp_path / "a.db", info=PAPER)
    with store.transaction(store.open_database(db)) as s:
        run = store.get_run(s, "run000000001")
        info = model_info(run)
        assert sidecar(run)["unreliable_reasons"] == []
        assert export_path(tmp_path, run) == tmp_path / "cifar10" / "Linf" / "mine.json"
    assert {k: info[k] for k in ("link", "name", "authors", "venue", "additional_data", "architecture")} == {
        "link": PAPER["link"],
        "name": PAPER["paper"],
        "authors": "M. E.",
        "venue": "ICLR 2026",
        "additional_data": True,
        "architecture": "WideResNet-28-10",
    }
    # reported is the paper's claim; our measurement is autoattack_acc; a full standard run is reliable
    assert (info["reported"], info["autoattack_acc"], info["clean_acc"], info["eps"]) == (
        "71.50",
        "70.42",
        "86.12",
        "8/255",
    )
    assert info["unreliable"] is False

    flagged = _db_with_run(
        tmp_path / "b.db",
        info=PAPER,
        attack="apgd-ce",
        n=2,
        flags=[{"code": "zero-gradients", "message": "some points had zero input gradients"}],
    )
    out = run_cli("export", "--run", "run0", "--format", "robustbench", "--db", flagged, "--out", str(tmp_path / "o"))
    assert out.returncode == 0, out.stderr
    info = json.loads((tmp_path / "o" / "cifar10" / "Linf" / "mine.json").read_text())
    assert info["unreliable"] is True
    scores = json.loads((tmp_path / "o" / "cifar10" / "Linf" / "robint-bench" / "mine.json").read_text())
    assert scores["unreliable_reasons"] == [
        "attack 'apgd-ce' instead of AutoAttack standard",
        "first 2 of the 10000 test images (RobustBench evaluates all 10000)",
        "flagged: zero-gradients",
    ]
    assert "Potentially unreliable: attack 'apgd-ce' instead of AutoAttack standard;" in info["footnote"]


def test_export_is_robustbench_sized_with_our_scores_in_a_sidecar_and_fields_from_a_file(tmp_path):
    """The model_info file holds RobustBench's fields only (a real one is ~15 lines); robint-bench's numbers go to
    a sidecar in robint-bench/ beside it, which neither RobustBench's folder scan nor import-robustbench reads."""
    db = _db_with_run(tmp_path / "a.db", info={"authors": "M. E."})
    facts = {k: v for k, v in PAPER.items() if k != "authors"}
    (tmp_path / "facts.json").write_text(json.dumps({**facts, "venue": "overridden below"}))
    out = tmp_path / "mi"
    args = ["export", "--run", "run0", "--format", "robustbench", "--db", db, "--out", str(out)]
    printed = _cli(*args, "--fields-file", str(tmp_path / "facts.json"), "--field", "venue=ICLR 2026")
    path, side = out / "cifar10" / "Linf" / "mine.json", out / "cifar10" / "Linf" / "robint-bench" / "mine.json"
    assert printed == f"wrote {path}\nwrote {side} (robint-bench's own scores)\n"
    text = path.read_text()
    info = json.loads(text)
    assert sorted(info) == sorted(
        ["link", "name", "authors", "additional_data", "number_forward_passes", "venue", "architecture"]
        + ["dataset", "eps", "clean_acc", "reported", "autoattack_acc", "unreliable", "footnote"]
    )
    assert len(text.splitlines()) == 16 and info["venue"] == "ICLR 2026" and info["name"] == PAPER["paper"]
    scores = json.loads(side.read_text())
    assert (scores["format"], scores["run_id"], scores["robust_acc"], scores["n_examples"]) == (
        "robint-bench scores",
        "run000000001",
        0.7042,
        10000,
    )
    # a second export refuses to overwrite either file; the sidecar is not a reported entry
    result = CliRunner().invoke(cli, [*args, "--fields-file", str(tmp_path / "facts.json")])
    assert "mine.json exists and was left as it is" in str(result.exception)
    db2 = f"sqlite:///{tmp_path / 'b.db'}"
    assert "imported 1 new reported entry" in _cli("import-robustbench", str(out), "--db", db2)
    (tmp_path / "list.json").write_text("[1]")
    result = CliRunner().invoke(cli, [*args, "--force", "--fields-file", str(tmp_path / "list.json")])
    assert "holds a list, not a JSON object" in str(result.exception)


def test_the_full_test_split_comes_from_the_data_set_registry(tmp_path):
    """RobustBench evaluates every test image (ImageNet: its list of 5000); a folder of images has no official split.
    The sizes are harness.data's (DatasetInfo.test_size), not a copy."""
    from harness.data import DATASETS
    from harness.store.robustbench import unreliable_reasons

    cases = {
        "imagenet": (4999, ["first 4999 of the 5000 test images (RobustBench evaluates all 5000)"]),
        "fashion-mnist": (10000, []),
        "folder:/srv/images@32": (10000, ["test data 'folder:/srv/images@32' is not an official test split"]),
    }
    for i, (dataset, (n, reasons)) in enumerate(cases.items()):
        db = _db_with_run(tmp_path / f"{i}.db", dataset=dataset, n=n)
        with store.transaction(store.open_database(db)) as s:
            assert unreliable_reasons(store.get_run(s, "run000000001")) == reasons
    assert {name: info.test_size for name, info in DATASETS.items()} == {
        "cifar10": 10000,
        "cifar100": 10000,
        "fashion-mnist": 10000,
        "imagenet": 5000,
    }


def _render(models_folder: Path, dataset: str, monkeypatch) -> str:
    """robustbench.leaderboard.template.generate_leaderboard on ``models_folder`` (strict about missing fields)."""
    from harness.core.autoattack_shim import import_robustbench

    import_robustbench()
    from robustbench.leaderboard import template

    if not Path(template.__file__).with_name("leaderboard.html.j2").is_file():
        loader = jinja2.DictLoader({"leaderboard.html.j2": STAND_IN_TEMPLATE})
        monkeypatch.setattr(template, "PackageLoader", lambda *args, **kwargs: loader)
    monkeypatch.setattr(
        template, "Environment", functools.partial(jinja2.Environment, undefined=jinja2.StrictUndefined)
    )
    if dataset not in ("cifar10", "cifar100", "imagenet"):  # RobustBench has no board for it: widen its enum only
        monkeypatch.setattr(template, "BenchmarkDataset", lambda name: types.SimpleNamespace(value=name))
    return template.generate_leaderboard(dataset, "Linf", str(models_folder))


def test_exports_render_through_robustbench_leaderboard_code(tmp_path, monkeypatch, capsys):
    # a cifar10 run with complete METADATA, next to a published entry in the same folder
    db = _db_with_run(tmp_path / "a.db", info=PAPER)
    _cli("export", "--run", "run000000001", "--format", "robustbench", "--db", db, "--out", str(tmp_path / "mi"))
    shutil.copy(TREE / "cifar10" / "Linf" / "Gamma2020Fake.json", tmp_path / "mi" / "cifar10" / "Linf")
    page = _render(tmp_path / "mi", "cifar10", monkeypatch)
    assert page.index("Mine: a made-up paper") < page.index("Gamma: k-winners")  # 70.42 ranks above external 7.40
    assert '<a href="https://arxiv.org/abs/2601.00009">Mine: a made-up paper</a>' in page
    assert "<td>86.12%</td><td>70.42%</td>" in page and "<td>WideResNet-28-10</td>" in page

    # a shipped model's archived evaluation, its paper facts given on the command line
    archived = f"sqlite:///{tmp_path / 'shipped.db'}"
    import_archives(
        store.open_database(archived), [ROOT / "results" / "archive" / "fmnist_pgd_linf-7b056f54c9ff.json.gz"]
    )
    with pytest.raises(
        Exception, match="lacks link, paper, additional_data, number_forward_passes, venue, reported_acc"
    ):
        _cli("export", "--run", "7b056f54c9ff", "--format", "robustbench", "--db", archived, "--out", str(tmp_path))
    fields = [
        "link=https://github.com/robint-bench",
        "paper=robint-bench reference PGD-AT model",
        "venue=robint-bench",
        "additional_data=false",
        "architecture=gap-cnn (GAP CNN, 140k parameters)",
        "reported_acc=null",
        "number_forward_passes=1",
    ]
    _cli(
        "export",
        "--run",
        "7b056f54c9ff",
        "--format",
        "robustbench",
        "--db",
        archived,
        "--out",
        str(tmp_path / "fm"),
        *(arg for field in fields for arg in ("--field", field)),
    )
    info = json.loads((tmp_path / "fm" / "fashion-mnist" / "Linf" / "fmnist_pgd_linf.json").read_text())
    assert (info["clean_acc"], info["autoattack_acc"], info["reported"], info["unreliable"]) == (
        "86.00",
        "76.40",
        "",
        True,
    )
    page = _render(tmp_path / "fm", "fashion-mnist", monkeypatch)
    assert "<td>86.00%</td><td>76.40%</td>" in page and "robint-bench reference PGD-AT model</a>" in page
    assert "first 1000 of the 10000 test images" in page
    capsys.readouterr()  # generate_leaderboard prints the table
