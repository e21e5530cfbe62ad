"""Raspberry Pi bundles: contents, safe archives, the runner working from the extracted folder."""

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from helpers.needs import missing

from edgekit.cli import main
from edgekit.deploy import extract_bundle, rpi
from edgekit.errors import DeployError


@pytest.fixture(scope="module")
def bundle(exported, tmp_path_factory):
    return rpi(exported.result("tflite:int8").path, tmp_path_factory.mktemp("dist") / "shapes")


def test_bundle_holds_everything_a_pi_needs(bundle):
    names = sorted(p.name for p in bundle.folder.iterdir())
    assert names == [
        "MANIFEST.sha256",
        "README.md",
        "config.json",
        "doctor.py",
        "edgekit-classifier.service",
        "install.sh",
        "requirements.txt",
        "run.py",
        "runtimes",
        "small_cnn_int8.tflite",
    ]
    requirements = (bundle.folder / "requirements.txt").read_text()
    assert (
        "ai-edge-litert==1.4.0" in requirements and "numpy==2.2.6" in requirements and "tensorflow" not in requirements
    )
    assert "--system-site-packages" in (bundle.folder / "install.sh").read_text()
    service = (bundle.folder / "edgekit-classifier.service").read_text()
    assert "ExecStart=/home/pi/shapes/.venv/bin/python /home/pi/shapes/run.py --output" in service
    assert json.loads((bundle.folder / "config.json").read_text()) == {
        "source": "picamera2",
        "threshold": None,
        "track": False,
    }
    assert "Labels: circle, square, triangle" in (bundle.folder / "README.md").read_text()
    assert not list((bundle.folder / "runtimes").rglob("__pycache__"))


def test_archive_members_stay_inside_one_folder(bundle, tmp_path):
    with tarfile.open(bundle.archive) as tar:
        names = tar.getnames()
    assert all(n == "shapes" or n.startswith("shapes/") for n in names)
    assert not any(n.startswith("/") or ".." in n.split("/") for n in names)
    extracted = extract_bundle(bundle.archive, tmp_path)
    assert extracted == tmp_path / "shapes" and (extracted / "run.py").is_file()


def _evil_archive(path, member_name, kind=tarfile.REGTYPE):
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("shapes/run.py")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"#\n"))
        evil = tarfile.TarInfo(member_name)
        evil.type = kind
        if kind == tarfile.SYMTYPE:
            evil.linkname = "/etc/passwd"
        else:
            evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil") if kind != tarfile.SYMTYPE else None)
    return path


@pytest.mark.parametrize(
    "member, kind, message",
    [
        ("shapes/../../escape.txt", tarfile.REGTYPE, "unsafe path in bundle archive: 'shapes/../../escape.txt'"),
        ("/tmp/absolute.txt", tarfile.REGTYPE, "unsafe path in bundle archive: '/tmp/absolute.txt'"),
        ("shapes/link", tarfile.SYMTYPE, "'shapes/link' is a link or device"),
    ],
)
def test_unsafe_archives_are_refused_and_nothing_is_written(tmp_path, member, kind, message):
    archive = _evil_archive(tmp_path / "evil.tar.gz", member, kind)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DeployError, match=message):
        extract_bundle(archive, dest)
    assert list(dest.iterdir()) == [] and not (tmp_path.parent / "escape.txt").exists()


