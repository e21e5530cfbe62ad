"""What a bench recorded: one JSON file per bench under bench/records/, and the benchmarks page rendered from them.

A bench calls `write_record` once at the end of a full run (never in smoke mode): its figures, each with its target
and, where it measured several times, its spread; the date, the commit and the host (CPU model, cores, the ISA
flags that move integer and float kernels). docs/benchmarks.md is `render_page`'s output (scripts/docs_pages.py),
so the docs quote no figure by hand.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORDS = Path(__file__).resolve().parent / "records"
ROOT = Path(__file__).resolve().parents[1]
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "fma", "asimddp", "i8mm", "sve")


@dataclass(frozen=True)
class Figure:
    """One measured figure: its value, unit, target (with "<=" or ">="), and the runs' spread when repeated."""

    name: str
    value: float
    unit: str = ""
    target: str = ""  # e.g. "<= 1.05"; empty: reported, not gated
    runs: tuple[float, ...] = ()

    @property
    def passed(self) -> bool | None:
        if not self.target:
            return None
        op, bound = self.target.split()
        compare = {"<=": float.__le__, ">=": float.__ge__, "<": float.__lt__, ">": float.__gt__}[op]
        return compare(float(self.value), float(bound))


@dataclass(frozen=True)
class Record:
    bench: str
    date: str
    commit: str
    host: dict[str, Any]
    figures: tuple[Figure, ...]
    command: str = ""
    notes: tuple[str, ...] = field(default=())


def host() -> dict[str, Any]:
    """The CPU model, its cores and the ISA flags that matter to int8 and float kernels."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "isa": [flag for flag in ISA_FLAGS if flag in flags],
        "machine": platform.machine(),
    }


def commit() -> str:
    """The short commit the bench ran on, with "+changes" when the tree differed from it."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return (done.stdout.strip() or "unknown") + ("+changes" if changed.stdout.strip() else "")


def write_record(bench: str, figures: list[Figure], command: str = "", notes: list[str] | None = None) -> Path:
    """Write bench/records/<bench>.json for this run (replacing the last one); returns its path."""
    record = Record(
        bench,
        datetime.date.today().isoformat(),
        commit(),
        host(),
        tuple(figures),
        command,
        tuple(notes or ()),
    )
    RECORDS.mkdir(exist_ok=True)
    path = RECORDS / f"{bench}.json"
    path.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    return path


def read_records(folder: Path = RECORDS) -> list[Record]:
    records = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        figures = tuple(Figure(**{**f, "runs": tuple(f.get("runs", ()))}) for f in data.pop("figures"))
        records.append(Record(**{**data, "figures": figures, "notes": tuple(data.get("notes", ()))}))
    return records


def _spread(figure: Figure) -> str:
    if len(figure.runs) < 2:
        return "one run"
    return f"{min(figure.runs):g} to {max(figure.runs):g} over {len(figure.runs)} runs"


def render_page(folder: Path = RECORDS) -> str:
    """docs/benchmarks.md: one dated table per bench record, with its host and commit."""
    benches = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if not p.stem.startswith("_"))
    benches = [b for b in benches if b not in ("records", "mutation_equivalents")]
    records = {record.bench: record for record in read_records(folder)}
    parts = [
        "# Benchmarks\n",
        "Every figure here is what a bench under `bench/` printed and recorded (`bench/records/*.json`), with the "
        "date, the commit and the host it ran on; this page is rendered from those records "
        "(`scripts/docs_pages.py`). Figures from shared 2-core hosts move with other tenants' load: compare "
        "spreads, and rerun a bench on your own hardware (`.venv/bin/python bench/NAME.py`).\n",
    ]
    for bench in benches:
        record = records.get(bench)
        parts.append(f"## {bench}\n")
        if record is None:
            parts.append(f"No record yet: run `.venv/bin/python bench/{bench}.py`.\n")
            continue
        isa = ", ".join(record.host.get("isa", [])) or "none of " + ", ".join(ISA_FLAGS[:3])
        parts.append(
            f"{record.date}, commit `{record.commit}`, {record.host.get('cpu')} ({record.host.get('cores')} cores; "
            f"{isa})" + (f"; `{record.command}`" if record.command else "") + "\n"
        )
        parts.append("| Figure | Value | Target | Spread |\n|---|---|---|---|")
        for figure in record.figures:
            verdict = {True: " (met)", False: " (missed)", None: ""}[figure.passed]
            parts.append(
                f"| {figure.name} | {figure.value:g} {figure.unit} | {figure.target or '-'}{verdict} | "
                f"{_spread(figure)} |"
            )
        parts.append("")
        parts.extend(f"- {note}" for note in record.notes)
        if record.notes:
            parts.append("")
    return "\n".join(parts)


def report_figures(bench: str, figures: list[Figure], command: str, smoke: bool) -> int:
    """Print every figure; in a full run, write the bench's record and say which targets missed. The exit code: 1
    on a miss, else 0 (a smoke run checks the harness, not the targets)."""
    for figure in figures:
        print(
            f"{figure.name}: {figure.value:g} {figure.unit}" + (f" (target {figure.target})" if figure.target else "")
        )
    if smoke:
        print(f"smoke: {len(figures)} figures")
        return 0
    write_record(bench, figures, command=command)
    misses = [f"{f.name} {f.value:g} (target {f.target})" for f in figures if f.passed is False]
    print("misses: " + "; ".join(misses) if misses else "every target met")
    return 1 if misses else 0
