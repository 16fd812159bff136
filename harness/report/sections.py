"""leaderboard.md's analysis sections, each a short renderer of a board's analysis values: the declared rules, the
controls and the bar, metric reliability, the comparison with standard training and its sensitivity analyses, the
correlations across recipes, the dose-response, and the summary of what the evidence shows per metric family."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from harness.report import rules
from harness.report.board import Board
from harness.report.columns import label
from harness.report.comparisons import Comparison
from harness.report.correlations import MIN_UNITS
from harness.report.escape import markdown_cell, markdown_text
from harness.report.values import PLACEMENT_SENSITIVITY, PRIMARY, SENSITIVITY, normalisable
from metrics.registry import FEATUREVIS_METHOD, HEADLINE, METRICS
from metrics.stats.permutation import MAX_EXACT

PERMUTATION = f"exact over all orderings up to {MAX_EXACT} units, 9,999 random orderings beyond"


def table(rows: Sequence[Sequence[str]]) -> str:
    """A markdown table; in every cell ``|`` is escaped and control characters (newlines) are shown as escapes, so
    no cell can end its row or add a column. Stored text is escaped where it enters a cell (``markdown_text``)."""
    head, *body = rows
    lines = ["| " + " | ".join(map(markdown_cell, head)) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(map(markdown_cell, row)) + " |" for row in body]
    return "\n".join(lines) + "\n"


def _p(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3g}"


def rules_section(board: Board) -> str:
    """The rules fixed before any outcome, and the models the accuracy rule leaves out."""
    text = "\n".join(f"- {markdown_text(s, 1000)}" for s in rules.STATEMENTS) + "\n"
    if board.excluded:
        text += "\nLeft out of every test by the accuracy rule: " + "; ".join(
            f"{markdown_text(i.model)} ({markdown_text(i.reason, 300)})" for i in board.excluded
        )
        text += ".\n"
    return text


def controls_section(board: Board) -> str:
    """The bar of each headline score on each model, and the board's gate per (method, metric)."""
    rows = [["Model", "Method", "Score", "Bar (best model-free control)", "Method − bar [95%]", "Beats it?"]]
    for c in sorted(board.controls, key=lambda c: (c.method, c.metric, c.model)):
        rows.append(
            [
                markdown_text(c.model),
                markdown_text(c.method),
                label(c.metric),
                f"{c.bar.replace('control_', '')} ({c.bar_mean:.3f})",
                f"{c.diff:+.3f} [{c.low:+.3f}, {c.high:+.3f}]",
                "yes" if c.beats else "no †",
            ]
        )
    text = table(rows) if len(rows) > 1 else ""
    gates = [g for g in (board.gates.found.values() if board.gates else []) if g.method != FEATUREVIS_METHOD]
    if gates:
        grows = [
            ["Method", "Score", "Recipes", "Mean improvement over the bar", "One-sided p (t over recipes)", "Verdicts?"]
        ]
        for g in sorted(gates, key=lambda g: (g.method, g.metric)):
            grows.append(
                [
                    markdown_text(g.method),
                    label(g.metric),
                    str(g.units) if g.units else "—",
                    "—" if math.isnan(g.mean) else f"{g.mean:+.3f}",
                    _p(g.p_value),
                    "yes" if g.passes else f"no: {markdown_text(g.reason, 300)}",
                ]
            )
        text += "\nThe gate: a (method, score) may carry verdicts on this board only when it beats its bar across the "
        text += "included recipes (each recipe one unit: its models' mean improvement; one-sided t test at 5%).\n\n"
        text += table(grows)
    text += (
        "\nThe bar of a score on a model is the best of the model-free controls scored like a method on the same "
        "images (random maps; the input times noise; 1 − x, background first; a blurred x; edges), each carrying "
        "something of the input and nothing of the model; a method beats it when the one-sided paired test of its "
        "improvement is significant at 5% (per model: descriptive, marked †). The randomisation tests are held to "
        "the input-structured controls only (independent noise draws are uncorrelated, so random maps pass them by "
        "construction). Complexity (Gini) has no null and gets no verdict; the mask metrics (relevance mass ratio, "
        "pointing game) use the input's own support as the object, which the input control reaches, and are off "
        "the headline.\n"
    )
    return text


