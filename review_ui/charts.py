"""Plain SVG charts rendered on the server: no script, no CDN, nothing the page's CSP forbids.

Every label is escaped; colours are SVG presentation attributes (not ``style``), so the
``style-src`` policy holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Marker", "Series", "bar_chart", "grouped_bars", "line_chart", "precision_chart"]

WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 40
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
COLOURS = ("#2563eb", "#d97706", "#dc2626", "#059669")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


@dataclass(frozen=True)
class Marker:
    """A vertical line at ``at`` (a fraction of the x axis), labelled: a threshold."""

    at: float
    label: str
    colour: str = "#dc2626"


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], unit: str = ""
) -> Markup:
    """One line per series over ``labels`` (time buckets)."""
    top = _nice_top(max((v for s in series for v in s.values), default=0.0))
    parts = _frame(title, top, unit)
    count = max(1, len(labels) - 1)
    for index, one in enumerate(series):
        points = " ".join(
            f"{LEFT + PLOT_W * i / count:.1f},{_y(v, top):.1f}" for i, v in enumerate(one.values)
        )
        colour = COLOURS[index % len(COLOURS)]
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        for i, v in enumerate(one.values):
            parts.append(
                f'<circle cx="{LEFT + PLOT_W * i / count:.1f}" cy="{_y(v, top):.1f}" r="2.5" '
                f'fill="{colour}"><title>{escape(labels[i])}: {_fmt(v)}{escape(unit)}</title>'
                "</circle>"
            )
    parts.extend(_x_labels(labels))
    parts.extend(_legend(series))
    return _svg(title, parts)


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    unit: str = "",
    markers: Sequence[Marker] = (),
) -> Markup:
    """One bar per label; ``markers`` are drawn as labelled vertical lines."""
    top = _nice_top(max(values, default=0.0))
    parts = _frame(title, top, unit)
    slot = PLOT_W / max(1, len(values))
    for i, value in enumerate(values):
        height = PLOT_H * value / top
        parts.append(
            f'<rect class="chart-bar" x="{LEFT + slot * i + 1:.1f}" y="{TOP + PLOT_H - height:.1f}" '
            f'width="{max(1.0, slot - 2):.1f}" height="{height:.1f}" fill="{COLOURS[0]}">'
            f"<title>{escape(labels[i])}: {_fmt(value)}{escape(unit)}</title></rect>"
        )
    parts.extend(_markers(markers))
    parts.extend(_x_labels(labels, centred=True))
    return _svg(title, parts)


def grouped_bars(
    title: str, labels: Sequence[str], series: Sequence[Series], unit: str = ""
) -> Markup:
    """For each label, one bar per series side by side (p50 / p95 / p99 of a step)."""
    top = _nice_top(max((v for s in series for v in s.values), default=0.0))
    parts = _frame(title, top, unit)
    slot = PLOT_W / max(1, len(labels))
    width = max(1.0, (slot - 8) / max(1, len(series)))
    for index, one in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        for i, value in enumerate(one.values):
            height = PLOT_H * value / top
            parts.append(
                f'<rect class="chart-bar" x="{LEFT + slot * i + 4 + width * index:.1f}" '
                f'y="{TOP + PLOT_H - height:.1f}" width="{width:.1f}" height="{height:.1f}" '
                f'fill="{colour}"><title>{escape(labels[i])} {escape(one.name)}: '
                f"{_fmt(value)}{escape(unit)}</title></rect>"
            )
    parts.extend(_x_labels(labels, centred=True))
    parts.extend(_legend(series))
    return _svg(title, parts)


def precision_chart(
    title: str,
    points: Sequence[tuple[float, float | None]],
    *,
    target: float,
    markers: Sequence[Marker] = (),
) -> Markup:
    """Precision (0 to 1) against threshold (0 to 1): a line through the thresholds that have
    a precision, the target as a horizontal line, ``markers`` as labelled vertical lines."""
    parts = _frame(title, 1.0, "")
    known = [(t, p) for t, p in points if p is not None]
    xy = [(LEFT + PLOT_W * t, _y(p, 1.0)) for t, p in known]
    if xy:
        parts.append(
            '<polyline class="precision" points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            + f'" fill="none" stroke="{COLOURS[0]}" stroke-width="2"/>'
        )
    for (t, p), (x, y) in zip(known, xy, strict=True):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{COLOURS[0]}">'
            f"<title>threshold {t:g}: precision {_fmt(p)}</title></circle>"
        )
    y = _y(target, 1.0)
    parts.append(
        f'<line class="target" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + PLOT_W}" y2="{y:.1f}" '
        f'stroke="#6b7280" stroke-dasharray="2 3"/>'
        f'<text x="{LEFT + PLOT_W - 2}" y="{y - 3:.1f}" font-size="10" text-anchor="end" '
        f'fill="#4b5563">target {target:g}</text>'
    )
    parts.extend(_markers(markers))
    parts.extend(_x_labels([f"{i / 10:g}" for i in range(11)]))
    return _svg(title, parts)


def _markers(markers: Sequence[Marker]) -> list[str]:
    out = []
    for index, marker in enumerate(markers):
        x = LEFT + PLOT_W * marker.at
        # A label near the right edge goes to the line's left, so it is not cut off.
        anchor = f'x="{x - 3:.1f}" text-anchor="end"' if marker.at > 0.85 else f'x="{x + 3:.1f}"'
        out.append(
            f'<line class="threshold" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + PLOT_H}" '
            f'stroke="{marker.colour}" stroke-width="2" stroke-dasharray="5 3"/>'
            f'<text {anchor} y="{TOP + 10 + 12 * index}" font-size="10" '
            f'fill="{marker.colour}">'
            f"{escape(marker.label)}</text>"
        )
    return out


def _svg(title: str, parts: list[str]) -> Markup:
    body = "".join(parts)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _frame(title: str, top: float, unit: str) -> list[str]:
    parts = [
        f'<line x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{LEFT + PLOT_W}" y2="{TOP + PLOT_H}" '
        'stroke="#9ca3af"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + PLOT_H}" stroke="#9ca3af"/>',
    ]
    for step in range(5):
        value = top * step / 4
        y = _y(value, top)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + PLOT_W}" y2="{y:.1f}" '
            'stroke="#e5e7eb"/>'
            f'<text x="{LEFT - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end" '
            f'fill="#4b5563">{_fmt(value)}{escape(unit)}</text>'
        )
    return parts


def _x_labels(labels: Sequence[str], *, centred: bool = False) -> list[str]:
    if not labels:
        return []
    every = max(1, len(labels) // 6)
    slot = PLOT_W / len(labels) if centred else PLOT_W / max(1, len(labels) - 1)
    out = []
    for i in range(0, len(labels), every):
        x = LEFT + slot * i + (slot / 2 if centred else 0)
        out.append(
            f'<text x="{x:.1f}" y="{TOP + PLOT_H + 14}" font-size="10" text-anchor="middle" '
            f'fill="#4b5563">{escape(labels[i])}</text>'
        )
    return out


def _legend(series: Sequence[Series]) -> list[str]:
    out = []
    for index, one in enumerate(series):
        x = LEFT + 90 * index
        colour = COLOURS[index % len(COLOURS)]
        out.append(
            f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 5}" font-size="10" fill="#374151">'
            f"{escape(one.name)}</text>"
        )
    return out


def _y(value: float, top: float) -> float:
    return TOP + PLOT_H - PLOT_H * value / top


def _nice_top(peak: float) -> float:
    """A round axis maximum at or above ``peak`` (1 for an empty chart)."""
    if peak <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(peak))) / 10 if peak >= 1 else 1.0
    while magnitude > peak:
        magnitude /= 10
    for factor in (1, 2, 2.5, 5, 10):
        if magnitude * factor >= peak:
            return magnitude * factor
    return magnitude * 10  # pragma: no cover


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.4f}".rstrip("0").rstrip(".")
