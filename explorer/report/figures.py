"""Report figures: the floorplan heat map as inline SVG, bar charts as embedded PNG."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence

from matplotlib import colormaps
from matplotlib.figure import Figure

__all__ = ["floorplan_svg", "bar_png", "png_data_uri", "CLASS_COLORS"]

#: Outline colours of tile classes (tab10; class k uses colour k mod 10).
CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf")


def png_data_uri(png: bytes) -> str:
    """``data:`` URI of a PNG, so the report needs no other file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _heat(u: float) -> str:
    """Fill colour of utilisation ``u`` in [0, 1] (viridis); grey for an idle tile."""
    if u is None or (isinstance(u, float) and math.isnan(u)):
        return "#dddddd"
    r, g, b, _ = colormaps["viridis"](min(max(u, 0.0), 1.0))
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def floorplan_svg(classes: Sequence[Sequence[int]], util: Sequence[Sequence[float]],
                  title: str, *, max_px: int = 520) -> str:
    """The mesh as a grid of tiles: fill = utilisation, outline colour and label = class.

    Large meshes shrink the cells and drop the per-tile labels (the legend stays).
    """
    rows, cols = len(classes), len(classes[0])
    cell = max(6, min(64, max_px // max(rows, cols)))
    labels = cell >= 40
    pad, top = 4, 28
    # At least wide enough for the title and the legend, whatever the mesh size.
    w = max(cols * cell + 2 * pad, 8 * len(title) + 2 * pad, 220)
    h = rows * cell + top + pad + 34
    out = [f'<svg class="floorplan" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}" role="img" aria-label="{html.escape(title)}">',
           f'<text x="{pad}" y="18" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    for r in range(rows):
        for c in range(cols):
            k = classes[r][c]
            u = util[r][c]
            x, y = pad + c * cell, top + r * cell
            pct = "idle" if u is None or (isinstance(u, float) and math.isnan(u)) else f"{u:.0%}"
            out.append(f'<rect x="{x + 1}" y="{y + 1}" width="{cell - 2}" height="{cell - 2}" '
                       f'fill="{_heat(u)}" stroke="{CLASS_COLORS[k % 10]}" '
                       f'stroke-width="{3 if labels else 1}"><title>tile ({r}, {c}): class {k}, '
                       f'utilisation {pct}</title></rect>')
            if labels:
                dark = u is not None and not (isinstance(u, float) and math.isnan(u)) and u < 0.6
                fg = "#ffffff" if dark else "#000000"
                out.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 - 3}" font-size="11" '
                           f'text-anchor="middle" fill="{fg}">C{k}</text>'
                           f'<text x="{x + cell / 2}" y="{y + cell / 2 + 11}" font-size="11" '
                           f'text-anchor="middle" fill="{fg}">{pct}</text>')
    # Legend: the colour scale 0-100 %.
    ly = top + rows * cell + 10
    for i in range(11):
        out.append(f'<rect x="{pad + i * 16}" y="{ly}" width="16" height="10" fill="{_heat(i / 10)}"/>')
    out.append(f'<text x="{pad}" y="{ly + 24}" font-size="10">0 %</text>'
               f'<text x="{pad + 150}" y="{ly + 24}" font-size="10">100 % busy</text>')
    out.append("</svg>")
    return "".join(out)


def bar_png(values: Mapping[str, float], *, title: str, unit: str, log: bool = False) -> bytes:
    """A horizontal bar chart of ``values`` (largest first) as PNG bytes."""
    items = sorted(((k, v) for k, v in values.items() if v > 0), key=lambda kv: kv[1])
    fig = Figure(figsize=(5.6, 0.32 * max(len(items), 2) + 1.0))
    ax = fig.add_subplot()
    if items:
        ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
        if log:
            ax.set_xscale("log")
        for i, (_, v) in enumerate(items):
            ax.text(v, i, f" {v:.3g}", va="center", fontsize=8)
    ax.set_xlabel(unit)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    return buf.getvalue()