def reliability_section(board: Board) -> str:
    rows = [
        [
            "Metric",
            "Model",
            "MC ↑",
            "Noise resilience ↑ (null's 95%)",
            "Adversary reactivity ↑ (null's 95%)",
            "Reliable?",
        ]
    ]
    for r in sorted(board.reliability, key=lambda r: (r.metric, r.model)):
        nr_t, ar_t = r.thresholds
        rows.append(
            [
                label(r.metric),
                markdown_text(r.model),
                f"{r.mc:.2f}",
                f"{r.noise_resilience:.2f}" + ("" if math.isnan(nr_t) else f" ({nr_t:.2f})"),
                f"{r.adversary_reactivity:.2f}" + ("" if math.isnan(ar_t) else f" ({ar_t:.2f})"),
                r.status + (f": {markdown_text(r.reason, 200)}" if r.status == "not assessed" and r.reason else ""),
            ]
        )
    return table(rows) + (
        "\nMetaQuantus (Hedström et al., TMLR 2023) with the run's own attribution methods: noise resilience is the "
        "mean of IAC_NR and IEC_NR (the score should stay put under minor model and input perturbations that keep the "
        "predictions), adversary reactivity the mean of IAC_AR and IEC_AR (it should move under disruptive ones). A "
        "metric is reliable when both exceed the upper 95% quantile of a noise metric's criteria simulated in the "
        "same setting (a pure-noise metric passes in under 5% of runs; the old bar of 0.5 let it pass in 14%); "
        "metrics never measured (GridPG, the randomisation tests) are not assessed and never counted as reliable.\n"
    )


def correlation_section(board: Board) -> str:
    rows = [
        [
            "Method",
            "Score",
            "Recipes (models)",
            "Values",
            "Spearman ρ (robust acc, score)",
            "p (smallest possible)",
            "Holm-adjusted p",
            "Robust → more interpretable?",
        ]
    ]
    for c in board.correlations:
        values = ("normalised" if c.normalised else "raw") + (f", {c.n_examples} images" if c.n_examples > 1 else "")
        rho = "n/a" if math.isnan(c.rho) else f"{c.rho:+.2f}"
        p = "—" if math.isnan(c.p_value) else f"{c.p_value:.3g} ({c.smallest_p:.2g})"
        rows.append(
            [
                markdown_text(c.method),
                label(c.metric),
                f"{c.n_units} ({c.n_models})",
                values,
                rho,
                p,
                _p(c.p_adjusted),
                c.verdict,
            ]
        )
    counts = Counter(_kind(c.verdict) for c in board.correlations)
    return table(rows) + (
        f"\nAcross recipes: of {len(board.correlations)} correlations, {counts['yes']} support the claim that robust "
        f"models are more interpretable, {counts['no']} contradict it, {counts['inconclusive']} are inconclusive and "
        f"{counts['none']} carry no verdict. One point per training recipe (its seeds' mean robust accuracy and mean "
        f"score), permutation tests over the recipes ({PERMUTATION}), Holm-adjusted over this table; with fewer than "
        f"{MIN_UNITS} recipes no two-sided test can reject at 5%.\n"
    )


def _kind(verdict: str) -> str:
    if verdict.startswith("yes"):
        return "yes"
    if verdict.startswith("no ("):
        return "no"
    if verdict.startswith("inconclusive"):
        return "inconclusive"
    return "none"


def _difference(c: Comparison) -> str:
    if not c.per_example and c.intervals is not None:
        return f"{c.diff:+.3f} (intervals {_interval(c.intervals[0])} vs {_interval(c.intervals[1])})"
    return "n/a" if math.isnan(c.diff) else f"{c.diff:+.3f} [{c.low:+.3f}, {c.high:+.3f}]"


def _interval(bounds: tuple[float | None, float | None]) -> str:
    return "—" if bounds[0] is None else f"[{bounds[0]:.1f}, {bounds[1]:.1f}]"


