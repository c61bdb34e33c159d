"""Synthetic input files, one generator per dataset family, each laid out like ``raw/``."""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GeneratedFiles:
    paths: dict[str, Path]  # dataset -> the file written for it
    rows: dict[str, int]  # dataset -> its rows
