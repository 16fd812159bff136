"""Pure plotting functions for reports: each takes arrays (numpy or torch) and writes one PNG.

Images are ``(N, C, H, W)`` floats in [0, 1] with C = 1 (shown in grey) or C = 3 (RGB). Every function
creates the parent directory of ``path``, closes its figure after saving and returns ``Path(path)``.
Grids show at most ``MAX_ROWS`` examples (the first ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["text.parse_math"] = False  # stored text ("$\\foo{$" as a model name) is drawn as written

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

from harness.report.sheet import Sheet, save_figure  # noqa: E402

MAX_ROWS = 8
ATTRIBUTION_CMAP = "bwr"
_RED = "#d62728"
_ORANGE = "#e07000"


# --- helpers --------------------------------------------------------------------------------------------


def _np(x: Any) -> np.ndarray:
    """A numpy copy of a numpy array, torch tensor or sequence."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return np.asarray(x)


def _images(x: Any) -> np.ndarray:
    """``(N, C, H, W)`` (or ``(N, H, W)``) -> float ``(N, C, H, W)``."""
    a = _np(x).astype(np.float64)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {a.shape}")
    return a


def _name(c: Any, class_names: Sequence[str] | None) -> str:
    """Class index -> its name (or the index itself when no names are given or it is out of range)."""
    i = int(c)
    return class_names[i] if class_names is not None and 0 <= i < len(class_names) else str(i)


def _symmetric_scale(a: np.ndarray) -> float:
    """A robust max |a|: the 99th percentile of |a|, else the max, else 1 (all zero)."""
    mag = np.abs(a[np.isfinite(a)])
    if mag.size == 0:
        return 1.0
    for v in (float(np.percentile(mag, 99)), float(mag.max())):
        if v > 0:
            return v
    return 1.0


# --- figures --------------------------------------------------------------------------------------------


def attribution_grid(
    images: Any,
    labels: Any,
    attributions: dict[str, Any],
    path: str | Path,
    *,
    class_names: list[str] | None = None,
    title: str = "",
) -> Path:
    """Images ``(N,C,H,W)`` in [0,1], labels ``(N,)``, method -> attribution ``(N,C,H,W)``; one row per image."""
    x = _images(images)[:MAX_ROWS]
    y = _np(labels)[: len(x)]
    attrs = {m: _images(a)[: len(x)].sum(axis=1) for m, a in attributions.items()}  # (N, H, W) each
    n, cols = len(x), 1 + len(attrs)
    note = "red = positive, blue = negative attribution"
    head = f"{title}\n{note}" if title else note
    sheet = Sheet(n, cols, top_titles=1, head_lines=head.count("\n") + 1, label=True, extra_width=1.4)
    for i in range(n):
        sheet.show(i, 0, x[i])
        sheet.label(i, _name(y[i], class_names))
        for j, a in enumerate(attrs.values(), start=1):
            vmax = _symmetric_scale(a[i])
            sheet.image(i, j, np.nan_to_num(a[i]), cmap=ATTRIBUTION_CMAP, vmin=-vmax, vmax=vmax)
            if not np.any(np.nan_to_num(a[i])):
                sheet.note(i, j, "all zero")
    sheet.title(0, 0, "image", fontsize=9)
    for j, method in enumerate(attrs, start=1):
        sheet.title(0, j, method, fontsize=9)
    bar = sheet.colour_bar(ScalarMappable(norm=Normalize(-1.0, 1.0), cmap=ATTRIBUTION_CMAP))
    bar.set_ticks([-1.0, 0.0, 1.0], labels=["−max", "0", "+max"])
    bar.ax.tick_params(labelsize=8)
    bar.set_label("attribution, summed over channels\n(scale per panel: ±99th pct of |a|)", fontsize=8)
    sheet.heading(head)
    return sheet.save(path)


def adversarial_examples(
    x: Any,
    x_adv: Any,
    labels: Any,
    clean_pred: Any,
    adv_pred: Any,
    path: str | Path,
    *,
    class_names: list[str] | None = None,
    eps: float | None = None,
    threat_model: str = "",
    amplify: float | None = None,
) -> Path:
    """Clean ``(N,C,H,W)``, adversarial ``(N,C,H,W)``, labels/clean_pred/adv_pred ``(N,)``; columns clean|adv|delta."""
    xc = _images(x)[:MAX_ROWS]
    xa = _images(x_adv)[: len(xc)]
    y, pc, pa = (_np(v)[: len(xc)] for v in (labels, clean_pred, adv_pred))
    n = len(xc)
    head = "adversarial examples"
    if threat_model:
        head += f" — {threat_model}"
    if eps is not None:
        head += f", ε = {eps:.4g}"
    notes = ["red title = prediction changed by the attack"]
    if np.any(pc != y):
        notes.append("orange = clean prediction already wrong")
    notes.append("perturbation shown as 0.5 + δ·amplification")
    heading = "\n".join(line for line in (head, "; ".join(notes[:2]), "; ".join(notes[2:])) if line)
    sheet = Sheet(n, 3, title_lines=2, head_lines=heading.count("\n") + 1)
    for i in range(n):
        delta = xa[i] - xc[i]
        dmax = float(np.abs(delta).max())
        amp = amplify if amplify is not None else (0.5 / dmax if dmax > 0 else 1.0)
        sheet.show(i, 0, xc[i])
        clean_wrong = int(pc[i]) != int(y[i])
        sheet.title(
            i,
            0,
            f"label: {_name(y[i], class_names)}\npred: {_name(pc[i], class_names)}",
            color=_ORANGE if clean_wrong else "black",
        )
        sheet.show(i, 1, xa[i])
        changed = int(pa[i]) != int(pc[i])
        sheet.title(
            i,
            1,
            f"pred: {_name(pa[i], class_names)}" + ("\n(changed)" if changed else "\n(unchanged)"),
            color=_RED if changed else "black",
        )
        sheet.show(i, 2, np.clip(0.5 + delta * amp, 0.0, 1.0))
        sheet.title(i, 2, f"perturbation ×{amp:.3g}\nmax |δ| = {dmax:.3g}")
    sheet.heading(heading, fontsize=9)
    return sheet.save(path)


