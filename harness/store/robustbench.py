"""RobustBench's model_info JSON: exporting a run in it, and importing published entries as "reported" numbers.

RobustBench keeps one file per model at ``model_info/<dataset>/<threat model>/<model id>.json`` with accuracies as
percentage strings ("65.88"). Its own leaderboard code (``robustbench.leaderboard.template``) ranks Linf/L2 entries
by ``external`` (the best known robust accuracy, e.g. from an adaptive attack) when a file has one, else by
``autoattack_acc``, shows ``unreliable`` as "AA eval. potentially unreliable", and ranks the ``corruptions``
entries by ``corruptions_acc`` (ImageNet adds ``corruptions_acc_3d`` and both mCE columns). Entries whose eps is a
decimal within rounding of a standard fraction (``0.031`` for 8/255) are listed in that fraction's table with a
footnote.

Import (:func:`import_reported`) follows those rules. The directory is the truth for the data set and threat
model: a file inside ``<dataset>/<threat model>/`` whose own ``dataset`` field says otherwise is imported under
its directory with a ``dataset-mismatch`` flag (RobustBench's tree has such files). Each file is its own
transaction; a file that cannot be read is one error naming it, and the others import.

Export (:func:`model_info`) writes what a RobustBench pull request needs, from the submission's METADATA (or
``export --field KEY=VALUE``), and refuses, naming the missing fields, rather than invent defaults. ``reported``
is the paper's claim (METADATA ``reported_acc``); our measurement is ``autoattack_acc``. A run RobustBench would
not accept as a standard evaluation (another attack, fewer than all test images, flags, local test data) is
exported with ``unreliable: true`` and the reasons in the footnote; robint-bench's own numbers (the reasons, every
score) go to a sidecar in ``robint-bench/`` beside the file (:func:`sidecar`), so the file stays RobustBench-sized.

Long because RobustBench's model_info format, in both directions (import with its sections, corruptions and eps
rounding; export fit to submit), is one format and is tested as one.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from harness import store
from harness.core import schema
from harness.core.errors import HarnessError
from harness.core.threat import parse_eps
from harness.store.summary import metric_summary

if TYPE_CHECKING:
    from harness.data import DatasetInfo

REPORTED_SOURCE = store.queries.REPORTED_SOURCE
THREAT_DIRS = ("Linf", "L2", "corruptions")
CORRUPTIONS = "corruptions"
# k/255 budgets a decimal eps may be a rounding of (RobustBench's 0.031 for 8/255), besides fractions in use.
STANDARD_FRACTIONS = tuple(f"{k}/255" for k in (1, 2, 3, 4, 8, 16))
# the percentage fields of a model_info file and the largest value each may hold (an mCE may exceed 100)
PERCENT_RANGES = {
    "clean_acc": 100,
    "autoattack_acc": 100,
    "external": 100,
    "reported": 100,
    "corruptions_acc": 100,
    "corruptions_acc_3d": 100,
    "corruptions_mce": 1000,
    "corruptions_mce_3d": 1000,
}
# Corruption columns RobustBench shows, in order: (field, label).
CORRUPTION_COLUMNS = (
    ("corruptions_acc", "Robust acc, common corruptions (%)"),
    ("corruptions_acc_3d", "Robust acc, 3D common corruptions (%)"),
    ("corruptions_mce", "mCE (%)"),
    ("corruptions_mce_3d", "mCE, 3D corruptions (%)"),
)

# --- values of a reported entry -----------------------------------------------------------------------------


def percent(value: Any) -> float | None:
    """RobustBench's percentage strings ("65.88") as fractions; None when absent or not a number."""
    try:
        out = float(value) / 100
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def two_decimals(value: Any) -> str:
    """A percentage field as RobustBench's sources give it, with two decimals ("30.35", "84.10"); "—" if absent.

    >>> two_decimals("30.35"), two_decimals("84.1"), two_decimals(""), two_decimals(None)
    ('30.35', '84.10', '—', '—')
    """
    fraction = percent(value)
    return "—" if fraction is None else f"{100 * fraction:.2f}"


