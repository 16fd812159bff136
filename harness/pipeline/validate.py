"""Schemas for everything a worker reports: the parent decides, the worker only computes.

A submission's code runs in the worker, so anything the worker sends may be forged (a submission can patch the
harness inside its own process, or write to the protocol pipe itself). Each message is checked here against the
request in flight before the parent uses it:

- ``METADATA`` (:func:`metadata`, from harness.pipeline.metadata): known keys with types, ranges, lengths and a
  safe character set for names; the parent resolves the run's configuration from it (harness.pipeline.resolve),
  never the worker.
- attack chunks (:class:`AttackSchema`): only the requested chunks, each once; predictions as integer classes of
  the right shape; adversarial examples as finite floats of the data set's shape (their eps-ball is verified by
  harness.attack.verify against the parent's own data); AutoAttack's log as bounded numbers (of the run's
  sub-attacks only: harness.attack.registry) and text.
- explanations (:class:`ExplainSchema`): only the requested methods and (method, metric) pairs, each once;
  attribution maps of the right shapes; finite values; ``details`` only with known keys and bounded values, and
  ``family``/``higher_is_better`` taken from the parent's own metric registry.
- feature visualisations (:func:`visualised`), re-classification logits (:func:`classified`), the contract check
  (:func:`checked`).

Anything else ends the run with one line. ``max_line_*`` give the longest line each request can legitimately
produce (the channel refuses longer ones before decoding them).

Long because it is the whole trust boundary: one schema per worker reply, kept in one file so that every message the
sandbox can send is checked in one place (DETAIL_KEYS lists every allowed detail).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.attack.autoattack import MAX_WARNINGS
from harness.attack.registry import sub_attacks
from harness.core.errors import HarnessError
from harness.pipeline.metadata import metadata, text
from harness.report.escape import terminal
from metrics.bounds import BOUNDS
from metrics.featurevis.pipeline import FeatureVisConfig
from metrics.featurevis.seeds import Seeds
from metrics.functional.degenerate import DEGENERATE_KINDS
from metrics.registry import METRICS
from metrics.suite import SuiteConfig
from metrics.suite_reliability import METHOD as RELIABILITY_METHOD
from metrics.suite_reliability import stored_verdict, verdict_details

CONTRACT_FLAGS = frozenset({"randomised"})
CELLS = 4  # GridPG composites are 2x2

_FIX = "the submission may be tampering with the worker; run it with --trusted --debug to investigate"
_ENVELOPE = 1 << 16  # bytes of JSON around a message's arrays


def _reject(what: str, fix: str = _FIX) -> HarnessError:
    return HarnessError(f"the worker returned {what}", fix)


def loaded(reply: dict[str, Any]) -> dict[str, Any]:
    """The validated METADATA of a ``loaded`` reply."""
    _keys(reply, {"op", "metadata"}, "loaded")
    return metadata(reply["metadata"])


# --- the contract check ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """What the contract check reports: its flags (known codes only), the device, the gradient probe."""

    flags: list[str]
    device: str
    probe: dict[str, float]


_DEVICE = re.compile(r"^(cpu|cuda(:\d{1,2})?|mps)$")
PROBE_KEYS = ("logit_scale", "zero_gradient_fraction", "gradient_scale", "nonfinite_gradient_fraction")


def checked(reply: dict[str, Any]) -> Checked:
    """A ``checked`` reply: flags from :data:`CONTRACT_FLAGS`, a device name, the gradient probe's numbers."""
    _keys(reply, {"op", "flags", "device", "probe"}, "checked")
    flags, device, probe = reply["flags"], reply["device"], reply["probe"]
    if not isinstance(flags, list) or not all(isinstance(f, str) and f in CONTRACT_FLAGS for f in flags):
        raise _reject("unknown contract-check flags")
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise _reject(f"a malformed device name {terminal(device, 40)!r}")
    if not isinstance(probe, dict) or set(probe) != set(PROBE_KEYS):
        raise _reject("a malformed gradient probe")
    numbers = {}
    for key in PROBE_KEYS:
        value = probe[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
            raise _reject(f"a malformed gradient probe ({key})")
        numbers[key] = float(value)
    if numbers["zero_gradient_fraction"] > 1 or numbers["nonfinite_gradient_fraction"] > 1:
        raise _reject("a malformed gradient probe (fractions above 1)")
    return Checked(sorted(set(flags)), device, numbers)


# --- the attack ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    clean_pred: np.ndarray
    adv_pred: np.ndarray
    x_adv: np.ndarray  # float32
    accuracy_after: dict[str, float]
    warnings: list[str]


class AttackSchema:
    """The chunks one ``attack`` request may return: each requested ``[start, end)`` once, in any order; AutoAttack's
    log may report ``clean`` and the sub-attacks of ``attacks`` (default: every registered one,
    harness.attack.registry)."""

    def __init__(
        self,
        chunks: list[tuple[int, int]],
        num_classes: int,
        shape: tuple[int, ...],
        attacks: Iterable[str] | None = None,
    ) -> None:
        self.pending = {(int(a), int(b)) for a, b in chunks}
        self.num_classes, self.shape = num_classes, tuple(shape)
        self.logged = frozenset({"clean", *(sub_attacks() if attacks is None else attacks)})

    def chunk(self, m: dict[str, Any]) -> Chunk:
        keys = {"op", "start", "end", "clean_pred", "adv_pred", "x_adv", "accuracy_after", "warnings"}
        _keys(m, keys, "chunk")
        start, end = m["start"], m["end"]
        if not (_int(start) and _int(end)) or (start, end) not in self.pending:
            raise _reject(f"attack results for examples {terminal(start, 20)}..{terminal(end, 20)}, never requested")
        n = end - start
        clean_pred = _classes(m["clean_pred"], n, self.num_classes, "clean predictions")
        adv_pred = _classes(m["adv_pred"], n, self.num_classes, "adversarial predictions")
        x_adv = _floats(m["x_adv"], (n, *self.shape), "adversarial examples", finite=True).astype(np.float32)
        accuracy = m["accuracy_after"]
        allowed = self.logged
        if not isinstance(accuracy, dict) or len(accuracy) > len(allowed):
            raise _reject("a malformed AutoAttack log (accuracy_after)")
        if not set(accuracy) <= allowed:
            unasked = ", ".join(sorted(terminal(k, 40) for k in set(accuracy) - allowed))
            raise _reject(f"an AutoAttack log for attacks that were not requested ({unasked})")
        after = {k: _reported(v, f"an accuracy after {k} of", 0.0, 1.0) for k, v in accuracy.items()}
        warnings = m["warnings"]
        if (
            not isinstance(warnings, list)
            or len(warnings) > MAX_WARNINGS
            or not all(isinstance(w, str) for w in warnings)
        ):
            raise _reject("malformed AutoAttack warnings")
        self.pending.discard((start, end))
        return Chunk(start, end, clean_pred, adv_pred, x_adv, after, [terminal(w, 500) for w in warnings])

    def finish(self) -> None:
        if self.pending:
            missing = ", ".join(f"{a}..{b}" for a, b in sorted(self.pending)[:5])
            raise _reject(f"no attack results for the requested examples {missing}")


def max_line_attack(batch_size: int, shape: tuple[int, ...]) -> int:
    """The longest ``chunk`` line: float64 adversarial examples and int64 predictions of one chunk, base64."""
    return _b64(batch_size * (8 * math.prod(shape) + 16)) + _ENVELOPE


# --- explanations ----------------------------------------------------------------------------------------------

_Validator = Any
DETAIL_KEYS: dict[str, _Validator] = {}  # filled below: key -> function(value, context) -> value


class ExplainSchema:
    """The messages one ``explain`` request may send: attributions of each requested method (unless the parent
    sent them as cached) once, then one score per requested (method, metric) pair."""

    def __init__(
        self,
        suite: SuiteConfig,
        done: set[tuple[str, str]],
        cached: set[str],
        shape: tuple[int, ...],
    ) -> None:
        self.todo = [pair for pair in suite.pairs() if pair not in done]
        self.missing = set(self.todo)
        self.methods = {method for method, _ in self.todo}
        # the reliability pseudo-method explains inside its perturbations, and the bounds (a model's floor and ceiling
        # of the curve metrics) use no attributions: neither sends attributions of its own
        no_maps = {RELIABILITY_METHOD, *BOUNDS}
        self.needs = self.methods - set(cached) - no_maps
        self.have = (set(cached) & self.methods) | (self.methods & no_maps)
        self.n, self.shape, self.suite = suite.n_explain, tuple(shape), suite

    def message(self, m: dict[str, Any]) -> dict[str, Any]:
        if m["op"] == "attributions":
            return self._attributions(m)
        return self._score(m)

    def _attributions(self, m: dict[str, Any]) -> dict[str, Any]:
        _keys(m, {"op", "method", "main", "grid"}, "attributions")
        method = m["method"]
        if not isinstance(method, str) or method not in self.needs:
            raise _reject(f"attributions of {terminal(method, 40)!r}, which were not requested (or came twice)")
        main = _floats(m["main"], (self.n, *self.shape), f"{method} attributions", finite=False)
        grid = m["grid"]
        if grid is not None:
            c, h, w = self.shape if len(self.shape) == 3 else (None, None, None)
            if (
                not isinstance(grid, np.ndarray)
                or grid.ndim != 4
                or tuple(grid.shape[1:])
                not in (
                    (c, h, w),
                    (c, 2 * h, 2 * w) if h else None,
                )
            ):
                raise _reject(f"{method} GridPG attributions of a malformed shape")
            if grid.shape[0] > CELLS * self.suite.n_composites:
                raise _reject(f"{method} GridPG attributions for composites never requested")
            grid = _floats(grid, grid.shape, f"{method} GridPG attributions", finite=False)
        self.needs.discard(method)
        self.have.add(method)
        return {"op": "attributions", "method": method, "main": main, "grid": grid}

    def _score(self, m: dict[str, Any]) -> dict[str, Any]:
        _keys(m, {"op", "method", "metric", "values", "details"}, "score")
        pair = (m["method"], m["metric"])
        if not all(isinstance(p, str) for p in pair) or pair not in self.missing:
            raise _reject(
                f"a score for ({terminal(pair[0], 40)}, {terminal(pair[1], 40)}), which was not requested "
                "(or came twice)"
            )
        if pair[0] not in self.have:
            raise _reject(f"a score of {pair[0]} before its attributions")
        values = m["values"]
        limit = CELLS * self.suite.n_composites if pair[1] == "gridpg" else self.n
        if not isinstance(values, list) or len(values) > limit:
            raise _reject(f"more than {limit} values for {pair[0]} x {pair[1]}")
        values = [_reported(v, f"a value of {pair[0]} x {pair[1]} of", -1e300, 1e300) for v in values]
        details = _details(m["details"], pair, len(values), self)
        self.missing.discard(pair)
        return {"op": "score", "method": pair[0], "metric": pair[1], "values": values, "details": details}

    def finish(self) -> None:
        if self.missing:
            pairs = ", ".join(f"{a} x {b}" for a, b in sorted(self.missing)[:5])
            raise _reject(f"no scores for the requested {pairs}")


def _details(raw: Any, pair: tuple[str, str], n_values: int, schema: ExplainSchema) -> dict[str, Any]:
    if not isinstance(raw, dict) or len(raw) > 32:
        raise _reject(f"malformed details for {pair[0]} x {pair[1]}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("family", "higher_is_better"):
            continue  # the parent's own registry says what they are
        check = DETAIL_KEYS.get(key) if isinstance(key, str) else None
        if check is None:
            raise _reject(
                f"an unknown detail {terminal(key, 40)!r} for {pair[0]} x {pair[1]}",
                "a new detail of a metric must be added to DETAIL_KEYS in harness/pipeline/validate.py",
            )
        try:
            out[key] = check(value, n_values, schema)
        except (TypeError, ValueError):
            raise _reject(f"a malformed detail {key!r} for {pair[0]} x {pair[1]}") from None
    if pair[0] == RELIABILITY_METHOD:
        return _reliability_details(out, pair)
    spec = METRICS.get(pair[1])
    return {"family": spec.family, "higher_is_better": spec.higher_is_better, **out}


def _reliability_details(out: dict[str, Any], pair: tuple[str, str]) -> dict[str, Any]:
    """A reliability score's details: the four criteria are required; NR, AR and the verdict are the parent's."""
    if not RELIABILITY_KEYS <= set(out):
        raise _reject(f"a reliability score of {pair[1]} without its criteria ({', '.join(sorted(RELIABILITY_KEYS))})")
    try:
        verdict = stored_verdict(pair[1], out)  # recomputed from the criteria and kept counts alone
    except ValueError as exc:
        raise _reject(f"malformed reliability details of {pair[1]}: {exc}") from None
    out.update(verdict_details(verdict))
    return {"family": "reliability", "higher_is_better": True, **out}


def _counts(value: Any, *_: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not set(value) <= set(DEGENERATE_KINDS):
        raise ValueError
    return {k: _count(v) for k, v in value.items()}


def _count(value: Any, *_: Any) -> int:
    if not _int(value) or not 0 <= value <= 10**9:
        raise ValueError
    return value


def _short_text(value: Any, *_: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    return terminal(value, 500)


def _finite(value: Any, *_: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError
    return float(value)


def _flag(value: Any, *_: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError
    return value


def _layer_means(value: Any, *_: Any) -> list[float]:
    if not isinstance(value, list) or len(value) > 1000:
        raise ValueError
    return [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else _none(v) for v in value]


def _none(value: Any) -> None:
    if value is not None:
        raise ValueError


_ROW = re.compile(r"^[0-9]{1,6}(-[0-9]{1,6}){0,7}:[0-9]{1,2}$")


def _rows(value: Any, n_values: int, _schema: Any) -> list[str]:
    if not isinstance(value, list) or len(value) != n_values:
        raise ValueError
    if not all(isinstance(r, str) and _ROW.match(r) for r in value):
        raise ValueError
    return value


def _index(value: Any, n_values: int, schema: ExplainSchema) -> list[int]:
    if not isinstance(value, list) or len(value) != n_values or not all(_int(i) and 0 <= i < schema.n for i in value):
        raise ValueError
    return value


def _criterion(value: Any, *_: Any) -> float:
    """A MetaQuantus criterion or MC value: in [0, 1], or NaN where a test could not be scored."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value != value or 0 <= value <= 1):
        raise ValueError
    return float(value)


def _by_test(value: Any, *_: Any) -> dict[str, dict[str, float]]:
    if not isinstance(value, dict) or not set(value) <= {"model", "input"}:
        raise ValueError
    out = {}
    for name, test in value.items():
        if not isinstance(test, dict) or set(test) != {"mc", "mc_std"}:
            raise ValueError
        out[name] = {"mc": _criterion(test["mc"]), "mc_std": _criterion(test["mc_std"])}
    return out


def _method_names(value: Any, *_: Any) -> list[str]:
    if not isinstance(value, list) or not 0 < len(value) <= 8 or not all(isinstance(v, str) for v in value):
        raise ValueError
    return [terminal(v, 40) for v in value]


def _settings(value: Any, *_: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > 8 or not all(isinstance(k, str) for k in value):
        raise ValueError
    return {terminal(k, 40): v if _int(v) else _short_text(v) for k, v in value.items()}


def _kept_counts(value: Any, *_: Any) -> dict[str, dict[str, list[list[int]]]]:
    """Per test ("model", "input"), the kept-image counts of each criterion ("nr", "ar"): iterations x perturbations
    lists of counts, from which the parent recomputes the reliability verdict."""
    if not isinstance(value, dict) or not value or not set(value) <= {"model", "input"}:
        raise ValueError
    out = {}
    for test, criteria in value.items():
        if not isinstance(criteria, dict) or set(criteria) != {"nr", "ar"}:
            raise ValueError
        out[test] = {}
        for name, rows in criteria.items():
            if not isinstance(rows, list) or not 0 < len(rows) <= 64:
                raise ValueError
            if not all(isinstance(r, list) and 0 < len(r) <= 64 for r in rows):
                raise ValueError
            out[test][name] = [[_count(c) for c in r] for r in rows]
    return out


def _ignored(value: Any, *_: Any) -> None:
    """A detail the parent computes itself (the reliability verdict): what the worker sent is discarded."""
    return None


RELIABILITY_KEYS = frozenset({"iac_nr", "iac_ar", "iec_nr", "iec_ar"})
DETAIL_KEYS.update(
    {
        **{key: _criterion for key in (*RELIABILITY_KEYS, "mc", "noise_resilience", "adversary_reactivity")},
        **{key: _ignored for key in ("status", "thresholds", "p_values", "null_draws", "alpha", "reason")},
    },
    kept_counts=_kept_counts,
    reliable=_flag,
    by_test=_by_test,
    methods=_method_names,
    settings=_settings,
)
DETAIL_KEYS.update(
    degenerate=_counts,
    degenerate_grid=_counts,
    dropped_degenerate=_counts,
    degenerate_rule=_short_text,
    not_applicable=_short_text,
    dropped_non_finite=_count,
    recognition=_finite,
    chance=_finite,
    native=_flag,
    composites=_count,
    randomisation_per_layer=_layer_means,
    rows=_rows,
    index=_index,
)


def max_line_explain(suite: SuiteConfig, shape: tuple[int, ...]) -> int:
    """The longest ``explain`` line: float64 attributions of the explained images and of the GridPG composites
    (at twice the resolution), or a score's values with their row ids."""
    numel = math.prod(shape)
    arrays = 8 * numel * (suite.n_explain + CELLS * suite.n_composites * 4)
    values = 64 * max(suite.n_explain, CELLS * suite.n_composites)
    return _b64(arrays) + values + _ENVELOPE


# --- feature visualisation, re-classification ------------------------------------------------------------------


def visualised(out: dict[str, Any], x: Any, num_classes: int, seeds: Seeds) -> dict[str, Any]:
    """A ``visualised`` reply, checked for structure here and for shapes, range, steps, classes and the generation
    ball around the parent's own ``seeds`` by ``metrics.featurevis.scoring.validate``."""
    from metrics.featurevis import scoring

    _keys(out, {"op", "inversion", "generation"}, "visualised")
    inv, gen = out["inversion"], out["generation"]
    for name, section in (("inversion", inv), ("generation", gen)):
        if not isinstance(section, dict):
            raise _reject(f"a malformed {name} section")
        if "skipped" in section:
            _keys(section, {"skipped"}, name)
            section["skipped"] = terminal(text(section["skipped"], f"the {name} reason", 500, fix=_FIX), 500)
    if "skipped" not in inv:
        _keys(inv, {"how", "targets", "kinds"}, "inversion")
        inv["how"] = terminal(text(inv["how"], "the representation's description", 200, fix=_FIX), 200)
        if not isinstance(inv["kinds"], dict) or not all(isinstance(k, dict) for k in inv["kinds"].values()):
            raise _reject("malformed inversions")
        for kind, entry in inv["kinds"].items():
            wanted = {"images", "loss_seed", "loss_final", "steps"} | (
                {"seed_index"} if kind == "other image" else set()
            )
            _keys(entry, wanted, f"inversion ({terminal(kind, 20)})")
            if not all(isinstance(entry[k], np.ndarray) and entry[k].dtype.kind in "fiu" for k in wanted):
                raise _reject("inversions that are not numeric arrays")
            if "seed_index" in entry:
                index = entry["seed_index"]
                if index.dtype.kind not in "iu" or index.ndim != 1 or ((index < 0) | (index >= len(x))).any():
                    raise _reject("inversion seed indices outside the run's test images")
    if "skipped" not in gen:
        _keys(gen, {"classes", "images", "seeds", "logit_seed", "logit_final", "downsample"}, "generation")
        if not _int(gen["downsample"]) or not 1 <= gen["downsample"] <= 64:
            raise _reject("a malformed generation downsampling factor")
        for key in ("classes", "images", "seeds", "logit_seed", "logit_final"):
            if not isinstance(gen[key], np.ndarray) or gen[key].dtype.kind not in "fiu":
                raise _reject(f"generation {key} that is not a numeric array")
        if gen["seeds"].shape != gen["images"].shape:
            raise _reject("generation seeds of another shape than the images")
    try:
        scoring.validate(out, seeds, num_classes)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise _reject(str(exc) if isinstance(exc, ValueError) else "malformed feature visualisations") from None
    return out


def max_line_visualise(config: FeatureVisConfig, shape: tuple[int, ...], num_classes: int) -> int:
    """The longest ``visualised`` line: float64 inversions (two seed kinds) and generations with their seeds."""
    images = 2 * config.n_inversion + 2 * config.per_class * num_classes
    return _b64(8 * (images * math.prod(shape) + 4 * images)) + _ENVELOPE


def classified(reply: dict[str, Any], n: int, num_classes: int) -> np.ndarray:
    """The logits ``(n, num_classes)`` of a ``classified`` reply (finite floats)."""
    _keys(reply, {"op", "logits"}, "classified")
    return _floats(reply["logits"], (n, num_classes), "re-classification logits", finite=True)


def max_line_classify(n: int, num_classes: int) -> int:
    return _b64(8 * n * num_classes) + _ENVELOPE


def signed(reply: dict[str, Any], shape: tuple[int, ...]) -> np.ndarray:
    """The gradient signs ``shape`` of a ``signed`` reply: integers in {-1, 0, 1}."""
    _keys(reply, {"op", "signs"}, "signed")
    signs = reply["signs"]
    if not isinstance(signs, np.ndarray) or signs.dtype.kind not in "iu" or tuple(signs.shape) != tuple(shape):
        raise _reject(f"gradient signs that are not integers of shape {tuple(shape)}")
    if (np.abs(signs.astype(np.int64)) > 1).any():
        raise _reject("gradient signs outside {-1, 0, 1}")
    return signs.astype(np.int8)


def max_line_signs(shape: tuple[int, ...]) -> int:
    return _b64(8 * math.prod(shape)) + _ENVELOPE


# --- helpers ---------------------------------------------------------------------------------------------------


def _keys(m: Any, wanted: set[str], what: str) -> None:
    """``m`` is a dict with exactly the keys ``wanted``; a message (one with an "op") is the reply ``what``."""
    if not isinstance(m, dict) or set(m) != set(wanted) or ("op" in wanted and m["op"] != what):
        raise _reject(f"a malformed {what!r} message")


def _reported(value: Any, what: str, low: float, high: float) -> float:
    """A number the worker reported: finite and within [low, high]."""
    finite = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not finite or not low <= value <= high:
        raise _reject(f"{what} {terminal(value, 40)}, not a finite number in [{low:g}, {high:g}]")
    return value


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _classes(value: Any, n: int, num_classes: int, what: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu" or value.shape != (n,):
        raise _reject(f"{what} that are not {n} integer classes")
    if ((value < 0) | (value >= num_classes)).any():
        raise _reject(f"{what} outside the {num_classes} classes")
    return value.astype(np.int64)


def _floats(value: Any, shape: tuple[int, ...], what: str, *, finite: bool) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.dtype.itemsize > 8:
        raise _reject(f"{what} that are not a float array")
    if tuple(value.shape) != tuple(shape):
        raise _reject(f"{what} of shape {tuple(value.shape)}, expected {tuple(shape)}")
    if finite and not np.isfinite(value).all():
        raise _reject(f"non-finite {what}")
    return value


def _b64(raw_bytes: int) -> int:
    return 4 * (raw_bytes + 256) // 3 + 4
