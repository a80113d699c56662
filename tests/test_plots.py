"""SVG bar charts for the UI: valid XML, one bar per value, negative or highlighted bars red."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import numpy as np

from dcai_assets.plots import bar_chart_svg, histogram_svg, svg_markdown

SVG = "{http://www.w3.org/2000/svg}"


def test_one_bar_per_value_negative_ones_red_and_left_of_zero():
    root = ET.fromstring(bar_chart_svg(["a", "b<c", "d"], [2.0, -1.0, np.nan], "t & u"))
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == 3
    assert [b.get("fill") for b in bars] == ["#2e86c1", "#c0392b", "#2e86c1"]
    zero = float(root.find(f"{SVG}line").get("x1"))
    assert float(bars[1].get("x")) + float(bars[1].get("width")) == zero
    assert float(bars[0].get("width")) == 2 * float(bars[1].get("width"))
    assert "b<c" in [t.text for t in root.findall(f"{SVG}text")]


def test_histogram_counts_every_value_and_marks_negative_bins():
    values = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 2.5])
    root = ET.fromstring(histogram_svg(values, "h", bins=3))
    texts = [t.text for t in root.findall(f"{SVG}text") if t.text and t.text.endswith(" rows")]
    assert sum(int(t.split()[0]) for t in texts) == len(values)
    assert [b.get("fill") for b in root.findall(f"{SVG}rect")] == ["#c0392b", "#c0392b", "#2e86c1"]


def test_markdown_embeds_the_svg_as_a_data_uri():
    md = svg_markdown("<svg/>", "alt")
    assert md.startswith("![alt](data:image/svg+xml;base64,")
    assert base64.b64decode(md.split(",", 1)[1].rstrip(")")) == b"<svg/>"
