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
    contract: ModelContract | str | Path | None = None,
    **options: Any,
) -> Model:
    """Open a model file; its embedded contract is used unless it has none.

    Passing `preprocessing` or `labels` that contradict an embedded contract is an
    error: the model would run with preprocessing it was not trained for.

    Args:
        path: a .tflite, .onnx or .mlpackage file (a SavedModel folder where TensorFlow is installed).
        preprocessing: the contract for a file that carries none (a third-party model); a file's own wins.
        labels: the labels for a file that carries none.
        backend: force a backend by name ("tflite", "onnxruntime", "coreml", "reference"); None: by suffix.
        contract: the whole contract for a file that carries none: a `ModelContract`, a contract JSON file, or
            the name of one edgekit ships (`BUNDLED_CONTRACTS`: "mediapipe_face_detection_short_range").
        **options: the backend's: `num_threads`; TFLite `delegates` ("edgetpu", "gpu", "xnnpack", a library
            path); ONNX Runtime `providers` ("cuda", "tensorrt", "openvino", "coreml", "cpu") and
            `allow_fallback`; CoreML `compute_units`.

    Returns:
        A `Model`: `predict`, `stream`, `run`; close it (or use `with`) to release the runtime.

    Raises:
        ModelLoadError: a missing, truncated or unreadable file.
        BackendUnavailableError: the backend's package is not installed (the error names the extra).
        ContractError: `preprocessing` or `labels` that contradict the file's own contract.

    Examples:
        >>> with open_model("small_cnn_int8.tflite") as model:
        ...     print(model.predict("photo.jpg").label)
    """
    given = given_contract(contract)
    runtime = open_runtime(path, backend=backend, **options)
    try:
        raw = runtime.embedded_contract()
        contract = ModelContract.from_json(raw) if raw is not None else None
        sources: dict[str, str] = {}
        if given is not None:
            if contract is not None and contract != given:
                raise ContractError(f"{Path(path).name} embeds its own contract; drop contract= to use it")
            contract, sources = given, {"contract": "given when loading"}
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


BUNDLED = Path(__file__).resolve().parent / "data"
BUNDLED_CONTRACTS = ("mediapipe_face_detection_short_range",)  # third-party models edgekit has a contract for


def given_contract(value: ModelContract | str | Path | None) -> ModelContract | None:
    """`contract=`'s value as a `ModelContract`: as given, read from a JSON file, or one edgekit ships by name."""
    if value is None or isinstance(value, ModelContract):
        return value
    if str(value) in BUNDLED_CONTRACTS:
        return ModelContract.from_json((BUNDLED / f"{value}.json").read_text(encoding="utf-8"))
    path = Path(value)
    if not path.is_file():
        raise ContractError(
            f"contract {str(value)!r} is neither a contract JSON file nor one edgekit ships "
            f"({', '.join(BUNDLED_CONTRACTS)})"
        )
    return ModelContract.from_json(path.read_text(encoding="utf-8"))
