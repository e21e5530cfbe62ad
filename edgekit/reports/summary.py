"""What a training run is given, said before it starts: images (and objects) per class and split, and what was
skipped with the reasons."""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

from edgekit.reports.tables import text_table


def dataset_summary(splits: Mapping[str, Any]) -> str:
    """Lines naming each split's images per class (`images/objects` for detection) and the skipped files.

    Args:
        splits: split name to dataset (in memory or streamed); None or empty splits are left out.

    Returns:
        A few lines of plain text, e.g. ``data: 3 classes, 600 images (train 420, val 90, test 90)`` and a table.
    """
    present = {name: data for name, data in splits.items() if data is not None and len(data)}
    if not present:
        return "data: no images"
    first = next(iter(present.values()))
    counted = {name: (data.images_per_class(), data.class_counts()) for name, data in present.items()}
    sizes = ", ".join(f"{name} {len(data)}" for name, data in present.items())
    total = sum(len(data) for data in present.values())
    unit = " (images/objects)" if first.counts_instances else ""
    lines = [f"data: {len(first.labels)} classes, {total} images ({sizes}){unit}"]
    origin = getattr(first, "split_origin", "")
    if origin:
        lines.append(f"splits: {origin}")
    rows = [
        [label]
        + [
            f"{images[label]}/{objects[label]}" if first.counts_instances else str(images[label])
            for images, objects in counted.values()
        ]
        for label in first.labels
    ]
    lines.append(text_table(["class", *present], rows))
    lines.extend(_skipped_lines(present.values()))
    return "\n".join(lines)


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
