"""The HTML site's interactive scatter plots: AutoAttack robust accuracy (x) against one headline score (y), one point
per model with both 95% intervals, as inline SVG generated from the board's numbers (no script library, no network).
Each point carries its model and values (``<title>`` for a hover tooltip, ``data-*`` for the site's script, which
also highlights the model's table row); points of rows outside the ranked protocol are hollow. Labels are not
drawn: with many models they overlap; hovering names the point."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.report.escape import html_text

WIDTH, HEIGHT = 560, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 46


@dataclass(frozen=True)
class Point:
    """One model: robust accuracy in % with its interval, the score with its interval, whether its row is ranked."""

    model: str
    x: float
    x_low: float
    x_high: float
    y: float
    y_low: float | None
    y_high: float | None
    ranked: bool = True


def esc(value: object) -> str:
    return html_text(value, None)


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high].

    >>> ticks(0.0, 100.0)
    [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    >>> ticks(0.31, 0.44)
    [0.3, 0.35, 0.4, 0.45]
    """
    if not high > low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    out, value = [], start
    while value <= high + step * 1e-9:
        out.append(round(float(value), 10))
        value += step
    if out[-1] < high - 1e-12:
        out.append(round(float(value), 10))
    return out


def scatter_svg(points: Sequence[Point], *, metric: str, label: str, svg_id: str) -> str:
    """One scatter plot as an ``<svg>`` element (empty string without points)."""
    if not points:
        return ""
    xs = ticks(0.0, max(100.0, max(p.x_high for p in points)))
    ys_values = [v for p in points for v in (p.y, p.y_low, p.y_high) if v is not None and math.isfinite(v)]
    ys = ticks(min(ys_values), max(ys_values))
    x0, x1, y0, y1 = xs[0], xs[-1], ys[0], ys[-1]

    def px(v: float) -> float:
        return LEFT + (v - x0) / (x1 - x0) * (WIDTH - LEFT - RIGHT)

    def py(v: float) -> float:
        return HEIGHT - BOTTOM - (v - y0) / (y1 - y0) * (HEIGHT - TOP - BOTTOM)

    parts = [
        f'<svg class="scatter" id="{esc(svg_id)}" data-metric="{esc(metric)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="AA robust accuracy against {esc(label)}" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" class="frame"/>',
    ]
    for v in xs:
        parts.append(
            f'<line class="grid" x1="{px(v):.1f}" x2="{px(v):.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>'
            f'<text class="tick" x="{px(v):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{v:g}</text>'
        )
    for v in ys:
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py(v):.1f}" y2="{py(v):.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:g}</text>'
        )
    parts.append(
        f'<text class="axis" x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle">'
        "AA robust accuracy (%)</text>"
        f'<text class="axis" transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{esc(label)}</text>'
    )
    for p in points:
        title = f"{p.model}: robust {p.x:.1f}% [{p.x_low:.1f}, {p.x_high:.1f}], {label} {p.y:.3f}"
        if p.y_low is not None and p.y_high is not None:
            title += f" [{p.y_low:.3f}, {p.y_high:.3f}]"
        bars = (
            f'<line class="bar" x1="{px(p.x_low):.1f}" x2="{px(p.x_high):.1f}" y1="{py(p.y):.1f}" y2="{py(p.y):.1f}"/>'
        )
        if p.y_low is not None and p.y_high is not None:
            bars += (
                f'<line class="bar" x1="{px(p.x):.1f}" x2="{px(p.x):.1f}" y1="{py(p.y_low):.1f}" '
                f'y2="{py(p.y_high):.1f}"/>'
            )
        parts.append(
            f'<g class="point{"" if p.ranked else " other"}" data-model="{esc(p.model)}" data-label="{esc(title)}" '
            f'tabindex="0">{bars}<circle cx="{px(p.x):.1f}" cy="{py(p.y):.1f}" r="5"/>'
            f"<title>{esc(title)}</title></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