def is_corruptions(rep: Mapping[str, Any]) -> bool:
    return rep.get("threat_model") == CORRUPTIONS


def best_known(rep: Mapping[str, Any]) -> float | None:
    """The accuracy RobustBench ranks an entry by, as a fraction: ``corruptions_acc`` for corruptions, else
    ``external`` (best known, e.g. an adaptive attack) when present, else ``autoattack_acc``."""
    if is_corruptions(rep):
        return percent(rep.get("corruptions_acc"))
    external = percent(rep.get("external"))
    return external if external is not None else percent(rep.get("autoattack_acc"))


def unreliable_mark(rep: Mapping[str, Any]) -> str:
    """RobustBench's "AA eval. potentially unreliable" cell: yes, no, or unknown (the file does not say)."""
    value = rep.get("unreliable")
    return "unknown" if value is None else ("yes" if value else "no")


def rank_key(rep: Mapping[str, Any]) -> tuple[float, str]:
    """Sort key: best known accuracy, highest first (RobustBench's order), then model id."""
    value = best_known(rep)
    return (-(value if value is not None else -1.0), str(rep.get("model_id")))


def paper_link(rep: Mapping[str, Any]) -> str | None:
    """The paper's URL when it is an http(s) link (anything else is not linked)."""
    link = str(rep.get("link") or "").strip()
    return link if re.match(r"https?://[^\s]+$", link) else None


def plain_text(text: Any) -> str:
    r"""A footnote or title without markup: RobustBench footnotes hold HTML (``<br>``, links) and LaTeX; tags go,
    line breaks become "; ", entities are decoded, ``\(\ell_{\infty}\)`` becomes ℓ∞. Callers still escape the
    result for their format.

    >>> plain_text(r'Uses \(\ell_{\infty} \) = 0.031.<br>See <a href="https://x.org">this</a> &amp; that')
    'Uses ℓ∞ = 0.031. See this & that'
    """

    import html

    value = re.sub(r"<br\s*/?>", "; ", str(text or ""), flags=re.IGNORECASE)
    value = re.sub(r"\\\(\s*\\ell_\{?\\infty\}?\s*\\\)", "ℓ∞", value)
    value = re.sub(r"\\\(\s*\\ell_\{?2\}?\s*\\\)", "ℓ2", value)
    value = re.sub(r"<[^>]*>", "", value)
    value = re.sub(r"([.;:!?])\s*;", r"\1", value)
    return " ".join(html.unescape(value).split())


# --- sections: which table a reported entry joins ------------------------------------------------------------


def eps_section(eps: Any, sections: Iterable[str] = ()) -> tuple[str, str | None]:
    """The eps table an entry with budget ``eps`` belongs to, and a footnote when it joined by rounding.

    An eps equal to one of ``sections`` joins it. A decimal with at least two significant digits that rounds a
    k/255 fraction (one of ``sections`` or a standard one) to its own number of decimals joins that fraction's
    table, as RobustBench lists 0.031 under 8/255. Anything else is its own table.

    >>> eps_section("8/255")
    ('8/255', None)
    >>> eps_section("0.031")[0], eps_section("0.5", ["0.5"]), eps_section("0.1")
    ('8/255', ('0.5', None), ('0.1', None))
    """
    value, text = parse_eps(str(eps))
    for section in sections:
        if abs(parse_eps(section)[0] - value) < 1e-9:
            return section, None
    raw = str(eps).strip()
    match = re.fullmatch(r"0*(\d*)\.(\d+)", raw)
    if match is None or "/" in raw:
        return text, None
    decimals = len(match.group(2))
    significant = len((match.group(1) + match.group(2)).lstrip("0"))
    if significant < 2:
        return text, None
    fractions = dict.fromkeys([*(s for s in sections if "/" in s), *STANDARD_FRACTIONS])
    for fraction in fractions:
        target = parse_eps(fraction)[0]
        if abs(target - value) <= 0.5 * 10.0**-decimals + 1e-12:
            note = (
                f"uses eps = {raw} ≈ {255 * value:.1f}/255 instead of {fraction}; listed in the {fraction} table, "
                "as RobustBench does"
            )
            return fraction, note
    return text, None


