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
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

MAX_ROWS = 8
DPI = 100
ATTRIBUTION_CMAP = "bwr"
_CELL = 1.55  # inches per image panel
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


def _to_hwc(img: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` -> ``(H, W)`` for C = 1, else ``(H, W, C)``; clipped to [0, 1]."""
    img = np.clip(np.nan_to_num(img), 0.0, 1.0)
    return img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))


def _show(ax: Axes, img: np.ndarray) -> None:
    """Draw one ``(C, H, W)`` image in [0, 1] (grey for C = 1) on a tick-less, frameless axis."""
    ax.imshow(_to_hwc(img), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    _bare(ax)


def _bare(ax: Axes) -> None:
    """No ticks and no frame, but keep the axis on so a ylabel still shows."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _name(c: Any, class_names: Sequence[str] | None) -> str:
    """Class index -> its name (or the index itself when no names are given or it is out of range)."""
    i = int(c)
    return class_names[i] if class_names is not None and 0 <= i < len(class_names) else str(i)


def _grid(rows: int, cols: int, *, extra_width: float = 0.0) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(
        rows, cols, figsize=(_CELL * cols + extra_width, _CELL * rows + 0.6), squeeze=False, layout="constrained"
    )
    return fig, axes


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.1)
    finally:
        plt.close(fig)
    return path


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
    fig, axes = _grid(n, cols, extra_width=0.8)
    for i in range(n):
        _show(axes[i, 0], x[i])
        axes[i, 0].set_ylabel(_name(y[i], class_names), fontsize=9)
        for j, a in enumerate(attrs.values(), start=1):
            vmax = _symmetric_scale(a[i])
            axes[i, j].imshow(
                np.nan_to_num(a[i]), cmap=ATTRIBUTION_CMAP, vmin=-vmax, vmax=vmax, interpolation="nearest"
            )
            _bare(axes[i, j])
            if not np.any(np.nan_to_num(a[i])):
                axes[i, j].text(
                    0.5,
                    0.5,
                    "all zero",
                    transform=axes[i, j].transAxes,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="gray",
                )
    axes[0, 0].set_title("image", fontsize=9)
    for j, method in enumerate(attrs, start=1):
        axes[0, j].set_title(method, fontsize=9)
    bar = fig.colorbar(
        ScalarMappable(norm=Normalize(-1.0, 1.0), cmap=ATTRIBUTION_CMAP), ax=axes, shrink=min(0.6, 3.0 / n), aspect=25
    )
    bar.set_ticks([-1.0, 0.0, 1.0], labels=["−max", "0", "+max"])
    bar.ax.tick_params(labelsize=8)
    bar.set_label("attribution, summed over channels\n(scale per panel: ±99th pct of |a|)", fontsize=8)
    note = "red = positive, blue = negative attribution"
    fig.suptitle(f"{title}\n{note}" if title else note, fontsize=10)
    return _save(fig, path)


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
    fig, axes = _grid(n, 3, extra_width=0.6)
    for i in range(n):
        delta = xa[i] - xc[i]
        dmax = float(np.abs(delta).max())
        amp = amplify if amplify is not None else (0.5 / dmax if dmax > 0 else 1.0)
        _show(axes[i, 0], xc[i])
        clean_wrong = int(pc[i]) != int(y[i])
        axes[i, 0].set_title(
            f"label: {_name(y[i], class_names)}\npred: {_name(pc[i], class_names)}",
            fontsize=8,
            color=_ORANGE if clean_wrong else "black",
        )
        _show(axes[i, 1], xa[i])
        changed = int(pa[i]) != int(pc[i])
        axes[i, 1].set_title(
            f"pred: {_name(pa[i], class_names)}" + ("\n(changed)" if changed else "\n(unchanged)"),
            fontsize=8,
            color=_RED if changed else "black",
        )
        _show(axes[i, 2], np.clip(0.5 + delta * amp, 0.0, 1.0))
        axes[i, 2].set_title(f"perturbation ×{amp:.3g}\nmax |δ| = {dmax:.3g}", fontsize=8)
    head = "adversarial examples"
    if threat_model:
        head += f" — {threat_model}"
    if eps is not None:
        head += f", ε = {eps:.4g}"
    notes = ["red title = prediction changed by the attack"]
    if np.any(pc != y):
        notes.append("orange = clean prediction already wrong")
    notes.append("perturbation shown as 0.5 + δ·amplification")
    fig.suptitle(head + "\n" + "; ".join(notes[:2]) + "\n" + "; ".join(notes[2:]), fontsize=9)
    return _save(fig, path)


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
    fig, axes = _grid(n, 1 + 2 * len(kinds))
    for i in range(n):
        _show(axes[i, 0], t[i])
        for j, k in enumerate(kinds):
            _show(axes[i, 1 + 2 * j], s[k][i])
            _show(axes[i, 2 + 2 * j], inv[k][i])
    axes[0, 0].set_title("target", fontsize=9)
    for j, k in enumerate(kinds):
        axes[0, 1 + 2 * j].set_title(f"seed\n({k})", fontsize=9)
        axes[0, 2 + 2 * j].set_title(f"inversion\n({k})", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


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
    fig, axes = _grid(len(rows), cols)
    for r, k in enumerate(rows):
        idx = np.flatnonzero(c == k)[:cols]
        for j in range(cols):
            ax = axes[r, j]
            if j >= len(idx):
                ax.axis("off")
                continue
            _show(ax, x[idx[j]])
            if judge is not None and judge[idx[j]] != k:
                for spine in ax.spines.values():
                    spine.set_visible(True)
                    spine.set_color(_RED)
                    spine.set_linewidth(3)
                ax.set_title(f"judge: {_name(judge[idx[j]], class_names)}", fontsize=7, color=_RED)
        axes[r, 0].set_ylabel(_name(k, class_names), fontsize=9)
    note = ""
    if judge is not None:
        agree = float((judge == c).mean()) if len(c) else 0.0
        note = f"red frame = judge disagrees with the intended class (agreement {agree:.0%} of {len(c)})"
    head = "\n".join(s for s in (title, note) if s)
    if head:
        fig.suptitle(head, fontsize=9)
    return _save(fig, path)


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
    return _save(fig, path)


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
    return _save(fig, path)


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
