"""The public API documents itself: every function in `edgekit.__all__` and `runtimes.__all__`, and `Model`'s
methods, has a Google-style docstring whose Args name every parameter and whose Returns says what comes back, and
every public dataclass's Attributes name every field (the API reference is generated from them:
docs/reference/api.md)."""

from __future__ import annotations

import dataclasses
import inspect
import re

import edgekit
import runtimes
from runtimes.model import Model

MODEL_METHODS = ("predict", "stream", "run", "run_all", "preprocess", "close")


def _public_functions() -> dict[str, object]:
    found = {}
    for module in (edgekit, runtimes):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                found.setdefault(obj, f"{module.__name__}.{name}")
    found.update({getattr(Model, name): f"Model.{name}" for name in MODEL_METHODS})
    return {name: fn for fn, name in found.items()}


def documentation_gaps(fn: object) -> list[str]:
    """What `fn`'s docstring lacks: parameters missing from Args, a Returns for a function that returns."""
    doc = inspect.getdoc(fn) or ""
    signature = inspect.signature(fn)
    params = [p.name for p in signature.parameters.values() if p.name not in ("self", "cls")]
    documented = _section_names(doc, "Args")
    gaps = [f"Args: {name}" for name in params if name not in documented]
    returns_nothing = signature.return_annotation in (None, "None")
    if not returns_nothing and not re.search(r"^(Returns|Yields):", doc, re.M):
        gaps.append("Returns:")
    if not doc.split("\n", 1)[0].strip():
        gaps.append("a summary line")
    return gaps


def _section_names(doc: str, title: str) -> set[str]:
    section = re.search(rf"^{title}:\n((?:[ ]{{4}}.*\n?|\n)*)", doc, re.M)
    return set(re.findall(r"^    \**(\w+)", section.group(1), re.M)) if section else set()


def attribute_gaps(cls: type) -> list[str]:
    """The fields of dataclass `cls` its docstring's Attributes section does not name."""
    documented = _section_names(inspect.getdoc(cls) or "", "Attributes")
    return [field.name for field in dataclasses.fields(cls) if field.name not in documented]


def test_every_public_dataclass_documents_its_fields():
    classes = {
        getattr(module, name)
        for module in (edgekit, runtimes)
        for name in module.__all__
        if dataclasses.is_dataclass(getattr(module, name)) and inspect.isclass(getattr(module, name))
    }
    assert len(classes) >= 15
    gaps = {cls.__qualname__: attribute_gaps(cls) for cls in classes}
    assert not {name: gap for name, gap in gaps.items() if gap}


def test_the_attributes_check_finds_a_missing_field():
    @dataclasses.dataclass
    class Pair:
        """Two numbers.

        Attributes:
            a: one.
        """

        a: int
        b: int

    assert attribute_gaps(Pair) == ["b"]


def test_every_public_function_documents_its_arguments_and_result():
    gaps = {name: documentation_gaps(fn) for name, fn in _public_functions().items()}
    assert not {name: gap for name, gap in gaps.items() if gap}


def test_the_check_finds_a_missing_argument():
    def documented(a: int, b: int) -> int:
        """Add.

        Args:
            a: one.

        Returns:
            The sum.
        """
        return a + b

    assert documentation_gaps(documented) == ["Args: b"]
