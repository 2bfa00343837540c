"""Analysis of the merged cases: the Pareto front, corpus families, config order, and grouping by model.

The sections of the report and its plots follow one grouping, :func:`by_model_and_family`: models in
order of appearance and, within each, corpus families (``read`` for ``read-clean`` and ``read-other``)
with their corpora, clean before other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from whisper_ptq_bench.configs import MATRICES
from whisper_ptq_bench.report.load import Case, number

SORTS = ("config", "library")


def pareto_front(points: Sequence[tuple[float | None, float | None]]) -> list[int]:
    """Indices of the non-dominated points when both coordinates are to be minimized.

    A point is dominated when another is no worse in both coordinates and better in at least one.
    Identical points do not dominate each other, so all copies of a front point are on the front.
    Points with a missing or non-finite coordinate are never on the front. The indices are returned
    in the order of the front: increasing x (then increasing y, then index).
    """
    valid = [i for i, (x, y) in enumerate(points) if number(x) is not None and number(y) is not None]

    def dominates(a: tuple, b: tuple) -> bool:
        return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])

    front = [i for i in valid if not any(dominates(points[j], points[i]) for j in valid if j != i)]
    return sorted(front, key=lambda i: (points[i][0], points[i][1], i))


def corpus_family(corpus: str) -> tuple[str, str | None]:
    """``read-clean`` -> (``read``, ``clean``); a corpus without a clean/other suffix is its own family."""
    for part in ("clean", "other"):
        if corpus.endswith(f"-{part}") and len(corpus) > len(part) + 1:
            return corpus[: -len(part) - 1], part
    return corpus, None


def _config_rank() -> dict[str, int]:
    order: dict[str, int] = {}
    for name in ("full", "default", "smoke"):
        for cid in MATRICES.get(name, []):
            order.setdefault(cid, len(order))
    return order


def order_configs(config_ids: Sequence[str], sort: str = "config") -> list[str]:
    """fp32 first; then the matrix order (``config``) or grouped by library in matrix order (``library``).

    Ids that are in no matrix follow in the order given.
    """
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}, not {sort!r}")
    rank = _config_rank()
    unique = list(dict.fromkeys(config_ids))
    position = {cid: (rank.get(cid, len(rank) + i)) for i, cid in enumerate(unique)}
    if sort == "config":
        return sorted(unique, key=lambda c: (c != "fp32", position[c]))
    libraries: dict[str, int] = {}
    for cid in sorted(unique, key=lambda c: position[c]):
        libraries.setdefault(cid.split(".", 1)[0], len(libraries))
    return sorted(unique, key=lambda c: (c != "fp32", libraries[c.split(".", 1)[0]], position[c]))


def _corpora(cases: Sequence[Case]) -> list[str]:
    """Corpora grouped by family (first appearance), clean before other within a family."""
    names = list(dict.fromkeys(c.corpus for c in cases))
    families = list(dict.fromkeys(corpus_family(n)[0] for n in names))
    part_rank = {"clean": 0, None: 1, "other": 2}
    return sorted(
        names, key=lambda n: (families.index(corpus_family(n)[0]), part_rank[corpus_family(n)[1]], names.index(n))
    )


@dataclass
class ModelGroup:
    """One model's cases and its corpus families: family -> member corpora, in report order."""

    model: str
    cases: list[Case]
    families: dict[str, list[str]]


def by_model_and_family(cases: Sequence[Case]) -> list[ModelGroup]:
    """Cases grouped by model (first appearance), each with its corpus families in the order of :func:`_corpora`."""
    groups = []
    for model in dict.fromkeys(c.model for c in cases):
        mcases = [c for c in cases if c.model == model]
        corpora = _corpora(mcases)
        families = {
            family: [n for n in corpora if corpus_family(n)[0] == family]
            for family in dict.fromkeys(corpus_family(n)[0] for n in corpora)
        }
        groups.append(ModelGroup(model, mcases, families))
    return groups
