"""What makes an ONNX QDQ file full integer: every operator between a DequantizeLinear and a QuantizeLinear, so
that an integer runtime (ONNX Runtime's fused kernels, Qualcomm's QNN, an NPU's compiler) runs all of it on int8.
An operator whose input or output is a float tensor outside those pairs runs in float."""

from __future__ import annotations

from typing import Any

from runtimes.deps import require

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


FLOAT_TYPES = (1, 10, 11, 16)  # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16
FUSED = ("Relu", "Clip")  # activations an integer kernel applies as its output's clamp
BIASED = ("MatMul", "Conv")  # products whose constant bias add an integer kernel folds in


def float_nodes(proto: Any) -> list[str]:
    """The nodes of `proto` (an onnx.ModelProto) that compute on float activations: a float input not from a
    DequantizeLinear (initializers and constants aside) or a float output that reaches anything but a
    QuantizeLinear. Integer tensors (shapes, indices) are not activations."""
    onnx = require("onnx", extra="onnx")
    graph = onnx.shape_inference.infer_shapes(proto).graph
    types = {value.name: value.type.tensor_type.elem_type for value in (*graph.value_info, *graph.input, *graph.output)}
    constant = {init.name for init in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {value.name for value in graph.output}

    def activation(name: str) -> bool:
        return bool(name) and name not in constant and types.get(name, 1) in FLOAT_TYPES

    def quantized(name: str) -> bool:
        """Every use of `name` quantizes it, directly or through a fused activation that does."""
        users = consumers.get(name, [])
        return (
            name not in outputs
            and bool(users)
            and all(
                user.op_type == "QuantizeLinear" or (user.op_type in FUSED and all(map(quantized, user.output)))
                for user in users
            )
        )

    def dequantized(name: str) -> bool:
        maker = producers.get(name)
        return maker is not None and (maker.op_type == "DequantizeLinear" or fused(maker))

    def fused(node: Any) -> bool:
        """A Relu or Clip that integer kernels fold into the operator before it (ONNX Runtime, QNN, TensorRT), or
        a constant bias added to a MatMul's product (fused into one Gemm)."""
        if not all(map(quantized, node.output)) or node.input[0] not in producers:
            return False
        if node.op_type == "Add":
            before = [producers.get(name) for name in node.input if name not in constant]
            return len(before) == 1 and getattr(before[0], "op_type", "") in BIASED
        return node.op_type in FUSED

    found = []
    for node in graph.node:
        if node.op_type in QDQ_OPS or node.op_type == "Constant" or fused(node):
            continue
        loose_input = any(activation(name) and not dequantized(name) for name in node.input)
        loose_output = any(
            activation(name) and not quantized(name) and not any(map(fused, consumers.get(name, [])))
            for name in node.output
        )
        if loose_input or loose_output:
            found.append(f"{node.op_type} {node.name}")
    return found
