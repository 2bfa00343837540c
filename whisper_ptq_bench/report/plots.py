"""Pareto plots (PNG): per corpus, the WER change against fp32 over the compression, the Pareto front labelled.

One figure per model and corpus family, one panel per corpus, stacked with one shared x axis:

* x is the compression (the fraction of the fp32 serialized size saved, in %; the top axis gives the size
  in MB). Without a compression and an fp32 size for every point, x is the size in MB instead.
* y is the WER difference to fp32 in percentage points; the fp32 reference is the line at 0.
* Both axes are fitted to the bulk of the points, with small margins and no forced zero. A point more than
  three interquartile ranges beyond the quartiles is off-scale: it is drawn on the frame as a triangle
  pointing where it lies, and its label gives its value.
* Colour is the library, marker shape the scheme; a red ring and the dashed red line mark the Pareto front
  (no other point is both smaller and at least as good, or at least as small and better).
* fp32, the front and the off-scale points are labelled by name, every other point by a number keyed in
  the table under the panels (the same number in every panel). Points drawn within a few pixels of each
  other share one label. Labels are placed greedily, most important first, next to their point or
  further out with a leader line, where they overlap no other label, marker or leader line; a name that
  finds no room falls back to the point's number.
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from whisper_ptq_bench.report.analysis import order_configs, pareto_front
from whisper_ptq_bench.report.blocks import LIBRARY_NAMES
from whisper_ptq_bench.report.load import Case, number

DPI = 150
WIDTH_IN = 11.0  # figure width; each panel spans it
PANEL_IN = 4.4  # height of one panel
LABEL_PT = 7.0  # font size of the point labels and the key
LABEL_GID = "pareto-label"  # gid of every point label (the tests check that none overlaps another)
FENCE = 3.0  # interquartile ranges beyond the quartiles that make a point off-scale
MARKER_S = 42  # marker area (pt^2)
FRONT_COLOUR = "#d62728"
_LIBRARY_COLOURS = {
    "none": "#000000",
    "torch-ao": "#1f77b4",
    "torchao": "#ff7f0e",
    "quanto": "#2ca02c",
    "hqq": "#9467bd",
    "bnb": "#8c564b",
}
_SPARE_COLOURS = ["#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#98df8a"]
_SCHEME_MARKERS = {
    "none": ("*", "fp32 (reference)"),
    "weight-only": ("o", "weight-only"),
    "dynamic": ("D", "dynamic activations"),
    "static": ("s", "static activations"),
}
_OTHER_SCHEME = ("P", "other scheme")
_OFF_MARKERS = {(0, 1): "^", (0, -1): "v", (1, 0): ">", (-1, 0): "<"}
_OFF_ARROWS = {(0, 1): "↑", (0, -1): "↓", (1, 0): "→", (-1, 0): "←"}
_PRIORITY = {"fp32": 0, "front": 1, "off": 2, "rest": 3}


@dataclass
class _Point:
    case: Case
    key: int  # the number in the key; 0 for fp32
    x: float  # compression (%) or size (MB)
    y: float  # WER change vs fp32 (percentage points)
    front: bool = False
    off: tuple[int, int] = (0, 0)  # the direction it lies off-scale, (0, 0) when on the plot
    shown: tuple[float, float] = (0.0, 0.0)  # where it is drawn (data coordinates)

    @property
    def kind(self) -> str:
        if self.case.config == "fp32":
            return "fp32"
        if self.front:
            return "front"
        return "off" if self.off != (0, 0) else "rest"


@dataclass
class _Panel:
    name: str
    points: list[_Point] = field(default_factory=list)
    dropped: int = 0  # measured cases without a size or a WER change vs fp32
    fp32: Case | None = None
    ylim: tuple[float, float] = (-1.0, 1.0)


def _fp32(cases: Sequence[Case]) -> Case | None:
    return next((c for c in cases if c.config == "fp32" and c.measured), None)


def _delta_pp(case: Case, fp32: Case | None) -> float | None:
    delta = number(case.delta.get("delta"))
    if delta is None and fp32 is not None and fp32.wer is not None and case.wer is not None:
        delta = case.wer - fp32.wer
    if delta is None and case.config == "fp32":
        delta = 0.0
    return None if delta is None else delta * 100


def _compression_pct(case: Case, fp32_size: float | None) -> float | None:
    value = number(case.info.get("compression"))
    if value is None and fp32_size and case.size_mb is not None:
        value = 1 - case.size_mb / fp32_size
    return None if value is None else value * 100


def _fit(values: Sequence[float], min_span: float, pad: float = 0.07) -> tuple[float, float]:
    """The view range of ``values``: their bulk (within ``FENCE`` interquartile ranges of the quartiles), at
    least ``min_span`` wide, plus a margin of ``pad`` of its width on each side."""
    ordered = sorted(values)
    if not ordered:
        return (-min_span / 2, min_span / 2)
    low_fence, high_fence = -math.inf, math.inf
    if len(ordered) >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        iqr = max(q3 - q1, min_span / 4)
        low_fence, high_fence = q1 - FENCE * iqr, q3 + FENCE * iqr
    bulk = [v for v in ordered if low_fence <= v <= high_fence] or ordered
    low, high = bulk[0], bulk[-1]
    if high - low < min_span:
        middle = (low + high) / 2
        low, high = middle - min_span / 2, middle + min_span / 2
    margin = pad * (high - low)
    return low - margin, high + margin


def _side(value: float, limits: tuple[float, float]) -> int:
    return -1 if value < limits[0] else 1 if value > limits[1] else 0


def _inset(side: int, value: float, limits: tuple[float, float]) -> float:
    """``value``, or for an off-scale one the position just inside the frame on its side."""
    inset = 0.022 * (limits[1] - limits[0])
    return value if side == 0 else (limits[0] + inset if side < 0 else limits[1] - inset)


def _fmt(value: float) -> str:
    """One decimal, or two below 1 (a compression of -0.03% is not shown as -0.0%)."""
    return f"{value:.1f}" if abs(value) >= 1 or value == 0 else f"{value:.2f}"


def _fmt_x(value: float, use_size: bool) -> str:
    return f"{_fmt(value)} MB" if use_size else f"{_fmt(value)}%"


def _library_colours(backends: Sequence[str]) -> dict[str, str]:
    colours = dict(_LIBRARY_COLOURS)
    spare = iter(_SPARE_COLOURS * 4)
    for backend in backends:
        if backend not in colours:
            colours[backend] = next(spare)
    return colours


def _scheme_marker(case: Case) -> tuple[str, str]:
    return _SCHEME_MARKERS.get(str(case.axes.get("scheme") or ""), _OTHER_SCHEME)


def pareto_figure(panels: Sequence[tuple[str, Sequence[Case]]], title: str = ""):
    """The figure that :func:`pareto_plot` renders (a matplotlib ``Figure``, laid out and labelled)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    plotted = [(name, [c for c in cases if c.measured and c.size_mb is not None]) for name, cases in panels]
    all_cases = [c for _, cases in plotted for c in cases]
    fp32_size = next((c.size_mb for c in all_cases if c.config == "fp32"), None)
    use_size = any(_compression_pct(c, fp32_size) is None for c in all_cases)
    colours = _library_colours(list(dict.fromkeys(c.backend for c in all_cases)))

    built: list[_Panel] = []
    for name, cases in plotted:
        panel = _Panel(name, fp32=_fp32(cases))
        for c in cases:
            x = c.size_mb if use_size else _compression_pct(c, fp32_size)
            y = _delta_pp(c, panel.fp32)
            if x is None or y is None:
                panel.dropped += 1
                continue
            panel.points.append(_Point(c, 0, x, y))
        # the front minimizes the size (maximizes the compression) and the WER change
        sign = 1 if use_size else -1
        for i in pareto_front([(sign * p.x, p.y) for p in panel.points]):
            panel.points[i].front = True
        panel.ylim = _fit([p.y for p in panel.points], min_span=2.0, pad=0.09)
        built.append(panel)
    drawn = [p.case.config for panel in built for p in panel.points]
    configs = [cid for cid in order_configs(drawn) if cid != "fp32"]  # numbered in the key, in every panel
    keys = {cid: i + 1 for i, cid in enumerate(configs)}
    for p in (p for panel in built for p in panel.points):
        p.key = keys.get(p.case.config, 0)
    xs = [p.x for panel in built for p in panel.points]
    xlim = _fit(xs, min_span=(0.05 * statistics.median(xs) if xs else 1.0) if use_size else 4.0, pad=0.06)

    n = max(1, len(built))
    key_rows, key_cols, key_colw = _key_layout(configs)
    key_in = max(0.3 + key_rows * 0.155, 1.95)
    fig = Figure(figsize=(WIDTH_IN, n * PANEL_IN + key_in + (0.35 if title else 0)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(n + 1, 1, height_ratios=[PANEL_IN] * n + [key_in])
    axes = []
    for i in range(n):
        axes.append(fig.add_subplot(grid[i], sharex=axes[0] if axes else None))
    key_ax = fig.add_subplot(grid[n])

    for index, (ax, panel) in enumerate(zip(axes, built, strict=False)):
        ax.set_xlim(*xlim)
        ax.set_ylim(*panel.ylim)
        ax.grid(True, color="#e3e3e3", linewidth=0.6, zorder=0)
        ax.axhline(0, color="#555555", linewidth=0.9, zorder=1)
        ax.set_ylabel("WER change vs fp32 (percentage points, pp)\nlower is better", fontsize=8)
        ax.set_xlabel("size (MB), smaller is better" if use_size else "compression vs fp32 (%), higher is better")
        ax.tick_params(labelsize=7.5, labelbottom=True)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:+g}" if v else "0"))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}" if use_size else f"{v:g}%"))
        heading = panel.name
        if panel.fp32 is not None and panel.fp32.wer is not None:
            heading += f"   (fp32: WER {panel.fp32.wer * 100:.2f}%, {panel.fp32.size_mb:.1f} MB)"
        if panel.dropped:
            heading += f"   · {panel.dropped} measured case(s) without a size or WER change vs fp32 not drawn"
        ax.set_title(heading, fontsize=9, loc="left")
        if index == 0 and not use_size and fp32_size:
            top = ax.secondary_xaxis(
                "top",
                functions=(lambda c, s=fp32_size: s * (1 - c / 100), lambda m, s=fp32_size: 100 * (1 - m / s)),
            )
            top.set_xlabel("size (MB)", fontsize=8)
            top.tick_params(labelsize=7.5)
        if not panel.points:
            ax.text(0.5, 0.5, "no measured case", ha="center", va="center", transform=ax.transAxes, color="#888")
            continue
        _draw_points(ax, panel, xlim, colours)

    _draw_key(key_ax, built, configs, keys, colours, key_rows, key_cols, key_colw)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.canvas.draw()  # lays the figure out; the labels are then placed in pixels, so the layout is frozen
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    for ax, panel in zip(axes, built, strict=False):
        unplaced = _place_labels(ax, panel, renderer, use_size) if panel.points else []
        if unplaced:  # no room left in the panel: named after its title (the layout is frozen, it has room)
            ax.set_title(
                f"{ax.get_title(loc='left')}   · no room to label: {'; '.join(unplaced)}", fontsize=9, loc="left"
            )
    return fig


