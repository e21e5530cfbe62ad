"""bench/mutation.py's smoke mode: mutmut generates, runs and reports mutants of one small module in a scratch copy.

The full run (every module, about ten minutes) is a bench, not part of make test; this keeps its harness from rotting.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.needs import need_module

ROOT = Path(__file__).resolve().parents[2]
need_module("mutmut", extra="dev")


@pytest.mark.slow  # mutmut builds and tests a scratch copy of the tree
def test_the_smoke_run_mutates_integrity_and_kills_what_it_should():
    before = sorted((p.relative_to(ROOT).as_posix(), p.stat().st_mtime_ns) for p in (ROOT / "runtimes").rglob("*.py"))
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "mutation.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    row = re.search(
        r"^runtimes/integrity.py\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)%\s+([\d.]+)%$", run.stdout, re.M
    )
    assert row, run.stdout
    total, killed, timeout, survived, equivalent, rate, raw = (float(g) for g in row.groups())
    assert total >= 15 and killed + timeout + survived + equivalent == total
    assert rate >= 85.0 and rate == round(100 * (killed + timeout) / (total - equivalent), 1)
    assert raw == round(100 * (killed + timeout) / total, 1)
    assert "equivalent runtimes.integrity.x_sha256_file__mutmut_" in run.stdout  # the read(None) mutant, explained
    after = sorted((p.relative_to(ROOT).as_posix(), p.stat().st_mtime_ns) for p in (ROOT / "runtimes").rglob("*.py"))
    assert after == before and not (ROOT / "mutants").exists()  # a scratch copy: the tree is untouched