def inversion_grid(
    targets: Any,
    seeds: dict[str, Any],
    inversions: dict[str, Any],
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """Targets ``(N,C,H,W)``; seeds and inversions: seed kind -> ``(N,C,H,W)``; columns target | seed, inversion..."""
    t = _images(targets)[:MAX_ROWS]
    kinds = list(seeds)
    missing = [k for k in kinds if k not in inversions]
    if missing:
        raise ValueError(f"no inversions for seed kinds {missing}")
    s = {k: _images(seeds[k])[: len(t)] for k in kinds}
    inv = {k: _images(inversions[k])[: len(t)] for k in kinds}
    n = len(t)
    sheet = Sheet(n, 1 + 2 * len(kinds), top_titles=2, head_lines=1 if title else 0)
    for i in range(n):
        sheet.show(i, 0, t[i])
        for j, k in enumerate(kinds):
            sheet.show(i, 1 + 2 * j, s[k][i])
            sheet.show(i, 2 + 2 * j, inv[k][i])
    sheet.title(0, 0, "target", fontsize=9)
    for j, k in enumerate(kinds):
        sheet.title(0, 1 + 2 * j, f"seed\n({k})", fontsize=9)
        sheet.title(0, 2 + 2 * j, f"inversion\n({k})", fontsize=9)
    if title:
        sheet.heading(title)
    return sheet.save(path)


def generated_grid(
    images: Any,
    classes: Any,
    path: str | Path,
    *,
    class_names: list[str] | None = None,
    judge_pred: Any = None,
    per_class: int = 4,
    title: str = "",
) -> Path:
    """Images ``(M,C,H,W)``, intended classes ``(M,)``, optional judge_pred ``(M,)``; one row per class."""
    x = _images(images)
    c = _np(classes).astype(int)
    judge = None if judge_pred is None else _np(judge_pred).astype(int)
    rows = [int(k) for k in np.unique(c)]
    if not rows:
        raise ValueError("generated_grid needs at least one image")
    cols = max(1, min(per_class, max(int((c == k).sum()) for k in rows)))
    note = ""
    if judge is not None:
        agree = float((judge == c).mean()) if len(c) else 0.0
        note = f"red frame = judge disagrees with the intended class (agreement {agree:.0%} of {len(c)})"
    head = "\n".join(s for s in (title, note) if s)
    sheet = Sheet(
        len(rows),
        cols,
        title_lines=1 if judge is not None else 0,
        head_lines=head.count("\n") + 1 if head else 0,
        label=True,
    )
    for r, k in enumerate(rows):
        idx = np.flatnonzero(c == k)[:cols]
        for j, i in enumerate(idx):
            sheet.show(r, j, x[i])
            if judge is not None and judge[i] != k:
                sheet.frame(r, j, _RED)
                sheet.title(r, j, f"judge: {_name(judge[i], class_names)}", fontsize=7, color=_RED)
        sheet.label(r, _name(k, class_names))
    if head:
        sheet.heading(head, fontsize=9)
    return sheet.save(path)


def scatter_plot(
    points: list[dict[str, Any]],
    path: str | Path,
    *,
    x_label: str,
    y_label: str,
    title: str = "",
) -> Path:
    """Points: dicts with "label", "x", "y" and optional absolute bounds "x_err"/"y_err" = (low, high)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    _scatter_axes(ax, points, x_label=x_label, y_label=y_label, title=title)
    return save_figure(fig, path)


def scatter_grid(panels: list[dict[str, Any]], path: str | Path, *, ncols: int = 3, title: str = "") -> Path:
    """Several scatter panels in one figure; each panel: {"points", "x_label", "y_label", "title"} as scatter_plot."""
    if not panels:
        raise ValueError("scatter_grid needs at least one panel")
    ncols = max(1, min(ncols, len(panels)))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), layout="constrained", squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        _scatter_axes(
            ax, panel["points"], x_label=panel["x_label"], y_label=panel["y_label"], title=panel.get("title", "")
        )
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def _scatter_axes(ax: Any, points: list[dict[str, Any]], *, x_label: str, y_label: str, title: str) -> None:
    if not points:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", fontsize=14, color="gray")
    for p in points:
        px, py = float(p["x"]), float(p["y"])
        xerr = _err(px, p.get("x_err"))
        yerr = _err(py, p.get("y_err"))
        ax.errorbar(px, py, xerr=xerr, yerr=yerr, fmt="o", ms=5, capsize=3, elinewidth=1)
        ax.annotate(
            str(p["label"]),
            (px, py),
            xytext=(5, 5),
            textcoords="offset points",
            fontsize=8,
            annotation_clip=False,
        )
    if points:
        ax.margins(x=0.2, y=0.15)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


def _err(v: float, bounds: Any) -> np.ndarray | None:
    """Absolute (low, high) bounds around v -> matplotlib's ``(2, 1)`` error lengths (a missing side -> 0)."""
    if bounds is None:
        return None
    lo, hi = bounds
    if lo is None and hi is None:
        return None
    below = 0.0 if lo is None else max(0.0, v - float(lo))
    above = 0.0 if hi is None else max(0.0, float(hi) - v)
    return np.array([[below], [above]])