def test_runner_works_from_the_extracted_bundle_without_tensorflow(bundle, shapes_splits, tmp_path):
    folder = extract_bundle(bundle.archive, tmp_path)
    images = tmp_path / "images"
    images.mkdir()
    test = shapes_splits[2]
    for source in test.sources[:6]:
        (images / source.rsplit("/", 1)[-1]).write_bytes(open(source, "rb").read())
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['run.py', '--source', {str(images)!r}, '--output', {str(tmp_path / 'out.jsonl')!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(folder / 'run.py')!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    import runtimes\n"
        f"    assert runtimes.__file__.startswith({str(folder)!r}), runtimes.__file__\n"
        "    assert 'tensorflow' not in sys.modules and 'edgekit' not in sys.modules\n"
        "    sys.exit(exit.code)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(records) == 6 and all(r["label"] in ("circle", "square", "triangle") for r in records)


def test_deploy_refuses_what_a_pi_cannot_run(exported, tmp_path, tiny_model, tiny_contract):
    import tensorflow as tf

    plain = tmp_path / "plain.tflite"
    plain.write_bytes(tf.lite.TFLiteConverter.from_keras_model(tiny_model).convert())
    with pytest.raises(DeployError, match="plain.tflite has no embedded contract"):
        rpi(plain, tmp_path / "a")
    with pytest.raises(DeployError, match=r"cannot bundle m.mlpackage for a Raspberry Pi: use one of .tflite, .onnx"):
        rpi(tmp_path / "m.mlpackage", tmp_path / "b")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(DeployError, match="exists and is not empty"):
        rpi(exported.result("onnx:int8").path, tmp_path / "full")


def test_deploy_and_doctor_commands(exported, tmp_path, capsys):
    assert main(["deploy", "rpi", exported.result("onnx:int8").path, "--out", str(tmp_path / "onnx-bundle")]) == 0
    assert "onnxruntime==1.22.1" in (tmp_path / "onnx-bundle" / "requirements.txt").read_text()
    assert f"bundle: {tmp_path / 'onnx-bundle'}/" in capsys.readouterr().out
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "ok  ai_edge_litert" in text and "ready: yes" in text and "cameras:" in text


def test_doctor_gives_advice_when_runtimes_are_missing(monkeypatch):
    from runtimes.apps import doctor

    real = doctor._version
    monkeypatch.setattr(
        doctor,
        "_version",
        lambda m: None if m in ("ai_edge_litert", "tflite_runtime", "onnxruntime", "cv2") else real(m),
    )
    report = doctor.diagnose()
    assert not report.ok
    assert "cv2 is missing: pip install opencv-python-headless" in report.advice
    assert "no inference runtime: pip install ai-edge-litert (TFLite) or onnxruntime (ONNX)" in report.advice


def test_picamera2_sample_fails_clearly_without_a_pi_camera(exported):
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "samples" / "raspberry_pi" / "picamera2_classifier.py"
    result = subprocess.run(
        [sys.executable, str(sample), exported.result("tflite:int8").path, "--headless"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: picamera2 is not importable") and "python3-picamera2" in result.stderr


# -- integrity and hostile archives ----------------------------------------------------
def test_manifest_lists_every_shipped_file_and_sha256sum_agrees(bundle):
    import hashlib
    import shutil

    lines = (bundle.folder / "MANIFEST.sha256").read_text().splitlines()
    listed = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in lines}
    shipped = {p.relative_to(bundle.folder).as_posix() for p in bundle.folder.rglob("*") if p.is_file()}
    assert set(listed) == shipped - {"MANIFEST.sha256", "README.md", "edgekit-classifier.service", "config.json"}
    model = "small_cnn_int8.tflite"
    assert listed[model] == hashlib.sha256((bundle.folder / model).read_bytes()).hexdigest()
    assert "runtimes/model.py" in listed and "run.py" in listed
    if shutil.which("sha256sum") is None:
        missing("sha256sum (coreutils) is not installed")
    check = subprocess.run(
        ["sha256sum", "--check", "--quiet", "MANIFEST.sha256"], cwd=bundle.folder, capture_output=True
    )
    assert check.returncode == 0, check.stdout


def test_a_damaged_bundle_is_refused_by_the_runner_and_the_installer(bundle, tmp_path):
    import shutil

    folder = extract_bundle(bundle.archive, tmp_path)
    model = folder / "small_cnn_int8.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit, as an SD card gives
    model.write_bytes(bytes(data))
    run = subprocess.run(
        [sys.executable, str(folder / "run.py"), "--source", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "failed its integrity check: small_cnn_int8.tflite is damaged (SHA-256 differs)" in run.stderr
    assert "copy the bundle again" in run.stderr
    if shutil.which("sha256sum") is None:
        missing("sha256sum (coreutils) is not installed")
    install = subprocess.run(["bash", str(folder / "install.sh")], capture_output=True, text=True, timeout=60)
    assert install.returncode == 1 and "the bundle is damaged" in install.stderr
    assert not (folder / ".venv").exists()  # refused before anything was installed


def test_a_byte_flipped_past_the_first_mib_of_a_large_model_is_refused(tiny_contract, tmp_path):
    """A 3 MiB model (a MobileNetV2-sized file, not the suite's sub-MiB ones): the whole file is hashed, not its
    head."""
    from converters.tflite import MODES, convert_tflite
    from edgekit._tf import keras

    k = keras()
    inputs = k.Input((16, 16, 3))
    x = k.layers.Dense(1024, activation="relu")(k.layers.Flatten()(inputs))  # 768 x 1024 float32 weights: 3 MiB
    model = convert_tflite(
        k.Model(inputs, k.layers.Dense(3, activation="softmax")(x)),
        tmp_path / "large.tflite",
        MODES["fp32"],
        contract=tiny_contract,
    ).path
    assert model.stat().st_size > 3 << 20
    folder = extract_bundle(rpi(model, tmp_path / "dist" / "large").archive, tmp_path / "pi")
    shipped = folder / "large.tflite"
    data = bytearray(shipped.read_bytes())
    data[(1 << 20) + 4099] ^= 0x01  # past the first MiB: a check of the head alone would pass it
    shipped.write_bytes(bytes(data))
    run = subprocess.run(
        [sys.executable, str(folder / "run.py"), "--source", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "failed its integrity check: large.tflite is damaged (SHA-256 differs)" in run.stderr


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "bundle archive not found"),
        (b"", "not a complete .tar.gz bundle"),
        (b"this is not gzip at all", "not a complete .tar.gz bundle"),
        ("empty", "is empty"),
        ("truncated", "not a complete .tar.gz bundle"),
    ],
)
def test_broken_archives_are_deploy_errors_and_write_nothing(bundle, tmp_path, content, message):
    archive = tmp_path / "b.tar.gz"
    if content == "empty":
        with tarfile.open(archive, "w:gz"):
            pass
    elif content == "truncated":
        data = bundle.archive.read_bytes()
        archive.write_bytes(data[: len(data) // 2])
    elif content is not None:
        archive.write_bytes(content)
    dest = tmp_path / "dest"
    with pytest.raises(DeployError, match=message):
        extract_bundle(archive, dest)
    assert not dest.exists() or list(dest.iterdir()) == []


def test_a_decompression_bomb_is_refused(tmp_path):
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        member = tarfile.TarInfo("shapes/model.tflite")
        member.size = 40 << 20
        tar.addfile(member, io.BytesIO(bytes(member.size)))
    assert archive.stat().st_size < 1 << 20
    with pytest.raises(DeployError, match="would expand to 40 MiB .*decompression bomb"):
        extract_bundle(archive, tmp_path / "dest")
    with pytest.raises(DeployError, match="limit 1 MiB"):
        extract_bundle(bundle_archive_of(tmp_path, 2 << 20), tmp_path / "dest", max_bytes=1 << 20)
    assert not (tmp_path / "dest" / "shapes").exists()


def bundle_archive_of(folder, size):
    archive = folder / "big.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        member = tarfile.TarInfo("shapes/blob")
        member.size = size
        tar.addfile(member, io.BytesIO(bytes(size)))
    return archive


def test_a_link_already_at_the_destination_is_replaced_not_followed(bundle, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "shapes").symlink_to(outside, target_is_directory=True)
    folder = extract_bundle(bundle.archive, dest)
    assert not folder.is_symlink() and (folder / "run.py").is_file()
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]  # nothing was written through the link
    assert not any(p.name.startswith(".edgekit-extract-") for p in dest.iterdir())


def test_a_detector_bundle_is_named_and_documented_for_detection(detector_exported, tracking_clip, tmp_path, capsys):
    assert main(["deploy", "rpi", str(detector_exported.result("onnx:fp32").path), "--out", str(tmp_path / "det")]) == 0
    folder = tmp_path / "det"
    service = (folder / "edgekit-detector.service").read_text()
    assert "Description=edgekit detector (edgekit-detector)" in service
    readme = (folder / "README.md").read_text()
    assert "--track --count-line" in readme and "box x0,y0,x1,y1 in the source's pixels" in readme
    assert "onnxruntime==" in (folder / "requirements.txt").read_text()
    line = ",".join(f"{v:g}" for v in tracking_clip.count_line)
    result = subprocess.run(
        [sys.executable, "run.py", "--source", str(tracking_clip.path), "--track", "--count-line", line],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(text) for text in result.stdout.splitlines()]
    assert len(records) == 48 and records[-1]["count"]["total"] == 2
    assert "crossed: 2 (in 1, out 1)" in result.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_serve_bundle_serves_from_the_extracted_folder_and_stops_on_sigterm(exported, shapes_splits, tmp_path):
    """deploy rpi --serve: serve.py, its systemd unit and token; the REST API answers, without TensorFlow, until
    SIGTERM."""
    import base64
    import signal
    import time
    import urllib.error
    import urllib.request

    bundle = rpi(exported.result("tflite:int8").path, tmp_path / "dist" / "shapes", serve=True, port=8600)
    unit = (bundle.folder / "edgekit-classifier-serve.service").read_text()
    folder = "/opt/edgekit-classifier"  # a root-owned copy, run as the service's own user
    assert f"ExecStart={folder}/.venv/bin/python {folder}/serve.py --host 0.0.0.0 --port 8600" in unit
    assert f"EnvironmentFile={folder}/serve.env" in unit
    for directive in (
        "User=edgekit",
        "SupplementaryGroups=video",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "MemoryMax=75%",
        "LimitNOFILE=1024",
        "RestartPreventExitStatus=2",
    ):
        assert directive + "\n" in unit, directive
    requirements = (bundle.folder / "requirements.txt").read_text()
    assert "starlette==" in requirements and "uvicorn==" in requirements and "tensorflow" not in requirements
    assert (
        "secrets.token_urlsafe" in (bundle.folder / "install.sh").read_text()
        and "umask 077" in (bundle.folder / "install.sh").read_text()
    )
    assert "useradd --system" in (bundle.folder / "README.md").read_text()
    assert "/v1/models/small_cnn:predict" in (bundle.folder / "README.md").read_text()
    folder = extract_bundle(bundle.archive, tmp_path / "pi")
    port = _free_port()
    modules = tmp_path / "modules.json"
    probe = (  # serve.py as systemd runs it, and a thread that reports what the process has imported
        "import json, os, runpy, sys, threading, time\n"
        "def report():\n"
        "    while True:\n"
        f"        open({str(modules)!r} + '.tmp', 'w').write(json.dumps(sorted(m for m in sys.modules if "
        "m.split('.')[0] in ('tensorflow', 'edgekit', 'keras'))))\n"
        f"        os.replace({str(modules)!r} + '.tmp', {str(modules)!r})  # whole, never read half-written\n"
        "        time.sleep(0.2)\n"
        "threading.Thread(target=report, daemon=True).start()\n"
        f"sys.argv = ['serve.py', '--port', '{port}']\n"
        f"runpy.run_path({str(folder / 'serve.py')!r}, run_name='__main__')\n"
    )
    import os

    server = subprocess.Popen(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EDGEKIT_SERVE_TOKEN": "pi-token"},
    )
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        authorized = {"Authorization": "Bearer pi-token", "Content-Type": "application/json"}
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(url + "/healthz", headers=authorized), timeout=5)
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None and time.monotonic() < deadline, (
                    server.stderr.read() if server.poll() is not None else "timeout"
                )
                time.sleep(0.3)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/healthz", timeout=5)
        assert refused.value.code == 401
        image = base64.b64encode(open(shapes_splits[2].sources[0], "rb").read()).decode()
        body = json.dumps({"instances": [{"b64": image}]}).encode()
        answer = json.load(
            urllib.request.urlopen(
                urllib.request.Request(url + "/v1/models/small_cnn:predict", body, authorized), timeout=30
            )
        )
        assert answer["predictions"][0]["label"] in ("circle", "square", "triangle")
        assert len(answer["predictions"][0]["scores"]) == 3
        time.sleep(0.5)
        assert json.loads(modules.read_text()) == []  # no TensorFlow, Keras or edgekit in the serving process
        environment = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        assert b"OPENCV_IO_MAX_IMAGE_PIXELS=16800000" in environment  # OpenCV's own cap behind the header checks
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
        assert server.returncode == 0, stderr[-2000:]  # drained and cleaned up: a clean stop to systemd
        assert "Traceback" not in stderr and "serving small_cnn on" in stderr and "edgekit serve stopped" in stderr, (
            stderr[-2000:]
        )
    finally:
        if server.poll() is None:
            server.kill()
