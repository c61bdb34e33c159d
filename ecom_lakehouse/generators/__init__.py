"""Synthetic input files, one generator per dataset family, each laid out like ``raw/``."""

from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class GeneratedFiles:
    paths: dict[str, Path]  # dataset -> the file written for it
    rows: dict[str, int]  # dataset -> its rows


# Each (seed, start) generates its keys in a block of its own, so new data never overwrites
# rows generated before: a block holds 10 million keys per dataset, starts are days since 2000
# (up to 2054), and every key stays below 2**53 (exact in a spreadsheet's and JSON's numbers).
KEYS_PER_BLOCK = 10_000_000
START_DAYS = 20_000
EPOCH = date(2000, 1, 1)
MAX_SEED = (2**53 // KEYS_PER_BLOCK) // START_DAYS - 1


def keys_from(seed: int, start: date) -> int:
    """The first key of what ``generate`` writes for this seed and start (added to every key)."""
    days = (start - EPOCH).days
    if not 0 <= days < START_DAYS or not 0 <= seed <= MAX_SEED:
        raise ValueError(
            f"keys for seed {seed} and start {start} are outside the generator's blocks "
            f"(seed 0..{MAX_SEED}, start from {EPOCH}): give an explicit id offset"
        )
    return (seed * START_DAYS + days) * KEYS_PER_BLOCK
