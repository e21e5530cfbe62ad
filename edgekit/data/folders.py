"""`ImageFolder`: a labelled folder of images (one subfolder per class), in memory or streamed."""

from __future__ import annotations

import logging
from abc import ABCMeta
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from edgekit.data.image_streaming import StreamingImageDataset, should_stream
from edgekit.data.images import IMAGE_SUFFIXES, ImageDataset, SkippedFile, _geometry
from edgekit.data.splits import SPLIT_FOLDERS
from edgekit.errors import DatasetError
from runtimes.contract import ColorOrder, Interpolation, Preprocessing, ResizeMode
from runtimes.errors import InputError
from runtimes.preprocess import prepare_pixels

log = logging.getLogger(__name__)


class ImageFolder(metaclass=ABCMeta):  # noqa: B024 (an isinstance-able factory, not an interface)
    """Load ``path/<class>/<image>`` files; labels are the folder names in sorted order.

    A folder of split folders, ``path/train/<class>/...`` with ``val/`` (or ``valid/``) and ``test/`` beside it
    (Ultralytics' and torchvision's layout), keeps its splits: `split()` returns them as given.

    Unreadable images are skipped, counted (``dataset.skipped``) and logged. `interpolation`
    ("area": antialiased, or "linear": one bilinear pass) is how larger images are shrunk,
    here and, through the contract, on the device.

    `stream=False` decodes every image into memory now (an `ImageDataset`); `stream=True`
    lists the files and decodes them per epoch in a tf.data pipeline (a
    `StreamingImageDataset`: for data larger than memory); "auto" streams when the decoded
    pixels would pass 2 GiB, and says so. `cache_dir` keeps a streamed split's decoded pixels
    on disk after its first epoch.

    The result is an `ImageDataset` or a `StreamingImageDataset`; both are instances of `ImageFolder`, so
    ``isinstance(ds, edgekit.ImageFolder)`` holds for what it returns.

    Examples:
        >>> ds = ImageFolder("shapes", image_size=64)
        >>> train, val, test = ds.split(val=0.15, test=0.15, seed=0)
    """

    def __new__(  # type: ignore[misc]  # noqa: D102 (the class's docstring says what it reads)
        cls,
        path: str | Path,
        image_size: int | Sequence[int] = 96,
        color_order: str | ColorOrder = "rgb",
        resize: str | ResizeMode = "stretch",
        interpolation: str | Interpolation = "area",
        stream: bool | Literal["auto"] = "auto",
        cache_dir: str | Path | None = None,
    ) -> Any:
        return read_folder(path, image_size, color_order, resize, interpolation, stream, cache_dir)


ImageFolder.register(ImageDataset)
ImageFolder.register(StreamingImageDataset)


def read_folder(
    path: str | Path,
    image_size: int | Sequence[int] = 96,
    color_order: str | ColorOrder = "rgb",
    resize: str | ResizeMode = "stretch",
    interpolation: str | Interpolation = "area",
    stream: bool | Literal["auto"] = "auto",
    cache_dir: str | Path | None = None,
) -> Any:
    """`ImageFolder`'s reading (the class's docstring says what it does)."""
    root = Path(path)
    if not root.exists():
        raise DatasetError(f"dataset folder not found: {root}")
    if not root.is_dir():
        raise DatasetError(f"dataset path is not a folder: {root}; expected one subfolder per class")
    geometry = _geometry(image_size, color_order, resize, interpolation)
    split_folders = _split_folders(root)
    if split_folders is not None:
        return _read_splits(root, split_folders, geometry, stream, cache_dir)
    class_files = _class_files(root)
    labels = tuple(class_files)
    files = [(file, index, "") for index, label in enumerate(labels) for file in class_files[label]]
    return _dataset(root, files, labels, geometry, stream, cache_dir, "")


def _class_files(root: Path, min_classes: int = 2) -> dict[str, list[Path]]:
    """`root`'s class folders and their image files, sorted; a folder without images is dropped with a warning.
    Fewer than `min_classes` classes with images is an error that says what the folder looks like instead."""
    class_files = {
        d.name: sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }
    empty = [name for name, files in class_files.items() if not files]
    if len(class_files) - len(empty) < min_classes:
        _not_class_folders(root, {name: files for name, files in class_files.items() if files})
    for name in empty:
        log.warning("class folder %s has no images (%s) and is ignored", root / name, ", ".join(IMAGE_SUFFIXES))
        del class_files[name]
    return class_files


