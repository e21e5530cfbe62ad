"""What a training run is given, said before it starts: images (and objects) per class and split, and what was
skipped with the reasons."""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping


def dataset_summary(splits: Mapping[str, Any], width: int = 110) -> str:
    """A few lines: the images per split and where the splits came from, then per class the images (and objects,
    for detection) in each split, wrapped at `width`, then the skipped files by reason.

    Args:
        splits: split name to dataset (in memory or streamed); None or empty splits are left out.
        width: the longest line before the per-class list wraps.

    Returns:
        Plain text, e.g. ``data: 3 classes, 600 images (train 420, val 90, test 90); splits: drawn at random ...``
        then ``per class, images in train, val, test: circle 140 30 30; square 140 30 30; ...``.
    """
    present = {name: data for name, data in splits.items() if data is not None and len(data)}
    if not present:
        return "data: no images"
    first = next(iter(present.values()))
    counted = {name: (data.images_per_class(), data.class_counts()) for name, data in present.items()}
    sizes = ", ".join(f"{name} {len(data)}" for name, data in present.items())
    total = sum(len(data) for data in present.values())
    origin = getattr(first, "split_origin", "")
    lines = [f"data: {len(first.labels)} classes, {total} images ({sizes})" + (f"; splits: {origin}" if origin else "")]
    unit = "images/objects" if first.counts_instances else "images"
    cells = [
        f"{label} "
        + " ".join(
            f"{images[label]}/{objects[label]}" if first.counts_instances else str(images[label])
            for images, objects in counted.values()
        )
        for label in first.labels
    ]
    lines.extend(_wrapped(f"per class, {unit} in {', '.join(present)}: ", cells, width))
    lines.extend(_skipped_lines(present.values()))
    return "\n".join(lines)


def _wrapped(head: str, cells: list[str], width: int) -> list[str]:
    """`head` then `cells` joined by "; ", continued on indented lines past `width`."""
    lines, line = [], head
    for number, cell in enumerate(cells):
        piece = cell + (";" if number < len(cells) - 1 else "")
        if len(line) + len(piece) + 1 > width and line.strip() and line != head:
            lines.append(line.rstrip())
            line = "  "
        line += piece + " "
    lines.append(line.rstrip())
    return lines


def _skipped_lines(datasets: Any) -> list[str]:
    """One line per reason with a first example; each dataset's skipped files counted once."""
    skipped = {skip for data in datasets for skip in data.skipped}
    if not skipped:
        return []
    reasons = Counter(skip.reason.split(":")[0] for skip in skipped)
    lines = [f"skipped {len(skipped)} file(s) or annotation(s):"]
    for reason, count in reasons.most_common():
        example = min((skip for skip in skipped if skip.reason.split(":")[0] == reason), key=lambda s: s.path)
        lines.append(f"  {count} x {reason} (e.g. {example.path}: {example.reason})")
    return lines
