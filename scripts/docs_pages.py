"""Write the docs pages generated from the code (so they cannot drift): `python scripts/docs_pages.py`.

Each page's text comes from one function of the package it documents; tests compare the files with it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pages() -> dict[Path, str]:
    """Every generated page: its path under docs/ -> its text."""
    from runtimes.vocabulary import PAGE, markdown_table

    return {Path("reference/vocabulary.md"): PAGE.format(table=markdown_table())}


def main() -> int:
    for relative, text in pages().items():
        target = ROOT / "docs" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote docs/{relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
