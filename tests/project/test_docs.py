"""The docs: generated pages in step with the code, the README a short front door, and every Python example in the
README and under docs/ either run here or marked, with its reason, as one that cannot run on this machine.

Examples run per page, in order, in one namespace, in a scratch folder holding what the pages name: `photo.jpg` and
`street.jpg` (non-square frames of the shapes), `clip.mp4`/`clip.avi` (the tracking clip), and the test run's own
trained and exported models `small_cnn.keras`, `small_cnn_int8.tflite`, `small_cnn_fp32.onnx` and
`small_detector_int8.tflite`. A block is skipped only when an HTML comment `<!-- not run: REASON -->` stands right
before it.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(?P<before>(?:^[^\n]*\n){0,2})^```python\n(?P<code>.*?)^```$", re.S | re.M)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>[^>]*?)\s*-->")
README_LINES = 150


def python_blocks(page: Path) -> list[tuple[str, str | None]]:
    """(code, the reason it is not run or None) for each ```python block of `page`. A README block that a docs page
    holds word for word (the quickstart) runs there, once."""
    blocks = []
    for match in BLOCK.finditer(page.read_text(encoding="utf-8")):
        marked = NOT_RUN.search(match["before"])
        reason = marked["reason"] if marked else None
        if reason is None and page.name == "README.md" and match["code"] in _docs_code():
            reason = "the same code runs as a docs page's example"
        blocks.append((match["code"], reason))
    return blocks


def _docs_code() -> set[str]:
    return {match["code"] for page in PAGES[1:] for match in BLOCK.finditer(page.read_text(encoding="utf-8"))}


def test_the_generated_pages_are_the_codes():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from docs_pages import pages
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    for relative, text in pages().items():
        committed = (ROOT / "docs" / relative).read_text(encoding="utf-8")
        assert committed == text, f"docs/{relative} is stale: run .venv/bin/python scripts/docs_pages.py"


def test_the_readme_is_a_short_front_door():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_LINES
    for anecdote in ("Zen", "this host", "EPYC", "passed in", "was reverted"):
        assert anecdote not in text, f"README.md holds a measurement anecdote ({anecdote!r}): it belongs in the docs"
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).is_file(), f"README.md links to {link}, which does not exist"


def test_every_skipped_example_says_why():
    for page in PAGES:
        for _code, reason in python_blocks(page):
            assert reason is None or len(reason) >= 10, f"{page.relative_to(ROOT)}: a not-run block needs its reason"


RUNNABLE = [page for page in PAGES if any(reason is None for _, reason in python_blocks(page))]


@pytest.fixture()
def example_folder(tmp_path, monkeypatch, trained, exported, detector_exported, tracking_clip, shapes_splits):
    """A scratch folder with the files the examples name (see the module docstring)."""
    import cv2

    test = shapes_splits[2]
    for name, (top, side) in (("photo.jpg", (0, 24)), ("street.jpg", (8, 40))):
        image = cv2.imread(test.sources[0])
        cv2.imwrite(str(tmp_path / name), cv2.copyMakeBorder(image, top, top, side, side, cv2.BORDER_REFLECT))
    shutil.copy(tracking_clip.path, tmp_path / "clip.avi")
    capture, writer = cv2.VideoCapture(str(tracking_clip.path)), None
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if writer is None:
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), fourcc, 15.0, frame.shape[1::-1])
        writer.write(frame)
    capture.release()
    writer.release()
    shutil.copy(trained.model_path, tmp_path / "small_cnn.keras")
    shutil.copy(exported.result("tflite:int8").path, tmp_path / "small_cnn_int8.tflite")
    shutil.copy(exported.result("onnx:fp32").path, tmp_path / "small_cnn_fp32.onnx")
    shutil.copy(detector_exported.result("tflite:int8").path, tmp_path / "small_detector_int8.tflite")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE])
def test_the_examples_run(page, example_folder, capsys):
    namespace: dict = {"__name__": "__docs__"}
    for number, (code, reason) in enumerate(python_blocks(page), 1):
        if reason is not None:
            continue
        try:
            exec(compile(code, f"{page.relative_to(ROOT)} block {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{page.relative_to(ROOT)}, example {number} failed: {exc!r}\n{code}") from exc