# --- import -------------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What :func:`import_reported` did: new entries, files already imported, and one error per bad file."""

    added: int = 0
    known: int = 0
    files: int = 0
    errors: list[tuple[Path, HarnessError]] = field(default_factory=list)
    entries: list[tuple[dict[str, Any], bool]] = field(default_factory=list)  # each file read, and whether it was new

    def by_board(self) -> list[str]:
        """One line per board the files belong to: how many entries were new and known, and each flagged file with
        why (a contradiction between its directory and its fields, an eps that joins a table by rounding, or
        ``unreliable: true``).

        Lines read ``cifar10 Linf 8/255: 2 new, 1 known; flagged: Gamma2020Fake (eps 0.031 listed under 8/255)``.
        """
        boards: dict[tuple[str, str, str], list[tuple[dict[str, Any], bool]]] = {}
        for entry, new in self.entries:
            section = "" if entry["threat_model"] == CORRUPTIONS else eps_section(entry.get("eps"))[0]
            boards.setdefault((entry["dataset"], entry["threat_model"], section), []).append((entry, new))
        lines = []
        for (dataset, threat, section), found in sorted(boards.items()):
            new = sum(1 for _, is_new in found if is_new)
            line = f"{' '.join(filter(None, (dataset, threat, section)))}: {new} new"
            line += f", {len(found) - new} known" if len(found) > new else ""
            flagged = [f"{e['model_id']} ({'; '.join(why)})" for e, _ in found if (why := _flagged(e))]
            lines.append(line + (f"; flagged: {', '.join(flagged)}" if flagged else ""))
        return lines


def _flagged(entry: dict[str, Any]) -> list[str]:
    """Why an imported entry is flagged on the board (empty when it is not)."""
    why = [str(f.get("message") or f.get("code")) for f in entry.get("flags") or [] if isinstance(f, dict)]
    if entry["threat_model"] != CORRUPTIONS:
        section, note = eps_section(entry.get("eps"))
        if note:
            why.append(f"eps {entry.get('eps')} listed under {section}")
    if entry.get("unreliable") is True:
        why.append("AA evaluation potentially unreliable")
    return why


def import_reported(sessions: sessionmaker[Session], root: Path) -> ImportReport:
    """Read every model_info JSON under ``root`` (a file or a directory tree) as a reported entry.

    Each file is parsed, checked and stored in its own transaction; a bad file becomes one entry of
    ``errors`` (naming it) and the others still import. Re-importing an unchanged file adds nothing.
    """
    root = Path(root)
    files = [root] if root.is_file() else sorted(f for f in root.rglob("*.json") if f.parent.name != SIDECAR_DIR)
    report = ImportReport(files=len(files))
    for path in files:
        try:
            raw = path.read_bytes()
            entry = parse_model_info(path, raw)
        except HarnessError as exc:
            report.errors.append((path, exc))
            continue
        except OSError as exc:
            report.errors.append(
                (path, HarnessError(f"{path} cannot be read: {exc.strerror or exc}", "check the file"))
            )
            continue
        except (TypeError, ValueError, AttributeError, KeyError) as exc:  # a structure no model_info file has
            problem = f"{path} is not a RobustBench model_info file ({type(exc).__name__})"
            report.errors.append((path, HarnessError(problem, "pass files from RobustBench's model_info tree")))
            continue
        with store.transaction(sessions) as s:
            if _already_imported(s, entry):
                report.known += 1
                report.entries.append((entry, False))
                continue
            report.entries.append((entry, True))
            s.add(
                store.ModelRecord(
                    name=entry["model_id"],
                    source=REPORTED_SOURCE,
                    file_sha256=entry["file_sha256"],
                    weights_sha256=None,
                    info={"name": entry["model_id"], "reported": entry},
                )
            )
            report.added += 1
    return report


