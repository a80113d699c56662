"""Small bar charts as SVG, embedded in markdown metadata so the Dagster UI shows a picture where
one beats a table (a histogram of importance values, drift per feature). No plotting library:
the charts are a few rectangles and labels."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape
from itertools import pairwise

import numpy as np

_WIDTH, _BAR_AREA, _ROW = 560, 300, 18


def bar_chart_svg(
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    unit: str = "",
    highlight: Sequence[bool] | None = None,
) -> str:
    """Horizontal bars, one per label, scaled to the largest absolute value; negative bars go
    left of the zero line. Negative or ``highlight``-ed bars are red."""
    values = np.asarray(values, dtype=float)
    values = np.where(np.isfinite(values), values, 0.0)
    top = float(np.abs(values).max()) if len(values) else 0.0
    top = top or 1.0
    negative = bool((values < 0).any())
    zero = 220 + (_BAR_AREA // 2 if negative else 0)
    scale = (_BAR_AREA // 2 if negative else _BAR_AREA) / top
    height = 30 + _ROW * len(values) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH + 100}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 26 + i * _ROW
        width = abs(value) * scale
        x = zero - width if value < 0 else zero
        red = value < 0 or (highlight is not None and highlight[i])
        color = "#c0392b" if red else "#2e86c1"
        parts.append(f'<text x="214" y="{y + 12}" text-anchor="end">{escape(str(label)[:34])}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 2}" width="{max(width, 0.5):.1f}" '
            f'height="{_ROW - 5}" fill="{color}"/>'
        )
        parts.append(
            f'<text x="{max(x + width, zero) + 4:.1f}" y="{y + 12}">{value:.3g}{escape(unit)}</text>'
        )
    parts.append(f'<line x1="{zero}" y1="24" x2="{zero}" y2="{height - 8}" stroke="#555"/>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(values: np.ndarray, title: str, bins: int = 16) -> str:
    """A histogram of ``values`` as horizontal bars, one per bin, labelled by its range; bins
    below zero (harmful rows, for importance values) are red."""
    counts, edges = np.histogram(np.asarray(values, dtype=float), bins=bins)
    labels = [f"{lo:+.2e} .. {hi:+.2e}" for lo, hi in pairwise(edges)]
    return bar_chart_svg(labels, counts, title, unit=" rows", highlight=list(edges[:-1] < 0))


def svg_markdown(svg: str, alt: str) -> str:
    """Markdown that shows ``svg`` inline (a data URI), for ``MetadataValue.md``."""
    data = base64.b64encode(svg.encode()).decode()
    return f"![{escape(alt)}](data:image/svg+xml;base64,{data})"
