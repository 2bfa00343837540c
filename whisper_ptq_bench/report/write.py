"""Output: the plots, ``report.md`` and ``report.html`` written into a directory, each file atomically."""

from __future__ import annotations

import os
import re
from pathlib import Path

from whisper_ptq_bench.atomic import atomic_write
from whisper_ptq_bench.report.analysis import by_model_and_family
from whisper_ptq_bench.report.blocks import DEFAULT_TITLE, build
from whisper_ptq_bench.report.html import to_html
from whisper_ptq_bench.report.load import Results
from whisper_ptq_bench.report.markdown import to_markdown
from whisper_ptq_bench.report.plots import pareto_plot


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"


def write_report(
    results: Results, out: str | os.PathLike = "report", title: str = DEFAULT_TITLE, sort: str = "config"
) -> list[Path]:
    """Write the plots, ``report.md`` and ``report.html`` into ``out``; returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plots: dict[tuple[str, str], str] = {}
    used: set[str] = set()
    for group in by_model_and_family(results.cases):
        model, mcases = group.model, group.cases
        for family, members in group.families.items():
            panels = [(n, [c for c in mcases if c.corpus == n]) for n in members]
            if not any(c.measured and c.size_mb is not None for _, cases in panels for c in cases):
                continue
            name = f"pareto-{_slug(model)}-{_slug(family)}.png"
            n = 2
            while name in used:
                name, n = f"pareto-{_slug(model)}-{_slug(family)}-{n}.png", n + 1
            used.add(name)
            written.append(
                atomic_write(out / name, pareto_plot(panels, f"{model} · {family}: WER change against compression"))
            )
            plots[(model, family)] = name
    blocks = build(results, title, plots, sort)
    written.append(atomic_write(out / "report.md", to_markdown(blocks)))
    written.append(atomic_write(out / "report.html", to_html(blocks, title)))
    return written
