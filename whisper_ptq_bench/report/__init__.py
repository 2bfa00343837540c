"""Reports from pytest-benchmark results: ``whisper-ptq-bench report RESULTS... --out DIR``.

The input is the JSON that ``pytest benchmarks/ --benchmark-only --benchmark-json=FILE`` writes: one
file per run, or one per shard of a run (the shards are merged). Every benchmark entry carries the
case's ``extra_info`` (see ``CaseResult.extra_info``); a case that failed before it was measured may
carry little or none of it and is reported as errored with whatever its entry says.

The output directory receives ``report.md`` (GitHub-flavoured), ``report.html`` (self-contained apart
from the plots, which it references by relative path) and one Pareto plot (WER change against
compression, the front labelled) per model and corpus family. The report is built once as a list of
blocks and rendered twice, so the Markdown and the HTML say the same thing.

The package has one module per step, importing only from the steps before it: :mod:`.load` (results
files into cases, shards merged) <- :mod:`.analysis` (Pareto front, corpus families, order, grouping)
<- :mod:`.fmt` (numbers for cells) <- :mod:`.blocks` (the document and its tables) <- :mod:`.markdown`,
:mod:`.html` and :mod:`.plots` <- :mod:`.write` (the files). This module re-exports their public names.
"""

from whisper_ptq_bench.atomic import atomic_write
from whisper_ptq_bench.report.analysis import (
    SORTS,
    ModelGroup,
    by_model_and_family,
    corpus_family,
    order_configs,
    pareto_front,
)
from whisper_ptq_bench.report.blocks import (
    DEFAULT_TITLE,
    LIBRARY_NAMES,
    Block,
    Bullets,
    Cell,
    Heading,
    Image,
    Para,
    Table,
    build,
    changes_blocks,
    clean_other_table,
    environment_blocks,
    failed_blocks,
    results_table,
    scope_table,
)
from whisper_ptq_bench.report.fmt import DASH, fmt_ci, fmt_num, fmt_pct, fmt_points
from whisper_ptq_bench.report.html import to_html
from whisper_ptq_bench.report.load import (
    Case,
    ReportError,
    Results,
    Shard,
    axes_from_id,
    load,
    load_results,
    merge,
    split_case_id,
)
from whisper_ptq_bench.report.markdown import to_markdown
from whisper_ptq_bench.report.plots import pareto_plot
from whisper_ptq_bench.report.write import write_report

__all__ = [
    "DASH",
    "DEFAULT_TITLE",
    "LIBRARY_NAMES",
    "SORTS",
    "Block",
    "Bullets",
    "Case",
    "Cell",
    "Heading",
    "Image",
    "ModelGroup",
    "Para",
    "ReportError",
    "Results",
    "Shard",
    "Table",
    "atomic_write",
    "axes_from_id",
    "build",
    "by_model_and_family",
    "changes_blocks",
    "clean_other_table",
    "corpus_family",
    "environment_blocks",
    "failed_blocks",
    "fmt_ci",
    "fmt_num",
    "fmt_pct",
    "fmt_points",
    "load",
    "load_results",
    "merge",
    "order_configs",
    "pareto_front",
    "pareto_plot",
    "results_table",
    "scope_table",
    "split_case_id",
    "to_html",
    "to_markdown",
    "write_report",
]
