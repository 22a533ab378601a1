"""The dashboard's SVG charts: labels are escaped, colours are attributes (the CSP forbids
inline style elements), bars and thresholds land where their values say."""

from __future__ import annotations

import re

from review_ui.charts import LEFT, PLOT_W, Marker, Series, bar_chart, grouped_bars, line_chart


def test_a_label_is_text_never_markup() -> None:
    chart = str(bar_chart("<b>x</b>", ["<script>alert(1)</script>"], [1.0]))
    assert "<script>" not in chart and "&lt;script&gt;" in chart
    assert "<b>" not in chart


def test_charts_carry_no_style_attribute_or_element() -> None:
    charts = [
        line_chart("cost", ["a", "b"], [Series("cost", [0.1, 0.2])]),
        grouped_bars("latency", ["s"], [Series("p50", [1.0]), Series("p99", [3.0])]),
        bar_chart("confidence", ["0", "0.5"], [2.0, 4.0], markers=[Marker(0.8, "accept 0.8")]),
    ]
    for chart in charts:
        assert "style" not in str(chart)


def test_bar_heights_follow_values_and_a_threshold_sits_at_its_score() -> None:
    chart = str(bar_chart("c", ["a", "b"], [2.0, 4.0], markers=[Marker(0.8, "accept 0.8")]))
    heights = [float(h) for h in re.findall(r'class="chart-bar"[^>]*height="([\d.]+)"', chart)]
    assert len(heights) == 2 and heights[1] == 2 * heights[0]
    threshold = re.search(r'class="threshold" x1="([\d.]+)"', chart)
    assert threshold is not None
    assert float(threshold.group(1)) == round(LEFT + PLOT_W * 0.8, 1)
    assert "accept 0.8" in chart


def test_an_empty_chart_still_renders() -> None:
    assert "<svg" in str(line_chart("nothing", [], [Series("cost", [])]))
    assert "<svg" in str(grouped_bars("nothing", [], []))
