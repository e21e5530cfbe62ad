"""What a classifier's contract says about its outputs: one score per label, no head fields."""

from __future__ import annotations

from typing import Any, Sequence

from runtimes.errors import ContractError
from runtimes.tensors import TensorSpec


class ClassificationHeadSchema:
    """The classification task's contract fields: none; one (batch, labels) score output."""

    name = "classification"
    scores_per_label = True  # the output is one score per label (CoreML's classifier, TFLite's axis labels)

    def check(self, head: dict[str, Any]) -> None:
        if head:
            raise ContractError(f"a classification contract has no head fields; got {sorted(head)}")

    def standard_outputs(self, specs: Sequence[TensorSpec], head: dict[str, Any] | None = None) -> tuple[str, ...]:
        """Each output's role in standard metadata, in the file's order."""
        return ("scores",)

    def describe(self, head: dict[str, Any]) -> list[str]:
        return ["outputs: one score per label"]
