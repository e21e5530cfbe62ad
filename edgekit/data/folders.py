"""`ImageFolder`: a labelled folder of images (one subfolder per class), in memory or streamed."""

from __future__ import annotations

import logging
from abc import ABCMeta
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from edgekit.data.image_streaming import StreamingImageDataset, should_stream
from edgekit.data.images import IMAGE_SUFFIXES, ImageDataset, SkippedFile, _geometry
from edgekit.errors import DatasetError
from runtimes.contract import ColorOrder, Interpolation, Preprocessing, ResizeMode
from runtimes.errors import InputError
from runtimes.preprocess import prepare_pixels

log = logging.getLogger(__name__)


class ImageFolder(metaclass=ABCMeta):  # noqa: B024 (an isinstance-able factory, not an interface)
    """Load ``path/<class>/<image>`` files; labels are the folder names in sorted order.

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

    Example:
        >>> ds = ImageFolder("shapes", image_size=64)
        >>> train, val, test = ds.split(val=0.15, test=0.15, seed=0)
    """

    def __new__(  # type: ignore[misc]
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
    class_files = {
        d.name: sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }
    empty = [name for name, files in class_files.items() if not files]
    if len(class_files) - len(empty) < 2:
        _not_class_folders(root, {name: files for name, files in class_files.items() if files})
    for name in empty:
        log.warning("class folder %s has no images (%s) and is ignored", root / name, ", ".join(IMAGE_SUFFIXES))
        del class_files[name]
    labels = tuple(class_files)
    if should_stream(stream, sum(len(files) for files in class_files.values()), geometry, root):
        files = tuple(str(file) for label in labels for file in class_files[label])
        targets = np.concatenate([np.full(len(class_files[label]), i, np.int64) for i, label in enumerate(labels)])
        return StreamingImageDataset(files, targets, labels, geometry, cache_dir=Path(cache_dir) if cache_dir else None)
    pixels, targets, sources, skipped = [], [], [], []
    for index, label in enumerate(labels):
        for file in class_files[label]:
            try:
                pixels.append(prepare_pixels(file, geometry))
            except InputError as exc:
                skipped.append(SkippedFile(str(file), str(exc)))
                continue
            targets.append(index)
            sources.append(str(file))
    if skipped:
        log.warning("skipped %d unreadable image(s) in %s, first: %s", len(skipped), root, skipped[0].reason)
    if not pixels:
        raise DatasetError(f"none of the images in {root} could be read ({len(skipped)} skipped)")
    dataset = ImageDataset(np.stack(pixels), np.asarray(targets), labels, geometry, tuple(sources), tuple(skipped))
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
