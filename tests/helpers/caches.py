"""The caches some tests fill once per machine: what each holds, how it is filled, and `make warm`.

Nothing is downloaded while a test runs unless its cache is cold: then the first test that needs it
fills it (package registries, apt). `make warm` (python tests/helpers/caches.py) fills them all ahead of time,
for a machine about to go offline or a CI image, and exits non-zero naming any it could not fill.

- arm64: a Debian bookworm arm64 userland for qemu user mode, plus the bundle's aarch64 wheels
  (scripts/arm64-sysroot.sh; test_arm64).
- mediapipe: mediapipe 0.10.14 in its own virtualenv (its pins clash with TensorFlow's; test_mediapipe).
- tfserving: tensorflow-serving-api's messages, without dependencies (test_serve_clients).
- browser: Debian's chromium and Playwright's Python package (test_serve_clients' live page).
- wheel-*: virtualenvs holding the wheel built in the test run with one role's extras (test_wheel).
- photos: real photographs, scikit-image's data images read out of its wheel (test_faces).

All under $EDGEKIT_CACHE (default ~/.cache), the arm64 userland under its script's own default.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("EDGEKIT_CACHE") or Path.home() / ".cache")
MEDIAPIPE = CACHE / "edgekit-mediapipe-0.10.14"
# mediapipe's own pins, without jax/jaxlib/sounddevice/opencv-contrib that only Model Maker, audio and the
# legacy solutions use: the vision tasks and the metadata writer need these
MEDIAPIPE_PACKAGES = [
    ["--no-deps", "mediapipe==0.10.14"],
    ["absl-py", "attrs", "flatbuffers", "numpy<2", "opencv-python-headless", "protobuf>=4.25.3,<5", "matplotlib"],
]


class CacheUnavailable(RuntimeError):
    """A cache could not be filled here; the message says what failed (tests turn it into needs.missing)."""


def _last_line(result: subprocess.CompletedProcess | BaseException) -> str:
    text = getattr(result, "stderr", None) or getattr(result, "stdout", None) or str(result)
    lines = str(text).strip().splitlines()
    return lines[-1] if lines else "(no output)"


def arm64_userland() -> tuple[str, str, str]:
    """(sysroot, site-packages, qemu-aarch64-static) of the emulated Pi, set up once by scripts/arm64-sysroot.sh."""
    if not sys.platform.startswith("linux") or shutil.which("apt-get") is None:
        raise CacheUnavailable("arm64 emulation needs Debian/Ubuntu's apt-get and qemu-user-static (Linux only)")
    try:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "arm64-sysroot.sh")], capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        raise CacheUnavailable(
            "arm64 emulation set-up took longer than 15 minutes (slow or no package registry?)"
        ) from None
    if done.returncode != 0:
        raise CacheUnavailable(f"arm64 emulation could not be set up: {_last_line(done)}")
    paths = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return paths["SYSROOT"], paths["SITE"], paths["QEMU"]


def mediapipe_python() -> str:
    """The python of a virtualenv holding mediapipe 0.10.14, installed once."""
    python = MEDIAPIPE / "venv" / "bin" / "python"
    ready = MEDIAPIPE / "ready"
    if ready.exists():
        return str(python)
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(MEDIAPIPE / "venv")],
            check=True,
            capture_output=True,
            timeout=120,
        )
        for packages in MEDIAPIPE_PACKAGES:
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", *packages],
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
        subprocess.run(
            [str(python), "-c", "from mediapipe.tasks.python import vision"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        raise CacheUnavailable(
            f"mediapipe 0.10.14 could not be installed into {MEDIAPIPE}: {_last_line(exc)}"
        ) from None
    ready.write_text("mediapipe==0.10.14\n")
    return str(python)


def cached_site(folder: str, *packages: str, no_deps: bool = False) -> Path:
    """`packages` pip-installed once into $EDGEKIT_CACHE/<folder>/site (a folder to put on sys.path or PYTHONPATH)."""
    site = CACHE / folder / "site"
    done = site / ".complete"
    if done.exists():
        return site
    shutil.rmtree(site, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--target",
        str(site),
        *(["--no-deps"] if no_deps else []),
        *packages,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise CacheUnavailable(f"installing {' '.join(packages)} took over 10 minutes (no package registry?)") from None
    if result.returncode != 0:
        raise CacheUnavailable(f"cannot install {' '.join(packages)}: {_last_line(result)}")
    done.write_text("ok")
    return site


def wheel_venv(name: str, wheel: Path, extras: str) -> Path:
    """The python of a fresh virtualenv under $EDGEKIT_CACHE/edgekit-wheel-<name> holding `wheel` with `extras`.

    The dependencies are installed once (the first `pip install wheel[extras]`); later runs reinstall only the
    wheel itself, so each run tests the wheel it just built. The venv is remade when the extras change.
    """
    folder = CACHE / f"edgekit-wheel-{name}"
    python, ready = folder / "venv" / "bin" / "python", folder / "ready"
    env = isolated_env()  # a PYTHONPATH onto the tree would make pip think edgekit is installed already
    try:
        if not ready.exists() or ready.read_text() != extras:
            shutil.rmtree(folder, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True, capture_output=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", f"{wheel}[{extras}]"],
                check=True,
                capture_output=True,
                text=True,
                timeout=900,
                env=env,
            )
            folder.joinpath("ready").write_text(extras)
        else:
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
                check=True,
                capture_output=True,
                text=True,
                timeout=300,
                env=env,
            )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        raise CacheUnavailable(
            f"cannot install the wheel with [{extras}] into a virtualenv: {_last_line(exc)}"
        ) from None
    return python


def mediapipe_face_model() -> Path:
    """MediaPipe's short-range BlazeFace, as its 0.10.14 wheel ships it (in the mediapipe cache)."""
    python = mediapipe_python()
    site = subprocess.run(
        [python, "-c", "import mediapipe, os; print(os.path.dirname(mediapipe.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(site) / "modules" / "face_detection" / "face_detection_short_range.tflite"


PHOTOS = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png")  # scikit-image's data photographs


def skimage_photos() -> Path:
    """A folder of real photographs: scikit-image's data images, read out of its wheel (downloaded once, not
    installed: only the pictures are wanted)."""
    folder = CACHE / "edgekit-photos"
    if all((folder / name).is_file() for name in PHOTOS):
        return folder
    import zipfile

    download = folder / "wheel"
    shutil.rmtree(download, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:"]
    try:
        result = subprocess.run(
            [*command, "-d", str(download), "scikit-image"], capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired:
        raise CacheUnavailable("downloading scikit-image took over 10 minutes (no package registry?)") from None
    wheels = sorted(download.glob("scikit_image-*.whl"))
    if result.returncode != 0 or not wheels:
        raise CacheUnavailable(f"cannot download scikit-image for its photographs: {_last_line(result)}")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for name in PHOTOS:
            (folder / name).write_bytes(wheel.read(f"skimage/data/{name}"))
    shutil.rmtree(download, ignore_errors=True)
    return folder


def isolated_env() -> dict[str, str]:
    """This process's environment without what points Python at the source tree (PYTHONPATH, PYTHONHOME)."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}


def tf_serving_site() -> Path:
    """tensorflow-serving-api without dependencies: its messages import the installed TensorFlow's protos."""
    return cached_site("edgekit-tfserving", "tensorflow-serving-api", no_deps=True)


def chromium() -> str:
    """The chromium executable, installed with apt-get when missing."""
    if shutil.which("chromium") is None:
        said = ""
        if shutil.which("apt-get"):
            installed = subprocess.run(
                ["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, text=True, timeout=900
            )
            said = f" (apt-get said: {_last_line(installed)})"
        if shutil.which("chromium") is None:
            raise CacheUnavailable(f"no Chromium: install Debian's chromium package{said}")
    return str(shutil.which("chromium"))


def playwright_site() -> Path:
    """Playwright's Python package (it drives the system chromium: no browser download)."""
    return cached_site("edgekit-browser", "playwright")


WARMERS = {
    "arm64": arm64_userland,
    "mediapipe": mediapipe_python,
    "photos": skimage_photos,
    "tfserving": tf_serving_site,
    "chromium": chromium,
    "playwright": playwright_site,
}


def main() -> int:
    """Fill every cache; print one line each; 1 when any could not be filled."""
    failed = 0
    for name, warm in WARMERS.items():
        try:
            print(f"{name}: ready ({warm()})", flush=True)
        except CacheUnavailable as exc:
            failed += 1
            print(f"{name}: FAILED: {exc}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
