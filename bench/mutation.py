"""Mutation testing of the modules where a silent error costs most: does the suite notice when the code is wrong?

mutmut (3.x) rewrites each function of a module many ways (a `<` for a `<=`, a `// 2` for a `/ 2`, a
constant nudged, a call's argument dropped), then runs the fast tests that cover that function against
each mutant: a mutant is killed when a test fails (or hangs: a timeout), and survives when every test
still passes. This prints the kill rate per module and every survivor's diff, and exits 1 when a module
kills fewer than 85% of its mutants. Equivalent mutants (same behaviour, so no test can kill them) are
listed in bench/mutation_equivalents.py with the reason, shown in the table and left out of the rate.

It works in a scratch copy (nothing in the tree is touched), with the TensorFlow-free test modules in
MODULES: each mutant costs those tests' run time, so slow fixtures stay out. Not part of `make test`
(a full run took 6 minutes on a 2-core host); its smoke mode is (tests/project/test_mutation_bench.py).

    .venv/bin/python bench/mutation.py                 # every module
    .venv/bin/python bench/mutation.py --module runtimes/integrity.py
    .venv/bin/python bench/mutation.py --smoke         # one small module's first mutants: the harness works
    .venv/bin/python bench/mutation.py --planted       # re-plant the bugs of issue 37 and run the tests that must
    catch them

`--planted` applies each bug in PLANTED to a scratch copy (one at a time) and runs the tests named for
it, TensorFlow ones included: at least one must fail. It prints one line per bug with the tests that failed
(all of them, not just the first) and exits 1 if any bug went unnoticed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutation_equivalents import EQUIVALENT  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KILL_TARGET = 0.85
DETECTED = {"killed", "timeout", "segfault"}  # a failing, hanging or crashing test run all count as noticed

# module -> the fast (TensorFlow-free) test files that cover it; mutmut runs, per mutant, only the tests
# among these that executed the mutated function
MODULES: dict[str, list[str]] = {
    "runtimes/preprocess.py": ["tests/runtimes/test_preprocess.py"],
    "runtimes/quantization.py": ["tests/runtimes/test_quantization.py"],
    "runtimes/boxes.py": ["tests/runtimes/test_boxes.py"],
    "runtimes/contract.py": [
        "tests/runtimes/test_contract.py",
        "tests/runtimes/test_contract_validation.py",
        "tests/runtimes/test_contract_limits.py",
    ],
    "runtimes/integrity.py": ["tests/runtimes/test_integrity.py"],
    "runtimes/serving/rest.py": ["tests/runtimes/test_serve_requests.py"],
    "runtimes/serving/image_headers.py": ["tests/runtimes/test_serve_requests.py"],
}
# tests in those files that need TensorFlow or a trained model: not run against mutants (they run in make test)
DESELECT = ["tests/runtimes/test_preprocess.py::test_training_pipeline_and_runtime_give_the_same_tensor"]
# what the copied tests import besides the packages
TEST_SUPPORT = ["tests/conftest.py", "tests/helpers"]
SMOKE_MODULE = "runtimes/integrity.py"
SMOKE_MUTANTS = "runtimes.integrity.x_sha256_file__mutmut_*"


@dataclass
class ModuleResult:
    module: str
    statuses: Counter = field(default_factory=Counter)
    survivors: list[tuple[str, str]] = field(default_factory=list)  # (mutant name, diff)
    equivalent: list[tuple[str, str]] = field(default_factory=list)  # (mutant name, reason)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def killed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status in DETECTED)

    @property
    def rate(self) -> float:
        counted = self.total - len(self.equivalent)
        return self.killed / counted if counted else 1.0


def _scratch_copy(target: Path, modules: list[str], tests: list[str]) -> None:
    """The packages, the chosen tests and a pyproject whose [tool.mutmut] names them, in `target`."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("runtimes", "edgekit", "converters"):
        shutil.copytree(ROOT / package, target / package, ignore=ignore)
    for name in [*TEST_SUPPORT, *tests]:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, target / name, ignore=ignore)
        else:
            shutil.copy(ROOT / name, target / name)
    listing = lambda items: "[" + ", ".join(json.dumps(i) for i in items) + "]"  # noqa: E731
    deselect = [arg for test in DESELECT if test.split("::")[0] in tests for arg in ("--deselect", test)]
    (target / "pyproject.toml").write_text(f"""
[tool.mutmut]
source_paths = ["runtimes/"]
only_mutate = {listing(modules)}
also_copy = ["edgekit/", "converters/"]
pytest_add_cli_args_test_selection = {listing(sorted(set(tests)))}
pytest_add_cli_args = {listing(["-p", "no:cacheprovider", "-p", "no:xdist", "-q", "-x", *deselect])}

[tool.pytest.ini_options]
testpaths = ["tests"]
filterwarnings = ["ignore::DeprecationWarning"]
""")


