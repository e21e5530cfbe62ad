"""What every converter shares: quantization modes, configs, artifacts, the registry."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from converters.errors import CalibrationError, ConversionError, UnknownTargetError  # noqa: F401 (re-exported)
from runtimes.contract import ModelContract
from runtimes.registry import Registry


class Quantization(str, Enum):
    FLOAT32 = "fp32"
    FLOAT16 = "fp16"
    DYNAMIC = "dynamic"
    INT8 = "int8"


IO_DTYPES = ("float32", "int8", "uint8")


SEGMENTATION_OUTPUTS = ("scores", "category_mask")


@dataclass(frozen=True)
class ConversionConfig:
    """Options for one conversion. `io_dtype` applies to full-integer models only."""

    quantization: Quantization = Quantization.FLOAT32
    io_dtype: str = "float32"
    calibration_samples: int = 100
    # int8: keep the graph scopes in `float_scopes` in float (the task's export policy, set by edgekit's host task:
    # a detector's box sides and decoding); False gives full integer
    mixed_precision: bool = True
    float_scopes: tuple[str, ...] = ()
    # int8 for accelerators (Coral Edge TPU, Hailo, NPUs): no float operator anywhere, batch 1 and static shapes,
    # verified on the file; a detector's peaks and boxes are decoded in runtimes (the `maps` layout)
    full_integer: bool = False
    # a segmentation model's output: "scores" (per class, resized to the source then argmax in runtimes) or
    # "category_mask" (the argmax in the graph: one integer per pixel, less to read back and map)
    segmentation_output: str = "scores"

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "quantization", Quantization(self.quantization))
        except ValueError:
            valid = ", ".join(q.value for q in Quantization)
            raise ValueError(f"invalid quantization {self.quantization!r}; valid: {valid}") from None
        if self.io_dtype not in IO_DTYPES:
            raise ValueError(f"invalid io_dtype {self.io_dtype!r}; valid: {', '.join(IO_DTYPES)}")
        if self.io_dtype != "float32" and self.quantization is not Quantization.INT8:
            raise ValueError(
                f"io_dtype {self.io_dtype!r} needs full-integer quantization (int8), not {self.quantization.value!r}"
            )
        if self.calibration_samples < 1:
            raise ValueError(f"calibration_samples must be >= 1, got {self.calibration_samples}")
        if self.segmentation_output not in SEGMENTATION_OUTPUTS:
            valid = ", ".join(SEGMENTATION_OUTPUTS)
            raise ValueError(f"invalid segmentation_output {self.segmentation_output!r}; valid: {valid}")
        if self.full_integer and (self.quantization is not Quantization.INT8 or self.mixed_precision):
            raise ValueError("full_integer needs int8 quantization without mixed precision")

    @property
    def needs_calibration(self) -> bool:
        return self.quantization is Quantization.INT8


@dataclass(frozen=True)
class Artifact:
    """A converted model on disk and how it was made."""

    path: Path
    target: str
    config: ConversionConfig
    contract: ModelContract
    size_bytes: int
    seconds: float
    notes: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()  # which well-known readers take the file as is, and why not where not


ConvertFn = Callable[..., Artifact]


@dataclass(frozen=True)
class ConverterEntry:
    """A target format: its file suffix, its named modes and its convert function.

    Every convert function has the same shape:
    ``convert(model, output_path, config, *, contract, calibration=None) -> Artifact``.
    """

    name: str
    suffix: str
    modes: Mapping[str, ConversionConfig]
    convert: ConvertFn = field(repr=False)
    fallbacks: Mapping[str, str] = field(default_factory=dict)  # mode -> next safer mode
    layout: Callable[[Path, str, str, ConversionConfig], Path] | None = field(default=None, repr=False)

    def artifact_path(self, out_dir: Path, name: str, mode: str, config: ConversionConfig) -> Path:
        """Where an export writes this format: `<out>/<name>_<mode><suffix>`, or the format's own layout
        (a SavedModel's `<out>/<name>/<version>/`, as TensorFlow Serving reads it)."""
        if self.layout is not None:
            return self.layout(Path(out_dir), name, mode, config)
        return Path(out_dir) / f"{name}_{mode}{self.suffix}"

    def fallback_chain(self, mode: str) -> list[str]:
        """`mode` followed by each safer mode to try when it fails the accuracy gate."""
        chain = [mode]
        while chain[-1] in self.fallbacks and self.fallbacks[chain[-1]] not in chain:
            chain.append(self.fallbacks[chain[-1]])
        return chain


CONVERTERS: Registry[ConverterEntry] = Registry("converter")


def register_converter(
    name: str,
    suffix: str,
    modes: Mapping[str, ConversionConfig],
    fallbacks: Mapping[str, str] | None = None,
    layout: Callable[[Path, str, str, ConversionConfig], Path] | None = None,
) -> Callable[[ConvertFn], ConvertFn]:
    """Decorator: register `convert` as the converter for format `name` (`layout`: see ConverterEntry.artifact_path)."""
    unknown = {m for pair in (fallbacks or {}).items() for m in pair} - set(modes)
    if unknown:
        raise ValueError(f"fallbacks of {name!r} name unknown modes {sorted(unknown)}")

    def decorator(fn: ConvertFn) -> ConvertFn:
        CONVERTERS.register(name)(ConverterEntry(name, suffix, dict(modes), fn, dict(fallbacks or {}), layout))
        return fn

    return decorator


def all_targets() -> list[str]:
    return [f"{name}:{mode}" for name, entry in CONVERTERS.items() for mode in entry.modes]


def parse_target(target: str) -> tuple[ConverterEntry, str, ConversionConfig]:
    """'tflite:int8' -> (converter, mode name, config); unknown parts list the valid targets."""
    name, _, mode = target.partition(":")
    if name not in CONVERTERS or (mode and mode not in CONVERTERS.get(name).modes):
        raise UnknownTargetError(f"unknown target {target!r}; valid targets: {', '.join(all_targets())}")
    entry = CONVERTERS.get(name)
    mode = mode or next(iter(entry.modes))
    return entry, mode, entry.modes[mode]


def needing_calibration(targets: Sequence[str]) -> list[str]:
    """The targets among `targets` whose mode quantizes activations (full integer): they need calibration data."""
    return [target for target in targets if parse_target(target)[2].needs_calibration]


def current_umask() -> int:
    """The process umask, read without changing it (Linux: /proc; elsewhere set and restored at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ordinary_permissions(path: str | Path) -> None:
    """Give `path` (recursively for a folder) the modes a plain open()/mkdir() would under the umask.

    Temporary files and folders are private (0600/0700) and some tools copy those modes into
    what they save; an artifact must be readable by whoever the caller's umask allows.
    """
    path = Path(path)
    mask = current_umask()
    items = [path, *path.rglob("*")] if path.is_dir() and not path.is_symlink() else [path]
    for item in items:
        if item.is_symlink():
            continue
        if item.is_dir():
            item.chmod(0o777 & ~mask)
        else:
            executable = item.stat().st_mode & 0o111
            item.chmod((0o777 if executable else 0o666) & ~mask)


def replace_folder(staged: Path, target: Path) -> None:
    """Move a finished package folder into place; an old one is swapped out, never half-overwritten."""
    import shutil

    if target.exists():
        trash = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, trash)
        os.replace(staged, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staged, target)


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    An interrupted or failed conversion therefore never leaves a file that looks like a model.
    The file is created as open() would create it (0666 less the umask), not privately.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.{os.urandom(4).hex()}.partial"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def in_float_scopes(name: str, scopes: tuple[str, ...]) -> bool:
    """Whether graph node or tensor `name` comes from a layer in `scopes` (Keras adds _1, _2 ... to layer names)."""
    return any(re.search(rf"(^|/){re.escape(scope)}(_\w+)?/", name) for scope in scopes)


MIXED_PRECISION = "mixed precision:"


AWARE_TRAINING = "aware_training"  # a contract's quantization key: the model was trained quantization-aware


def mixed_precision_note(kept: int, scopes: tuple[str, ...]) -> str:
    return (
        f"{MIXED_PRECISION} {kept} op(s) of {', '.join(scopes)} kept in float32, the rest int8 (the task measured "
        "these layers to lose accuracy in int8; options mixed_precision=False gives full integer)"
    )


def describe(contract: ModelContract, config: ConversionConfig, **extra: Any) -> ModelContract:
    """The contract as embedded in an artifact: with this artifact's quantization recorded (and, for a model
    trained quantization-aware, that record)."""
    aware = {AWARE_TRAINING: contract.quantization[AWARE_TRAINING]} if AWARE_TRAINING in contract.quantization else {}
    return contract.with_quantization(mode=config.quantization.value, io_dtype=config.io_dtype, **aware, **extra)
