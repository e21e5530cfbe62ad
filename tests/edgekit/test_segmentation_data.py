"""Segmentation data: the generated scenes and their exact masks, image + mask folders, Pascal VOC palettes and
COCO polygons/RLE read with every bad mask skipped and counted, masks through the letterbox and back, and the
metrics (mean IoU, per-class IoU, pixel accuracy) on hand-computed cases."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import edgekit
from edgekit.data.segmentation import VOC_CLASSES, mask_to_input
from edgekit.errors import DatasetError
from edgekit.metrics.segmentation import pixel_agreement, segmentation_metrics
from runtimes.tasks.segmentation import source_mask


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """30 non-square (72x112) scenes, their masks and labels.txt."""
    return edgekit.datasets.make_shapes_segmentation(
        tmp_path_factory.mktemp("seg") / "scenes", n_images=30, image_size=(72, 112), seed=4
    )


def test_the_generated_masks_are_the_drawn_shapes(scenes):
    assert (scenes / "labels.txt").read_text().split() == ["background", "circle", "square", "triangle"]
    shapes = total = 0
    for image_path in sorted((scenes / "images").glob("*.png")):
        image = cv2.imread(str(image_path)).astype(np.float32)
        mask = cv2.imread(str(scenes / "masks" / image_path.name), cv2.IMREAD_UNCHANGED)
        assert mask.shape == image.shape[:2] and set(np.unique(mask)) <= {0, 1, 2, 3}
        inner = cv2.erode((mask > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # off the anti-aliased edge
        outer = cv2.dilate((mask > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
        if inner.sum() > 20 and outer.sum() > 20:
            total += 1  # a shape's pixels differ from the background around it: the mask is where the shape is
            shapes += np.abs(image[inner].mean(0) - image[outer].mean(0)).max() > 10
    assert total >= 20 and shapes >= 0.8 * total


def test_masks_go_through_the_letterbox_and_back_within_a_pixel_of_every_edge(scenes):
    """A perfect model's scores (the input-size mask as one-hot) mapped back by predict()'s decoding give the
    source mask again, but for pixels on a class edge (the letterbox's nearest resize moves an edge by <= 1 px)."""
    data = edgekit.load_segmentation(scenes, image_size=64)  # 112x72 -> 64x41, bands of 11.5 px
    assert (data.masks[:, :11] == 255).all() and (data.masks[:, -11:] == 255).all()
    misses = edge_pixels = 0
    for i in range(len(data)):
        truth = data.source_masks[i]
        scores = np.eye(4, dtype=np.float32)[np.where(data.masks[i] == 255, 0, data.masks[i])]
        back = source_mask(scores, truth.shape, data.geometry)
        wrong = back != truth
        edges = cv2.dilate(cv2.Canny(truth * 60, 1, 1), np.ones((3, 3), np.uint8)) > 0  # within 1 px of an edge
        edges = cv2.dilate(edges.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert not (wrong & ~edges).any(), (i, int((wrong & ~edges).sum()))
        assert mask_to_input(truth, data.geometry).shape == (64, 64)
        misses, edge_pixels = misses + int(wrong.sum()), edge_pixels + int((cv2.Canny(truth * 60, 1, 1) > 0).sum())
    # measured 0.41 of the edge pixels' worth (one-hot scores: a pixel halfway between two classes is a tie, which
    # the lower class index wins); pixel centres off by half a source pixel (0.29 px) give 0.46
    assert misses <= 0.43 * edge_pixels, misses / edge_pixels


def test_bad_masks_are_skipped_and_counted(scenes, tmp_path):
    root = tmp_path / "bad"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "labels.txt").write_text((scenes / "labels.txt").read_text())
    names = sorted(p.name for p in (scenes / "images").glob("*.png"))[:8]
    for name in names:
        (root / "images" / name).write_bytes((scenes / "images" / name).read_bytes())
        (root / "masks" / name).write_bytes((scenes / "masks" / name).read_bytes())
    mask = cv2.imread(str(root / "masks" / names[0]), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(root / "masks" / names[0]), mask[:60])  # a size that is not its image's
    cv2.imwrite(str(root / "masks" / names[1]), np.where(mask > 0, 7, 0).astype(np.uint8))  # id 7 of 4 labels
    (root / "masks" / names[2]).unlink()
    (root / "images" / names[3]).write_bytes(b"not an image")
    data = edgekit.load_segmentation(root, image_size=64)
    assert len(data) == 4 and data.skip_counts() == {
        "mask size differs from its image": 1,
        "mask holds ids outside the labels": 1,
        "no mask for the image": 1,
        "unreadable image or mask": 1,
    }
    reasons = " ".join(s.reason for s in data.skipped)
    assert "112x60 mask for a 112x72 image" in reasons and "[7] with 4 labels" in reasons
    with pytest.raises(DatasetError, match="images/ and masks/"):
        edgekit.load_segmentation(tmp_path)


def test_a_pascal_voc_root_with_palette_masks_and_its_splits(scenes, tmp_path):
    from PIL import Image

    root = tmp_path / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (256 * 3 - 12)
    palette[255 * 3 : 255 * 3 + 3] = [224, 224, 192]  # VOC's border colour
    stems = []
    for n, path in enumerate(sorted((scenes / "images").glob("*.png"))[:6]):
        stem = f"2007_{n:06d}"
        cv2.imwrite(str(root / "JPEGImages" / f"{stem}.jpg"), cv2.imread(str(path)))
        mask = cv2.imread(str(scenes / "masks" / path.name), cv2.IMREAD_UNCHANGED)
        border = cv2.dilate((mask > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) - (mask > 0)
        indexed = Image.fromarray(np.where(border > 0, 255, mask * 5).astype(np.uint8), mode="P")  # ids 5, 10, 15
        indexed.putpalette(palette)
        indexed.save(root / "SegmentationClass" / f"{stem}.png")
        stems.append(stem)
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(stems[:4]) + "\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(stems[4:]) + "\n")
    data = edgekit.load_segmentation(root, image_size=64)
    assert data.labels == VOC_CLASSES and len(data) == 6 and data.given_splits == ("train",) * 4 + ("val",) * 2
    values = set(np.unique(np.concatenate([m.reshape(-1) for m in data.source_masks])).tolist())
    assert values <= {0, 5, 10, 15, 255} and 255 in values  # palette indices, not colours; borders not labelled
    train, val, test = data.split(seed=0)
    assert len(val) == 2 and len(train) + len(test) == 4


def test_coco_polygons_and_rle_are_rasterized(tmp_path):
    from pycocotools import mask as coco_mask

    image = np.full((60, 80, 3), 120, np.uint8)
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), image)
    square = np.zeros((60, 80), np.uint8)
    square[30:50, 50:70] = 1
    rle = coco_mask.encode(np.asfortranarray(square))
    rle["counts"] = rle["counts"].decode()
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": 60, "width": 80}],
        "categories": [{"id": 3, "name": "thing"}, {"id": 7, "name": "stuff"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "segmentation": [[10, 10, 40, 10, 40, 30, 10, 30]],
             "area": 600, "bbox": [10, 10, 30, 20], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 7, "segmentation": rle, "area": 400, "bbox": [50, 30, 20, 20],
             "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 7, "segmentation": [[0, 55, 5, 55, 5, 59, 0, 59]], "area": 20,
             "bbox": [0, 55, 5, 4], "iscrowd": 1},
        ],
    }  # fmt: skip
    (tmp_path / "instances.json").write_text(json.dumps(data))
    loaded = edgekit.load_segmentation(tmp_path / "instances.json", image_size=64)
    assert loaded.labels == ("background", "thing", "stuff")
    mask = loaded.source_masks[0]
    assert (mask[15:25, 15:35] == 1).all() and (mask[32:48, 52:68] == 2).all() and mask[57, 2] == 255
    assert mask[5, 5] == 0 and mask[40, 30] == 0


def test_metrics_on_a_hand_computed_case():
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255]], np.uint8)
    predicted = np.array([[0, 1, 1, 1], [0, 0, 1, 1], [2, 0, 2, 2]], np.uint8)
    metrics = segmentation_metrics([truth], [predicted], ["background", "road", "car"])
    # background: 3 hit, 1 missed (-> road), 1 false (car pixel); road: 4 hit, 1 false; car: 1 hit, 1 missed
    assert metrics.per_class_iou == pytest.approx({"background": 3 / 5, "road": 4 / 5, "car": 1 / 2})
    assert metrics.miou == pytest.approx((3 / 5 + 4 / 5 + 1 / 2) / 3)
    assert metrics.pixel_accuracy == pytest.approx(8 / 10)  # the two unlabelled pixels left out
    assert pixel_agreement([truth], [predicted]) == pytest.approx(8 / 12)