def _mutmut(workdir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("EDGEKIT_REQUIRE_ALL", None)  # a mutant may make a test skip: that is the mutant's doing, not a gap
    return subprocess.run(
        [sys.executable, "-m", "mutmut", *args], cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env
    )


DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
print(json.dumps([get_diff_for_mutant(name, path=path) for path, name in json.load(sys.stdin)]))
"""


def _diffs(workdir: Path, mutants: list[tuple[str, str]]) -> list[str]:
    """Each (module, mutant name)'s diff, read by mutmut in one process (`mutmut show` starts one per mutant)."""
    if not mutants:
        return []
    run = subprocess.run(
        [sys.executable, "-c", DIFFS],
        cwd=workdir,
        input=json.dumps(mutants),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(run.stdout)


def _natural(name: str) -> tuple[str, int]:
    """x_f__mutmut_9 before x_f__mutmut_10."""
    stem, _, number = name.rpartition("_")
    return (stem, int(number)) if number.isdigit() else (name, 0)


def _changed_lines(diff: str) -> tuple[str, str]:
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return " ".join(removed), " ".join(added)


def _equivalence(module: str, diff: str) -> str | None:
    original, mutated = _changed_lines(diff)
    for known in EQUIVALENT:
        if known.module == module and known.original == original and known.mutated == mutated:
            return known.reason
    return None


def run_mutation(
    modules: list[str], *, mutants: str | None = None, timeout: float = 3600.0, keep: Path | None = None
) -> list[ModuleResult]:
    """Mutate `modules` (paths under the root) in a scratch copy; the per-module results."""
    from mutmut.stats import status_by_exit_code

    tests = sorted({t for m in modules for t in MODULES[m]})
    workdir = Path(tempfile.mkdtemp(prefix="edgekit-mutation-")) if keep is None else keep
    try:
        _scratch_copy(workdir, modules, tests)
        run = _mutmut(workdir, "run", *([mutants] if mutants else []), timeout=timeout)
        if run.returncode != 0:
            tail = (run.stderr or run.stdout).strip().splitlines()[-15:]
            raise RuntimeError("mutmut run failed:\n" + "\n".join(tail))
        results, undetected = [], []
        for module in modules:
            result = ModuleResult(module)
            meta = workdir / "mutants" / (module + ".meta")
            codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
            for name, code in sorted(codes.items(), key=lambda item: _natural(item[0])):
                if mutants and not re.fullmatch(mutants.replace(".", r"\.").replace("*", ".*"), name):
                    continue
                status = status_by_exit_code[code]
                result.statuses[status] += 1
                if status not in DETECTED:
                    undetected.append((module, name))
            results.append(result)
        by_module = {r.module: r for r in results}
        for (module, name), diff in zip(undetected, _diffs(workdir, undetected), strict=True):
            reason = _equivalence(module, diff)
            if reason:
                by_module[module].equivalent.append((name, reason))
            else:
                by_module[module].survivors.append((name, diff.strip()))
        return results
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def print_table(results: list[ModuleResult]) -> None:
    print(
        f"{'module':36} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} {'equivalent':>10} "
        f"{'kill rate':>9} "
        f"{'raw':>6}"
    )
    for r in results:
        survived = r.total - r.killed - len(r.equivalent)
        raw = r.killed / r.total if r.total else 1.0
        print(
            f"{r.module:36} {r.total:7d} {r.statuses['killed']:6d} {r.statuses['timeout']:7d} {survived:8d} "
            f"{len(r.equivalent):10d} {r.rate:9.1%} {raw:6.1%}{'' if r.rate >= KILL_TARGET else '  < 85%: MISS'}"
        )
    print("kill rate: (killed + timeout) / (mutants - equivalent); raw: (killed + timeout) / mutants")
    for r in results:
        for name, reason in r.equivalent:
            print(f"\nequivalent {name}: {reason}")
        for name, diff in r.survivors:
            print(f"\nsurvived {name}:\n{diff}")


# -- the planted bugs of issue 37: each must be caught by the named tests ----------------------------------------


@dataclass(frozen=True)
class PlantedBug:
    name: str
    path: str
    original: str
    planted: str
    tests: tuple[str, ...]


PLANTED = [
    PlantedBug(
        "bundle integrity hashes only the first MiB",
        "runtimes/integrity.py",
        'for chunk in iter(lambda: stream.read(_CHUNK), b""):\n            digest.update(chunk)',
        "digest.update(stream.read(_CHUNK))",
        (
            "tests/runtimes/test_integrity.py",
            "tests/integration/test_deploy.py::test_a_byte_flipped_past_the_first_mib_of_a_large_model_is_refused",
        ),
    ),
    PlantedBug(
        "int8 input rounding half up instead of half to even",
        "runtimes/quantization.py",
        "np.rint(scratch, out=scratch)",
        "np.floor(scratch + np.float32(0.5), out=scratch)",
        ("tests/runtimes/test_quantization.py",),
    ),
    PlantedBug(
        "the old one-pass quantize: times 1/scale, the zero point added before rounding",
        "runtimes/quantization.py",
        "    np.divide(x, np.float32(q.scale), out=scratch, dtype=np.float32)\n",
        "    old = EIGHT_BIT_DEPTHS.get(np.dtype(spec.dtype))\n"
        "    if old is not None and x.dtype == np.float32 and x.size and x.flags.c_contiguous:\n"
        "        cols = x.shape[-1] if x.ndim else 1\n"
        "        cv2.addWeighted(x.reshape(-1, cols), 1.0 / q.scale, x.reshape(-1, cols), 0.0, float(q.zero_point),\n"
        "                        dst=out.reshape(-1, cols), dtype=old)\n"
        "        return out\n"
        "    np.divide(x, np.float32(q.scale), out=scratch, dtype=np.float32)\n",
        (
            "tests/runtimes/test_quantization.py",
            "tests/converters/test_onnx.py::test_portable_int8_keeps_float_input_where_pixels_would_not_be_exact",
        ),
    ),
    PlantedBug(
        "letterbox offset of half a pixel in the numpy path (// 2 to / 2)",
        "runtimes/preprocess.py",
        "return BoxMapping(new_w / in_w, new_h / in_h, float((out_w - new_w) // 2), float((out_h - new_h) // 2))",
        "return BoxMapping(new_w / in_w, new_h / in_h, float((out_w - new_w) / 2), float((out_h - new_h) / 2))",
        ("tests/runtimes/test_preprocess.py",),
    ),
    PlantedBug(
        "distillation: each image gets its neighbour's teacher scores",
        "edgekit/training/soft_targets.py",
        "    return np.clip(scores.astype(np.float32), 0.0, 1.0)",
        "    return np.roll(np.clip(scores.astype(np.float32), 0.0, 1.0), 1, axis=0)",
        ("tests/edgekit/test_optimize.py::test_distillation_learns_from_a_keras_or_exported_teacher",),
    ),
    PlantedBug(
        "the contract's digest is not checked",
        "runtimes/contract.py",
        "        if digest is not None and digest != _digest(data):",
        "        if False:",
        ("tests/converters/test_fuzz.py",),
    ),
    PlantedBug(
        "NMS suppresses at the threshold too (>= for >)",
        "runtimes/boxes.py",
        "suppresses = box_iou(boxes, boxes) > iou_threshold",
        "suppresses = box_iou(boxes, boxes) >= iou_threshold",
        ("tests/runtimes/test_boxes.py",),
    ),
]


def run_planted(bugs: list[PlantedBug], timeout: float = 1800.0) -> list[tuple[PlantedBug, bool, str]]:
    """Each bug planted alone in a scratch copy of the tree, its tests run: (bug, caught, the last lines)."""
    outcomes = []
    for bug in bugs:
        with tempfile.TemporaryDirectory(prefix="edgekit-planted-") as folder:
            copy = Path(folder)
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "runs", ".venv", ".git", "mutants", "site")
            for item in ("runtimes", "edgekit", "converters", "tests", "scripts", "pyproject.toml"):
                source = ROOT / item
                (
                    shutil.copytree(source, copy / item, ignore=ignore)
                    if source.is_dir()
                    else shutil.copy(source, copy / item)
                )
            target = copy / bug.path
            text = target.read_text()
            if text.count(bug.original) != 1:
                outcomes.append((bug, False, f"the original text is not in {bug.path} exactly once: update PLANTED"))
                continue
            target.write_text(text.replace(bug.original, bug.planted))
            env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-rf",
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "no:xdist",
                    "--rootdir",
                    str(copy),
                    *bug.tests,
                ],
                cwd=copy,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
            lines = [line for line in run.stdout.strip().splitlines() if line.strip()]
            failed = sorted({line.split(" ")[1].split("[")[0] for line in lines if line.startswith("FAILED ")})
            summary = f"failed: {', '.join(failed)}" if failed else (lines[-1:] or ["(no output)"])[0]
            outcomes.append((bug, run.returncode == 1, summary))
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=sorted(MODULES), help="only these modules (repeatable)")
    parser.add_argument(
        "--smoke", action="store_true", help=f"{SMOKE_MODULE}'s sha256_file mutants only: the harness works"
    )
    parser.add_argument("--planted", action="store_true", help="re-plant issue 37's bugs; each must fail its tests")
    parser.add_argument("--keep", type=Path, help="work in this (empty) folder and keep it, to inspect mutants")
    args = parser.parse_args()
    started = time.monotonic()
    if args.planted:
        outcomes = run_planted(PLANTED)
        for bug, caught, last in outcomes:
            print(f"{'caught' if caught else 'MISSED':6}  {bug.name}  ({bug.path}; {', '.join(bug.tests)}): {last}")
        print(
            f"{sum(c for _, c, _ in outcomes)} of {len(outcomes)} planted bugs caught in "
            f"{time.monotonic() - started:.0f} s"
        )
        return 0 if all(caught for _, caught, _ in outcomes) else 1
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    modules = [SMOKE_MODULE] if args.smoke else (args.module or list(MODULES))
    results = run_mutation(modules, mutants=SMOKE_MUTANTS if args.smoke else None, keep=args.keep)
    print_table(results)
    print(
        f"\n{sum(r.total for r in results)} mutants in {time.monotonic() - started:.0f} s "
        f"({os.cpu_count()} cores; mutmut {_mutmut_version()})"
    )
    return 0 if all(r.rate >= KILL_TARGET for r in results) else 1


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


if __name__ == "__main__":
    sys.exit(main())
