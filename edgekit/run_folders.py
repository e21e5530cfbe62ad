"""Run folders that never overwrite an earlier run: runs/train, runs/train2, runs/train3, ... (as Ultralytics)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger("edgekit.training")


SPLITS_FILE = "splits.json"  # which files formed each split of a run
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


def write_run_splits(folder: Path, splits: Mapping[str, Any], data: str | Path | None = None) -> Path | None:
    """Record which files formed each split (absolute paths; arrays' rows as ``array[i]``) in `folder`/splits.json,
    so that a later check can say which of its images the model was trained on, and (with `data`, the dataset
    they were read from) check on the run's own test split. None when `folder` is gone (a non-chief worker's
    scratch)."""
    if not folder.is_dir():
        return None
    listed: dict[str, Any] = {"data": str(Path(data).resolve())} if data is not None else {}
    for name, dataset in splits.items():
        if dataset is not None:
            listed[name] = [_key(source) for source in getattr(dataset, "sources", ())]
    path = folder / SPLITS_FILE
    path.write_text(json.dumps(listed, indent=1))
    return path


def read_run_splits(folder: Path) -> dict[str, list[str]] | None:
    """A run's recorded splits (`write_run_splits`), or None when `folder` holds none."""
    path = Path(folder) / SPLITS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {str(name): [str(s) for s in sources] for name, sources in data.items() if isinstance(sources, list)}


def run_data_root(folder: Path) -> Path | None:
    """The dataset a run's splits were read from, when it recorded one (runs made by `edgekit train`)."""
    try:
        data = json.loads((Path(folder) / SPLITS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return Path(data["data"]) if isinstance(data, dict) and isinstance(data.get("data"), str) else None


def seen_in_training(sources: Any, run_splits: Mapping[str, list[str]] | None) -> int | None:
    """How many of `sources` (file paths) the run trained on; None when that cannot be known: the run recorded no
    splits, or the check images are arrays' rows (``array[i]`` names a row, not an image)."""
    files = [source for source in sources if not source.startswith("array[")]
    if run_splits is None or not files:
        return None
    trained = set(run_splits.get("train", ()))
    return sum(_key(source) in trained for source in files)


def _key(source: str) -> str:
    """A file path made absolute (the same file named two ways matches); anything else as it is."""
    path = Path(source)
    return str(path.resolve()) if not source.startswith("array[") else source
