"""Overlay helpers: label, score and FPS drawn on a BGR frame."""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np

from runtimes.tasks import task_for


def draw_overlay(
    image: np.ndarray,
    result: Any,
    fps: float | None = None,
    threshold: float | None = 0.0,
    task: Any = None,
    labels: Sequence[str] = (),
) -> np.ndarray:
    """Return a copy of `image` with the result drawn by its task (a detector's boxes) and its summary
    line (the top label and score, or the object count) and FPS in a readable box."""
    canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    task = task or task_for("classification")
    lines = []
    if result is not None:
        task.draw(canvas, result, labels)
        lines.extend(task.lines(result, threshold or 0.0))
    if fps is not None:
        lines.append(f"{fps:.1f} FPS")
    scale = max(0.4, canvas.shape[0] / 480 * 0.7)
    thickness = max(1, int(round(scale * 2)))
    y = 0
    for text in lines:
        (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        y += height + baseline + 6
        cv2.rectangle(canvas, (0, y - height - baseline - 6), (width + 10, y + 2), (0, 0, 0), -1)
        cv2.putText(
            canvas, text, (5, y - baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA
        )
    return canvas
