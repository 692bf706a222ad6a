"""Server-rendered SVG bar charts that a screen reader can read: the province dashboard's rates and counts.

A chart is an ``<svg role="img">`` named by its ``<title>`` and described by its ``<desc>``, which also
lists every value in words; each bar carries its label and its value as text, so nothing is told by
length or colour alone. Horizontal bars leave room for long Chinese labels; the ``viewBox`` lets the
chart shrink to a phone's width. ElementTree writes the markup, so labels are always escaped.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from markupsafe import Markup

WIDTH = 640
ROW_HEIGHT = 28
BAR_HEIGHT = 18
LABEL_WIDTH = 220
VALUE_WIDTH = 80
PAD = 8


class Scale(StrEnum):
    RATE = "rate"  # a share from 0 to 1, shown as a percentage
    COUNT = "count"  # a whole number, 0 or more


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: no data for this bar (e.g. no answer yet in that scope)


def _format(value: float | None, scale: Scale, no_data: str) -> str:
    if value is None:
        return no_data
    if scale is Scale.RATE:
        return f"{value * 100:.1f}%"
    return f"{int(value):,}"


def _check(bars: Sequence[Bar], scale: Scale) -> None:
    for bar in bars:
        if bar.value is None:
            continue
        if not math.isfinite(bar.value) or bar.value < 0:
            raise ValueError(f"bar {bar.label!r}: {bar.value} is no value to chart")
        if scale is Scale.RATE and bar.value > 1:
            raise ValueError(f"bar {bar.label!r}: a rate of {bar.value} is above 1")
        if scale is Scale.COUNT and bar.value != int(bar.value):
            raise ValueError(f"bar {bar.label!r}: a count of {bar.value} is not whole")


def bar_chart(
    ident: str, title: str, description: str, bars: Sequence[Bar], scale: Scale, *, no_data: str = "—"
) -> Markup:
    """An accessible horizontal bar chart; ``ident`` (unique in the page) prefixes its element ids."""
    _check(bars, scale)
    top = max([b.value for b in bars if b.value is not None], default=0.0)
    full = 1.0 if scale is Scale.RATE else (top or 1.0)
    plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 2 * PAD
    height = max(len(bars), 1) * ROW_HEIGHT + 2 * PAD
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "class": "chart",
            "role": "img",
            "viewBox": f"0 0 {WIDTH} {height}",
            "aria-labelledby": f"{ident}-title {ident}-desc",
        },
    )
    ET.SubElement(svg, "title", {"id": f"{ident}-title"}).text = title
    values = "; ".join(f"{bar.label}: {_format(bar.value, scale, no_data)}" for bar in bars) or no_data
    ET.SubElement(svg, "desc", {"id": f"{ident}-desc"}).text = f"{description} {values}".strip()
    for row, bar in enumerate(bars):
        y = PAD + row * ROW_HEIGHT
        middle = str(y + ROW_HEIGHT / 2)
        group = ET.SubElement(svg, "g", {"class": "chart-row"})
        ET.SubElement(group, "text", {"class": "chart-label", "x": str(LABEL_WIDTH - PAD), "y": middle}).text = bar.label
        if bar.value is not None:
            length = plot * bar.value / full
            ET.SubElement(
                group,
                "rect",
                {
                    "class": "chart-bar",
                    "x": str(LABEL_WIDTH),
                    "y": str(y + (ROW_HEIGHT - BAR_HEIGHT) / 2),
                    "width": f"{length:.1f}",
                    "height": str(BAR_HEIGHT),
                },
            )
        else:
            length = 0.0
        value_x = f"{LABEL_WIDTH + length + PAD:.1f}"
        ET.SubElement(group, "text", {"class": "chart-value", "x": value_x, "y": middle}).text = _format(
            bar.value, scale, no_data
        )
    return Markup(ET.tostring(svg, encoding="unicode"))
