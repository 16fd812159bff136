"""A grid of image panels drawn on one axes (:class:`Sheet`), and how every report figure is written
(:func:`save_figure`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colorbar import Colorbar  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

DPI = 100
_PANEL = 1.3  # inches per image panel
_GAP = 0.25  # inches between columns of panels
_ROW_GAP = 0.15  # inches between rows of panels (and their titles)
_MARGIN = 0.1  # inches around the grid
_LABEL = 0.25  # inches left of the grid for a row's label
_LINE = 0.17  # inches per line of an 8- or 9-point title
_HEAD_LINE = 0.22  # inches per line of the heading (and as much below it)


def _to_hwc(img: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` -> ``(H, W)`` for C = 1, else ``(H, W, C)``; clipped to [0, 1]."""
    img = np.clip(np.nan_to_num(img), 0.0, 1.0)
    return img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))


class Sheet:
    """A grid of image panels on one axes that covers the figure, in inches from its top-left corner: each panel an
    image artist, its title and its row's label texts. One axes for the whole grid, not one per panel (an axes
    builds its ticks and joins the layout even when hidden, and the layout is fixed here, not solved): an 8 x 10
    attribution grid draws in a fifth of the time, an adversarial grid in a quarter, with the same panels and texts.

    ``rows`` x ``cols`` panels of ``_PANEL`` inches, ``title_lines`` lines of 8-point title above every panel of
    every row (``top_titles``: above the first row only), ``head_lines`` lines of heading above all, ``label``:
    room left of the first column for a row label, ``extra_width`` inches right of the grid (a colour bar)."""

    def __init__(
        self,
        rows: int,
        cols: int,
        *,
        title_lines: int = 0,
        top_titles: int = 0,
        head_lines: int = 0,
        label: bool = False,
        extra_width: float = 0.0,
    ) -> None:
        self.rows, self.cols = rows, cols
        self.left = _MARGIN + (_LABEL if label else 0.0)
        self.pitch_x = _PANEL + _GAP
        self.title_h = _LINE * title_lines
        self.pitch_y = _PANEL + _ROW_GAP + self.title_h
        head = _HEAD_LINE * (head_lines + 0.5) if head_lines else 0.0
        self.top = _MARGIN + head + _LINE * top_titles + self.title_h
        self.width = self.left + cols * self.pitch_x - _GAP + _MARGIN + extra_width
        self.height = self.top + rows * self.pitch_y - _ROW_GAP + _MARGIN
        self.fig = plt.figure(figsize=(self.width, self.height))
        self.ax = self.fig.add_axes((0.0, 0.0, 1.0, 1.0))
        self.ax.set_axis_off()

    def corner(self, row: int, col: int) -> tuple[float, float]:
        """The top-left corner of panel (row, col), inches."""
        return self.left + col * self.pitch_x, self.top + row * self.pitch_y

    def image(self, row: int, col: int, img: np.ndarray, **imshow: Any) -> None:
        """A ``(H, W)`` or ``(H, W, C)`` array in panel (row, col); ``imshow``: cmap, vmin, vmax."""
        x0, y0 = self.corner(row, col)
        self.ax.imshow(img, extent=(x0, x0 + _PANEL, y0 + _PANEL, y0), aspect="auto", interpolation="nearest", **imshow)

    def show(self, row: int, col: int, img: np.ndarray) -> None:
        """One ``(C, H, W)`` image in [0, 1] (grey for C = 1)."""
        self.image(row, col, _to_hwc(img), cmap="gray", vmin=0.0, vmax=1.0)

    def title(self, row: int, col: int, text: str, *, fontsize: float = 8, color: str = "black") -> None:
        """Text centred just above panel (row, col)."""
        x0, y0 = self.corner(row, col)
        self.ax.text(x0 + _PANEL / 2, y0 - 0.04, text, ha="center", va="bottom", fontsize=fontsize, color=color)

    def label(self, row: int, text: str) -> None:
        """A row's label, vertical, left of its first panel."""
        x0, y0 = self.corner(row, 0)
        self.ax.text(x0 - 0.06, y0 + _PANEL / 2, text, ha="right", va="center", rotation=90, fontsize=9)

    def note(self, row: int, col: int, text: str) -> None:
        """Grey text in the middle of panel (row, col)."""
        x0, y0 = self.corner(row, col)
        self.ax.text(x0 + _PANEL / 2, y0 + _PANEL / 2, text, ha="center", va="center", fontsize=8, color="gray")

    def frame(self, row: int, col: int, color: str) -> None:
        """A thick frame around panel (row, col)."""
        x0, y0 = self.corner(row, col)
        self.ax.add_patch(Rectangle((x0, y0), _PANEL, _PANEL, fill=False, edgecolor=color, linewidth=3))

    def heading(self, text: str, *, fontsize: float = 10) -> None:
        """Centred text at the top of the figure."""
        self.ax.text(self.width / 2, _MARGIN, text, ha="center", va="top", fontsize=fontsize, linespacing=1.3)

    def colour_bar(self, mappable: ScalarMappable) -> Colorbar:
        """A colour bar right of the grid, as tall as three panels at most."""
        grid_h = self.height - self.top - _MARGIN
        bar_h = min(grid_h, 3 * _PANEL) * 0.8
        x0 = self.left + self.cols * self.pitch_x + 0.1
        y0 = self.top + (grid_h - bar_h) / 2
        cax = self.fig.add_axes(
            (x0 / self.width, 1 - (y0 + bar_h) / self.height, 0.12 / self.width, bar_h / self.height)
        )
        return self.fig.colorbar(mappable, cax=cax)

    def save(self, path: str | Path) -> Path:
        self.ax.set_xlim(0.0, self.width)
        self.ax.set_ylim(self.height, 0.0)
        return save_figure(self.fig, path)


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (``DPI``, cropped to what it draws) into a directory made if missing; closes it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.1)
    finally:
        plt.close(fig)
    return path
