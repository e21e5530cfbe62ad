"""PNG plots people would rather look at than read: curves, confusion, comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from runtimes.deps import require


def _pyplot() -> Any:
    matplotlib = require("matplotlib", extra="train")
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _epoch_axes(axes: Sequence[Any], titles: Sequence[str]) -> None:
    """Per-epoch curves' axes: epochs along x, a title each, a light grid and the legend."""
    for ax, title in zip(axes, titles):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()


def _save(plt: Any, fig: Any, path: str | Path) -> Path:
    """Lay out, write the PNG and free the figure (pyplot keeps every open figure until closed)."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Loss and accuracy per epoch, training and validation side by side."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, marker="o", label=key)
    _epoch_axes(axes, ("loss", "accuracy"))
    return _save(plt, fig, path)


def plot_confusion(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str = "confusion matrix"
) -> Path:
    plt = _pyplot()
    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    peak = max(max(row) for row in confusion) or 1
    for i, row in enumerate(confusion):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(plt, fig, path)


def plot_artifacts(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    reference_accuracy: float | None = None,
    metric: str = "accuracy",
) -> Path:
    """Size vs `metric` (accuracy, or a detector's mAP) and mean latency per exported artifact (unverified ones marked
    on the size axis)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = [row["target"] for row in rows]
    if reference_accuracy is not None:
        left.axhline(reference_accuracy * 100, color="grey", linestyle="--", label="keras")
        left.legend(loc="lower right")
    for index, row in enumerate(rows):
        kb = row["size_bytes"] / 1024
        if row.get("accuracy") is not None:
            left.scatter(kb, row["accuracy"] * 100, s=60)
            offset = (5, 5 + 11 * (index % 3))  # stagger labels: equal accuracies are common
            left.annotate(row["target"], (kb, row["accuracy"] * 100), textcoords="offset points", xytext=offset)
        else:
            left.axvline(kb, color="orange", alpha=0.4)
            left.annotate(
                f"{row['target']} (unverified)", (kb, 0.02), xycoords=("data", "axes fraction"), rotation=90, fontsize=8
            )
    left.set_xlabel("file size (kB)")
    left.set_ylabel(f"{metric} (%)")
    left.set_title(f"size vs {metric}")
    left.grid(alpha=0.3)
    latencies = [row.get("latency_ms") or 0.0 for row in rows]
    right.barh(names, latencies)
    for index, row in enumerate(rows):
        if row.get("latency_ms") is None:
            right.text(0, index, "  no native latency on this machine", va="center", fontsize=8, color="grey")
    right.set_xlabel("mean latency per image (ms)")
    right.set_title("latency")
    right.grid(alpha=0.3, axis="x")
    return _save(plt, fig, path)


def plot_latencies(latencies: Sequence[Sequence[float]], labels: Sequence[str], path: str | Path) -> Path:
    """One horizontal box plot of per-inference latency per artifact."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.6 * max(1, len(labels))))
    if labels:
        ax.boxplot(latencies, vert=False, showfliers=True)
        ax.set_yticks(range(1, len(labels) + 1), labels)
    ax.set_xlabel("latency per inference (ms)")
    ax.set_title("edgekit bench")
    ax.grid(alpha=0.3, axis="x")
    return _save(plt, fig, path)


def plot_detection_history(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Training and validation loss, and validation mAP, per epoch."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if key in history:
            axes[0].plot(range(1, len(history[key]) + 1), history[key], style, marker="o", label=key)
    for key, style in (("val_map", "-"), ("val_map50", "--")):
        if key in history:
            axes[1].plot(
                range(1, len(history[key]) + 1),
                history[key],
                style,
                marker="o",
                label={"val_map": "val mAP@[.5:.95]", "val_map50": "val mAP@.5"}[key],
            )
    _epoch_axes(axes, ("loss", "validation mAP"))
    return _save(plt, fig, path)


def plot_detection_samples(dataset: Any, detections: Sequence[Any], path: str | Path, columns: int = 4) -> Path:
    """Images with ground truth (white, thin) and predictions (coloured, labelled with scores), in a grid."""
    import cv2
    import numpy as np

    from runtimes.preprocess import read_image, to_color_order
    from runtimes.tasks.detection import draw_detections

    tiles = []
    for i, (boxes, scores, classes) in enumerate(detections):
        image = (
            to_color_order(read_image(dataset.sources[i]), "bgr", "bgr")
            if Path(dataset.sources[i]).is_file()
            else cv2.cvtColor(dataset.pixels[i], cv2.COLOR_RGB2BGR)
        )
        mapping = None if Path(dataset.sources[i]).is_file() else dataset.mapping(i)
        truth = dataset.boxes[i] if mapping is None else mapping.to_input(dataset.boxes[i])
        shown = boxes if mapping is None else mapping.to_input(boxes)
        scale = 256 / max(image.shape[:2])
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
        for box in truth * scale:
            cv2.rectangle(image, tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:]), (255, 255, 255), 1)
        draw_detections(image, shown * scale, dataset.labels, scores, classes, thickness=2)
        tile = np.zeros((256, 256, 3), np.uint8)
        tile[: image.shape[0], : image.shape[1]] = image
        tiles.append(tile)
    rows = (
        [
            np.hstack(tiles[r : r + columns] + [np.zeros_like(tiles[0])] * (columns - len(tiles[r : r + columns])))
            for r in range(0, len(tiles), columns)
        ]
        if tiles
        else [np.zeros((256, 256, 3), np.uint8)]
    )
    cv2.imwrite(str(path), np.vstack(rows))
    return Path(path)
