"""PNG plots people would rather look at than read: curves, confusion, comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from runtimes._deps import require


def _pyplot() -> Any:
    matplotlib = require("matplotlib", extra="train")
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Loss and accuracy per epoch, training and validation side by side."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str = "confusion matrix") -> Path:
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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_artifacts(rows: Sequence[Mapping[str, Any]], path: str | Path, reference_accuracy: float | None = None) -> Path:
    """Size vs accuracy and mean latency per exported artifact (unverified ones marked on the size axis)."""
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
            left.annotate(f"{row['target']} (unverified)", (kb, 0.02), xycoords=("data", "axes fraction"), rotation=90, fontsize=8)
    left.set_xlabel("file size (kB)")
    left.set_ylabel("accuracy (%)")
    left.set_title("size vs accuracy")
    left.grid(alpha=0.3)
    latencies = [row.get("latency_ms") or 0.0 for row in rows]
    right.barh(names, latencies)
    for index, row in enumerate(rows):
        if row.get("latency_ms") is None:
            right.text(0, index, "  no native latency on this machine", va="center", fontsize=8, color="grey")
    right.set_xlabel("mean latency per image (ms)")
    right.set_title("latency")
    right.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
