"""Pascal VOC: Annotations/*.xml (one `object` with a `bndbox` per box) beside JPEGImages/."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Sequence

from edgekit.data.detection import MALFORMED_FILE, MALFORMED_LINE, UNKNOWN_CLASS, DetectionData
from edgekit.data.images import SkippedFile
from edgekit.data.records import Record, RecordReader
from edgekit.errors import DatasetError
from runtimes.contract import Preprocessing


def read_voc(
    root: Path,
    geometry: Preprocessing,
    labels: Sequence[str] | None = None,
    stream: bool | str = False,
    cache_dir: Path | None = None,
) -> DetectionData:
    """Pascal VOC: `root/Annotations/*.xml` naming images in `root/JPEGImages/`."""
    xml_files = sorted((root / "Annotations").glob("*.xml"))
    if not xml_files:
        raise DatasetError(f"{root} has no Annotations/*.xml: a VOC dataset is Annotations/ plus JPEGImages/")
    parsed: list[tuple[Path, ElementTree.Element]] = []
    problems: list[tuple[str, str]] = []
    for file in xml_files:
        try:
            parsed.append((file, ElementTree.parse(file).getroot()))
        except ElementTree.ParseError as exc:
            problems.append((str(file), f"{MALFORMED_FILE}: {exc}"))
    names = (
        list(labels)
        if labels is not None
        else sorted({(o.findtext("name") or "").strip() for _, r in parsed for o in r.iter("object")} - {""})
    )
    if not names:
        raise DatasetError(f"no object names in {root}/Annotations; pass labels=[...]")
    reader = RecordReader(root, names, geometry)
    reader.skipped.extend(SkippedFile(path, reason) for path, reason in problems)
    index_of = {name: i for i, name in enumerate(names)}
    split_of = voc_splits(root)
    records = []
    for file, xml in parsed:
        record = Record(
            root / "JPEGImages" / (xml.findtext("filename") or file.with_suffix(".jpg").name).strip(),
            split=split_of.get(file.stem, ""),
        )
        for number, obj in enumerate(xml.iter("object")):
            where = f"{file}:object[{number}]"
            name = (obj.findtext("name") or "").strip()
            if name not in index_of:
                reader.skip(where, UNKNOWN_CLASS, f"{name!r} (valid: {', '.join(names)})")
                continue
            box = obj.find("bndbox")
            try:
                coords = [float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]  # type: ignore[union-attr,arg-type]
            except (AttributeError, TypeError, ValueError):
                reader.skip(where, MALFORMED_LINE, "bndbox needs xmin, ymin, xmax, ymax numbers")
                continue
            record.boxes.append(coords)
            record.classes.append(index_of[name])
            record.where.append(where)
        records.append(record)
    return reader.build(records, stream, cache_dir, split_source="ImageSets/Main" if split_of else "")


def voc_splits(root: Path) -> dict[str, str]:
    """{image id: split} from ImageSets/Main/{train,val,test}.txt (trainval.txt as train where train.txt is
    missing); {} when there are none."""
    folder = root / "ImageSets" / "Main"
    lists = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}
    if not (folder / "train.txt").is_file() and (folder / "trainval.txt").is_file():
        lists["train"] = "trainval.txt"
    split_of: dict[str, str] = {}
    for split, name in lists.items():
        if (folder / name).is_file():
            for line in (folder / name).read_text().splitlines():
                if line.split():
                    split_of.setdefault(line.split()[0], split)
    return split_of
