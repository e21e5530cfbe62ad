"""A quantization-aware model's ONNX int8 file: its activations' QuantizeLinear/DequantizeLinear pairs come from
the fake-quant ops (Keras' ONNX export carries their ranges), and its weights, already on the int8 grid training
put them on, are stored as integers with a DequantizeLinear each, per output channel. ONNX Runtime fuses the
pairs into integer kernels; no calibration data is read and no range is recomputed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtimes.deps import require

WEIGHTED_OPS = {"Conv": 1, "ConvTranspose": 1, "MatMul": 1, "Gemm": 1}  # op -> its weight input


def aware_qdq(source: Path, target: Path) -> int:
    """Write `source` with every float weight of a Conv, MatMul or Gemm stored as uint8 (zero point 128, symmetric:
    U8U8 products, which do not saturate on x86 CPUs without VNNI) behind a DequantizeLinear; how many."""
    onnx = require("onnx", extra="onnx")
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    added, count = [], 0
    for node in graph.node:
        index = WEIGHTED_OPS.get(node.op_type)
        if index is None or len(node.input) <= index or node.input[index] not in weights:
            continue
        name = node.input[index]
        values = numpy_helper.to_array(weights[name]).astype(np.float64)
        axis = 0 if node.op_type in ("Conv", "ConvTranspose") else values.ndim - 1  # output channels
        scale = _scales(values, axis, node, model)
        shape = [1] * values.ndim
        shape[axis] = -1
        quantized = np.clip(np.rint(values / scale.reshape(shape)), -127, 127).astype(np.int16) + 128
        graph.initializer.extend(
            [
                numpy_helper.from_array(quantized.astype(np.uint8), f"{name}_quantized"),
                numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"),
                numpy_helper.from_array(np.full(scale.shape, 128, np.uint8), f"{name}_zero_point"),
            ]
        )
        attributes = {"axis": axis} if scale.size > 1 else {}
        added.append(
            helper.make_node(
                "DequantizeLinear",
                [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"],
                [f"{name}_dequantized"],
                **attributes,
            )
        )
        node.input[index] = f"{name}_dequantized"
        count += 1
    graph.node.extend(added)
    _requantize_kept(graph)
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:  # the float weights the integer ones replace
        graph.initializer.remove(init)
    _sort(graph)
    onnx.save(model, str(target))
    return count


KEPT_SCALE_OPS = (
    *("Resize", "MaxPool", "GlobalMaxPool"),
    *("Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"),
)


def _requantize_kept(graph: Any) -> int:
    """After each operator that keeps its input's scale (nearest resize, max pooling, layout ops: QAT gives them no
    range of their own, as TFLite requires), a QuantizeLinear/DequantizeLinear pair at its input's scale and zero
    point, so that it too sits between integer tensors (its values are already on that grid: no value moves).
    Returns how many pairs were added."""
    from onnx import helper

    makers = {output: node for node in graph.node for output in node.output}
    scalars = {init.name for init in graph.initializer if int(np.prod(init.dims)) == 1}
    outputs = {value.name for value in graph.output}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    added = []
    for node in list(graph.node):
        source = makers.get(node.input[0]) if node.input else None
        if node.op_type not in KEPT_SCALE_OPS or source is None or source.op_type != "DequantizeLinear":
            continue
        if source.input[1] not in scalars:
            continue  # a per-channel (weight) dequantization: not an activation
        name = node.output[0]
        if name not in outputs and all(user.op_type == "QuantizeLinear" for user in users.get(name, [])):
            continue
        float_name = f"{name}_kept"
        node.output[0] = float_name
        scale_zero = list(source.input[1:3])
        pair = [
            helper.make_node("QuantizeLinear", [float_name, *scale_zero], [f"{name}_requantized"]),
            helper.make_node("DequantizeLinear", [f"{name}_requantized", *scale_zero], [name]),
        ]
        makers[name] = pair[1]  # an operator after this one reads a dequantized tensor now (graph order: inputs first)
        added += pair
    graph.node.extend(added)
    return len(added) // 2


def _scales(values: np.ndarray, axis: int, node: Any, model: Any) -> np.ndarray:
    """Per output channel (per tensor for MatMul and Gemm, as QAT simulated a Dense kernel): max |w| / 127."""
    if node.op_type in ("MatMul", "Gemm"):
        return np.array([max(float(np.abs(values).max()), 1e-12) / 127.0])
    moved = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
    return np.maximum(np.abs(moved).max(axis=1), 1e-12) / 127.0


def _sort(graph: Any) -> None:
    """The graph's nodes in an order where every input is produced before it is used (ONNX requires it)."""
    produced = {init.name for init in graph.initializer} | {value.name for value in graph.input}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [node for node in pending if all(not name or name in produced for name in node.input)]
        if not ready:  # a cycle cannot occur; leave the rest as it was
            ordered.extend(pending)
            break
        for node in ready:
            ordered.append(node)
            produced.update(node.output)
        pending = [node for node in pending if node not in ready]
    del graph.node[:]
    graph.node.extend(ordered)
