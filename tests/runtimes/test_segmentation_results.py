"""The segmentation result on the device: areas, run lengths and their inverse, JSON and text lines, the overlay
(colours and a legend that the banner avoids), and the decoding's refusals."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from runtimes.contract import Preprocessing
from runtimes.errors import ContractError
from runtimes.heads.segmentation import SegmentationHead, output_problem
from runtimes.tasks import task_for
from runtimes.tasks.segmentation import Segmentation, from_run_lengths, run_lengths, source_mask
from runtimes.tensors import TensorSpec

LABELS = ("background", "road", "car")


def _result() -> Segmentation:
    mask = np.zeros((48, 80), np.uint8)
    mask[20:, :] = 1  # the road: the lower 28 rows
    mask[24:36, 50:70] = 2  # a car on it
    return Segmentation(mask, LABELS, 3.0, 1.0)


def test_areas_and_the_classes_present():
    result = _result()
    assert result.image_size == (48, 80)
    assert result.areas == pytest.approx({"background": 20 / 48, "road": (28 * 80 - 240) / 3840, "car": 240 / 3840})
    assert [label for label, _ in result.present()] == ["road", "car"]  # the background left out, largest first
    assert result.label_at(60, 30) == "car" and result.label_at(5, 5) == "background"
    assert str(result).startswith("segmentation 80x48: road 52.1%, car 6.2%")


def test_run_lengths_round_trip_and_json():
    result = _result()
    runs = run_lengths(result.mask)
    assert runs[0] == [0, 20 * 80] and sum(length for _, length in runs) == result.mask.size
    assert np.array_equal(from_run_lengths(runs, result.image_size), result.mask)
    task = task_for("segmentation")
    record = task.record({"source": "street.png"}, result, None, latency_ms=3.0)
    assert record["mask"] == {"size": [48, 80], "run_lengths": runs} and record["areas"]["car"] == 0.0625
    assert task.line(record) == "street.png: 80x48 mask: road 52.1%, background 41.7%, car 6.2%  latency_ms=3.0"
    served = task.serving_prediction(result, LABELS, {})
    assert np.array_equal(np.array(served["mask"]), result.mask) and served["areas"][2] == 0.0625


def test_the_overlay_colours_the_classes_and_keeps_its_legend_off_the_banner():
    task = task_for("segmentation")
    result = _result()
    image = np.full((48, 80, 3), 200, np.uint8)
    task.draw(image, result, LABELS)
    assert (image[5, 40] == 200).all()  # the background is left as it is
    assert not (image[30, 60] == 200).all() and not (image[45, 40] == 200).all()  # the car and the road blended
    assert not np.array_equal(image[30, 60], image[22, 30])  # in colours of their own
    legend = task.occupied(result)
    x0, y0, x1, y1 = legend[0]
    assert legend.shape == (1, 4) and x0 == 0 and y1 == 48 and y0 > 0  # the bottom left corner


def test_scores_map_back_to_each_source_size_and_resize():
    """An 8x8 checkerboard of classes at the input comes back at the source size through stretch, letterbox and
    centre crop: each source pixel's class is the input cell its centre falls in."""
    board = (np.indices((8, 8)).sum(0) % 2).astype(np.uint8)
    scores = np.eye(2, dtype=np.float32)[board]
    for resize in ("stretch", "letterbox", "center_crop"):
        spec = Preprocessing(8, resize=resize)
        mask = source_mask(scores, (16, 32), spec)
        assert mask.shape == (16, 32)
        if resize == "stretch":  # 4 source columns and 2 rows per cell
            assert np.array_equal(mask, np.kron(board, np.ones((2, 4), np.int64)))
    category = source_mask(board, (16, 16), Preprocessing(8), kind="category_mask")
    assert np.array_equal(category, np.kron(board, np.ones((2, 2), np.uint8)))


def test_outputs_that_are_not_the_heads_are_named():
    head = SegmentationHead()
    assert output_problem([TensorSpec("scores", (1, 64, 64, 3), np.float32)], head, 3) is None
    problem = output_problem([TensorSpec("scores", (1, 64, 64, 5), np.float32)], head, 3)
    assert "not per-class scores (1, height, width, 3)" in problem
    assert "has one output" in output_problem([TensorSpec("a", (1, 3), np.float32)] * 2, head, 3)
    with pytest.raises(ContractError, match="unknown segmentation output 'logits'"):
        SegmentationHead(output="logits")


def _bilinear_argmax(scores: np.ndarray, size: tuple[int, int], spec: Preprocessing) -> np.ndarray:
    """The textbook: every source pixel's centre into the scores' cells, four cells weighted, the border repeated."""
    from runtimes.preprocess import box_mapping

    (in_h, in_w), (h, w) = spec.input_size, scores.shape[:2]
    m = box_mapping(size, spec)
    ys = ((np.arange(size[0]) + 0.5) * m.scale_y + m.offset_y) * h / in_h - 0.5
    xs = ((np.arange(size[1]) + 0.5) * m.scale_x + m.offset_x) * w / in_w - 0.5
    out = np.empty(size, np.int64)
    for i, y in enumerate(ys):
        y0 = int(np.floor(y))
        for j, x in enumerate(xs):
            x0 = int(np.floor(x))
            total = np.zeros(scores.shape[-1])
            for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                    total += wy * wx * scores[min(max(yy, 0), h - 1), min(max(xx, 0), w - 1)]
            out[i, j] = total.argmax()
    return out


@pytest.mark.parametrize("resize", ["stretch", "letterbox", "center_crop", "affine"])
def test_the_fast_mask_is_exactly_bilinear_then_argmax(resize):
    """Reading each pixel's class from its four cells where they agree gives the very mask of interpolating every
    pixel's scores (smooth random logits, so that classes form regions and edges, at 3 and 7 classes)."""
    rng = np.random.default_rng(0)
    for classes, grid, size in ((3, (12, 16), (37, 53)), (7, (16, 16), (50, 29))):
        coarse = rng.normal(size=(4, 4, classes)).astype(np.float32)
        scores = np.stack(
            [cv2.resize(coarse[..., c], grid[::-1], interpolation=cv2.INTER_CUBIC) for c in range(classes)], -1
        )
        spec = Preprocessing((grid[0] * 4, grid[1] * 4), resize=resize)
        fast = source_mask(scores, size, spec)
        assert np.array_equal(fast, _bilinear_argmax(scores, size, spec)), resize
        assert len(np.unique(fast)) >= 2
