"""The site's inline scatter plots (harness/report/scatter_svg.py): points placed on round axes, one element per
model carrying its values, hostile names escaped, rows of other protocols hollow."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from harness.report.scatter_svg import HEIGHT, LEFT, RIGHT, WIDTH, Point, scatter_svg, ticks

SVG = "{http://www.w3.org/2000/svg}"


def test_ticks_cover_the_range_with_round_steps():
    assert ticks(0, 100) == [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    assert ticks(0.31, 0.44) == [0.3, 0.35, 0.4, 0.45]  # a step of 1, 2, 2.5 or 5 times a power of ten
    assert ticks(-0.2, 0.9) == [-0.25, 0.0, 0.25, 0.5, 0.75, 1.0]
    assert ticks(0.5, 0.5) == [0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6]  # an empty range: one unit above it


def test_points_are_placed_and_named_and_escaped():
    points = [
        Point("rob", 70.0, 67.1, 72.8, 0.6, 0.5, 0.7),
        Point('<b x="1">', 0.0, 0.0, 0.4, 0.2, None, None, ranked=False),
    ]
    svg = scatter_svg(points, metric="abpc", label="ABPC ↑", svg_id="s-1")
    root = ET.fromstring(svg)  # well-formed: the hostile name did not break the markup
    assert root.get("id") == "s-1" and root.get("data-metric") == "abpc"
    groups = [g for g in root.iter(f"{SVG}g") if "point" in (g.get("class") or "")]
    assert [g.get("data-model") for g in groups] == ["rob", '<b x="1">']
    assert [g.get("class") for g in groups] == ["point", "point other"]  # the other protocol's row: hollow
    assert groups[0].find(f"{SVG}title").text == "rob: robust 70.0% [67.1, 72.8], ABPC ↑ 0.600 [0.500, 0.700]"
    # x: robust accuracy on a 0..100 axis; robust 70% sits at 70% of the plot's width
    cx = float(groups[0].find(f"{SVG}circle").get("cx"))
    assert abs(cx - (LEFT + 0.7 * (WIDTH - LEFT - RIGHT))) < 0.1
    # y: the higher score is higher on the page (smaller y)
    cy = [float(g.find(f"{SVG}circle").get("cy")) for g in groups]
    assert cy[0] < cy[1] < HEIGHT
    assert len(groups[1].findall(f"{SVG}line")) == 1 and len(groups[0].findall(f"{SVG}line")) == 2  # interval bars
    assert not re.search(r"<b ", svg) and scatter_svg([], metric="abpc", label="x", svg_id="e") == ""
