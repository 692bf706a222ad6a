"""A chart as a browser and a screen reader see it: an image named by its title, clean for axe-core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from api.workbench.charts import Bar, Scale, bar_chart


def test_a_chart_is_an_image_with_its_title_as_name_and_its_values_as_description(
    page: Any, axe: Callable[[Any], Any]
) -> None:
    chart = bar_chart(
        "exempt", "各地区豁免率", "按审批地区统计。", [Bar("鼓楼区", 0.8), Bar("台江区", None)], Scale.RATE, no_data="无数据"
    )
    page.set_content(f'<html lang="zh-CN"><head><title>图表</title></head><body><main><h1>覆盖情况</h1>{chart}</main></body></html>')
    image = page.get_by_role("img", name="各地区豁免率")
    image.wait_for()
    description = image.evaluate("(svg) => svg.querySelector('desc').textContent")
    assert description == "按审批地区统计。 鼓楼区: 80.0%; 台江区: 无数据"
    passes = {rule["id"] for rule in axe(page)}
    assert "svg-img-alt" in passes
