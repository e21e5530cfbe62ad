"""The data's own splits are used as given (YOLO data.yaml or images/<split>/, COCO files per split, VOC ImageSets);
a random split happens only where the data has none, and every part says which it was."""

import json
import shutil
from pathlib import Path

import pytest

import edgekit
from edgekit.data.synthetic import make_shapes_detection
from edgekit.reports.summary import dataset_summary

ASSIGNED = {"train": range(0, 8), "val": range(8, 10), "test": range(10, 12)}


def _names(part):
    return sorted(Path(source).stem for source in part.sources)


def _expected(split):
    return sorted(f"{i:05d}" for i in ASSIGNED[split])


@pytest.fixture(scope="module")
def yolo_flat(tmp_path_factory):
    """12 non-square scenes (48x64) in one YOLO folder: images/, labels/, data.yaml with names only."""
    root = make_shapes_detection(tmp_path_factory.mktemp("flat") / "yolo", n_images=12, image_size=(48, 64), seed=3)
    assert sorted(p.stem for p in (root / "images").iterdir()) == [f"{i:05d}" for i in range(12)]
    return root


def _ultralytics_layout(flat, root, splits=ASSIGNED):
    """`flat` rearranged as Ultralytics ships datasets: images/<split>/, labels/<split>/."""
    for split, numbers in splits.items():
        for kind, suffix in (("images", ".png"), ("labels", ".txt")):
            (root / kind / split).mkdir(parents=True, exist_ok=True)
            for i in numbers:
                shutil.copy(flat / kind / f"{i:05d}{suffix}", root / kind / split / f"{i:05d}{suffix}")
    return root


def test_data_yaml_splits_are_used_as_given_whatever_the_fractions(yolo_flat, tmp_path):
    root = _ultralytics_layout(yolo_flat, tmp_path / "ds")
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\ntest: images/test\nnames: [circle, square, triangle]\n"
    )
    data = edgekit.load_detection(root, image_size=64)
    train, val, test = data.split(val=0.3, test=0.3, seed=5)
    assert (_names(train), _names(val), _names(test)) == (_expected("train"), _expected("val"), _expected("test"))
    assert train.split_origin == "the data's own splits (data.yaml)"
    assert train.object_count == sum(len(data.classes[i]) for i in range(len(data)) if data.given_splits[i] == "train")
    summary = dataset_summary({"train": train, "val": val, "test": test}).splitlines()
    assert (
        summary[0] == "data: 3 classes, 12 images (train 8, val 2, test 2); splits: the data's own splits (data.yaml)"
    )
    assert summary[1].startswith("per class, images/objects in train, val, test: circle ")
    redrawn = data.split(val=0.25, test=0.25, seed=0, resplit=True)
    assert [len(part) for part in redrawn] != [8, 2, 2] or _names(redrawn[1]) != _expected("val")
    assert "set aside by resplit=True" in redrawn[0].split_origin
    streamed = edgekit.load_detection(root, image_size=64, stream=True).split()
    assert [_names(part) for part in streamed] == [_expected(s) for s in ("train", "val", "test")]


def test_a_txt_list_and_a_missing_test_split(yolo_flat, tmp_path):
    root = _ultralytics_layout(yolo_flat, tmp_path / "ds")
    (root / "train.txt").write_text("".join(f"./images/train/{i:05d}.png\n" for i in ASSIGNED["train"]))
    (root / "data.yaml").write_text("train: train.txt\nval: images/val\nnames: {0: circle, 1: square, 2: triangle}\n")
    train, val, test = edgekit.load_detection(root, image_size=64).split()
    assert (_names(train), _names(val), len(test)) == (_expected("train"), _expected("val"), 0)
    assert train.split_origin == "the data's own splits (data.yaml); no test split in the data: final metrics on val"


def test_only_a_train_split_gets_its_val_drawn_from_it_and_says_so(yolo_flat, tmp_path):
    root = _ultralytics_layout(yolo_flat, tmp_path / "ds", {"train": range(12)})
    (root / "data.yaml").write_text("train: images/train\nnames: [circle, square, triangle]\n")
    train, val, test = edgekit.load_detection(root, image_size=64).split(val=0.25)
    assert len(train) + len(val) == 12 and len(val) >= 2 and len(test) == 0
    assert "no val split in the data: 3 training images drawn for it (val 0.25)" in train.split_origin


def test_split_folders_without_yaml_keys_are_splits_too(yolo_flat, tmp_path):
    root = _ultralytics_layout(yolo_flat, tmp_path / "ds", {"train": range(0, 9), "valid": range(9, 11)})
    (root / "images" / "loose.png").write_bytes((yolo_flat / "images" / "00011.png").read_bytes())
    shutil.copy(yolo_flat / "data.yaml", root / "data.yaml")  # names only
    train, val, test = edgekit.load_detection(root, image_size=64).split()
    assert (len(train), len(val), len(test)) == (9, 2, 0)
    assert train.split_origin == (
        "the data's own splits (images/train, images/val, images/test); no test split in the data: final metrics "
        "on val; 1 image(s) in no split left out"
    )


