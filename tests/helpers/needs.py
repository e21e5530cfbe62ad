"""What a test needs beyond the code under test, and what happens when it is missing.

On a developer's laptop a missing package, cache, install or tool skips the tests that need it, with
the reason. In CI (`.ci/run` sets EDGEKIT_REQUIRE_ALL=1) the same gap is a failure that names what was
missing: a run that silently lost the arm64, MediaPipe or browser tests would otherwise stay green.

    onnx = need_module("onnx", extra="onnx")   # at module level, instead of pytest.importorskip
    missing("sha256sum (coreutils) is not installed")   # in a test or fixture, instead of pytest.skip

The hooks below (tests/conftest.py imports them) also turn any other skip (a stray pytest.skip or importorskip) into a
failure under
EDGEKIT_REQUIRE_ALL=1; only `skipif` markers (declared platform conditions) stay skips.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any, NoReturn

import pytest

REQUIRE_ALL_VARIABLE = "EDGEKIT_REQUIRE_ALL"


def require_all() -> bool:
    """True when every skip for something missing must fail instead (CI)."""
    return os.environ.get(REQUIRE_ALL_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def missing(reason: str) -> NoReturn:
    """Skip for `reason` (a missing package, cache, install or tool); under EDGEKIT_REQUIRE_ALL=1, fail naming it."""
    if require_all():
        pytest.fail(
            f"{REQUIRE_ALL_VARIABLE}=1 and {reason}; run `make warm` (or install it) to get this coverage back",
            pytrace=False,
        )
    pytest.skip(reason, allow_module_level=True)


def need_module(name: str, extra: str | None = None) -> ModuleType:
    """The imported module `name`, or `missing(...)` naming the package and the extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        problem = str(exc)
    fix = f"pip install -e '.[{extra}]'" if extra else f"pip install {name}"
    missing(f"{name} is not importable ({problem}): {fix}")


# -- the hooks: tests/conftest.py imports them, so pytest registers them for the suite --------------------


def _declared_skip(item: pytest.Item, reason: str) -> bool:
    """Whether `reason` is one of the item's own `skipif` markers (a declared platform condition, not a gap)."""
    return any(mark.kwargs.get("reason") == reason for mark in item.iter_markers("skipif"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Under EDGEKIT_REQUIRE_ALL=1 (CI), a skip is a failure unless a `skipif` marker declared it (module docstring)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and require_all() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if not _declared_skip(item, reason):
            report.outcome = "failed"
            report.longrepr = f"{REQUIRE_ALL_VARIABLE}=1 forbids this skip: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """The same for a whole module skipped at import (a stray module-level importorskip)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and require_all():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_ALL_VARIABLE}=1 forbids skipping {collector.nodeid}: {reason}"
