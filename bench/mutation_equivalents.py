"""bench/mutation.py's notes: the mutants no test can kill, because they do not change what the code does.

Each is named by its module, the original line and the mutated line (as mutmut's diff shows them, stripped), with
the reason it is equivalent. Most are in speed paths whose alternatives give the same values by design (a flag that
only picks a faster kernel, a copy instead of an in-place write, a swap before or after a resize that commutes with
it), or in numpy and OpenCV spellings that mean the same (reshape(-2), sort kind case, beta=None). A mutant listed
here that a later change makes killable shows up as killed; one that changes its line drops out of this list and
shows up as a survivor to look at.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Equivalent:
    """A mutant that cannot change behaviour: the original line, the mutated line, and why."""

    module: str
    original: str
    mutated: str
    reason: str


REASONS = {
    "inplace": (
        "whether the letterbox canvas is written in place or copied into: the same pixels, one copy more (no "
        "allocation either way: the copy's source is a reused buffer too)"
    ),
    "flag": (
        "on odd whole shrink factors INTER_NEAREST_EXACT gives INTER_LINEAR's pixels bit for bit "
        "(test_odd_whole_shrink_factors_take_the_exact_shortcut_and_match_bilinear): the flag is speed only"
    ),
    "reuse_default": "a default every caller passes explicitly, or buffers used once: the same values",
    "gray_swap": "swapping the channels of a gray image replicated to three channels changes nothing",
    "size": "image.size == 0 already refuses any zero side",
    "float32": "uint8 pixels times a float32 scale are float32 with or without dtype=",
    "together": "mean and std come together or not at all (Preprocessing refuses one alone): 'and' and 'or' agree",
    "reshape": (
        "numpy reads any negative size in reshape as 'the rest' (-2 acts as -1), and reshape(None) of 1-D "
        "scores is a no-op"
    ),
    "swap_order": (
        "the RGB/BGR swap before or after the resize: the two commute exactly (both per channel), only the cost differs"
    ),
    "arange": "normalize multiplies in float32 whatever the integer type of the 0..255 values",
    "columns": "one column instead of the last axis: the same elementwise pass",
    "beta": "OpenCV reads beta=None as 0",
    "stable": "numpy reads sort kinds case-insensitively",
    "int64": (
        "the kept indices are Python ints, int64 by default on the 64-bit platforms edgekit supports; never an "
        "empty list here (two or more candidates)"
    ),
    "single": "NMS of one candidate keeps it: the shortcut only saves the call",
    "depth_start": "the stack starts at level 1, so the running maximum is at least 1 either way",
    "typeerror": (
        "defensive: no JSON reaches a TypeError there (keys are strings; every field is checked with a "
        "ContractError first)"
    ),
    "1e30": "1e+30 and 1e30 are the same float",
    "zero": "0.0 * scale and 0.0 / scale are both 0.0 for the finite non-zero scales a contract allows",
    "slice": "a text of exactly one slice decodes the same whole or sliced",
    "three": "only `== 3` is asked of _depth: 0 and 1 both mean 'not one bare image'",
    "channels": "`channels not in (1, 3)` refuses channels == 0 whatever the first clause says",
    "find": "the search starts at byte 2, so find() never returns 0 or 1",
    "big": (
        "int.from_bytes reads big-endian by default on Python >= 3.11, where the bench runs (on 3.10 it would "
        "raise: killed there)"
    ),
    "loop": "past the end the loop reads empty chunks up to its cap and finds nothing: the same sizes",
    "body": "the parser reads at most 10 bytes of a chunk's body: a longer slice changes nothing",
    "mask": "the extra byte lands above the 14 bits the mask keeps",
}

EQUIVALENT: list[Equivalent] = [
    Equivalent(
        "runtimes/integrity.py",
        'for chunk in iter(lambda: stream.read(_CHUNK), b""):',
        'for chunk in iter(lambda: stream.read(None), b""):',
        "read(None) reads the whole file in one chunk: the same digest, only more memory at once",
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "whole = (in_w, in_h) == (factors[0] * width, factors[1] * height)",
        "whole = (in_w, in_h) == (factors[1] * width, factors[1] * height)",
        REASONS["flag"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "reuse: bool = False) -> tuple[list[Step], tuple[int, ...], bool]:",
        "reuse: bool = True) -> tuple[list[Step], tuple[int, ...], bool]:",
        REASONS["reuse_default"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        (
            "return [*steps, _convert_step(cv2.COLOR_GRAY2RGB, _buffer((*shape, 3), reuse))], (*shape, 3), False  # "
            "BGR "
            "alike"
        ),
        (
            "return [*steps, _convert_step(cv2.COLOR_GRAY2RGB, _buffer((*shape, 3), reuse))], (*shape, 3), True  # BGR "
            "alike"
        ),
        REASONS["gray_swap"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "window = reused[top : top + new_h, left : left + new_w] if reused is not None else None",
        "window = None",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "window = reused[top : top + new_h, left : left + new_w] if reused is not None else None",
        "window = reused[top : top + new_h, left : left + new_w] if (reused is not None) and False else None",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "window = window if _writes_into(window) else None",
        "window = None",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "window = window if _writes_into(window) else None",
        "window = window if (_writes_into(window)) and False else None",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "window = window if _writes_into(window) else None",
        "window = window if (_writes_into(window)) or True else None",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "window = window if _writes_into(window) else None",
        "window = window if _writes_into(None) else None",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "placed = bool(inner) and window is not None  # the last pass writes the canvas itself",
        "placed = None  # the last pass writes the canvas itself",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "placed = bool(inner) and window is not None  # the last pass writes the canvas itself",
        "placed = bool(None) and window is not None  # the last pass writes the canvas itself",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "steps.append(_resize_step((width, height), _bilinear_flag(in_w, in_h, width, height), buffer))",
        "steps.append(_resize_step((width, height), None, buffer))",
        REASONS["flag"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "if window is None or window.size == 0:",
        "if window is None or window.size != 0:",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "if window is None or window.size == 0:",
        "if window is None or window.size == 1:",
        REASONS["inplace"],
    ),
    Equivalent("runtimes/preprocess.py", "return False", "return True", REASONS["inplace"]),
    Equivalent(
        "runtimes/preprocess.py",
        "probe = np.zeros((1, 1, window.shape[2]), np.uint8)",
        "probe = np.zeros((1, 1, window.shape[2]), None)",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "probe = np.zeros((1, 1, window.shape[2]), np.uint8)",
        "probe = np.zeros((1, 1, window.shape[2]), )",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "probe = np.zeros((1, 1, window.shape[2]), np.uint8)",
        "probe = np.zeros((2, 1, window.shape[2]), np.uint8)",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "probe = np.zeros((1, 1, window.shape[2]), np.uint8)",
        "probe = np.zeros((1, 2, window.shape[2]), np.uint8)",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "result = cv2.resize(probe, (window.shape[1], window.shape[0]), dst=window, interpolation=cv2.INTER_NEAREST)",
        "result = None",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "result = cv2.resize(probe, (window.shape[1], window.shape[0]), dst=window, interpolation=cv2.INTER_NEAREST)",
        "result = cv2.resize(probe, (window.shape[1], window.shape[0]), dst=None, interpolation=cv2.INTER_NEAREST)",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "result = cv2.resize(probe, (window.shape[1], window.shape[0]), dst=window, interpolation=cv2.INTER_NEAREST)",
        "result = cv2.resize(probe, (window.shape[1], window.shape[0]), dst=window, interpolation=None)",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "result = cv2.resize(probe, (window.shape[1], window.shape[0]), dst=window, interpolation=cv2.INTER_NEAREST)",
        "result = cv2.resize(probe, (window.shape[1], window.shape[0]), interpolation=cv2.INTER_NEAREST)",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "result = cv2.resize(probe, (window.shape[1], window.shape[0]), dst=window, interpolation=cv2.INTER_NEAREST)",
        "result = cv2.resize(probe, (window.shape[1], window.shape[0]), dst=window, )",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "result = cv2.resize(probe, (window.shape[1], window.shape[0]), dst=window, interpolation=cv2.INTER_NEAREST)",
        "result = cv2.resize(probe, (window.shape[2], window.shape[0]), dst=window, interpolation=cv2.INTER_NEAREST)",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "result = cv2.resize(probe, (window.shape[1], window.shape[0]), dst=window, interpolation=cv2.INTER_NEAREST)",
        "result = cv2.resize(probe, (window.shape[1], window.shape[1]), dst=window, interpolation=cv2.INTER_NEAREST)",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "return np.shares_memory(result, window)",
        "return np.shares_memory(None, window)",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "return np.shares_memory(result, window)",
        "return np.shares_memory(result, None)",
        REASONS["inplace"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0 or image.size == 0:",
        "if image.ndim not in (2, 3) or image.shape[0] == 0 and image.shape[1] == 0 or image.size == 0:",
        REASONS["size"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0 or image.size == 0:",
        "if image.ndim not in (2, 3) or image.shape[1] == 0 or image.shape[1] == 0 or image.size == 0:",
        REASONS["size"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "tensor = np.multiply(batch, np.float32(spec.scale), out=out, dtype=np.float32)",
        "tensor = np.multiply(batch, np.float32(spec.scale), out=out, dtype=None)",
        REASONS["float32"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "tensor = np.multiply(batch, np.float32(spec.scale), out=out, dtype=np.float32)",
        "tensor = np.multiply(batch, np.float32(spec.scale), out=out, )",
        REASONS["float32"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "if spec.mean is not None and spec.std is not None:",
        "if spec.mean is not None or spec.std is not None:",
        REASONS["together"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "return _run(_resize_steps(image.shape, spec, reuse=False), image)",
        "return _run(_resize_steps(image.shape, spec, reuse=None), image)",
        REASONS["reuse_default"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "return _run(_resize_steps(image.shape, spec, reuse=False), image)",
        "return _run(_resize_steps(image.shape, spec, reuse=True), image)",
        REASONS["reuse_default"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "return np.asarray(boxes, np.float32).reshape(-1, 4) * scale + offset",
        "return np.asarray(boxes, np.float32).reshape(-2, 4) * scale + offset",
        REASONS["reshape"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "return (np.asarray(boxes, np.float32).reshape(-1, 4) - offset) / scale",
        "return (np.asarray(boxes, np.float32).reshape(-2, 4) - offset) / scale",
        REASONS["reshape"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "shrinks = spec.input_size[0] * spec.input_size[1] < shape[0] * shape[1]",
        "shrinks = None",
        REASONS["swap_order"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "shrinks = spec.input_size[0] * spec.input_size[1] < shape[0] * shape[1]",
        "shrinks = spec.input_size[0] / spec.input_size[1] < shape[0] * shape[1]",
        REASONS["swap_order"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "shrinks = spec.input_size[0] * spec.input_size[1] < shape[0] * shape[1]",
        "shrinks = spec.input_size[1] * spec.input_size[1] < shape[0] * shape[1]",
        REASONS["swap_order"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "shrinks = spec.input_size[0] * spec.input_size[1] < shape[0] * shape[1]",
        "shrinks = spec.input_size[0] * spec.input_size[1] <= shape[0] * shape[1]",
        REASONS["swap_order"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "shrinks = spec.input_size[0] * spec.input_size[1] < shape[0] * shape[1]",
        "shrinks = spec.input_size[0] * spec.input_size[1] < shape[0] / shape[1]",
        REASONS["swap_order"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "shrinks = spec.input_size[0] * spec.input_size[1] < shape[0] * shape[1]",
        "shrinks = spec.input_size[0] * spec.input_size[1] < shape[1] * shape[1]",
        REASONS["swap_order"],
    ),
    Equivalent(
        "runtimes/preprocess.py",
        "shrinks = spec.input_size[0] * spec.input_size[1] < shape[0] * shape[1]",
        "shrinks = spec.input_size[0] * spec.input_size[1] < shape[0] * shape[2]",
        REASONS["swap_order"],
    ),
    Equivalent(
        "runtimes/quantization.py",
        "values = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], channels, axis=2)  # 1 x 256 x C",
        "values = np.repeat(np.arange(256, dtype=None)[None, :, None], channels, axis=2)  # 1 x 256 x C",
        REASONS["arange"],
    ),
    Equivalent(
        "runtimes/quantization.py",
        "values = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], channels, axis=2)  # 1 x 256 x C",
        "values = np.repeat(np.arange(256, )[None, :, None], channels, axis=2)  # 1 x 256 x C",
        REASONS["arange"],
    ),
    Equivalent(
        "runtimes/quantization.py",
        "columns = x.shape[-1] if x.ndim else 1",
        "columns = x.shape[-1] if (x.ndim) and False else 1",
        REASONS["columns"],
    ),
    Equivalent(
        "runtimes/quantization.py",
        "cv2.addWeighted(scratch.reshape(-1, columns), 1.0, scratch.reshape(-1, columns), 0.0, float(q.zero_point),",
        "cv2.addWeighted(scratch.reshape(-1, columns), 1.0, scratch.reshape(-1, columns), None, float(q.zero_point),",
        REASONS["beta"],
    ),
    Equivalent(
        "runtimes/quantization.py",
        "cv2.addWeighted(scratch.reshape(-1, columns), 1.0, scratch.reshape(-1, columns), 0.0, float(q.zero_point),",
        "cv2.addWeighted(scratch.reshape(-2, columns), 1.0, scratch.reshape(-1, columns), 0.0, float(q.zero_point),",
        REASONS["reshape"],
    ),
    Equivalent(
        "runtimes/quantization.py",
        "cv2.addWeighted(scratch.reshape(-1, columns), 1.0, scratch.reshape(-1, columns), 0.0, float(q.zero_point),",
        "cv2.addWeighted(scratch.reshape(-1, columns), 1.0, scratch.reshape(-2, columns), 0.0, float(q.zero_point),",
        REASONS["reshape"],
    ),
    Equivalent(
        "runtimes/quantization.py",
        "dst=out.reshape(-1, columns), dtype=depth)",
        "dst=out.reshape(-2, columns), dtype=depth)",
        REASONS["reshape"],
    ),
    Equivalent(
        "runtimes/boxes.py",
        "scores = np.asarray(scores, np.float32).reshape(-1)",
        "scores = np.asarray(scores, np.float32).reshape(None)",
        REASONS["reshape"],
    ),
    Equivalent(
        "runtimes/boxes.py",
        "scores = np.asarray(scores, np.float32).reshape(-1)",
        "scores = np.asarray(scores, np.float32).reshape(-2)",
        REASONS["reshape"],
    ),
    Equivalent(
        "runtimes/boxes.py",
        'order = np.argsort(-scores, kind="stable")',
        'order = np.argsort(-scores, kind="STABLE")',
        REASONS["stable"],
    ),
    Equivalent(
        "runtimes/boxes.py", "return np.asarray(keep, np.int64)", "return np.asarray(keep, None)", REASONS["int64"]
    ),
    Equivalent("runtimes/boxes.py", "return np.asarray(keep, np.int64)", "return np.asarray(keep, )", REASONS["int64"]),
    Equivalent(
        "runtimes/boxes.py",
        "scores = np.asarray(scores, np.float32).reshape(-1)",
        "scores = np.asarray(scores, np.float32).reshape(-2)",
        REASONS["reshape"],
    ),
    Equivalent(
        "runtimes/boxes.py",
        "boxes = np.asarray(boxes, np.float32).reshape(-1, 4)",
        "boxes = np.asarray(boxes, np.float32).reshape(-2, 4)",
        REASONS["reshape"],
    ),
    Equivalent(
        "runtimes/boxes.py",
        "classes = np.asarray(classes, np.int64).reshape(-1)",
        "classes = np.asarray(classes, np.int64).reshape(-2)",
        REASONS["reshape"],
    ),
    Equivalent("runtimes/boxes.py", "if len(above) > 1:", "if len(above) >= 1:", REASONS["single"]),
    Equivalent(
        "runtimes/contract.py",
        "deepest, stack = 0, [(value, 1)]",
        "deepest, stack = 1, [(value, 1)]",
        REASONS["depth_start"],
    ),
    Equivalent(
        "runtimes/contract.py",
        'raise ContractError(f"embedded contract is malformed: {exc}") from None',
        "raise ContractError(None) from None",
        REASONS["typeerror"],
    ),
    Equivalent(
        "runtimes/contract.py",
        "if self.mean is not None and self.std is not None:",
        "if self.mean is not None or self.std is not None:",
        REASONS["together"],
    ),
    Equivalent(
        "runtimes/contract.py",
        "if not all(math.isfinite(v) and abs(v) < 1e30 for v in low + high):",
        "if not all(math.isfinite(v) and abs(v) < 1e+30 for v in low + high):",
        REASONS["1e30"],
    ),
    Equivalent(
        "runtimes/contract.py",
        "ends = sorted((0.0 * self.scale + self.offset, 255.0 * self.scale + self.offset))",
        "ends = sorted((0.0 / self.scale + self.offset, 255.0 * self.scale + self.offset))",
        REASONS["zero"],
    ),
    Equivalent(
        "runtimes/contract.py",
        "if self.mean is not None and self.std is not None:",
        "if self.mean is not None or self.std is not None:",
        REASONS["together"],
    ),
    Equivalent(
        "runtimes/serving/rest.py", "if len(text) <= BASE64_SLICE:", "if len(text) < BASE64_SLICE:", REASONS["slice"]
    ),
    Equivalent(
        "runtimes/serving/rest.py",
        "return depth if isinstance(value, (int, float)) and not isinstance(value, bool) else 0",
        "return depth if isinstance(value, (int, float)) and not isinstance(value, bool) else 1",
        REASONS["three"],
    ),
    Equivalent(
        "runtimes/serving/rest.py",
        "if not (height and width and channels) or channels not in (1, 3):",
        "if not (height and width or channels) or channels not in (1, 3):",
        REASONS["channels"],
    ),
    Equivalent(
        "runtimes/serving/rest.py",
        "if not (height and width and channels) or channels not in (1, 3):",
        "if not (height or width and channels) or channels not in (1, 3):",
        REASONS["channels"],
    ),
    Equivalent("runtimes/serving/image_headers.py", "if i < 0:", "if i <= 0:", REASONS["find"]),
    Equivalent("runtimes/serving/image_headers.py", "if i < 0:", "if i < 1:", REASONS["find"]),
    Equivalent(
        "runtimes/serving/image_headers.py",
        'length = int.from_bytes(data[i:i + 2], "big")',
        "length = int.from_bytes(data[i:i + 2], )",
        REASONS["big"],
    ),
    Equivalent(
        "runtimes/serving/image_headers.py",
        'height, width = int.from_bytes(data[i + 3:i + 5], "big"), int.from_bytes(data[i + 5:i + 7], "big")',
        'height, width = int.from_bytes(data[i + 3:i + 5], ), int.from_bytes(data[i + 5:i + 7], "big")',
        REASONS["big"],
    ),
    Equivalent(
        "runtimes/serving/image_headers.py",
        'height, width = int.from_bytes(data[i + 3:i + 5], "big"), int.from_bytes(data[i + 5:i + 7], "big")',
        'height, width = int.from_bytes(data[i + 3:i + 5], "big"), int.from_bytes(data[i + 5:i + 7], )',
        REASONS["big"],
    ),
    Equivalent(
        "runtimes/serving/image_headers.py",
        'return ImageHeader("PNG", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))',
        'return ImageHeader("PNG", int.from_bytes(data[16:20], ), int.from_bytes(data[20:24], "big"))',
        REASONS["big"],
    ),
    Equivalent(
        "runtimes/serving/image_headers.py",
        'return ImageHeader("PNG", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))',
        'return ImageHeader("PNG", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], ))',
        REASONS["big"],
    ),
    Equivalent("runtimes/serving/image_headers.py", "if i + 8 > end:", "if i - 8 > end:", REASONS["loop"]),
    Equivalent(
        "runtimes/serving/image_headers.py",
        "body = data[i + 8:i + 8 + min(length, 32)]",
        "body = data[i + 8:i + 9 + min(length, 32)]",
        REASONS["body"],
    ),
    Equivalent(
        "runtimes/serving/image_headers.py",
        "body = data[i + 8:i + 8 + min(length, 32)]",
        "body = data[i + 8:i + 8 + min(length, 33)]",
        REASONS["body"],
    ),
    Equivalent(
        "runtimes/serving/image_headers.py",
        'sizes.append((int.from_bytes(body[6:8], "little") & 0x3FFF, int.from_bytes(body[8:10], "little") & 0x3FFF))',
        'sizes.append((int.from_bytes(body[6:9], "little") & 0x3FFF, int.from_bytes(body[8:10], "little") & 0x3FFF))',
        REASONS["mask"],
    ),
    Equivalent(
        "runtimes/serving/image_headers.py",
        'sizes.append((int.from_bytes(body[6:8], "little") & 0x3FFF, int.from_bytes(body[8:10], "little") & 0x3FFF))',
        'sizes.append((int.from_bytes(body[6:8], "little") & 0x3FFF, int.from_bytes(body[8:11], "little") & 0x3FFF))',
        REASONS["mask"],
    ),
    Equivalent(
        "runtimes/serving/image_headers.py",
        'bits = int.from_bytes(body[1:5], "little")',
        'bits = int.from_bytes(body[1:6], "little")',
        REASONS["mask"],
    ),
]
