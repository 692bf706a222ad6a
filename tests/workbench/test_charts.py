"""The SVG bar charts: accessible (role, title, description with every value), escaped, and strict about
what they are given."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from api.workbench.charts import Bar, Scale, bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def test_a_rate_chart_is_an_image_named_and_described_with_every_value() -> None:
    svg = _parse(
        bar_chart(
            "exempt",
            "豁免率",
            "各地区的证明豁免率。",
            [Bar("鼓楼区", 0.8), Bar("台江区", 0.4), Bar("仓山区", None)],
            Scale.RATE,
            no_data="无数据",
        )
    )
    assert svg.tag == f"{SVG}svg" and svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "exempt-title exempt-desc"
    assert svg.find(f"{SVG}title").text == "豁免率"  # type: ignore[union-attr]
    desc = svg.find(f"{SVG}desc")
    assert desc is not None and desc.get("id") == "exempt-desc"
    assert desc.text == "各地区的证明豁免率。 鼓楼区: 80.0%; 台江区: 40.0%; 仓山区: 无数据"
    rows = svg.findall(f"{SVG}g")
    texts = [[t.text for t in row.findall(f"{SVG}text")] for row in rows]
    assert texts == [["鼓楼区", "80.0%"], ["台江区", "40.0%"], ["仓山区", "无数据"]]
    widths = [float(row.find(f"{SVG}rect").get("width")) for row in rows[:2]]  # type: ignore[union-attr]
    assert widths[0] == pytest.approx(2 * widths[1])  # bars in proportion, a rate's full scale is 100 %
    assert rows[2].find(f"{SVG}rect") is None  # no bar for no data


def test_a_count_chart_scales_to_its_largest_value() -> None:
    svg = _parse(bar_chart("open", "Overdue", "Overdue checks per issuer.", [Bar("A", 1200), Bar("B", 300)], Scale.COUNT))
    rows = svg.findall(f"{SVG}g")
    assert [row.findall(f"{SVG}text")[1].text for row in rows] == ["1,200", "300"]
    widths = [float(row.find(f"{SVG}rect").get("width")) for row in rows]  # type: ignore[union-attr]
    assert widths[0] == pytest.approx(4 * widths[1])


def test_labels_are_escaped() -> None:
    markup = bar_chart("x", "<b>t</b>", "d & <script>", [Bar('<img src=x onerror="1">', 1)], Scale.COUNT)
    assert "<script>" not in markup and "<img" not in markup and "<b>" not in markup
    svg = _parse(markup)
    assert svg.find(f"{SVG}g/{SVG}text").text == '<img src=x onerror="1">'  # type: ignore[union-attr]


def test_an_empty_chart_says_so() -> None:
    svg = _parse(bar_chart("e", "Empty", "Nothing yet.", [], Scale.COUNT, no_data="no data"))
    assert svg.find(f"{SVG}desc").text == "Nothing yet. no data"  # type: ignore[union-attr]
    assert svg.findall(f"{SVG}g") == []


@pytest.mark.parametrize(
    ("value", "scale"),
    [(-1, Scale.COUNT), (1.5, Scale.COUNT), (1.01, Scale.RATE), (-0.1, Scale.RATE), (math.nan, Scale.RATE), (math.inf, Scale.COUNT)],
)
def test_values_that_cannot_be_charted_are_refused(value: float, scale: Scale) -> None:
    with pytest.raises(ValueError):
        bar_chart("bad", "t", "d", [Bar("x", value)], scale)
