"""The suite's skip policy (tests/helpers/needs.py): skips on a laptop, failures naming what was missing in CI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from helpers.needs import pytest_make_collect_report, pytest_runtest_makereport
"""

TEST_SKIPS = """
import sys
import pytest
from helpers.needs import missing

def test_stray_skip():
    pytest.skip("a stray reason")

def test_missing_tool():
    missing("tool X is not installed")

@pytest.mark.skipif(sys.platform != "win32", reason="declared: runs on Windows only")
def test_declared_platform_condition():
    pass

def test_passes():
    assert True
"""

TEST_MODULE_IMPORTORSKIP = """
import pytest
pytest.importorskip("edgekit_no_such_module")

def test_never_collected():
    pass
"""

TEST_NEED_MODULE = """
from helpers.needs import need_module
need_module("edgekit_no_such_module", extra="onnx")

def test_never_collected():
    pass
"""


def _run(folder: Path, require_all: str | None, *files: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("EDGEKIT_REQUIRE_ALL", "PYTEST_ADDOPTS")}
    if require_all is not None:
        env["EDGEKIT_REQUIRE_ALL"] = require_all
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-p", "no:xdist", *files],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_skips.py").write_text(TEST_SKIPS)
    (tmp_path / "test_module_importorskip.py").write_text(TEST_MODULE_IMPORTORSKIP)
    (tmp_path / "test_need_module.py").write_text(TEST_NEED_MODULE)
    return tmp_path


@pytest.mark.parametrize("value", [None, "0", ""])
def test_without_require_all_skips_stay_skips_with_their_reason(suite, value):
    result = _run(suite, value, "test_skips.py", "test_module_importorskip.py", "test_need_module.py")
    assert result.returncode == 0, result.stdout
    assert "1 passed, 5 skipped" in result.stdout
    assert "tool X is not installed" in result.stdout
    assert (
        "edgekit_no_such_module is not importable (No module named 'edgekit_no_such_module'): pip install -e '.[onnx]'"
        in result.stdout
    )


@pytest.mark.parametrize("value", ["1", "true"])
def test_with_require_all_every_undeclared_skip_fails_naming_what_was_missing(suite, value):
    result = _run(suite, value, "test_skips.py")
    assert result.returncode == 1
    assert "2 failed, 1 passed, 1 skipped" in result.stdout  # the declared platform skipif stays a skip
    assert "EDGEKIT_REQUIRE_ALL=1 forbids this skip: a stray reason" in result.stdout
    assert "EDGEKIT_REQUIRE_ALL=1 and tool X is not installed; run `make warm`" in result.stdout
    assert "SKIPPED [1] test_skips.py:12: declared: runs on Windows only" in result.stdout


@pytest.mark.parametrize(
    "module, message",
    [
        (
            "test_module_importorskip.py",
            "EDGEKIT_REQUIRE_ALL=1 forbids skipping test_module_importorskip.py: "
            "Skipped: could not import 'edgekit_no_such_module'",
        ),
        ("test_need_module.py", "EDGEKIT_REQUIRE_ALL=1 and edgekit_no_such_module is not importable"),
    ],
)
def test_with_require_all_a_module_skipped_at_import_fails_the_run(suite, module, message):
    result = _run(suite, "1", module)
    assert result.returncode != 0
    assert message in result.stdout and "During handling" not in result.stdout


def test_ci_runs_make_test_with_require_all():
    ci = (TESTS.parent / ".ci" / "run").read_text()
    assert "EDGEKIT_REQUIRE_ALL=1 make test" in ci
    makefile = (TESTS.parent / "Makefile").read_text()
    assert "\nwarm: $(STAMP)\n\t$(VENV)/bin/python tests/helpers/caches.py\n" in makefile
