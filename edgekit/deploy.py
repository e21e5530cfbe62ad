"""Deploy bundles: a folder (and .tar.gz) that runs a model on a Raspberry Pi without TensorFlow.

The bundle holds the model, a copy of the `runtimes` package, a runner (`run.py`, which is
`runtimes.apps.runner`), `doctor.py`, pinned requirements with aarch64 wheels, an installer, a
systemd unit and a README. Its archive holds only relative paths inside one folder.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import runtimes
from converters.base import ordinary_permissions
from edgekit.errors import DeployError
from runtimes.backends.base import backend_for
from runtimes.integrity import MANIFEST_NAME, write_manifest

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


INSTALL_SH = """#!/usr/bin/env bash
# Creates .venv beside this script. --system-site-packages keeps the system picamera2 (apt) visible.
set -euo pipefail
cd "$(dirname "$0")"
if ! sha256sum --check --quiet {manifest}; then
    echo "install.sh: the bundle is damaged (files above FAILED their SHA-256 check): copy it again" >&2
    exit 1
fi
{serve_token}python3 -m venv --system-site-packages .venv
.venv/bin/python -m pip install --upgrade pip
.venv/bin/python -m pip install -r requirements.txt
.venv/bin/python doctor.py || true
echo "installed: try  .venv/bin/python run.py --source picamera2  (or --source 0 for a USB camera)"
"""

RUN_PY = """#!/usr/bin/env python3
\"\"\"Run the bundled {role} on frames; one JSON object per result. --help lists the options.\"\"\"
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from runtimes.apps.runner import main  # noqa: E402

sys.exit(main(default_model=str(HERE / {model!r}), bundle=HERE))  # verifies {manifest} first
"""

DOCTOR_PY = """#!/usr/bin/env python3
\"\"\"Report what this machine can run and what to install.\"\"\"
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runtimes.apps.doctor import main  # noqa: E402

sys.exit(main())
"""

SERVE_TOKEN = """# The serve unit's token, made here (no secret travels in the bundle), before anything is installed:
# a token that cannot be made stops the install, so the unit never starts without one. It is written, never printed.
if ! grep -Eqs '^EDGEKIT_SERVE_TOKEN=[A-Za-z0-9_-]{{32,}}$' serve.env; then
    if ! token="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" || [ "${{#token}}" -lt 32 ]; then
        echo "install.sh: could not make the serve token (python3 -c 'import secrets' failed); nothing installed" >&2
        exit 1
    fi
    rm -f serve.env.new
    (umask 077; printf 'EDGEKIT_SERVE_TOKEN=%s\\n' "$token" > serve.env.new)
    mv serve.env.new serve.env
    unset token
fi
echo "edgekit serve: its token is in $PWD/serve.env (readable by you only);" \\
    "a browser opens http://<pi>:{port}/?token=<token> once"
"""

SERVE_PY = """#!/usr/bin/env python3
\"\"\"Serve the bundled {role}: TF Serving's REST API and a live view. --help lists the options.\"\"\"
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from runtimes.serving.cli import main  # noqa: E402

sys.exit(main(default_model=str(HERE / {model!r}), bundle=HERE))  # verifies {manifest} first
"""

SERVE_SERVICE = """[Unit]
Description=edgekit serve: {role} REST API and live view ({name})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
# Its own user (bundle README: useradd), which may use the camera and nothing of yours; the code root-owned in /opt.
User=edgekit
Group=edgekit
SupplementaryGroups=video
WorkingDirectory={folder}
# read by systemd as root: the token stays out of `ps`, the command line and the logs; no file, no start
EnvironmentFile={folder}/serve.env
ExecStart={folder}/.venv/bin/python {folder}/serve.py --source {source} --host 0.0.0.0 --port {port}
Restart=on-failure
RestartSec=5
RestartPreventExitStatus=2
TimeoutStopSec=20
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictNamespaces=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
MemoryHigh=60%
MemoryMax=75%
LimitNOFILE=1024
TasksMax=128

[Install]
WantedBy=multi-user.target
"""

SERVE_README = """
## Serve (REST API and live view)

    .venv/bin/python serve.py --source picamera2                                   # this Pi only (127.0.0.1)
    .venv/bin/python serve.py --source picamera2 --host 0.0.0.0 --port {port} --token-file token.txt

Off loopback a token is required (`--token-file`, or `EDGEKIT_SERVE_TOKEN`; serve refuses to start without
one unless told `--insecure`). Open `http://<pi>:{port}/?token=<token>` once in a browser for the annotated
stream (the page swaps the token for a cookie); other programs POST
`http://<pi>:{port}/v1/models/{model_name}:predict` as they would to TensorFlow Serving, with
`Authorization: Bearer <token>`. `install.sh` made a token in `serve.env` (readable by you only; it is never printed).

Start at boot, as a user of its own that may use the camera and nothing else, from a root-owned copy:

    sudo useradd --system --no-create-home --shell /usr/sbin/nologin --groups video edgekit   # once
    sudo cp -a . {folder} && sudo chown -R root:root {folder}
    sudo cp {folder}/{name}-serve.service /etc/systemd/system/ && sudo systemctl enable --now {name}-serve

