"""Fail fast: a command's argument and path errors, click's own usage errors included, are one line in the
project's form (``error: <problem> -- <fix>``, exit status 2), given before torch (or the database layer) is
imported."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, SUBMISSIONS

# each case: (arguments, the start of the error line)
CASES = [
    (["run", "--model", "nope.py"], "error: --model nope.py does not exist -- pass the submission's .py file"),
    (["run", "--model", "README.md"], "error: --model README.md is not a .py file"),
    (["run", "--n-exemples", "3"], "error: No such option '--n-exemples'. (Did you mean one of:"),
    (["run", "--model", str(SUBMISSIONS / "fmnist_standard.py"), "--n-sanity", "0"], "error: --n-sanity 0 must be"),
    (["run", "--model", str(SUBMISSIONS / "fmnist_standard.py"), "--eps", "1/0"], "error: "),
    (["run", "--model", str(SUBMISSIONS / "fmnist_standard.py"), "--threat-model", "L3"], "error: unknown threat"),
    (["run", "--model", str(SUBMISSIONS / "fmnist_standard.py"), "--preset", "fast"], "error: Invalid value for"),
    (["run", "--model", str(SUBMISSIONS / "fmnist_standard.py"), "--data-dir", "README.md"], "error: --data-dir"),
    (["run", "--model", str(SUBMISSIONS / "fmnist_standard.py"), "--batch-size", "big"], "error: --batch-size"),
    (["import", "results/archiv"], "error: Invalid value for '[PATHS]...': Path 'results/archiv' does not exist."),
    (["import-robustbench"], "error: Missing argument 'PATHS...'."),
    (["export"], "error: Missing option '--run'."),
    (["frobnicate"], "error: No such command 'frobnicate'."),
    (["sweep", "nope.py"], "error: Invalid value for '[SUBMISSIONS]...'"),
    (["train", "--method", "adamw", "--out", "x.py"], "error: Invalid value for '--method'"),
]

DRIVER = """
import contextlib, io, json, sys
from harness.cli import main
out = []
for args in json.loads(sys.argv[1]):
    sys.argv = ["robint-bench", *args]
    err = io.StringIO()
    code = None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    out.append([code, err.getvalue()])
print(json.dumps({"results": out, "torch": "torch" in sys.modules, "sqlalchemy": "sqlalchemy" in sys.modules}))
"""


def test_usage_errors_are_one_line_before_anything_heavy_is_imported():
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps([args for args, _ in CASES])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    report = json.loads(proc.stdout)
    for (args, start), (code, err) in zip(CASES, report["results"], strict=True):
        lines = err.splitlines()
        assert code == 2 and len(lines) == 1, (args, err)
        assert lines[0].startswith(start) and " -- " in lines[0], (args, lines[0])
    assert report["results"][2][1].rstrip().endswith("-- see `robint-bench run --help`")
    assert report["results"][12][1].rstrip().endswith("-- see `robint-bench --help`")
    assert not report["torch"] and not report["sqlalchemy"]  # every error came before the heavy imports
