"""Deploy bundles: a folder (and .tar.gz) that runs a model on a Raspberry Pi without TensorFlow.

The bundle holds the model, a copy of the `runtimes` package, a runner (`run.py`, which is
`runtimes.apps.runner`), `doctor.py`, pinned requirements with aarch64 wheels, an installer, a
systemd unit and a README. Its archive holds only relative paths inside one folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import runtimes
from converters.base import ordinary_permissions
from edgekit.deploy.templates import (
    DOCTOR_PY,
    INSTALL_SH,
    README,
    RUN_PY,
    SERVE_PY,
    SERVE_README,
    SERVE_SERVICE,
    SERVE_TOKEN,
    SERVICE,
    TRACKING_RUN,
)
from edgekit.errors import DeployError, InputError
from runtimes.arguments import BUNDLE_CONFIG, checked_options
from runtimes.backends.base import backend_for
from runtimes.integrity import MANIFEST_NAME, write_manifest
from runtimes.loading import BUNDLED_CONTRACTS
from runtimes.tracking import LineCounter, parse_line

MAX_BUNDLE_BYTES = 1 << 30  # what extract_bundle writes at most: a bundle is a model and some code
MAX_EXPANSION = 200  # uncompressed / archive size beyond which an archive is a decompression bomb

BUNDLE_FORMATS = (".tflite", ".onnx")

# Versions with manylinux aarch64 wheels, checked with `pip download --platform manylinux_2_17_aarch64`:
# ai-edge-litert 1.4.0 has cp311 and cp312 wheels (none for 3.13 yet); the others cover cp311-cp313.
PINNED = {
    "numpy": "numpy==2.2.6",
    "opencv": "opencv-python-headless==4.12.0.88",
    "litert": 'ai-edge-litert==1.4.0; python_version < "3.13"',
    "onnxruntime": "onnxruntime==1.22.1",
    # the versions tested; Starlette and uvicorn are pure Python, httptools and uvloop have cp311 aarch64 wheels
    "serve": ["starlette==1.10.0", "uvicorn==0.55.0", "httptools==0.9.0", "uvloop==0.23.0"],
}


@dataclass(frozen=True)
class Bundle:
    """A written bundle: its folder, its .tar.gz and the model inside."""

    folder: Path
    archive: Path
    model: Path


def _requirements(model: Path, serve: bool = False) -> str:
    lines = [
        "# edgekit runtime bundle: numpy, OpenCV and one inference runtime; never TensorFlow.",
        PINNED["numpy"],
        PINNED["opencv"],
    ]
    if serve:
        lines += ["# edgekit serve: the REST API and the live view", *PINNED["serve"]]
    if model.suffix == ".tflite":
        lines += [
            PINNED["litert"],
            "# Python 3.13 on aarch64 has no LiteRT wheel yet: use Python 3.11/3.12, or export the model to ONNX.",
            "# Older systems without a LiteRT wheel: tflite-runtime==2.14.0 (Python <= 3.11, needs numpy<2).",
        ]
    else:
        lines.append(PINNED["onnxruntime"])
    return "\n".join(lines) + "\n"


CONTRACT_FILE = "contract.json"  # a third-party model's contract in the bundle (its services run from the folder)


def _copy_runtimes(target: Path) -> None:
    source = Path(runtimes.__file__).resolve().parent
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _safe_members(archive: tarfile.TarFile, root: str) -> list[tarfile.TarInfo]:
    """Members of a bundle archive, refusing anything that could land outside `root`/."""
    members = archive.getmembers()
    for member in members:
        name = member.name
        parts = Path(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or not parts or parts[0] != root:
            raise DeployError(f"unsafe path in bundle archive: {name!r} (must stay inside {root}/)")
        if member.issym() or member.islnk() or member.isdev():
            raise DeployError(f"bundle archive member {name!r} is a link or device; refusing to extract")
    return members


def _check_size(archive: Path, members: list[tarfile.TarInfo], max_bytes: int) -> None:
    total = sum(m.size for m in members if m.isfile())
    packed = max(archive.stat().st_size, 1)
    if total > max_bytes or (total > 16 << 20 and total > MAX_EXPANSION * packed):
        raise DeployError(
            f"bundle archive {archive} would expand to {total / 2**20:.0f} MiB from {packed / 2**20:.1f} MiB "
            f"(limit {max_bytes / 2**20:.0f} MiB, {MAX_EXPANSION}x): refusing a decompression bomb; "
            "pass max_bytes= if the bundle really is that large"
        )


def extract_bundle(archive: str | Path, dest: str | Path, max_bytes: int = MAX_BUNDLE_BYTES) -> Path:
    """Extract a bundle archive into `dest`, refusing absolute paths, `..`, links and oversized content.

    The archive is read in full and extracted into a fresh staging folder first, then moved
    into place: a damaged archive leaves nothing behind, and links already at the
    destination are replaced, never followed.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise DeployError(f"bundle archive not found: {archive}")
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".edgekit-extract-", dir=dest))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                first = tar.next()
                if first is None:
                    raise DeployError(f"bundle archive {archive} is empty")
                root = Path(first.name).parts[0] if Path(first.name).parts else ""
                members = _safe_members(tar, root)  # every member must sit under the first one's top folder
                _check_size(archive, members, max_bytes)
                tar.extractall(staging, members=members, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise DeployError(
                f"cannot extract {archive}: it is not a complete .tar.gz bundle ({type(exc).__name__}: {exc}); "
                "copy it again or re-run edgekit deploy"
            ) from None
        _replace(staging / root, dest / root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest / root


def _replace(staged: Path, target: Path) -> None:
    """Move `staged` to `target`; whatever is there (a folder, a file, a link) is swapped out, not followed."""
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(staged, target)
        shutil.rmtree(old, ignore_errors=True)
        return
    os.replace(staged, target)


def rpi(
    model: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    source: str = "picamera2",
    user: str = "pi",
    serve: bool = False,
    port: int = 8500,
    threshold: float | None = None,
    track: bool = False,
    count_line: Sequence[float] | str | None = None,
    iou: float | None = None,
    max_detections: int | None = None,
    agnostic: bool = False,
    top_k: int | None = None,
    threads: int | None = None,
    delegate: Sequence[str] | None = None,
    provider: Sequence[str] | None = None,
    contract: str | Path | None = None,
) -> Bundle:
    """Write a Raspberry Pi bundle folder and its .tar.gz, for any task's model (classifier, detector).

    `source`, `track`, `count_line` (a detector's counting line, x0,y0,x1,y1 in source pixels), predict()'s
    options (`threshold`, `iou`, `max_detections`, `agnostic`, `top_k`: runtimes.vocabulary's names) and the
    runtime's (`threads`, `delegate`, `provider`) go into the bundle's `config.json`, which run.py, serve.py
    and so both services read: a Pi that counts does so out of the box, and the one file changes it (a flag on
    the command line still wins).

    `contract` is the contract of a third-party file that carries none: the name of one edgekit ships (the Pi's
    runtimes hold it too) or a JSON file, copied into the bundle as contract.json.

    `name` names the systemd service; by default `edgekit-<role>` (edgekit-classifier, edgekit-detector).
    `serve` adds `edgekit serve` (serve.py, Starlette and uvicorn in the requirements) and a sandboxed
    `<name>-serve.service` unit listening on all interfaces at `port` as its own user from /opt/<name>, with a
    token that install.sh makes (and stops at when it cannot).

    Examples:
        >>> bundle = edgekit.deploy.rpi("runs/demo/export/small_cnn_int8.tflite", "dist/shapes")
        >>> bundle.archive
        PosixPath('dist/shapes.tar.gz')
    """
    model = Path(model)
    given = contract
    contract, task, backend = _bundleable(model, given)
    predict = {"iou": iou, "max_detections": max_detections, "agnostic": agnostic, "top_k": top_k}
    runtime = {"threads": threads, "delegate": list(delegate or []), "provider": list(provider or [])}
    if given is not None:  # a shipped contract by name; a file travels in the bundle
        runtime["contract"] = str(given) if str(given) in BUNDLED_CONTRACTS else CONTRACT_FILE
    config = _config(task, source, threshold, track, count_line, predict, runtime)
    name = name or f"edgekit-{task.role}"
    folder = Path(out_dir)
    if folder.exists() and any(folder.iterdir()):
        raise DeployError(f"{folder} exists and is not empty; choose a new --out folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        work = staging / folder.name
        work.mkdir()
        shutil.copy2(model, work / model.name)
        if runtime.get("contract") == CONTRACT_FILE:
            (work / CONTRACT_FILE).write_text(contract.to_json())
        _copy_runtimes(work / "runtimes")
        where = _Where(name, folder.name, user, port)
        files = {**_bundle_files(model, contract, task, backend, where, serve, config), BUNDLE_CONFIG: config}
        for filename, text in files.items():
            path = work / filename
            path.write_text(text)
            if filename.endswith((".sh", ".py")):
                path.chmod(path.stat().st_mode | 0o111)  # executable, under the caller's umask
        archive = _seal(work, staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Bundle(folder, archive, folder / model.name)


def _bundleable(model: Path, contract: str | Path | None = None) -> tuple[Any, Any, str]:
    """The model's contract (`contract` for a file without one), task and backend name; a DeployError when the Pi
    could not run it as it is."""
    if model.suffix not in BUNDLE_FORMATS:
        raise DeployError(
            f"cannot bundle {model.name} for a Raspberry Pi: use one of {', '.join(BUNDLE_FORMATS)} "
            "(CoreML runs on Apple devices only)"
        )
    with runtimes.open(model, contract=contract) as loaded:  # the bundle's model must load, with its contract
        contract, task, problem = loaded.contract, loaded.task, loaded.decoder.problem
    if contract is None:
        raise DeployError(
            f"{model.name} has no embedded contract; export it with edgekit so the Pi knows its preprocessing, "
            "or give one with --contract"
        )
    if problem:
        raise DeployError(f"cannot bundle {model.name}: {problem}")
    return contract, task, backend_for(model).name


def _config(
    task: Any,
    source: str,
    threshold: float | None,
    track: bool,
    count_line: Any,
    predict: dict[str, Any],
    runtime: dict[str, Any],
) -> str:
    """The bundle's config.json: the settings both its programs start with."""
    if (track or count_line is not None) and not task.trackable:
        raise DeployError(f"track and count_line need a detector; this model is a {task.role}")
    try:
        checked_options({"threshold": threshold, **predict}, task)
    except InputError as exc:
        raise DeployError(str(exc)) from None
    given = {name: value for name, value in predict.items() if value is not None and value is not False}
    config: dict[str, Any] = {
        "source": source,
        "threshold": threshold,
        **given,
        "track": bool(track or count_line),
        **{name: value for name, value in runtime.items() if value},
    }
    if count_line is not None:
        line = parse_line(count_line) if isinstance(count_line, str) else LineCounter(count_line).line
        config["count_line"] = ",".join(f"{v:g}" for v in line)
    return json.dumps(config, indent=2) + "\n"


@dataclass(frozen=True)
class _Where:
    """Where and how the bundle's services run on the Pi."""

    name: str  # the systemd service
    folder: str  # the bundle folder's name
    user: str
    port: int


def _bundle_files(
    model: Path, contract: Any, task: Any, backend: str, where: _Where, serve: bool, config: str
) -> dict[str, str]:
    """Every generated file of the bundle but config.json: name -> text."""
    home = f"/home/{where.user}/{where.folder}"
    readme = README.format(
        name=where.name,
        version=contract.edgekit_version or "?",
        model=model.name,
        runtime=backend,
        labels=", ".join(contract.labels),
        folder=home,
        record_help=task.record_help,
        task_runs=TRACKING_RUN if task.trackable else "",
        config=f"`{json.dumps(json.loads(config))}`",
    )
    files = {
        "run.py": RUN_PY.format(model=model.name, manifest=MANIFEST_NAME, role=task.role),
        "doctor.py": DOCTOR_PY,
        "requirements.txt": _requirements(model, serve),
        "install.sh": INSTALL_SH.format(
            manifest=MANIFEST_NAME, serve_token=SERVE_TOKEN.format(port=where.port) if serve else ""
        ),
        f"{where.name}.service": SERVICE.format(name=where.name, folder=home, user=where.user, role=task.role),
        "README.md": readme,
    }
    if serve:
        opt = f"/opt/{where.name}"
        files["README.md"] += SERVE_README.format(
            port=where.port, model_name=contract.model_name, folder=opt, name=where.name
        )
        files["serve.py"] = SERVE_PY.format(model=model.name, manifest=MANIFEST_NAME, role=task.role)
        files[f"{where.name}-serve.service"] = SERVE_SERVICE.format(
            name=where.name, folder=opt, role=task.role, port=where.port
        )
    return files


def _seal(work: Path, staging: Path, folder: Path) -> Path:
    """The manifest, ordinary permissions and the .tar.gz; the folder and archive moved into place. The archive."""
    # everything but the files a user edits in place (the service unit, the README, config.json)
    shipped = [
        p.relative_to(work)
        for p in work.rglob("*")
        if p.is_file() and p.suffix not in (".service", ".md") and p.name != BUNDLE_CONFIG
    ]
    write_manifest(work, shipped)
    ordinary_permissions(work)
    archive_tmp = staging / "bundle.tar.gz"
    with tarfile.open(archive_tmp, "w:gz") as tar:
        tar.add(work, arcname=folder.name)
    ordinary_permissions(archive_tmp)
    if folder.exists():
        folder.rmdir()
    work.replace(folder)
    archive = folder.with_name(folder.name + ".tar.gz")
    archive_tmp.replace(archive)
    return archive