def _test(c: Comparison) -> str:
    seeds = f"{c.seeds[0]} vs {c.seeds[1]} seeds"
    if c.kind == "recipes":
        return f"{seeds}, " + (f"{c.n} images" if c.n > 1 else "one value per run (Welch t)")
    if c.kind == "checkpoints":
        return f"{seeds}: checkpoints, {c.n} images"
    return f"{seeds}: stored intervals"


def versus_section(board: Board) -> str:
    rows = [
        [
            "Recipe",
            "Standard baseline",
            "Method",
            "Score",
            "Recipe − baseline [95%]",
            "Values",
            "Unit",
            "Holm-adjusted p",
            "Reliable metric?",
            "Robust → more interpretable?",
        ]
    ]
    for c in board.comparisons:
        reliable = board.reliable(c.metric)
        rows.append(
            [
                markdown_text(c.model),
                markdown_text(c.baseline) + ("" if c.matched else " (not epochs-matched)"),
                markdown_text(c.method),
                label(c.metric),
                _difference(c),
                "normalised" if c.normalised else "raw",
                _test(c),
                _p(c.p_adjusted),
                "—" if reliable is None else ("yes" if reliable else "no"),
                c.verdict,
            ]
        )
    counts = Counter(_kind(c.verdict) for c in board.comparisons if c.kind == "recipes")
    decided = counts["yes"] + counts["no"] + counts["inconclusive"]
    text = table(rows) + (
        f"\nRecipe verdicts ({rules.MIN_SEEDS}+ seeds on both sides, the method beating its bar): {decided}; in favour "
        f"of the adversarially trained recipe (the claim): {counts['yes']}; of the standard one: {counts['no']}; "
        f"inconclusive: {counts['inconclusive']}. Primary analysis: {PRIMARY.label}; each recipe against the standard "
        "recipe of its architecture trained for as many epochs; mixed-model t over seeds and images, Holm-adjusted "
        "over this table (family-wise error rate 5%). Rows with fewer seeds show the checkpoints' paired difference "
        "over images, which leaves out the seed-to-seed spread: no recipe verdict.\n"
    )
    notes: dict[tuple[str, str], list[str]] = {}
    for c in board.comparisons:
        if c.note:
            notes.setdefault((c.model, c.note), []).append(label(c.metric))
    if notes:
        lines = [f"{model} ({', '.join(scores)}): {note}" for (model, note), scores in notes.items()]
        text += "\n" + "\n".join(f"- {markdown_text(n, 600)}" for n in lines) + "\n"
    return text


def sensitivity_section(board: Board) -> str:
    """Per headline score, the recipe verdicts of the primary analysis and of each analysis with one rule changed."""
    names = ["primary", *board.sensitivity]
    analyses = {"primary": board.comparisons, **board.sensitivity}
    rows = [["Method", "Score", *(f"{n}: for / against / inconclusive" for n in names)]]
    for method, metric in HEADLINE:
        cells = []
        for name in names:
            mine = [c for c in analyses[name] if (c.method, c.metric) == (method, metric) and c.kind == "recipes"]
            counts = Counter(_kind(c.verdict) for c in mine)
            cells.append(f"{counts['yes']} / {counts['no']} / {counts['inconclusive']}" if mine else "—")
        if any(cell != "—" for cell in cells):
            rows.append([markdown_text(method), label(metric), *cells])
    if len(rows) == 1:
        return ""
    described = "; ".join(f"{name}: {basis.label}" for name, basis in SENSITIVITY.items())
    return table(rows) + (
        f"\nEach column changes one thing of the primary analysis ({PRIMARY.label}): {described}; default baseline: "
        "each recipe against the architecture's default standard recipe instead of the epochs-matched one. A verdict "
        "that holds in every column does not depend on these choices.\n"
    )