def pareto_plot(panels: Sequence[tuple[str, Sequence[Case]]], title: str = "") -> bytes:
    """A PNG of :func:`pareto_figure`: one panel per corpus, WER change vs fp32 over compression, front labelled."""
    fig = pareto_figure(panels, title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _draw_points(ax, panel: _Panel, xlim: tuple[float, float], colours: dict[str, str]) -> None:
    for p in panel.points:
        side = (_side(p.x, xlim), _side(p.y, panel.ylim))
        p.off = side
        p.shown = (_inset(side[0], p.x, xlim), _inset(side[1], p.y, panel.ylim))
    front = sorted((p for p in panel.points if p.front), key=lambda p: p.x)
    if len(front) > 1:
        ax.plot(
            [p.shown[0] for p in front],
            [p.shown[1] for p in front],
            color=FRONT_COLOUR,
            linewidth=1.0,
            linestyle="--",
            alpha=0.8,
            zorder=2,
        )
    for p in sorted(panel.points, key=lambda p: _PRIORITY[p.kind], reverse=True):
        colour = colours.get(p.case.backend, "#7f7f7f")
        marker, _ = _scheme_marker(p.case)
        size = MARKER_S
        if p.case.config == "fp32":
            size = MARKER_S * 4
        elif p.off != (0, 0):
            marker = _OFF_MARKERS[(0, p.off[1]) if p.off[1] else (p.off[0], 0)]
            size = MARKER_S * 1.3
        ax.scatter(
            [p.shown[0]],
            [p.shown[1]],
            marker=marker,
            s=size,
            color=colour,
            edgecolors=FRONT_COLOUR if p.front else "white",
            linewidths=1.6 if p.front else 0.5,
            zorder=4 if p.case.config == "fp32" else 3,
            clip_on=False,
        )


# --------------------------------------------------------------------------- the key under the panels


def _key_layout(configs: Sequence[str]) -> tuple[int, int, float]:
    """Rows, columns and column width (points) of the key, right of the legend."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    font = FontProperties(family="DejaVu Sans Mono", size=LABEL_PT)
    longest = max(configs, key=len, default="x" * 10)
    width_pt = TextToPath().get_text_width_height_descent(f"99  {longest}", font, ismath=False)[0]
    column_pt = width_pt + 3 * LABEL_PT
    available_pt = WIDTH_IN * 72 * 0.72
    columns = max(1, min(len(configs) or 1, int(available_pt // column_pt)))
    rows = math.ceil(len(configs) / columns) if configs else 1
    return rows, columns, column_pt


def _draw_key(ax, panels, configs, keys, colours, rows, columns, column_width) -> None:
    from matplotlib.lines import Line2D

    ax.set_axis_off()
    cases = {p.case.config: p.case for panel in panels for p in panel.points}
    handles = []
    for backend in dict.fromkeys(c.backend for c in cases.values() if c.config != "fp32"):
        name = LIBRARY_NAMES.get(backend, backend)
        handles.append(
            Line2D([], [], marker="o", linestyle="", color=colours.get(backend, "#7f7f7f"), markersize=6, label=name)
        )
    for marker, name in dict.fromkeys(_scheme_marker(c) for c in cases.values()):
        colour, size = ("#000000", 9) if marker == "*" else ("#666666", 6)
        handles.append(Line2D([], [], marker=marker, linestyle="", color=colour, markersize=size, label=name))
    handles.append(
        Line2D(
            [],
            [],
            marker="o",
            color=FRONT_COLOUR,
            linestyle="--",
            markerfacecolor="#bbbbbb",
            markeredgecolor=FRONT_COLOUR,
            markeredgewidth=1.6,
            markersize=6,
            label="Pareto front",
        )
    )
    if any(p.off != (0, 0) for panel in panels for p in panel.points):
        handles.append(
            Line2D([], [], marker="^", linestyle="", color="#666666", markersize=6, label="off-scale (value in label)")
        )
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.0, 1.0),
        fontsize=LABEL_PT,
        frameon=False,
        title="colour: library, shape: scheme",
        title_fontsize=LABEL_PT,
        alignment="left",
        borderaxespad=0.0,
    )
    if not configs:
        return
    ax.text(0.235, 1.0, "number: config", fontsize=LABEL_PT, fontweight="bold", va="top", transform=ax.transAxes)
    for col in range(columns):
        chunk = configs[col * rows : (col + 1) * rows]
        if not chunk:
            break
        text = "\n".join(f"{keys[cid]:>2}  {cid}" for cid in chunk)
        ax.annotate(
            "\n" + text,
            (0.235, 1.0),
            xycoords="axes fraction",
            xytext=(col * column_width, 0),
            textcoords="offset points",
            fontsize=LABEL_PT,
            family="DejaVu Sans Mono",
            va="top",
            ha="left",
            linespacing=1.35,
        )


# --------------------------------------------------------------------------- labels


@dataclass
class _Cluster:
    points: list[_Point]  # the first is the most important
    xy: tuple[float, float]  # pixels


def _clusters(ax, points: Sequence[_Point], radius_px: float) -> list[_Cluster]:
    """Points drawn within ``radius_px`` of a cluster's first point join it; most important first."""
    ordered = sorted(points, key=lambda p: (_PRIORITY[p.kind], p.key))
    clusters: list[_Cluster] = []
    for p in ordered:
        xy = tuple(ax.transData.transform(p.shown))
        for cluster in clusters:
            if math.dist(cluster.xy, xy) <= radius_px:
                cluster.points.append(p)
                break
        else:
            clusters.append(_Cluster([p], xy))
    return clusters


def _value(p: _Point, use_size: bool) -> str:
    parts = []
    if p.off[1]:
        parts.append(f"{_OFF_ARROWS[(0, p.off[1])]} {'+' if p.y > 0 else ''}{_fmt(p.y)} pp")
    if p.off[0]:
        parts.append(f"{_OFF_ARROWS[(p.off[0], 0)]} {_fmt_x(p.x, use_size)}")
    return " ".join(parts)


def _variants(cluster: _Cluster, use_size: bool) -> list[tuple[str, bool]]:
    """The label texts to try, longest first, and whether each is bold."""
    named = [p for p in cluster.points if p.kind != "rest"]
    rest = sorted(p.key for p in cluster.points if p.kind == "rest")
    also = (" & " if named and rest else "") + ", ".join(str(k) for k in rest)

    def line(p: _Point, long: bool) -> str:
        if p.case.config == "fp32":
            head = "fp32"
        else:
            head = f"{p.key} {p.case.config}" if long else str(p.key)
        return " ".join(s for s in (head, _value(p, use_size)) if s)

    if not named:
        texts = [also]
        if len(rest) > 4:
            half = math.ceil(len(rest) / 2)
            texts.append(", ".join(map(str, rest[:half])) + ",\n" + ", ".join(map(str, rest[half:])))
        return [(t, False) for t in texts]
    bold = any(p.front for p in named)
    long = "\n".join(line(p, True) for p in named) + also
    short = "\n".join(line(p, False) for p in named) + also
    return [(long, bold), (short, bold)] if short != long else [(long, bold)]


def _candidates(distances_px: Sequence[float]):
    """(distance, unit direction) in the order tried: close before far, sideways before above and below."""
    near = [0, 180, 30, -30, 150, -150, 90, -90]
    ring = near + [60, -60, 120, -120, 15, -15, 165, -165, 45, -45, 135, -135, 75, -75, 105, -105]
    for i, d in enumerate(distances_px):
        for angle in near if i == 0 else ring:
            yield d, (math.cos(math.radians(angle)), math.sin(math.radians(angle)))


def _place_labels(ax, panel: _Panel, renderer, use_size: bool) -> list[str]:
    """Label the panel's clusters of points; returns the shortest labels of those that found no room."""
    import numpy as np

    px = DPI / 72  # pixels per point
    marker_r = math.sqrt(MARKER_S) / 2 * px + 1.5 * px
    frame = ax.get_window_extent(renderer)
    inner = (frame.x0 + 2, frame.y0 + 2, frame.x1 - 2, frame.y1 - 2)
    clusters = _clusters(ax, panel.points, radius_px=0.55 * math.sqrt(MARKER_S) * px)
    markers = np.array(
        [(c.xy[0] - marker_r, c.xy[1] - marker_r, c.xy[0] + marker_r, c.xy[1] + marker_r) for c in clusters]
    )
    boxes = np.zeros((0, 4))
    segments: list[np.ndarray] = []  # sampled points of each leader line
    distances = [d * px for d in (0, 5, 11, 18, 27, 38, 52, 68, 88, 112, 140, 175, 215)]
    pad = 1.5 * px

    def free(box, own: int, leader: np.ndarray | None, strict: bool) -> bool:
        x0, y0, x1, y1 = box
        if x0 < inner[0] or y0 < inner[1] or x1 > inner[2] or y1 > inner[3]:
            return False
        grown = np.array([x0 - pad, y0 - pad, x1 + pad, y1 + pad])
        for others, skip in ((boxes, None), (markers, own)):
            if len(others):
                hit = (
                    (others[:, 0] < grown[2])
                    & (others[:, 2] > grown[0])
                    & (others[:, 1] < grown[3])
                    & (others[:, 3] > grown[1])
                )
                if skip is not None:
                    hit[skip] = False
                if hit.any():
                    return False
        for seg in segments:  # an earlier leader line through this label
            if (
                (seg[:, 0] > grown[0]) & (seg[:, 0] < grown[2]) & (seg[:, 1] > grown[1]) & (seg[:, 1] < grown[3])
            ).any():
                return False
        if leader is not None:  # this label's leader line through an earlier label or (strict) another marker
            for others, skip in ((boxes, None), (markers, own)) if strict else ((boxes, None),):
                if not len(others):
                    continue
                inside = (
                    (leader[:, None, 0] > others[None, :, 0])
                    & (leader[:, None, 0] < others[None, :, 2])
                    & (leader[:, None, 1] > others[None, :, 1])
                    & (leader[:, None, 1] < others[None, :, 3])
                )
                if skip is not None:
                    inside[:, skip] = False
                if inside.any():
                    return False
        return True

    def spot_for(cluster: _Cluster, index: int, text: str, bold: bool, distances: Sequence[float], strict: bool):
        probe = ax.text(0, 0, text, fontsize=LABEL_PT, fontweight="bold" if bold else "normal", multialignment="left")
        extent = probe.get_window_extent(renderer)
        probe.remove()
        w, h = extent.width, extent.height
        for d, (ux, uy) in _candidates(distances):
            ex, ey = cluster.xy[0] + ux * (marker_r + d), cluster.xy[1] + uy * (marker_r + d)
            cx = ex + (math.copysign(w / 2, ux) if abs(ux) > 0.4 else 0.0)
            cy = ey + (math.copysign(h / 2, uy) if abs(uy) > 0.4 else 0.0)
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            if d == 0:
                if free(box, index, None, strict):
                    return box, None
                continue
            near = (min(max(cluster.xy[0], box[0]), box[2]), min(max(cluster.xy[1], box[1]), box[3]))
            start = (cluster.xy[0] + ux * marker_r * 0.8, cluster.xy[1] + uy * marker_r * 0.8)
            t = np.linspace(0.15, 1.0, max(2, int(math.dist(start, near) / 3)))[:, None]
            leader = np.array(start) + t * (np.array(near) - np.array(start))
            if free(box, index, leader, strict):
                return box, (start, near, leader)
        return None

    variants = [_variants(cluster, use_size) for cluster in clusters]
    adjacent, anywhere = distances[:1], distances
    named = [i for i, c in enumerate(clusters) if any(p.kind != "rest" for p in c.points)]
    rest = [i for i in range(len(clusters)) if i not in named]
    # First every named label (fp32, front, off-scale) that fits next to its point claims that spot, before
    # any leader line is drawn; then, cluster by cluster, most important first: the long label anywhere,
    # the short one, and last either with a leader line that may pass over other markers.
    tries = [
        (0, adjacent, True),
        (0, anywhere, True),
        (-1, anywhere, True),
        (0, anywhere, False),
        (-1, anywhere, False),
    ]
    passes = [(named, [tries[0]])] + [([i], tries) for i in named + rest]
    placed: set[int] = set()
    to_data = ax.transData.inverted()
    for indices, attempts in passes:
        for index, (which, reach, strict) in ((i, a) for i in indices for a in attempts):
            if index in placed:
                continue
            text, bold = variants[index][which]
            spot = spot_for(clusters[index], index, text, bold, reach, strict)
            if spot is None:
                continue
            box, leader = spot
            ax.text(
                *to_data.transform(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)),
                text,
                fontsize=LABEL_PT,
                fontweight="bold" if bold else "normal",
                ha="center",
                va="center",
                multialignment="left",
                color="#222222",
                zorder=6,
                gid=LABEL_GID,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.75},
            )
            if leader is not None:
                start, near, samples = leader
                (x0, y0), (x1, y1) = to_data.transform(start), to_data.transform(near)
                ax.plot([x0, x1], [y0, y1], color="#888888", linewidth=0.6, zorder=5)
                segments.append(samples)
            boxes = np.vstack([boxes, box])
            placed.add(index)
    unplaced = [variants[i][-1][0].replace("\n", ", ") for i in range(len(clusters)) if i not in placed]
    return unplaced
