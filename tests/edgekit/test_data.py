import shutil

import cv2
import numpy as np
import pytest

import edgekit
from edgekit.errors import DatasetError


def _folder(root, classes, n=4, size=12):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / name / f"{i}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return root


def test_make_shapes_writes_varied_readable_images(shapes_root):
    dataset = edgekit.ImageFolder(shapes_root, image_size=64)
    assert dataset.labels == ("circle", "square", "triangle")
    assert dataset.class_counts() == {"circle": 400, "square": 400, "triangle": 400}
    assert dataset.pixels.shape == (1200, 64, 64, 3) and dataset.pixels.dtype == np.uint8
    backgrounds = dataset.pixels[:, 0, 0].astype(int)
    assert backgrounds.std(axis=0).min() > 40  # colours really vary
    assert not dataset.skipped


def test_make_shapes_is_reproducible(tmp_path):
    a = edgekit.datasets.make_shapes(tmp_path / "a", n_per_class=3, image_size=32, seed=5)
    b = edgekit.datasets.make_shapes(tmp_path / "b", n_per_class=3, image_size=32, seed=5)
    assert (cv2.imread(str(a / "square" / "0002.png")) == cv2.imread(str(b / "square" / "0002.png"))).all()


def test_labels_are_sorted_folder_names_and_formats_are_read(tmp_path):
    root = _folder(tmp_path / "ds", ["zebra", "apple"], n=2)
    image = np.full((10, 10, 3), 128, np.uint8)
    for suffix in (".jpg", ".bmp", ".webp", ".JPEG"):
        cv2.imwrite(str(root / "apple" / f"x{suffix.lower()}"), image)
        if suffix == ".JPEG":
            (root / "apple" / "x.jpeg").rename(root / "apple" / "upper.JPEG")
    (root / "apple" / "notes.txt").write_text("ignored")
    dataset = edgekit.ImageFolder(root, image_size=8)
    assert dataset.labels == ("apple", "zebra")
    assert dataset.class_counts() == {"apple": 6, "zebra": 2}


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    root = _folder(tmp_path / "ds", ["a", "b"], n=3)
    (root / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = (root / "b" / "0.png").read_bytes()
    (root / "b" / "truncated.png").write_bytes(good[: len(good) // 3])
    (root / "b" / "empty.jpg").write_bytes(b"")
    dataset = edgekit.ImageFolder(root, image_size=8)
    assert len(dataset) == 6
    assert sorted(s.path.rsplit("/", 1)[-1] for s in dataset.skipped) == ["broken.png", "empty.jpg", "truncated.png"]
    assert all("cannot decode image" in s.reason for s in dataset.skipped)


def _a_file(root):
    root.write_text("not a folder")


def _empty(root):
    root.mkdir()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: None, "dataset folder not found"),
        (_a_file, "dataset path is not a folder"),
        (_empty, "no images found in"),
        (lambda root: _folder(root, ["only"]), r"found only one class \('only'\)"),
    ],
    ids=["missing", "file", "empty", "single-class"],
)
def test_bad_dataset_folders_are_named(tmp_path, make, message):
    root = tmp_path / "ds"
    make(root)
    with pytest.raises(DatasetError, match=message):
        edgekit.ImageFolder(root, image_size=8)


def test_empty_class_folder_is_ignored_and_unreadable_class_is_an_error(tmp_path):
    root = _folder(tmp_path / "ds", ["a", "b"])
    (root / "empty").mkdir()
    assert edgekit.ImageFolder(root, image_size=8).labels == ("a", "b")
    shutil.rmtree(root / "b")
    (root / "b").mkdir()
    (root / "b" / "x.png").write_bytes(b"nope")
    with pytest.raises(DatasetError, match=r"class folder\(s\) \['b'\].*no readable image"):
        edgekit.ImageFolder(root, image_size=8)


def test_split_is_stratified_seeded_and_disjoint(shapes_root):
    dataset = edgekit.ImageFolder(shapes_root, image_size=16)
    train, val, test = dataset.split(val=0.15, test=0.15, seed=3)
    assert (len(train), len(val), len(test)) == (840, 180, 180)
    assert val.class_counts() == {"circle": 60, "square": 60, "triangle": 60}
    assert not set(train.sources) & set(test.sources) and not set(val.sources) & set(test.sources)
    again = dataset.split(val=0.15, test=0.15, seed=3)[2]
    assert again.sources == test.sources
    assert dataset.split(val=0.15, test=0.15, seed=4)[2].sources != test.sources


def test_split_errors(tmp_path):
    dataset = edgekit.ImageFolder(_folder(tmp_path / "ds", ["a", "b"], n=2), image_size=8)
    with pytest.raises(DatasetError, match="invalid split fractions"):
        dataset.split(val=0.6, test=0.5)
    with pytest.raises(DatasetError, match="class 'a' has only 2 image"):
        dataset.split(val=0.5, test=0.5 - 1e-9)


def test_array_dataset_from_sklearn_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images * 255 / 16).astype(np.uint8)
    dataset = edgekit.ArrayDataset(x, digits.target, [str(i) for i in range(10)], image_size=32)
    assert dataset.pixels.shape == (len(x), 32, 32, 3)
    assert dataset.labels[3] == "3" and dataset.targets[:5].tolist() == digits.target[:5].tolist()
    tensors = dataset.tensors(edgekit.Preprocessing(32), slice(0, 4))
    assert tensors.shape == (4, 32, 32, 3) and 0.0 <= tensors.min() and tensors.max() <= 1.0


@pytest.mark.parametrize(
    "x, y, labels, message",
    [
        (np.zeros((2, 8, 8), np.float64), [0, 1], ["a", "b"], "x must hold uint8 pixels 0..255, got dtype float64"),
        (np.zeros((2, 8), np.uint8), [0, 1], ["a", "b"], "x must be a non-empty"),
        (np.zeros((2, 8, 8), np.uint8), [0], ["a", "b"], "y must be a 1-D array with one label index per image"),
        (np.zeros((2, 8, 8), np.uint8), [0, 2], ["a", "b"], r"integer class indices in \[0, 1\]"),
        (np.zeros((2, 8, 8), np.uint8), [0, 0], ["a"], "at least two labels"),
    ],
)
def test_array_dataset_errors(x, y, labels, message):
    with pytest.raises(DatasetError, match=message):
        edgekit.ArrayDataset(x, y, labels)


def test_dataset_geometry_must_match_preprocessing(shapes_splits):
    train = shapes_splits[0]
    with pytest.raises(DatasetError, match=r"dataset images are \(64, 64\) rgb .* preprocessing wants \(32, 32\)"):
        train.tensors(edgekit.Preprocessing(32))
