"""What every dataset's split shares: the data's own splits used as given, and where a split came from.

A dataset keeps, per image, the split its data put it in (`given_splits`: "train", "val", "test", or "" for none;
empty when the data has no splits) and where those came from (`split_source`). `given_parts` turns them into
index sets; each dataset draws a missing val split its own way (stratified by its classes).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from edgekit.errors import DatasetError

SPLITS = ("train", "val", "test")
# folder names of the splits (Ultralytics' and torchvision's layouts): dataset/train/<class>/..., dataset/val/...
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}

Draw = Callable[[np.ndarray, float, float, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def given_parts(
    given_splits: tuple[str, ...], split_source: str, val: float, seed: int, draw: Draw
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], str]:
    """(train, val, test) indices from the data's splits, and what was done: a missing val split drawn from train
    with `draw` (the dataset's stratified random split), a missing test split left empty.

    Raises:
        DatasetError: the data's splits hold no training image.
    """
    names = np.asarray(given_splits)
    indices = {name: np.flatnonzero(names == name) for name in SPLITS}
    if not len(indices["train"]):
        raise DatasetError(
            f"the data's splits ({split_source}) hold no training image; add a train split, or call "
            "split(resplit=True) to draw one at random"
        )
    notes = [f"the data's own splits ({split_source})"]
    if not len(indices["val"]):
        train, drawn_val, _ = draw(indices["train"], val, 0.0, seed)
        indices["train"], indices["val"] = train, drawn_val
        notes.append(f"no val split in the data: {len(drawn_val)} training images drawn for it (val {val:g})")
    if not len(indices["test"]):
        notes.append("no test split in the data: final metrics on val")
    outside = int(np.sum(names == ""))
    if outside:
        notes.append(f"{outside} image(s) in no split left out")
    return (np.sort(indices["train"]), np.sort(indices["val"]), np.sort(indices["test"])), "; ".join(notes)


def drawn_origin(val: float, test: float, seed: int, split_source: str) -> str:
    """What a random split says of itself: its fractions, and whether the data's own splits were set aside."""
    origin = f"drawn at random (val {val:g}, test {test:g}, seed {seed})"
    if split_source:
        return origin + f"; the data's own splits ({split_source}) set aside by resplit=True"
    return origin + ": the data has no splits of its own"


def check_fractions(val: float, test: float) -> None:
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DatasetError(f"invalid split fractions val={val}, test={test}; each in [0, 1) and val + test < 1")


def with_origin(parts: tuple[Any, ...], origin: str) -> tuple[Any, Any, Any]:
    """`parts` with `split_origin` saying where they came from (the training summary prints it)."""
    for part in parts:
        part.split_origin = origin
    return parts  # type: ignore[return-value]
