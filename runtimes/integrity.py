"""SHA-256 sums of artifacts and bundle manifests: damaged files are refused, not run.

SD cards, interrupted copies and flaky downloads flip and cut bytes. A bundle carries
`MANIFEST.sha256` (the `sha256sum` format, so `sha256sum -c` checks it too); the runner
verifies it before it loads anything. Standard library only: it runs before numpy is installed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from runtimes.errors import IntegrityError

MANIFEST_NAME = "MANIFEST.sha256"
_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, or of a package folder (its files' paths and sums, in order)."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
        return digest.hexdigest()
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: str | Path, files: Iterable[str | Path]) -> Path:
    """Write MANIFEST.sha256 in `folder` for `files` (paths relative to it), `sha256sum -c` compatible."""
    folder = Path(folder)
    lines = [f"{sha256_file(folder / name)}  {Path(name).as_posix()}" for name in sorted(str(f) for f in files)]
    manifest = folder / MANIFEST_NAME
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


@dataclass(frozen=True)
class ManifestCheck:
    checked: int
    damaged: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.missing


def check_manifest(folder: str | Path) -> ManifestCheck:
    """Compare every file named in `folder`/MANIFEST.sha256 with its sum."""
    folder = Path(folder)
    manifest = folder / MANIFEST_NAME
    try:
        lines = manifest.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"cannot read {manifest}: {exc}; copy the bundle again") from None
    damaged, missing, checked = [], [], 0
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        checked += 1
        expected, sep, name = line.partition("  ")
        if not sep or len(expected) != 64 or Path(name).is_absolute() or ".." in Path(name).parts:
            raise IntegrityError(f"{manifest} line {number} is damaged ({line[:80]!r}); copy the bundle again")
        target = folder / name
        if not target.is_file():
            missing.append(name)
        elif sha256_file(target) != expected:
            damaged.append(name)
    return ManifestCheck(checked, tuple(damaged), tuple(missing))


def verify_manifest(folder: str | Path) -> ManifestCheck:
    """check_manifest, raising IntegrityError that names every damaged or missing file."""
    result = check_manifest(folder)
    if not result.ok:
        problems = [f"{name} is damaged (SHA-256 differs)" for name in result.damaged]
        problems += [f"{name} is missing" for name in result.missing]
        raise IntegrityError(
            f"bundle {Path(folder)} failed its integrity check: {'; '.join(problems)}. The copy is damaged (SD card, "
            "interrupted transfer): copy the bundle again, or re-run edgekit deploy"
        )
    return result
