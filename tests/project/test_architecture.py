"""The structure ARCHITECTURE.md describes, checked: no import cycle among edgekit's modules (function-level imports
included), every runtimes and edgekit module inside a layer of pyproject.toml's import-linter contracts, and the size
limits (modules, functions). `lint-imports` itself runs in `make test` before the suite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import tomllib
from helpers.import_graph import a_cycle, cycles, import_graph
from helpers.sizes import EXEMPT_MODULES, MAX_FUNCTION_LINES, MAX_MODULE_LINES, function_lines, module_lines

ROOT = Path(__file__).resolve().parents[2]


def test_no_import_cycle_among_edgekits_modules():
    graph = import_graph(ROOT)
    assert len(graph) > 120, "the graph should hold every module of runtimes, converters and edgekit"
    found = cycles(graph)
    assert not found, "import cycles (fix the layering, don't hide them behind TYPE_CHECKING):\n" + "\n".join(
        " -> ".join(a_cycle(graph, component)) for component in found
    )


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_cycle_check_sees_imports_inside_functions_but_not_type_checking_blocks(tmp_path):
    _write(
        tmp_path,
        {
            "runtimes/__init__.py": "",
            "runtimes/a.py": "from runtimes.b import B\n",
            "runtimes/b.py": "B = 1\n\ndef late():\n    from runtimes import a\n",
            "runtimes/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from runtimes.d import D\n",
            "runtimes/d.py": "from runtimes.c import *\nD = 1\n",
            "edgekit/__init__.py": "",
            "converters/__init__.py": "",
        },
    )
    graph = import_graph(tmp_path)
    assert cycles(graph) == [["runtimes.a", "runtimes.b"]]
    assert a_cycle(graph, ["runtimes.a", "runtimes.b"]) == ["runtimes.a", "runtimes.b", "runtimes.a"]


def _layered(contracts: list[dict], container: str) -> set[str]:
    (contract,) = [c for c in contracts if c.get("type") == "layers" and c.get("containers") == [container]]
    return {name.strip() for layer in contract["layers"] for name in layer.replace(":", "|").split("|")}


@pytest.mark.parametrize("package", ["runtimes", "edgekit"])
def test_every_module_of_the_package_is_in_a_layer(package):
    """A new module or subpackage must be placed in a layer, or the linter would never check its imports."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layered = _layered(contracts, package)
    children = {
        path.stem if path.is_file() else path.name
        for path in (ROOT / package).iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    assert children - layered == set(), f"{package} modules in no import-linter layer: {sorted(children - layered)}"
    assert layered - children == set(), f"layers naming no module: {sorted(layered - children)}"


def test_modules_stay_under_the_size_limit():
    over = {name: lines for name, lines in module_lines(ROOT).items() if lines > MAX_MODULE_LINES}
    assert set(over) <= set(EXEMPT_MODULES), f"modules over {MAX_MODULE_LINES} lines (docstrings not counted): {over}"


def test_the_module_size_leaves_docstrings_out_and_counts_code():
    from helpers.sizes import code_lines

    documented = '"""Module.\n\nMore.\n"""\n\n\ndef f():\n    """One.\n\n    Two.\n    """\n    return 1\n'
    assert code_lines(documented) == 12 - 4 - 4
    assert code_lines("x = 1\n" * 450) == 450


def test_functions_stay_under_the_size_limit():
    over = {name: lines for name, lines in function_lines(ROOT).items() if lines > MAX_FUNCTION_LINES}
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines (docstrings not counted): {over}"


def test_the_size_check_counts_a_long_function(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES + 1))
    _write(
        tmp_path,
        {"edgekit/long.py": f'def long():\n    """Doc."""\n{body}', "runtimes/x.py": "", "converters/x.py": ""},
    )
    assert function_lines(tmp_path) == {"edgekit/long.py:long": MAX_FUNCTION_LINES + 1}


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
