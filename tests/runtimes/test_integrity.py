"""SHA-256 sums and bundle manifests (runtimes/integrity.py), on files larger than one read chunk.

Fast and TensorFlow-free: bench/mutation.py runs this module against mutants of integrity.py.
"""

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from runtimes.integrity import (
    MANIFEST_NAME,
    IntegrityError,
    check_manifest,
    sha256_file,
    verify_manifest,
    write_manifest,
)

MIB = 1 << 20


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A bundle-like folder: a 2.5 MiB model, a small script, a nested package file."""
    rng = __import__("numpy").random.default_rng(0)
    (tmp_path / "model.tflite").write_bytes(rng.integers(0, 256, int(2.5 * MIB), dtype="uint8").tobytes())
    (tmp_path / "run.py").write_text("print('hi')\n")
    (tmp_path / "runtimes").mkdir()
    (tmp_path / "runtimes" / "model.py").write_text("x = 1\n")
    write_manifest(tmp_path, ["model.tflite", "run.py", "runtimes/model.py"])
    return tmp_path


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_sha256_file_is_the_whole_file_hash_across_chunks(folder):
    model = folder / "model.tflite"
    assert sha256_file(model) == hashlib.sha256(model.read_bytes()).hexdigest()
    empty = folder / "empty.bin"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(
    "offset",
    [0, MIB - 1, MIB, MIB + 12345, 2 * MIB + 7, int(2.5 * MIB) - 1],
    ids=["first", "end-of-chunk-1", "chunk-2", "past-1MiB", "chunk-3", "last"],
)
def test_a_byte_flipped_anywhere_in_a_file_over_2_mib_is_found(folder, offset):
    _flip(folder / "model.tflite", offset)
    result = check_manifest(folder)
    assert result.damaged == ("model.tflite",) and result.missing == () and not result.ok
    assert result.checked == 3
    with pytest.raises(IntegrityError, match=r"model.tflite is damaged \(SHA-256 differs\).*copy the bundle again"):
        verify_manifest(folder)


def test_an_appended_byte_or_a_cut_file_is_found(folder):
    model = folder / "model.tflite"
    data = model.read_bytes()
    model.write_bytes(data + b"\0")
    assert check_manifest(folder).damaged == ("model.tflite",)
    model.write_bytes(data[:MIB])  # cut at exactly one chunk
    assert check_manifest(folder).damaged == ("model.tflite",)
    model.write_bytes(data)
    assert verify_manifest(folder).ok


def test_manifest_is_sha256sum_format_sorted_with_posix_paths(folder):
    lines = (folder / MANIFEST_NAME).read_text().splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == ["model.tflite", "run.py", "runtimes/model.py"]
    assert lines[0] == f"{hashlib.sha256((folder / 'model.tflite').read_bytes()).hexdigest()}  model.tflite"
    assert (folder / MANIFEST_NAME).read_text().endswith("\n")
    if shutil.which("sha256sum") is not None:  # the coreutils tool agrees (test_deploy requires it on a Pi-like host)
        check = subprocess.run(["sha256sum", "--check", "--quiet", MANIFEST_NAME], cwd=folder, capture_output=True)
        assert check.returncode == 0, check.stdout


def test_missing_and_damaged_files_are_each_named(folder):
    (folder / "run.py").unlink()
    _flip(folder / "runtimes" / "model.py", 0)
    result = check_manifest(folder)
    assert result.damaged == ("runtimes/model.py",) and result.missing == ("run.py",)
    with pytest.raises(IntegrityError) as caught:
        verify_manifest(folder)
    message = str(caught.value)
    assert (
        f"bundle {folder} failed its integrity check: runtimes/model.py is damaged (SHA-256 differs); run.py is "
        "missing."
    ) in message
    assert message.endswith("copy the bundle again, or re-run edgekit deploy")


def test_a_folder_is_hashed_by_its_files_paths_and_sums(folder):
    package = folder / "runtimes"
    before = sha256_file(package)
    expected = hashlib.sha256(f"model.py\0{sha256_file(package / 'model.py')}\n".encode()).hexdigest()
    assert before == expected
    (package / "model.py").rename(package / "other.py")  # same bytes, another name
    assert sha256_file(package) != before


@pytest.mark.parametrize(
    "line, why",
    [
        ("0" * 63 + "  run.py", "a short sum"),
        ("0" * 64 + " run.py", "one space"),
        ("0" * 64 + "  /etc/passwd", "an absolute path"),
        ("0" * 64 + "  ../run.py", "a path out of the folder"),
    ],
)
def test_a_damaged_manifest_line_is_refused_with_its_number(folder, line, why):
    manifest = folder / MANIFEST_NAME
    manifest.write_text(manifest.read_text() + line + "\n")
    with pytest.raises(IntegrityError, match=rf"{MANIFEST_NAME} line 4 is damaged .*copy the bundle again"):
        check_manifest(folder)


def test_a_file_name_with_two_spaces_and_a_long_damaged_line(folder):
    odd = folder / "my  model.tflite"  # the format's separator inside the name: the first one splits
    odd.write_bytes(b"weights")
    write_manifest(folder, ["my  model.tflite", "run.py"])
    assert check_manifest(folder).ok
    odd.write_bytes(b"weightz")
    assert check_manifest(folder).damaged == ("my  model.tflite",)
    manifest = folder / MANIFEST_NAME
    line = "x" * 100
    manifest.write_text(line + "\n")
    with pytest.raises(IntegrityError) as refused:
        check_manifest(folder)
    assert str(refused.value) == f"{manifest} line 1 is damaged ({'x' * 80!r}); copy the bundle again"


def test_blank_lines_are_ignored_and_an_unreadable_manifest_is_an_integrity_error(folder):
    manifest = folder / MANIFEST_NAME
    manifest.write_text("\n" + manifest.read_text() + "\n\n")
    result = check_manifest(folder)
    assert result.ok and result.checked == 3
    manifest.write_bytes(b"\xff\xfe not text")
    with pytest.raises(IntegrityError, match="cannot read .*MANIFEST.sha256.*copy the bundle again"):
        check_manifest(folder)
    manifest.unlink()
    with pytest.raises(IntegrityError, match="cannot read"):
        verify_manifest(folder)
