"""Charts drawn on the server as inline SVG (no JavaScript, printable): bars with their
labels and values written out, so a chart also reads as text to a screen reader.

Every label is escaped; the figures come from the engine's annual report.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

BAR = "#2b6cb0"
BAND = "#c6f6d5"
MUTED = "#718096"
WARN = "#dd6b20"


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'style="max-width: {width}px" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'preserveAspectRatio="xMinYMin meet"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def hbars(
    title: str,
    rows: Sequence[tuple[str, float | None, str]],
    *,
    maximum: float | None = None,
    colour: str = BAR,
) -> Markup:
    """Horizontal bars: (label, value, value as written) per row."""
    label_w, bar_w, row_h = 200, 330, 26
    height = max(1, len(rows)) * row_h + 10
    top = maximum or max([v or 0 for _, v, _ in rows] + [1])
    body = []
    for i, (label, value, written) in enumerate(rows):
        y = 5 + i * row_h
        width = 0 if not value else max(1.0, bar_w * value / top)
        body.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" font-size="13">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{width:.1f}" height="{row_h - 8}" '
            f'fill="{colour}"/>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 17}" font-size="12" fill="#1a202c">'
            f"{escape(written)}</text>"
        )
    return _svg(label_w + bar_w + 90, height, title, body)


def band_columns(
    title: str,
    rows: Sequence[tuple[str, int]],
    *,
    low: int = 3,
    high: int = 5,
) -> Markup:
    """One column per community (its completed projects) against the low–high band."""
    left, plot_w, plot_h, bottom = 34, 900, 160, 24
    step = plot_w / max(1, len(rows))
    bar = min(step * 0.7, 28.0)
    width = left + plot_w + 10
    top = max([high + 1] + [v for _, v in rows])
    scale = plot_h / top

    def y(v: float) -> float:
        return 10 + plot_h - v * scale

    body = [
        f'<rect x="{left}" y="{y(high):.1f}" width="{width - left - 10}" '
        f'height="{(high - low) * scale:.1f}" fill="{BAND}"/>',
        f'<text x="{width - 12}" y="{y(high) - 3:.1f}" text-anchor="end" font-size="11" '
        f'fill="#276749">{low}–{high} 件</text>',
    ]
    for tick in range(0, top + 1):
        body.append(
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="{MUTED}">{tick}</text>'
        )
    for i, (label, value) in enumerate(rows):
        x = left + i * step
        colour = BAR if low <= value <= high else WARN
        body.append(
            f'<rect x="{x + (step - bar) / 2:.1f}" y="{y(value):.1f}" width="{bar:.1f}" '
            f'height="{value * scale:.1f}" fill="{colour}"><title>{escape(label)}：{value} 件'
            "</title></rect>"
        )
        if len(rows) <= 40:
            body.append(
                f'<text x="{x + step / 2:.1f}" y="{10 + plot_h + 14}" text-anchor="middle" '
                f'font-size="10">{escape(label[:2])}</text>'
            )
    body.append(
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - 10}" y2="{y(0):.1f}" stroke="{MUTED}"/>'
    )
    return _svg(int(width), 10 + plot_h + bottom, title, body)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def days(value: float | None) -> str:
    return "—" if value is None else f"{value:g} 天"
