"""Charts as inline SVG, drawn on the server: the dashboard needs no script and fetches nothing.

Every bar carries ``data-label``/``data-value`` and a ``<title>`` (the browser's tooltip), so a
test or a screen reader can read the numbers the chart shows."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

Number = int | Decimal

PALETTE = ("#2f6fb3", "#e0803a", "#3c9d5d", "#b34a4a", "#7a5bb3", "#8c8c2f", "#2f9c9c")


def _fmt(value: Number) -> str:
    text = f"{value:,.2f}" if isinstance(value, Decimal) else f"{value:,}"
    return text.replace(",", "\u202f").replace(".", ",")


def _empty(width: int, height: int, chart_id: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart empty" id={quoteattr(chart_id)} '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" fill="#888">Нет данных за период</text></svg>'
    )


def columns(
    chart_id: str, points: Sequence[tuple[str, Number]], *, width: int = 640, height: int = 220, color: str = PALETTE[0]
) -> str:
    """Vertical bars over time (days): every few labels are printed, every bar has its tooltip."""
    if not points or all(v == 0 for _, v in points):
        return _empty(width, height, chart_id)
    top = max(float(v) for _, v in points) or 1.0
    left, bottom, right, head = 8, 28, 8, 18
    step = (width - left - right) / len(points)
    bar = max(1.0, step * 0.8)
    every = max(1, len(points) // 8)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id={quoteattr(chart_id)} width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="{width - right}" y="12" text-anchor="end" font-size="11" fill="#555">'
        f"макс. {_fmt(max(v for _, v in points))}</text>",
    ]
    for index, (label, value) in enumerate(points):
        h = (height - bottom - head) * float(value) / top
        x = left + index * step + (step - bar) / 2
        y = height - bottom - h
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}" '
            f"data-label={quoteattr(label)} data-value={quoteattr(str(value))}>"
            f"<title>{escape(label)}: {escape(_fmt(value))}</title></rect>"
        )
        if index % every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle" font-size="10" '
                f'fill="#555">{escape(label[-5:])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def bars(chart_id: str, items: Sequence[tuple[str, Number]], *, width: int = 640, row: int = 22) -> str:
    """Horizontal bars with their labels and values (segments, stores, tiers)."""
    if not items or all(v == 0 for _, v in items):
        return _empty(width, 60, chart_id)
    height = row * len(items) + 8
    # ~8 px per character of a 12 px system font; longer labels are cut (the tooltip has them whole)
    longest = min(36, max(len(label) for label, _ in items))
    label_width = max(60, longest * 8 + 10)
    top = max(float(v) for _, v in items) or 1.0
    span = width - label_width - 90
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id={quoteattr(chart_id)} width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">'
    ]
    for index, (label, value) in enumerate(items):
        y = 4 + index * row
        w = max(0.0, span * float(value) / top)
        color = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<text x="{label_width - 6}" y="{y + row * 0.65:.1f}" text-anchor="end" font-size="12" '
            f'fill="#333">{escape(label if len(label) <= longest else label[: longest - 1] + "…")}</text>'
            f'<rect class="bar" x="{label_width}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{color}" '
            f"data-label={quoteattr(label)} data-value={quoteattr(str(value))}>"
            f"<title>{escape(label)}: {escape(_fmt(value))}</title></rect>"
            f'<text x="{label_width + w + 6:.1f}" y="{y + row * 0.65:.1f}" font-size="12" fill="#333">'
            f"{escape(_fmt(value))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
