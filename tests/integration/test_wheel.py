"""The wheel installs anywhere: built from the tree, checked (twine, check-wheel-contents), then installed into fresh
virtualenvs with one role's extras. A device's (`runtime,runtime-onnx`: no TensorFlow, Keras or edgekit's host
dependencies) runs `edgekit predict` and `runtimes` on TFLite and ONNX files exported earlier in the run and gives
the host's answers; a server's (`runtime,serve`) answers one REST request; a laptop's (`all`) runs the quickstart of
docs/getting-started.md as a user would paste it.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import caches
from helpers.needs import missing

from edgekit.cli import main

pytestmark = pytest.mark.installs

ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str, timeout: float = 300, cwd: Path | str = "/") -> subprocess.CompletedProcess:
    """`command` in an environment that cannot see the source tree: only what the venv installed is importable."""
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=caches.isolated_env(), cwd=cwd)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = _run(sys.executable, "-m", "build", "--outdir", str(out), str(ROOT), timeout=900)
    if built.returncode != 0:
        missing(
            f"python -m build could not build the wheel (no package registry for setuptools?): {built.stderr[-300:]}"
        )
    (wheel,) = out.glob("*.whl")
    checked = _run(sys.executable, "-m", "twine", "check", *map(str, out.iterdir()))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    contents = _run(str(Path(sys.executable).with_name("check-wheel-contents")), str(wheel), cwd=ROOT)  # its config
    assert contents.returncode == 0, contents.stdout + contents.stderr
    return wheel


def _venv(name: str, wheel: Path, extras: str) -> Path:
    try:
        return caches.wheel_venv(name, wheel, extras)
    except caches.CacheUnavailable as exc:
        missing(str(exc))


def test_the_wheel_ships_typed_packages_and_one_version(wheel):
    import zipfile

    import edgekit

    names = zipfile.ZipFile(wheel).namelist()
    assert {"edgekit/py.typed", "runtimes/py.typed", "converters/py.typed"} <= set(names)
    assert not any(name.startswith(("tests/", "bench/", "docs/")) for name in names)
    assert wheel.name.startswith(f"edgekit-{edgekit.__version__}-")


@pytest.mark.slow
def test_a_device_venv_without_tensorflow_predicts_as_the_host(wheel, exported, shapes_splits, tmp_path, capsys):
    python = _venv("device", wheel, "runtime,runtime-onnx")
    bin_dir = python.parent
    absent = _run(
        str(python),
        "-c",
        "import importlib.util as u; print([m for m in ('tensorflow', 'keras', "
        "'tf2onnx', 'coremltools') if u.find_spec(m)])",
    )
    assert absent.stdout.strip() == "[]", absent.stdout + absent.stderr
    version = _run(str(bin_dir / "edgekit"), "--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("edgekit "), version.stderr
    image = shapes_splits[2].sources[0]
    for target in ("tflite:int8", "onnx:fp32"):
        model = exported.result(target).path
        assert main(["predict", str(model), image, "--json"]) == 0
        host = json.loads(capsys.readouterr().out)
        done = _run(str(bin_dir / "edgekit"), "predict", str(model), image, "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        device = json.loads(done.stdout)
        assert (device["source"], device["label"], device["best"]) == (host["source"], host["label"], host["best"])
        assert device["top_k"] == host["top_k"], target  # the same file and runtime: the same scores
        script = (
            "import sys, runtimes; m = runtimes.open(sys.argv[1]); r = m.predict(sys.argv[2]); "
            "print(r.label, round(r.score, 6), 'tensorflow' in sys.modules)"
        )
        direct = _run(str(python), "-c", script, str(model), image)
        assert direct.stdout.split() == [host["best"], str(host["score"]), "False"], direct.stderr[-2000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_a_server_venv_answers_a_rest_request(wheel, exported, shapes_splits, capsys):
    python = _venv("serve", wheel, "runtime,serve")
    model, image = exported.result("tflite:int8").path, shapes_splits[2].sources[0]
    port = _free_port()
    server = subprocess.Popen(
        [str(python.parent / "edgekit"), "serve", str(model), "--port", str(port), "--name", "shapes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=caches.isolated_env(),
        cwd="/",
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"edgekit serve did not start: {server.stdout.read()[-2000:]}") from None
                time.sleep(0.3)
        body = json.dumps({"instances": [{"b64": base64.b64encode(Path(image).read_bytes()).decode()}]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/shapes:predict", body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert main(["predict", str(model), image, "--json"]) == 0
    host = json.loads(capsys.readouterr().out)
    assert answer["predictions"][0]["label"] == host["best"]


def quickstart() -> str:
    """The first Python block under "## Quickstart" in docs/getting-started.md (the README's, word for word)."""
    page = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    section = page.split("## Quickstart", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_a_laptop_venv_from_the_wheel_runs_the_quickstart(wheel, tmp_path):
    python = _venv("host", wheel, "all")
    where = _run(str(python), "-c", "import edgekit; print(edgekit.__file__)")
    assert where.stdout.startswith(str(python.parent.parent)), where.stdout + where.stderr  # the wheel, not the tree
    (tmp_path / "quickstart.py").write_text(quickstart(), encoding="utf-8")
    done = _run(str(python), "quickstart.py", timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for target in ("tflite:int8", "onnx:fp32", "coreml:fp16"):
        assert re.search(rf"^{target}\s+ok\s", done.stdout, re.M), done.stdout
    labels = sorted(path.name for path in (tmp_path / "data" / "shapes").iterdir() if path.is_dir())
    prediction = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(rf"({'|'.join(labels)}) \(0\.\d{{3}}\)", prediction), prediction  # label (score)
    written = sorted(path.suffix for path in (tmp_path / "runs" / "export").iterdir())
    assert {".tflite", ".onnx", ".mlpackage"} <= set(written), written
