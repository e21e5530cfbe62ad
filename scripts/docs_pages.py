"""Write the docs pages generated from the code, so they cannot drift: `python scripts/docs_pages.py`.

- docs/reference/vocabulary.md: the option names every surface shares (runtimes.vocabulary).
- docs/reference/cli.md: every command's help, from the argparse parser `edgekit` runs.
- docs/reference/api.md: mkdocstrings directives for every name in `edgekit.__all__` and `runtimes.__all__`.
- docs/benchmarks.md: one table per bench, from the JSON records the benches wrote (bench/records/).

tests/project/test_docs.py fails when a committed page differs from what this writes.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# names whose objects do not say where they are defined (unions, registries, constants)
DEFINED_IN = {
    "TaskResult": "runtimes.model",
    "BACKENDS": "runtimes.backends.base",
    "ARCHITECTURES": "edgekit.training.architectures",
}
SKIPPED = {"__version__"}  # `edgekit --version` and `edgekit.__version__`; nothing to document beyond that

API_GROUPS = {  # page section -> the names of edgekit.__all__ it holds (the rest go under "Everything else")
    "Training": ("train", "TrainOptions", "TrainResult", "ARCHITECTURES", "evaluate", "load_keras", "save_keras"),
    "Export and check": ("export", "ExportReport", "bench", "BenchReport"),
    "Pruning and distillation": ("prune", "PruneResult", "distill"),
    "Data": (
        "ImageFolder",
        "ArrayDataset",
        "ImageDataset",
        "load_detection",
        "DetectionData",
        "DetectionDataset",
        "datasets",
        "distribution",
    ),
    "Running a model": ("load", "Model", "TaskResult", "Classification", "Detection", "Detections"),
    "The contract": (
        "ModelContract",
        "Preprocessing",
        "ColorOrder",
        "ResizeMode",
        "Interpolation",
        "Layout",
        "DetectionHead",
    ),
    "Deploying": ("deploy",),
}


def vocabulary_page() -> str:
    from runtimes.vocabulary import PAGE, markdown_table

    return PAGE.format(table=markdown_table())


def cli_page() -> str:
    """Every command's `--help`, as `edgekit COMMAND --help` prints it (at a fixed width)."""
    import os

    from edgekit.cli import COMMANDS, build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; the page must not depend on it
    try:
        return _cli_page(build_parser(), COMMANDS)
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def _cli_page(parser, commands) -> str:  # noqa: ANN001
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    parts = [
        "# Command line\n",
        "Generated from the parser `edgekit` runs (`scripts/docs_pages.py`), so it is what `--help` prints. "
        "A Raspberry Pi bundle's `run.py` and `serve.py` take the options of `edgekit predict --source` and "
        "`edgekit serve`; the shared options have one name everywhere ([vocabulary](vocabulary.md)).\n",
        "```text\n" + parser.format_help().replace("\u2018", "'").replace("\u2019", "'") + "```\n",
    ]
    for name in commands:
        help_text = subparsers[name].format_help()
        parts.append(f"## edgekit {name}\n\n```text\n{help_text}```\n")
    return "\n".join(parts)


def _path(module: object, name: str) -> str:
    """Where `name` of `module` is defined, as mkdocstrings finds it."""
    lazy = getattr(module, "_LAZY", {})
    if name in lazy:
        return f"{lazy[name]}.{name}"
    if name in DEFINED_IN:
        return f"{DEFINED_IN[name]}.{name}"
    obj = getattr(module, name)
    if inspect.ismodule(obj):
        return obj.__name__
    if inspect.isclass(obj) or inspect.isfunction(obj):  # an alias (runtimes.open) is documented where defined
        return f"{obj.__module__}.{obj.__qualname__}"
    return f"{obj.__module__}.{name}"


def api_page() -> str:
    """One mkdocstrings directive per public name, grouped; errors last, in their hierarchy's order."""
    import edgekit
    import runtimes

    names = [n for n in edgekit.__all__ if n not in SKIPPED]
    errors = sorted(n for n in names if n.endswith("Error"))
    grouped = {name for group in API_GROUPS.values() for name in group}
    missing = sorted(set(names) - grouped - set(errors))
    parts = [
        "# Python API\n",
        "Everything `import edgekit` offers (`edgekit.__all__`) and, for devices without TensorFlow, everything "
        "`import runtimes` offers (`runtimes.__all__`), generated from the docstrings "
        "(`scripts/docs_pages.py`). Option names are shared with the CLI and the server: "
        "[vocabulary](vocabulary.md).\n",
    ]
    for title, group in {**API_GROUPS, **({"Everything else": tuple(missing)} if missing else {})}.items():
        parts.append(f"## {title}\n")
        parts.extend(f"### edgekit.{name}\n\n::: {_path(edgekit, name)}\n" for name in group)
    parts.append("## Errors\n\nEvery error edgekit raises is an `EdgekitError`; each names the problem and the fix.\n")
    parts.extend(f"### edgekit.{name}\n\n::: {_path(edgekit, name)}\n" for name in errors)
    device = sorted(n for n in runtimes.__all__ if n not in edgekit.__all__)
    parts.append(
        "## runtimes: the device side\n\nA Raspberry Pi installs `runtimes` without TensorFlow; it offers the names "
        "above that run models (`Model`, the results, the contract, the errors) and these:\n"
    )
    parts.extend(f"### runtimes.{name}\n\n::: {_path(runtimes, name)}\n" for name in device)
    return "\n".join(parts)


def benchmarks_page() -> str:
    sys.path.insert(0, str(ROOT / "bench"))
    from records import render_page

    return render_page(ROOT / "bench" / "records")


def pages() -> dict[Path, str]:
    """Every generated page: its path under docs/ -> its text."""
    return {
        Path("reference/vocabulary.md"): vocabulary_page(),
        Path("reference/cli.md"): cli_page(),
        Path("reference/api.md"): api_page(),
        Path("benchmarks.md"): benchmarks_page(),
    }


def main() -> int:
    for relative, text in pages().items():
        target = ROOT / "docs" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote docs/{relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
