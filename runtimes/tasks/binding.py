"""What a task's decoder knows about the model it decodes for: given once, when the model loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtimes.contract import Preprocessing
from runtimes.errors import ContractError
from runtimes.tensors import TensorSpec


@dataclass(frozen=True)
class ModelInfo:
    """A loaded model as a task sees it: its file name (for messages), outputs, labels and contract fields."""

    name: str
    output_specs: tuple[TensorSpec, ...]
    labels: tuple[str, ...]
    head: dict[str, Any] | None  # the contract's head; None when the model carries no contract
    preprocessing: Preprocessing | None

    def require_preprocessing(self) -> Preprocessing:
        if self.preprocessing is None:
            raise ContractError(
                f"{self.name} carries no preprocessing contract; pass one when loading: "
                "edgekit.load(path, preprocessing=Preprocessing(...), labels=[...])"
            )
        return self.preprocessing


def where(record: dict[str, Any]) -> str:
    """A JSON result's origin as its text line starts: the file, or the source and the frame index."""
    return f"{record['source']} #{record['frame']}" if "frame" in record else str(record["source"])
