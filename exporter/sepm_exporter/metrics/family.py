"""What a metric family is, and what one of its samples is: the vocabulary every metric area speaks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """One metric family of the contract: declared once, by the area module that fills it."""

    name: str
    type: str  # gauge or counter
    labels: tuple[str, ...]
    help: str


Sample = tuple[tuple[str, ...], float]  # label values in the family's label order, and the value
