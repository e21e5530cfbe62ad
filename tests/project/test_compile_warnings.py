"""Every Python file of the project compiles without a SyntaxWarning: Python's own warning for a string literal
called like a function (a formatter's wrap of `"..."(...)`, which then fails only when that line runs, as two
benches did), an invalid escape sequence, or an `is` against a literal."""

import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("edgekit", "runtimes", "converters", "bench", "scripts", "samples", "tests")


def test_no_file_compiles_with_a_syntax_warning():
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                compile(path.read_text(encoding="utf-8"), str(path), "exec")
            found += [
                f"{path.relative_to(ROOT)}:{w.lineno}: {w.message}" for w in caught if w.category is SyntaxWarning
            ]
    assert not found, "\n".join(found)


def test_the_check_sees_a_called_string():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compile('print("a "("b"))', "<case>", "exec")
    assert any(w.category is SyntaxWarning for w in caught)
