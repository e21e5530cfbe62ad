"""`open_model` (`runtimes.open`, `edgekit.load`): a model file on its backend with its contract: edgekit's own,
else the file's standard metadata, else the one given."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from runtimes.backends.base import open_runtime
from runtimes.contract import ModelContract, Preprocessing
from runtimes.errors import ContractError
from runtimes.model import Model

log = logging.getLogger("runtimes.model")


def open_model(
    path: str | Path,
    *,
    preprocessing: Preprocessing | None = None,
    labels: Sequence[str] | None = None,
    backend: str | None = None,
    **options: Any,
) -> Model:
    """Open a model file; its embedded contract is used unless it has none.

    Passing `preprocessing` or `labels` that contradict an embedded contract is an
    error: the model would run with preprocessing it was not trained for.
    """
    runtime = open_runtime(path, backend=backend, **options)
    try:
        raw = runtime.embedded_contract()
        contract = ModelContract.from_json(raw) if raw is not None else None
        sources: dict[str, str] = {}
        if contract is None and preprocessing is None:  # a third-party file: its standard metadata, if any
            derived = runtime.standard_contract()
            if derived is not None:
                contract, sources = derived
                if labels is not None:
                    contract = ModelContract(contract.preprocessing, tuple(labels), model_name=contract.model_name)
                    sources["labels"] = "given when loading"
        if contract is None:
            if preprocessing is not None:
                n = runtime.output_specs[0].shape[-1]
                contract = ModelContract(preprocessing, tuple(labels) if labels else tuple(str(i) for i in range(n)))
            else:
                log.info("%s has no embedded contract: only run() works until one is given", path)
        else:
            if preprocessing is not None and preprocessing != contract.preprocessing:
                raise ContractError(
                    f"{Path(path).name} embeds preprocessing {contract.preprocessing.to_dict()} but "
                    f"{preprocessing.to_dict()} was passed; drop the argument to use the embedded one"
                )
            if labels is not None and tuple(labels) != contract.labels:
                raise ContractError(
                    f"{Path(path).name} embeds labels {list(contract.labels)} but {list(labels)} were passed"
                )
        return Model(runtime, contract, sources)
    except BaseException:
        runtime.close()
        raise
