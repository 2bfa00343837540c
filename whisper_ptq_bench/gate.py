"""The gate: one place that decides, per case, what is compared, what fails, what only warns and what could not
be compared (and says why). It runs every registered check (checks.py) on a reference result and a candidate
result and knows none of them by name; where the reference comes from (baselines.json, a live environment)
is the caller's business."""

from __future__ import annotations

from dataclasses import dataclass, field

from whisper_ptq_bench.checks import CHANGED, IDENTICAL, NOT_COMPARED, REGRESSED, Context, Outcome, registered
from whisper_ptq_bench.result import Result

#: The three verdicts of a case, best first.
VERDICTS = (IDENTICAL, CHANGED, REGRESSED)


@dataclass
class Verdict:
    """Every check's outcome on one case, and the checks that could not be compared (by id)."""

    outcomes: list[Outcome] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)
    where: str = "the baseline entry has no baseline for it"  # what lacked what the not-compared checks need

    @property
    def failures(self) -> list[str]:
        return [o.failure for o in self.outcomes if o.failure]

    @property
    def warnings(self) -> list[str]:
        return [o.warning for o in self.outcomes if o.warning]

    @property
    def notes(self) -> list[str]:
        out = []
        if self.not_compared:
            out.append(f"not compared ({self.where}): {', '.join(self.not_compared)}")
        return out + [o.note for o in self.outcomes if o.note]

    @property
    def status(self) -> str:
        return "failed" if self.failures else "ok"

    @property
    def verdict(self) -> str:
        """``regressed`` when any check failed, ``identical`` when every compared check found nothing moved,
        ``changed`` otherwise (moved within tolerance, improvements included, or warned)."""
        if self.failures:
            return REGRESSED
        compared = [o for o in self.outcomes if o.status != NOT_COMPARED]
        return IDENTICAL if compared and all(o.status == IDENTICAL for o in compared) else CHANGED

    def failed(self) -> list[str]:
        """Ids of the checks that failed, in the order they ran (what the drill credits)."""
        return [o.check for o in self.outcomes if o.failure]

    def changes(self) -> list[str]:
        """``check: what moved`` for every check that saw a change."""
        return [f"{o.check}: {o.change}" for o in self.outcomes if o.change]

    def detail(self) -> list[str]:
        return [o.detail for o in self.outcomes if o.detail]


def judge(reference: Result, candidate: Result, context: Context) -> Verdict:
    """Compare one case's ``candidate`` result with its ``reference``; every registered check runs at most once,
    in registration order. A blocking check that fails (other inputs) ends the comparison."""
    verdict = Verdict(
        where=context.reference if context.same_profile else "this machine profile has no baseline for it"
    )
    for cls in registered():
        check = cls.build(context.tol)
        if not check.applies(reference, candidate):
            verdict.not_compared.append(cls.id)
            continue
        outcome = check.compare(reference, candidate, context)
        verdict.outcomes.append(outcome)
        if check.blocking and outcome.status == REGRESSED:
            verdict.not_compared = []
            return verdict
    numerics = {cls.id for cls in registered() if cls.numerics}
    if (
        context.fail_on_change
        and verdict.verdict == CHANGED
        and any(o.status not in (IDENTICAL, NOT_COMPARED) and o.check in numerics for o in verdict.outcomes)
    ):
        moved = "; ".join(verdict.changes()) or "outputs moved within tolerance"
        verdict.outcomes.append(
            Outcome("changed", REGRESSED, failure=f"changed (--ptq-fail-on-change: every change fails): {moved}")
        )
    return verdict


def missing(message: str) -> Verdict:
    """The verdict on a case its reference holds nothing for: red, credited to ``missing``."""
    return Verdict([Outcome("missing", REGRESSED, failure=message)])


def reference_failed(error: str) -> Verdict:
    """The verdict on a case the reference environment failed and this one ran: changed (it runs now)."""
    return Verdict(
        [
            Outcome(
                "reference",
                CHANGED,
                warning=f"the reference environment failed this case, this one runs it: {error}",
                change="runs here; failed in the reference environment",
            )
        ]
    )