def parse_model_info(path: Path, raw: bytes) -> dict[str, Any]:
    """One model_info file as a reported entry: the file's fields, with ``dataset``/``threat_model`` from its
    directory, ``model_id`` from its name, ``flags`` for contradictions, and ``file_sha256``.

    Raises:
        HarnessError: naming ``path``: not JSON, not a model_info dict, or an unusable number or eps.
    """
    fix = "pass files from RobustBench's model_info/<dataset>/<threat model>/<id>.json tree"
    try:
        data = schema.load_json(raw)
    except schema.SchemaError as exc:
        raise HarnessError(f"{path} is not usable JSON: {exc}", fix) from None
    if not schema.is_name(path.stem):
        raise HarnessError(f"{path}: its model id {schema.shown(path.stem)} is not {schema.NAME_RULE}", fix)
    if not isinstance(data, dict) or "clean_acc" not in data:
        raise HarnessError(f"{path} is not a RobustBench model_info file (needs dataset, eps, clean_acc)", fix)
    flags: list[dict[str, str]] = []
    in_tree = path.parent.name in THREAT_DIRS
    directory_dataset = path.parent.parent.name if in_tree else None
    file_dataset = data.get("dataset")
    if _known(directory_dataset) is not None or (in_tree and not file_dataset):
        dataset = directory_dataset
        if file_dataset and file_dataset != dataset:
            flags.append(
                {
                    "code": "dataset-mismatch",
                    "message": f"the file says dataset {file_dataset!r}; imported under its directory {dataset!r}",
                }
            )
    else:
        dataset = file_dataset
    threat = (
        path.parent.name
        if in_tree
        else data.get("threat_model") or (data.get("robint_bench") or {}).get("threat_model")
    )
    if not dataset or not isinstance(dataset, str):
        raise HarnessError(f"cannot tell the data set of {path}", "keep RobustBench's <dataset>/<threat model> layout")
    if threat not in THREAT_DIRS:
        raise HarnessError(
            f"cannot tell the threat model of {path}", "keep RobustBench's <dataset>/<threat model>/<id>.json layout"
        )
    accuracy = "corruptions_acc" if threat == CORRUPTIONS else "autoattack_acc"
    for key, high in PERCENT_RANGES.items():
        value = percent(data.get(key))
        if value is not None and not 0 <= 100 * value <= high:
            raise HarnessError(f"{path}: {key} {schema.shown(data[key], 40)} is not a percentage in [0, {high}]", fix)
    if percent(data["clean_acc"]) is None:
        raise HarnessError(f"{path}: clean_acc {data['clean_acc']!r} is not a percentage", fix)
    if threat != CORRUPTIONS:
        if percent(data.get("external")) is None and percent(data.get("autoattack_acc")) is None:
            raise HarnessError(f"{path} has neither autoattack_acc nor external as a percentage", fix)
        try:
            parse_eps(str(data.get("eps")))
        except HarnessError as exc:
            raise HarnessError(f"{path}: {exc.problem}", exc.fix) from None
    elif percent(data.get(accuracy)) is None:
        raise HarnessError(f"{path} is a corruptions entry without a corruptions_acc percentage", fix)
    return {
        **data,
        "dataset": dataset,
        "threat_model": threat,
        "model_id": path.stem,
        "file_dataset": file_dataset,
        "flags": flags,
        "file_sha256": hashlib.sha256(raw).hexdigest(),
    }


def _already_imported(s: Session, entry: dict[str, Any]) -> bool:
    rows = s.scalars(
        select(store.ModelRecord).where(
            store.ModelRecord.file_sha256 == entry["file_sha256"], store.ModelRecord.source == REPORTED_SOURCE
        )
    )
    key = (entry["model_id"], entry["dataset"], entry["threat_model"])
    return any(
        (r.info["reported"].get("model_id"), r.info["reported"].get("dataset"), r.info["reported"].get("threat_model"))
        == key
        for r in rows
    )


