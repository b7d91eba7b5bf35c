"""Server-side SVG charts for the dashboard (pure functions: data in, SVG markup out).

No JavaScript chart library: bars are simple enough to draw here, and the page stays within a
strict Content-Security-Policy. Colours come from CSS classes (``desk.css``).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 560, 200, 48, 34, 12


def _axis(top: float, label_every: int, labels: Sequence[str], step: float) -> list[str]:
    base = HEIGHT - PAD_BOTTOM
    parts = [
        f'<line class="axis" x1="{PAD_LEFT}" y1="{base}" x2="{WIDTH}" y2="{base}"/>',
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{PAD_TOP + 4}" text-anchor="end">'
        f"{_fmt(top)}</text>",
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{base}" text-anchor="end">0</text>',
    ]
    for i, label in enumerate(labels):
        if i % label_every == 0:
            x = PAD_LEFT + step * (i + 0.5)
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{base + 16}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    return parts


def _fmt(value: float) -> str:
    return f"{value:.2f}" if value < 10 and value != int(value) else f"{int(value):,}"


def bars(
    data: Sequence[tuple[str, float]],
    *,
    title: str,
    max_labels: int = 12,
    css: str = "bar",
    top: float | None = None,
    values: bool = False,
) -> str:
    """A bar chart of (label, value) pairs, with an accessible title and per-bar tooltips;
    ``values``: each bar's value written above it (a zero is then seen, not a missing bar)."""
    if not data:
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    top = top or max((v for _, v in data), default=0) or 1.0
    step = (WIDTH - PAD_LEFT) / len(data)
    height = HEIGHT - PAD_BOTTOM - PAD_TOP
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, (label, value) in enumerate(data):
        h = height * min(value, top) / top
        width = min(step * 0.8, 60.0)
        x = PAD_LEFT + step * (i + 0.5) - width / 2
        parts.append(
            f'<rect class="{css}" x="{x:.1f}" y="{HEIGHT - PAD_BOTTOM - h:.1f}" '
            f'width="{width:.1f}" height="{h:.1f}"><title>{escape(label)}: '
            f"{_fmt(value)}</title></rect>"
        )
        if values:
            parts.append(
                f'<text class="tick value" x="{x + width / 2:.1f}" '
                f'y="{HEIGHT - PAD_BOTTOM - h - 4:.1f}" text-anchor="middle">{_fmt(value)}</text>'
            )
    labels = [label for label, _ in data]
    parts += _axis(top, max(1, -(-len(data) // max_labels)), labels, step)
    return "".join(parts) + "</svg>"


def grouped_bars(groups: Sequence[tuple[str, Sequence[tuple[str, float]]]], *, title: str) -> str:
    """Bars grouped per label (e.g. tp/fp/fn per model version); series names are CSS
    classes ``s-<name>`` and appear in a legend."""
    if not groups:
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    names = [name for name, _ in groups[0][1]]
    top = max((v for _, series in groups for _, v in series), default=0) or 1.0
    step = (WIDTH - PAD_LEFT) / len(groups)
    width = min(step * 0.8 / len(names), 40.0)
    height = HEIGHT - PAD_BOTTOM - PAD_TOP
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 18}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, (label, series) in enumerate(groups):
        for j, (name, value) in enumerate(series):
            h = height * value / top
            x = PAD_LEFT + step * (i + 0.5) - width * len(names) / 2 + width * j
            parts.append(
                f'<rect class="s-{escape(name)}" x="{x:.1f}" '
                f'y="{HEIGHT - PAD_BOTTOM - h:.1f}" width="{width:.1f}" '
                f'height="{h:.1f}"><title>{escape(label)} {escape(name)}: '
                f"{_fmt(value)}</title></rect>"
            )
    parts += _axis(top, 1, [label for label, _ in groups], step)
    for j, name in enumerate(names):
        x = PAD_LEFT + 90 * j
        parts.append(
            f'<rect class="s-{escape(name)}" x="{x}" y="{HEIGHT + 6}" width="10" '
            f'height="10"/><text class="tick" x="{x + 14}" y="{HEIGHT + 15}">'
            f"{escape(name)}</text>"
        )
    return "".join(parts) + "</svg>"