def dose_section(board: Board) -> str:
    rows = [
        [
            "Family (method)",
            "Score",
            "Models",
            "Eps levels (baseline)",
            "Values",
            "Spearman ρ (eps, level means)",
            "p (smallest possible)",
            "Holm-adjusted p",
            "More robust training → more interpretable?",
        ]
    ]
    for d in board.dose_response:
        eps = ", ".join(f"{v:g}" for v in sorted(d.eps_values))
        rows.append(
            [
                markdown_text(d.method),
                label(d.metric),
                str(d.n_models),
                f"{eps} ({markdown_text(d.baseline)})",
                "normalised" if d.normalised else "raw",
                f"{d.rho:+.2f}",
                f"{d.p_value:.3g} ({d.smallest_p:.2g})",
                _p(d.p_adjusted),
                d.verdict,
            ]
        )
    return table(rows) + (
        "\nDose-response: within a family of included recipes that differ only in eps (method, training threat "
        "model, architecture and epochs; the epochs-matched standard recipe of the architecture is eps 0), one point "
        "per eps level (its recipes' mean of their seeds' means), exact permutation test over the levels (k levels: "
        "the smallest two-sided p is 2/k!, so 4 levels cannot reject at 5%), Holm-adjusted over this table.\n"
    )


FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Faithfulness", ("abpc", "abpc_road", "deletion_relative", "deletion_relative_road")),
    ("Localisation", ("gridpg",)),
    ("Sanity", ("randomisation",)),
    ("Complexity", ("sparseness",)),
    ("Feature visualisation", ("inversion_ssim", "inversion_distance", "generation_fid", "generation_judge_accuracy")),
)


def summary_section(board: Board) -> str:
    """Per metric family, what the evidence shows after the corrections: the primary recipe verdicts, each
    sensitivity analysis, the across-recipe and dose-response verdicts, side by side."""
    lines = []
    for family, metrics in FAMILIES:
        mine = [c for c in board.comparisons if c.metric in metrics and c.kind == "recipes"]
        counts = Counter(_kind(c.verdict) for c in mine)
        no_verdict = [m for m in metrics if m in METRICS and METRICS.get(m).no_verdict]
        if no_verdict and len(no_verdict) == len(metrics):
            lines.append(
                f"- **{family}**: descriptive only ({markdown_text(METRICS.get(no_verdict[0]).no_verdict, 300)})."
            )
            continue
        corr = Counter(_kind(c.verdict) for c in board.correlations if c.metric in metrics)
        dose = Counter(_kind(d.verdict) for d in board.dose_response if d.metric in metrics)
        if not mine and not corr and not dose:
            lines.append(f"- **{family}**: no recipe with enough seeds, no test.")
            continue
        placed = any(normalisable(m) for m in metrics if m in METRICS)
        bases = PLACEMENT_SENSITIVITY if placed else PLACEMENT_SENSITIVITY[:1]
        recipe_bases = "; ".join(_counts(board.sensitivity, b, metrics) for b in bases)
        corr_bases = "; ".join(_counts(board.correlation_sensitivity, b, metrics) for b in bases)
        lines.append(
            f"- **{family}**: recipe verdicts {counts['yes']} for / {counts['no']} against / "
            f"{counts['inconclusive']} inconclusive ({recipe_bases}); across recipes {corr['yes']} for / "
            f"{corr['no']} against / {corr['inconclusive']} inconclusive ({corr_bases}); dose-response "
            f"{dose['yes']} for / {dose['no']} against / {dose['inconclusive']} inconclusive. "
            + _direction(counts, corr, dose)
        )
    return "\n".join(lines) + "\n"


def _counts(tests: Mapping[str, Sequence[Any]], basis: str, metrics: tuple[str, ...]) -> str:
    """``on <basis>: for / against / inconclusive`` of the tests of ``metrics`` on a sensitivity basis."""
    c = Counter(_kind(t.verdict) for t in tests.get(basis, []) if t.metric in metrics)
    return f"on {basis}: {c['yes']} / {c['no']} / {c['inconclusive']}"


def _direction(*counts: Counter) -> str:
    yes = sum(c["yes"] for c in counts)
    no = sum(c["no"] for c in counts)
    if yes and not no:
        return "The evidence supports the claim here."
    if no and not yes:
        return "The evidence goes against the claim here."
    if yes and no:
        return "The evidence is mixed."
    return "No test establishes a difference."
