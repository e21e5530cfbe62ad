"""`edgekit info`: what travels inside a model: contract, labels, tensors, quantization."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "print a model's embedded contract and labels"
DESCRIPTION = "Shows what travels inside MODEL: labels, preprocessing, quantization, tensors."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="model file (.tflite, .keras, ...)")
    parser.add_argument("--json", action="store_true", help="print the contract as JSON")
    parser.add_argument(
        "--contract", default=None, metavar="JSON|NAME", help="the contract of a file that carries none (as predict's)"
    )


def run(args: argparse.Namespace) -> int:
    if args.model.suffix == ".keras":
        from edgekit.keras_io import read_keras_contract

        contract, tensors, runs, sources = read_keras_contract(args.model), [], "yes (Keras)", {}
    else:
        from runtimes.loading import open_model

        with open_model(args.model, contract=args.contract) as model:
            contract, sources = model.contract, model.contract_sources
            tensors = [("input", spec) for spec in model.runtime.input_specs] + [
                ("output", spec) for spec in model.runtime.output_specs
            ]
            runs = f"yes ({model.backend})" if model.can_run else f"no: {model.runtime.unavailable_reason}"
    if args.json:
        print(json.dumps(contract.to_dict() if contract else None, indent=2))
        return 0
    from runtimes.backends.base import artifact_size
    from runtimes.integrity import sha256_file

    print(f"model:   {args.model} ({artifact_size(args.model) / 1024:.1f} kB)")
    print(f"sha256:  {sha256_file(args.model)}")
    print(f"runs here: {runs}")
    for role, spec in tensors:
        quant = (
            f", quantized scale={spec.quantization.scale:.6g} zero_point={spec.quantization.zero_point}"
            if spec.quantization
            else ""
        )
        print(f"{role + ':':8} {spec.name} {list(spec.shape)} {spec.dtype}{quant}")
    if contract is None:
        print("contract: none embedded (pass preprocessing= and labels= when loading)")
        return 0
    pre = contract.preprocessing
    scaling = f"x * {pre.scale:.6g} + {pre.offset:.6g}"
    if pre.mean is not None:
        scaling += f", then (x - {list(pre.mean)}) / {list(pre.std or ())}"
    print(f"name:    {contract.model_name} ({contract.task}), edgekit {contract.edgekit_version or '?'}")
    print(f"labels:  {', '.join(contract.labels)}")
    print(
        (
            f"input:   {pre.height}x{pre.width} {pre.color_order.value}, resize={pre.resize.value} "
            f"({pre.interpolation.value}), layout={pre.layout.value}"
        )
    )
    print(f"scaling: {scaling}")
    from runtimes.heads import head_schema

    for line in head_schema(contract.task).describe(contract.head):
        name, text = line.split(": ", 1)
        print(f"{name + ':':8} {text}")
    if contract.quantization:
        print(f"quantization: {', '.join(f'{k}={v}' for k, v in sorted(contract.quantization.items()))}")
    if sources:
        print("contract derived (no edgekit contract in the file):")
        for name, source in sorted(sources.items()):
            print(f"  {name + ':':14} {source}")
    if args.model.suffix == ".tflite" and contract.quantization.get("mode") == "int8":
        print_accelerators(args.model)
    return 0


def print_accelerators(path: Path) -> None:
    """Which operators Coral's and Hailo's compilers would map, and the command that compiles the file."""
    from converters.accelerators import accelerator_fit

    print("accelerators (from their compilers' published operator tables; the compilers are not run here):")
    for fit in accelerator_fit(path):
        print(f"  {fit.line()}")
