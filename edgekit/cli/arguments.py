"""Argument types and parsers the commands share."""

from __future__ import annotations

import argparse


def image_size(text: str) -> tuple[int, int]:
    parts = [int(p) for p in text.lower().replace("x", ",").split(",") if p]
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}; use 96 or 96x128 (height x width)")
    return (parts[0], parts[-1])


def target_list(values: list[str]) -> list[str]:
    return [t.strip() for value in values for t in value.split(",") if t.strip()]


def format_options(values: list[str]) -> dict[str, dict[str, object]]:
    """['coreml.compute_units=CPU_AND_NE', 'tflite.mixed_precision=false'] -> {'coreml': {...}, 'tflite': {...:
    False}}."""
    options: dict[str, dict[str, object]] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        fmt, dot, field_name = key.partition(".")
        if not (sep and dot and fmt and field_name):
            from edgekit.errors import ExportError

            raise ExportError(f"invalid --option {value!r}; use FORMAT.KEY=VALUE, e.g. coreml.compute_units=CPU_AND_NE")
        flags = {"true": True, "false": False}
        options.setdefault(fmt, {})[field_name] = int(raw) if raw.isdigit() else flags.get(raw.lower(), raw)
    return options
