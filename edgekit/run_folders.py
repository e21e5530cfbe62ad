"""Run folders that never overwrite an earlier run: runs/train, runs/train2, runs/train3, ... (as Ultralytics)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("edgekit.training")


RUN_FILES = ("model.keras", "metrics.json")  # what every training run writes: a folder holding one holds a run


def new_run_folder(path: str | Path, exist_ok: bool = False) -> Path:
    """`path` unless it holds an earlier run (`RUN_FILES`) and not `exist_ok`; else the first free `path2`, ...

    A folder with other files (the data, say) is used as it is: only a run's own files are protected.

    Args:
        path: the folder asked for, e.g. ``runs/train``.
        exist_ok: reuse `path` even when an earlier run's files are in it (they may be overwritten).

    Returns:
        The folder this run writes to (not created here).
    """
    path = Path(path)
    if exist_ok or _free(path):
        return path
    number = 2
    while not _free(path.with_name(f"{path.name}{number}")):
        number += 1
    chosen = path.with_name(f"{path.name}{number}")
    log.info("%s holds an earlier run: this one writes to %s (exist_ok=True / --exist-ok reuses it)", path, chosen)
    return chosen


def _free(path: Path) -> bool:
    return not any((path / name).exists() for name in RUN_FILES)