def reported_entries(s: Session) -> list[dict[str, Any]]:
    """Every imported reported entry (the newest per model id, data set and threat model), with ``imported_at``."""
    rows = s.scalars(
        select(store.ModelRecord)
        .where(store.ModelRecord.source == REPORTED_SOURCE)
        .order_by(store.ModelRecord.created_at, store.ModelRecord.id)
    ).all()
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        rep = {"flags": [], **row.info["reported"], "imported_at": row.created_at}
        latest[(rep["model_id"], rep["dataset"], rep["threat_model"])] = rep
    return list(latest.values())


# --- export -------------------------------------------------------------------------------------------------

# RobustBench's field <- the METADATA key (or ``export --field``) it is taken from.
EXPORT_FIELDS = {
    "link": "link",
    "name": "paper",
    "authors": "authors",
    "additional_data": "additional_data",
    "number_forward_passes": "number_forward_passes",
    "venue": "venue",
    "architecture": "architecture",
    "reported": "reported_acc",
}


def export_fields(run: store.RunRecord, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The submission's facts RobustBench needs, from METADATA updated by ``overrides``.

    Raises:
        HarnessError: naming every missing or malformed field (nothing is filled in with a default).
    """
    info = {**run.model.info, **(overrides or {})}
    zoo = run.model.source.startswith("robustbench:")
    missing = [key for key in EXPORT_FIELDS.values() if key not in info]
    if zoo and "architecture" not in (overrides or {}) and "architecture" not in missing:
        missing.append("architecture")  # the zoo records the class name only, not RobustBench's architecture
    if missing:
        why = " (a zoo run records only the model's class name)" if zoo and "architecture" in missing else ""
        raise HarnessError(
            f"cannot export run {run.id} in RobustBench's format: METADATA of {run.model.name} lacks "
            f"{', '.join(missing)}{why}",
            "add them to the submission's METADATA (link, paper = the title, authors, venue, additional_data, "
            "architecture, reported_acc = the paper's robust accuracy as a fraction or null, "
            "number_forward_passes), or pass --field KEY=VALUE to export",
        )
    bad = []
    if not isinstance(info["additional_data"], bool):
        bad.append(f"additional_data must be true or false, not {info['additional_data']!r}")
    passes = info["number_forward_passes"]
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        bad.append(f"number_forward_passes must be a positive integer, not {passes!r}")
    claim = info["reported_acc"]
    if claim is not None and (isinstance(claim, bool) or not isinstance(claim, int | float) or not 0 <= claim <= 1):
        bad.append(f"reported_acc must be a fraction in [0, 1] or null, not {claim!r}")
    for key in ("link", "paper", "authors", "venue", "architecture"):
        if not isinstance(info[key], str):
            bad.append(f"{key} must be a string, not {info[key]!r}")
    if isinstance(info["link"], str) and paper_link({"link": info["link"]}) is None:
        bad.append(f"link must be an http(s) URL, not {schema.shown(info['link'], 80)}")
    if bad:
        raise HarnessError(f"cannot export run {run.id} in RobustBench's format: {'; '.join(bad)}", "fix METADATA")
    return {rb: info[key] for rb, key in EXPORT_FIELDS.items()}


def unreliable_reasons(run: store.RunRecord) -> list[str]:
    """Why RobustBench would not take the run as a standard AutoAttack evaluation (empty when it would)."""
    reasons = []
    if run.attack != "standard":
        reasons.append(f"attack {run.attack!r} instead of AutoAttack standard")
    info = _known(run.dataset)
    full = info.test_size if info is not None else None
    if full is None:
        reasons.append(f"test data {run.dataset!r} is not an official test split")
    elif run.n_examples < full:
        reasons.append(f"first {run.n_examples} of the {full} test images (RobustBench evaluates all {full})")
    if run.flags:
        reasons.append("flagged: " + ", ".join(str(f.get("code")) for f in run.flags))
    return reasons


SIDECAR_DIR = "robint-bench"  # beside a model_info file: <threat model>/robint-bench/<model>.json
SIDECAR_FORMAT = "robint-bench scores"


def model_info(run: store.RunRecord, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A completed run as a RobustBench model_info dict: RobustBench's fields only (~15 lines; robint-bench's own
    numbers are the :func:`sidecar`'s)."""
    facts = export_fields(run, overrides)
    reasons = unreliable_reasons(run)
    footnote = (
        f"Evaluated by robint-bench (run {run.id}): AutoAttack {run.attack}, seed {run.seed}, "
        f"first {run.n_examples} test images."
    )
    extra = (overrides or {}).get("footnote", run.model.info.get("footnote"))
    if extra:
        footnote = f"{extra} {footnote}"
    if reasons:
        footnote += " Potentially unreliable: " + "; ".join(reasons) + "."
    claim = facts.pop("reported")
    return {
        **facts,
        "dataset": run.dataset,
        "eps": run.eps_text,
        "clean_acc": f"{100 * run.clean_acc:.2f}",
        "reported": "" if claim is None else f"{100 * claim:.2f}",
        "autoattack_acc": f"{100 * run.robust_acc:.2f}",
        "unreliable": bool(reasons),
        "footnote": footnote,
    }


def sidecar(run: store.RunRecord) -> dict[str, Any]:
    """robint-bench's own numbers of a run exported in RobustBench's format (written beside its model_info file,
    in ``robint-bench/``): the run, why RobustBench would find it unreliable, and its scores
    (``metrics[method][metric]``, as in ``results --json``)."""
    return {
        "format": SIDECAR_FORMAT,
        "run_id": run.id,
        "model": run.model.name,
        "dataset": run.dataset,
        "threat_model": run.threat_model,
        "eps": run.eps_text,
        "n_examples": run.n_examples,
        "attack": run.attack,
        "seed": run.seed,
        "clean_acc": run.clean_acc,
        "robust_acc": run.robust_acc,
        "flags": run.flags,
        "unreliable_reasons": unreliable_reasons(run),
        "metrics": metric_summary(run),
    }


def sidecar_path(model_info_path: Path) -> Path:
    """Where the sidecar of ``model_info_path`` goes: ``robint-bench/<same name>`` beside it (RobustBench's
    leaderboard code reads every ``*.json`` of a threat model's folder, not its subfolders)."""
    return model_info_path.parent / SIDECAR_DIR / model_info_path.name


def _known(name: str | None) -> DatasetInfo | None:
    """The registered data set ``name`` (harness.data), or None. Registered data sets are the ones a model_info tree
    is organised by (RobustBench's, and robint-bench's own exports): a ``<name>/<threat model>/`` directory with
    another name is not trusted over the file's ``dataset`` field, and a ``folder:`` data set has no official test
    split (``DatasetInfo.test_size``)."""
    from harness.data import DATASETS  # the data layer's facts, imported on use: it imports torch

    return DATASETS.get(name) if name in DATASETS else None


def export_path(root: Path, run: store.RunRecord) -> Path:
    return root / run.dataset / run.threat_model / f"{run.model.name}.json"


def read_fields_file(path: Path) -> dict[str, Any]:
    """``--fields-file``: a JSON object of the METADATA facts RobustBench's format needs (``--field`` overrides it)."""
    fix = 'write a JSON object, e.g. {"link": "https://arxiv.org/abs/...", "venue": "ICLR 2024", "reported_acc": 0.57}'
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise HarnessError(f"cannot read --fields-file {path}: {exc.strerror or exc}", "pass a readable file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HarnessError(f"--fields-file {path} is not JSON ({exc})", fix) from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise HarnessError(f"--fields-file {path} holds a {type(data).__name__}, not a JSON object", fix)
    return data


def parse_fields(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict; values are JSON when they parse (true, 1, 0.57, null), else text.

    >>> parse_fields(["additional_data=false", "venue=ICLR 2024", "reported_acc=0.57"])
    {'additional_data': False, 'venue': 'ICLR 2024', 'reported_acc': 0.57}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"--field {item!r} is not KEY=VALUE", "e.g. --field venue='ICLR 2024'")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out