The unit is sandboxed (NoNewPrivileges, ProtectSystem=strict, PrivateTmp, no home directories) and capped
(MemoryMax=75% of RAM, LimitNOFILE=1024); SIGTERM drains requests and releases the camera within TimeoutStopSec.
"""

TRACKING_RUN = """    # ids across frames, a counting line
    .venv/bin/python run.py --source 0 --track --count-line 320,0,320,480
"""

SERVICE = """[Unit]
Description=edgekit {role} ({name})
After=network-online.target

[Service]
Type=simple
WorkingDirectory={folder}
ExecStart={folder}/.venv/bin/python {folder}/run.py --source {source} --output {folder}/results.jsonl
Restart=on-failure
RestartSec=5
User={user}

[Install]
WantedBy=multi-user.target
"""

README = """# {name}

A runtime-only bundle made by edgekit {version}: `{model}` with its preprocessing, labels and
quantization embedded, run by `runtimes` (numpy, OpenCV and {runtime}). No TensorFlow.

Labels: {labels}

## Install (Raspberry Pi OS bookworm, 64-bit, Python 3.11)

    sudo apt install -y python3-venv python3-picamera2   # picamera2 only for the Pi camera
    ./install.sh                                          # venv with --system-site-packages
    .venv/bin/python doctor.py                            # what is installed, what is missing

`install.sh` and `run.py` first check every shipped file against `MANIFEST.sha256` and refuse a
damaged copy (SD cards and interrupted transfers flip and cut bytes): `sha256sum -c MANIFEST.sha256`
shows which file. Copy the bundle again when it fails.

## Run

    .venv/bin/python run.py --source picamera2            # Pi camera; 0 for a USB webcam
    .venv/bin/python run.py --source clip.mp4 --save annotated.mp4
    .venv/bin/python run.py --source photos/ --threshold 0.6 --output results.jsonl
{task_runs}
Each result is one JSON line: {record_help}.

## Start at boot

    sed -i "s#{folder}#$PWD#g; s#User=pi#User=$USER#" {name}.service
    sudo cp {name}.service /etc/systemd/system/ && sudo systemctl enable --now {name}
    journalctl -u {name} -f
"""


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
) -> Bundle:
    """Write a Raspberry Pi bundle folder and its .tar.gz, for any task's model (classifier, detector).

    `name` names the systemd service; by default `edgekit-<role>` (edgekit-classifier, edgekit-detector).
    `serve` adds `edgekit serve` (serve.py, Starlette and uvicorn in the requirements) and a sandboxed
    `<name>-serve.service` unit listening on all interfaces at `port` as its own user from /opt/<name>, with a
    token that install.sh makes (and stops at when it cannot).

    Example:
        >>> bundle = edgekit.deploy.rpi("runs/demo/export/small_cnn_int8.tflite", "dist/shapes")
        >>> bundle.archive
        PosixPath('dist/shapes.tar.gz')
    """
    model = Path(model)
    if model.suffix not in BUNDLE_FORMATS:
        raise DeployError(
            f"cannot bundle {model.name} for a Raspberry Pi: use one of {', '.join(BUNDLE_FORMATS)} "
            "(CoreML runs on Apple devices only)"
        )
    with runtimes.open(model) as loaded:  # the bundle must carry a model that loads and has its contract
        contract = loaded.contract
        backend = backend_for(model).name
        task = loaded.task
        problem = task.problem(loaded)
    if contract is None:
        raise DeployError(
            f"{model.name} has no embedded contract; export it with edgekit so the Pi knows its preprocessing"
        )
    if problem:
        raise DeployError(f"cannot bundle {model.name}: {problem}")
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
        _copy_runtimes(work / "runtimes")
        files = {
            "run.py": RUN_PY.format(model=model.name, manifest=MANIFEST_NAME, role=task.role),
            "doctor.py": DOCTOR_PY,
            "requirements.txt": _requirements(model, serve),
            "install.sh": INSTALL_SH.format(
                manifest=MANIFEST_NAME, serve_token=SERVE_TOKEN.format(port=port) if serve else ""
            ),
            f"{name}.service": SERVICE.format(
                name=name, folder=f"/home/{user}/{folder.name}", source=source, user=user, role=task.role
            ),
            "README.md": README.format(
                name=name,
                version=contract.edgekit_version or "?",
                model=model.name,
                runtime=backend,
                labels=", ".join(contract.labels),
                folder=f"/home/{user}/{folder.name}",
                record_help=task.record_help,
                task_runs=TRACKING_RUN if task.trackable else "",
            )
            + (
                SERVE_README.format(port=port, model_name=contract.model_name, folder=f"/opt/{name}", name=name)
                if serve
                else ""
            ),
        }
        if serve:
            files["serve.py"] = SERVE_PY.format(model=model.name, manifest=MANIFEST_NAME, role=task.role)
            files[f"{name}-serve.service"] = SERVE_SERVICE.format(
                name=name, folder=f"/opt/{name}", source=source, role=task.role, port=port
            )
        for filename, text in files.items():
            path = work / filename
            path.write_text(text)
            if filename.endswith((".sh", ".py")):
                path.chmod(path.stat().st_mode | 0o111)  # executable, under the caller's umask
        # everything but the files a user edits in place (the service unit, the README)
        shipped = [p.relative_to(work) for p in work.rglob("*") if p.is_file() and p.suffix not in (".service", ".md")]
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
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Bundle(folder, archive, folder / model.name)
