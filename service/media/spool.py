"""Uploads on disk: the spool folder and the files in it (video is never held in memory)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SpooledFile:
    """An upload on disk; whoever holds it deletes it with `discard()` when done."""

    path: Path
    size: int

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def spool_folder(configured: Path | None) -> Path:
    """The spool folder (created if missing): the configured one, else one in the system temp."""
    folder = configured or Path(tempfile.gettempdir()) / "filters-spool"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