def test_a_bad_split_path_is_named(yolo_flat, tmp_path):
    root = _ultralytics_layout(yolo_flat, tmp_path / "ds")
    (root / "data.yaml").write_text("train: images/train\nval: images/nowhere\nnames: [circle, square, triangle]\n")
    with pytest.raises(edgekit.DatasetError, match=r"data.yaml: val: images/nowhere is neither a folder of images"):
        edgekit.load_detection(root, image_size=64)


def test_a_flat_folder_is_drawn_at_random_and_says_so(yolo_flat):
    train, val, test = edgekit.load_detection(yolo_flat, image_size=64).split(seed=0)
    assert len(train) + len(val) + len(test) == 12
    assert train.split_origin == "drawn at random (val 0.15, test 0.15, seed 0): the data has no splits of its own"


def test_coco_files_per_split_keep_their_splits(tmp_path):
    root = make_shapes_detection(tmp_path / "coco", n_images=12, image_size=(48, 64), seed=3, format="coco")
    whole = json.loads((root / "annotations.json").read_text())
    (root / "annotations.json").unlink()
    for split, numbers in (("train", range(0, 9)), ("val", range(9, 12))):
        images = [image for image in whole["images"] if int(Path(image["file_name"]).stem) in numbers]
        ids = {image["id"] for image in images}
        annotations = [a for a in whole["annotations"] if a["image_id"] in ids]
        part = {"images": images, "annotations": annotations, "categories": whole["categories"]}
        (root / f"instances_{split}2017.json").write_text(json.dumps(part))
    train, val, test = edgekit.load_detection(root, image_size=64).split()
    assert (len(train), len(val), len(test)) == (9, 3, 0)
    assert train.split_origin.startswith(
        "the data's own splits (COCO files per split: train instances_train2017.json, val instances_val2017.json)"
    )


def test_voc_imagesets_keep_their_splits(tmp_path):
    root = make_shapes_detection(tmp_path / "voc", n_images=12, image_size=(48, 64), seed=3, format="voc")
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for split, numbers in ASSIGNED.items():
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i:05d}\n" for i in numbers))
    train, val, test = edgekit.load_detection(root, image_size=64).split(val=0.4, test=0.0)
    assert (_names(train), _names(val), _names(test)) == (_expected("train"), _expected("val"), _expected("test"))
    assert train.split_origin == "the data's own splits (ImageSets/Main)"


def _classification_splits(root, counts):
    """Ultralytics' classification layout with non-square photos-like images: root/<split>/<class>/<n>.jpg."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    for split, per_class in counts.items():
        for label, n in per_class.items():
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                image = rng.integers(0, 255, (36, 60, 3), np.uint8)
                image[..., 0 if label == "cat" else 2] = 255
                cv2.imwrite(str(folder / f"{split}_{label}_{i}.jpg"), image)
    return root


@pytest.mark.parametrize("stream", [False, True])
def test_class_folders_under_split_folders_keep_their_splits(tmp_path, stream):
    root = _classification_splits(
        tmp_path / "pets", {"train": {"cat": 6, "dog": 5}, "valid": {"cat": 2, "dog": 2}, "test": {"dog": 1}}
    )
    data = edgekit.ImageFolder(root, image_size=32, stream=stream)
    assert data.labels == ("cat", "dog") and len(data) == 16  # the classes, not the split folders
    train, val, test = data.split(val=0.4, test=0.4, seed=1)
    names = [sorted(Path(s).name for s in part.sources) for part in (train, val, test)]
    assert all(n.startswith("train_") for n in names[0]) and len(names[0]) == 11
    assert all(n.startswith("valid_") for n in names[1]) and len(names[1]) == 4
    assert names[2] == ["test_dog_0.jpg"]
    assert train.split_origin == "the data's own splits (test/, train/, valid/ folders)"
    assert [train.class_counts(), test.class_counts()] == [{"cat": 6, "dog": 5}, {"cat": 0, "dog": 1}]
    redrawn = data.split(val=0.25, test=0.25, seed=0, resplit=True)
    assert "set aside by resplit=True" in redrawn[0].split_origin
    assert any(not Path(s).name.startswith("train_") for s in redrawn[0].sources)


def test_a_train_folder_alone_gets_its_val_drawn_and_classes_named_like_splits_stay_classes(tmp_path):
    data = edgekit.ImageFolder(_classification_splits(tmp_path / "a", {"train": {"cat": 5, "dog": 5}}), image_size=32)
    train, val, test = data.split(val=0.2, test=0.2)
    assert (len(train), len(val), len(test)) == (8, 2, 0)
    assert "no val split in the data: 2 training images drawn" in train.split_origin
    assert "no test split in the data: final metrics on val" in train.split_origin
    flat = _classification_splits(tmp_path / "b", {"x": {"train": 3, "test": 3}})  # x/train/*.jpg: one level down
    classes = edgekit.ImageFolder(flat / "x", image_size=32)
    assert classes.labels == ("test", "train") and not classes.given_splits
    assert "the data has no splits of its own" in classes.split(val=0.34, test=0.0)[0].split_origin
