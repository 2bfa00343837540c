"""What a source contributes to ``real-clean``: the recordings it keeps (``RealItem``) and those it drops, with why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RealItem:
    id: str
    path: Path  # the input recording
    text: str
    source: str  # package==version and path inside it
    origin: str
    license: str
    transcript: str  # where the transcript comes from
    speaker: str = ""
    raw: bool = False
    trim: tuple[float, float] | None = None


@dataclass
class Dropped:
    what: str
    why: str


@dataclass
class RealPlan:
    items: list[RealItem] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)

    def extend(self, other: RealPlan) -> None:
        self.items += other.items
        self.dropped += other.dropped