def _split_folders(root: Path) -> dict[str, Path] | None:
    """``root/train``, ``root/val`` (or ``valid``), ``root/test`` when `root` holds only split folders of class
    folders (Ultralytics' and torchvision's layout); None for class folders."""
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    if not folders or any(d.name.lower() not in SPLIT_FOLDERS for d in folders):
        return None
    if any(f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES for d in folders for f in d.iterdir()):
        return None  # images right inside: these are classes named like splits
    splits: dict[str, Path] = {}
    for folder in folders:
        split = SPLIT_FOLDERS[folder.name.lower()]
        if split in splits:
            raise DatasetError(f"{root} has two {split} splits ({splits[split].name}/ and {folder.name}/); keep one")
        splits[split] = folder
    return splits if "train" in splits else None


def _read_splits(
    root: Path,
    split_folders: dict[str, Path],
    geometry: Preprocessing,
    stream: bool | Literal["auto"],
    cache_dir: str | Path | None,
) -> Any:
    """Split folders of class folders, each image keeping the split its folder gives (`given_splits`)."""
    # a val or test split may hold some of the classes; the training split needs two
    per_split = {split: _class_files(folder, 2 if split == "train" else 1) for split, folder in split_folders.items()}
    labels = tuple(sorted({label for classes in per_split.values() for label in classes}))
    files = [
        (file, labels.index(label), split)
        for split, classes in per_split.items()
        for label, paths in classes.items()
        for file in paths
    ]
    source = ", ".join(f"{folder.name}/" for folder in split_folders.values())
    return _dataset(root, files, labels, geometry, stream, cache_dir, f"{source} folders")


def _dataset(
    root: Path,
    files: list[tuple[Path, int, str]],
    labels: tuple[str, ...],
    geometry: Preprocessing,
    stream: bool | Literal["auto"],
    cache_dir: str | Path | None,
    split_source: str,
) -> Any:
    """The images `files` lists (path, class index, given split), streamed or decoded into memory now."""
    given = tuple(split for _, _, split in files) if split_source else ()
    if should_stream(stream, len(files), geometry, root):
        return StreamingImageDataset(
            tuple(str(file) for file, _, _ in files),
            np.asarray([target for _, target, _ in files], np.int64),
            labels,
            geometry,
            cache_dir=Path(cache_dir) if cache_dir else None,
            given_splits=given,
            split_source=split_source,
        )
    pixels, targets, sources, skipped, kept = [], [], [], [], []
    for position, (file, target, _) in enumerate(files):
        try:
            pixels.append(prepare_pixels(file, geometry))
        except InputError as exc:
            skipped.append(SkippedFile(str(file), str(exc)))
            continue
        targets.append(target)
        sources.append(str(file))
        kept.append(position)
    if skipped:
        log.warning("skipped %d unreadable image(s) in %s, first: %s", len(skipped), root, skipped[0].reason)
    if not pixels:
        raise DatasetError(f"none of the images in {root} could be read ({len(skipped)} skipped)")
    dataset = ImageDataset(
        np.stack(pixels),
        np.asarray(targets),
        labels,
        geometry,
        tuple(sources),
        tuple(skipped),
        tuple(given[i] for i in kept) if given else (),
        split_source,
    )
    unreadable = [label for label, n in dataset.class_counts().items() if n == 0]
    if unreadable:
        raise DatasetError(f"class folder(s) {unreadable} in {root} hold no readable image; fix or remove them")
    return dataset


def _not_class_folders(root: Path, class_files: dict[str, list[Path]]) -> None:
    """Raise the error for a folder without two class subfolders: a detection dataset is named as one, with the fix."""
    from edgekit.data.annotations import detection_format

    found = detection_format(root)
    if found is not None:
        raise DatasetError(
            f"{root} is a {found.upper()} detection dataset, not one subfolder per class: add --task detection "
            f"(Python: edgekit.load_detection)"
        )
    if not class_files:
        raise DatasetError(
            f"no images found in {root}: expected one subfolder per class holding "
            f"{', '.join(IMAGE_SUFFIXES)} files (e.g. {root}/cat/001.jpg)"
        )
    only = next(iter(class_files))
    raise DatasetError(f"found only one class ({only!r}) in {root}; classification needs at least two class subfolders")


def folder_for(path: str | Path, preprocessing: Preprocessing) -> ImageDataset:
    """A labelled folder read at a contract's geometry (size, colour order, resize mode)."""
    return read_folder(
        path,
        image_size=preprocessing.input_size,
        color_order=preprocessing.color_order,
        resize=preprocessing.resize,
        interpolation=preprocessing.interpolation,
    )
