"""Which operators of a full-integer TFLite file an accelerator's compiler maps, and which fall back to the CPU.

The compilers themselves (Coral's edgetpu_compiler, Hailo's Dataflow Compiler) install on their vendors'
machines only, so edgekit reads their published operator tables, kept in `data/accelerator_ops.json` with the
source and the date each was read, and says what the file would meet. A float tensor counts as a fallback too:
these chips run int8 only.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.quiet import quiet_native

TABLES = Path(__file__).resolve().parent / "data" / "accelerator_ops.json"


@dataclass(frozen=True)
class AcceleratorFit:
    """One accelerator against one file.

    Attributes:
        accelerator: The chip's name.
        mapped: Operators its compiler maps, with their counts.
        fallback: Operators that would run on the CPU, with their counts (a float operator counts).
        first_fallback: Where the Edge TPU compiler would cut the graph (it runs the rest on the CPU), or "".
        compile: The command a user runs on a machine with the compiler.
        source: Where the operator table came from, and when it was read.
    """

    accelerator: str
    mapped: dict[str, int]
    fallback: dict[str, int]
    first_fallback: str
    compile: str
    source: str

    @property
    def complete(self) -> bool:
        """True when every operator maps."""
        return not self.fallback

    def line(self) -> str:
        """One line for a report."""
        if self.complete:
            return f"{self.accelerator}: every operator maps ({sum(self.mapped.values())} ops); compile: {self.compile}"
        falls = ", ".join(f"{name} x{count}" for name, count in sorted(self.fallback.items()))
        cut = f"; the compiler cuts at {self.first_fallback}" if self.first_fallback else ""
        return f"{self.accelerator}: CPU fallback for {falls}{cut}; compile: {self.compile}"


@lru_cache(maxsize=1)
def tables() -> dict[str, dict[str, Any]]:
    """The operator tables, by accelerator key ("edgetpu", "hailo")."""
    return json.loads(TABLES.read_text(encoding="utf-8"))


def operators(path: str | Path) -> list[tuple[str, bool]]:
    """Each operator of a TFLite file in execution order, and whether it computes in float."""
    from runtimes.backends.tflite import interpreter_class

    with quiet_native("LiteRT"):
        interpreter = interpreter_class()[0](model_path=str(path))
    found = []
    for op in interpreter._get_ops_details():  # the interpreter's own op list (names and operand types)
        types = [*op.get("operand_types", []), *op.get("result_types", [])]
        found.append((op["op_name"], any(np.issubdtype(np.dtype(kind), np.floating) for kind in types)))
    return found


def accelerator_fit(path: str | Path, name: str | None = None) -> list[AcceleratorFit]:
    """How each accelerator in the tables would take the TFLite file at `path` (named `name` in the commands
    printed, when it is about to be moved there)."""
    ops = operators(path)
    fits = []
    for table in tables().values():
        supported = set(table["ops"])
        mapped, fallback, first = Counter(), Counter(), ""
        for op_name, is_float in ops:
            label = f"{op_name} (float)" if is_float else op_name
            if op_name in supported and not is_float and not (first and table["cut_at_first"]):
                mapped[op_name] += 1
            else:
                fallback[label] += 1
                first = first or label
        fits.append(
            AcceleratorFit(
                table["name"],
                dict(mapped),
                dict(fallback),
                first if table["cut_at_first"] and fallback else "",
                table["compile"].format(path=name or Path(path).name),
                f"{table['source']}, read {table['retrieved']}",
            )
        )
    return fits
