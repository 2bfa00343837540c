"""Pareto plots: size against WER per corpus, coloured by speed-up, with the Pareto front drawn (PNG)."""

from __future__ import annotations

import io
import statistics
from collections.abc import Sequence

from whisper_ptq_bench.report.analysis import pareto_front
from whisper_ptq_bench.report.load import Case


def pareto_plot(panels: Sequence[tuple[str, Sequence[Case]]], title: str = "") -> bytes:
    """A PNG: one panel per corpus, size (MB) against WER (%), colour = speed-up vs fp32, Pareto front drawn.

    Only measured cases with a size are plotted. Very large WERs (a collapsed configuration) are drawn
    at the top edge with their value in the label, so they do not flatten the rest of the plot.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    panels = [(name, [c for c in cases if c.measured and c.size_mb is not None]) for name, cases in panels]
    speedups = [c.speedup for _, cases in panels for c in cases if c.speedup is not None]
    low, high = (min(speedups), max(speedups)) if speedups else (1.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    norm, cmap = Normalize(low, high), colormaps["viridis"]

    fig = Figure(figsize=(7.5 * max(1, len(panels)), 5.6), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (name, cases) in zip(axes, panels, strict=False):
        xs = [c.size_mb for c in cases]
        ys = [c.wer * 100 for c in cases]
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("size (MB)")
        ax.set_ylabel("WER (%)")
        ax.grid(True, color="#dddddd", linewidth=0.6)
        if not cases:
            ax.text(0.5, 0.5, "no measured case", ha="center", va="center", transform=ax.transAxes, color="#888888")
            continue
        cap = max(4 * statistics.median(ys), 10.0)
        clipped = max(ys) > cap
        shown = [min(y, cap) for y in ys]
        front = pareto_front(list(zip(xs, ys, strict=True)))
        ax.plot(
            [xs[i] for i in front],
            [shown[i] for i in front],
            color="#cf222e",
            linewidth=1.2,
            linestyle="--",
            zorder=2,
            label="Pareto front",
        )
        for i, c in enumerate(cases):
            colour = cmap(norm(c.speedup)) if c.speedup is not None else "#aaaaaa"
            over = ys[i] > cap
            if c.config == "fp32":
                ax.scatter(
                    [xs[i]],
                    [shown[i]],
                    marker="*",
                    s=260,
                    color=colour,
                    edgecolors="#cf222e",
                    linewidths=1.6,
                    zorder=4,
                    label="fp32",
                )
            else:
                ax.scatter(
                    [xs[i]],
                    [shown[i]],
                    marker="^" if over else "o",
                    s=46,
                    color=colour,
                    edgecolors="black" if i in front else "none",
                    linewidths=0.8,
                    zorder=3,
                )
            label = c.config + (f" ({ys[i]:.0f}%)" if over else "")
            offset = (4, 4) if i % 2 == 0 else (4, -8)
            ax.annotate(
                label,
                (xs[i], shown[i]),
                xytext=offset,
                textcoords="offset points",
                fontsize=5.5,
                color="#333333",
                zorder=5,
                fontweight="bold" if c.config == "fp32" else "normal",
            )
        top = cap * 1.08 if clipped else max(max(shown) * 1.1, ax.get_ylim()[1])
        ax.set_ylim(-0.03 * top, top)  # a margin below 0, so a WER of 0 is not drawn on the frame
        if clipped:
            ax.text(
                0.99,
                0.99,
                f"WER above {cap:.0f}% drawn at the top (▲)",
                ha="right",
                va="top",
                transform=ax.transAxes,
                fontsize=6,
                color="#666666",
            )
        ax.set_xlim(left=0, right=max(xs) * 1.15)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.legend(loc="best", fontsize=7, framealpha=0.8)
    mappable = _scalar_mappable(norm, cmap)
    fig.colorbar(mappable, ax=list(axes), label="speed-up vs fp32 (×)", shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=11)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _scalar_mappable(norm, cmap):
    from matplotlib.cm import ScalarMappable

    mappable = ScalarMappable(norm=norm, cmap=cmap)
    mappable.set_array([])
    return mappable
