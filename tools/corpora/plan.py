"""What a source contributes to a real corpus: the recordings it keeps (``RealItem``), those it drops (with why),
and the licence notices that must travel with the audio (``Notice``)."""

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
class Notice:
    """A licence file copied byte for byte into the corpus directory as ``licenses/<name>``."""

    name: str
    path: Path


@dataclass
class RealPlan:
    items: list[RealItem] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def extend(self, other: RealPlan) -> None:
        self.items += other.items
        self.dropped += other.dropped
        self.notices += other.notices
