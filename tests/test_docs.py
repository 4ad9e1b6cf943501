"""The code in the docs runs: every ```python block of docs/*.md and README.md, on every engine.

Fragments that cannot run alone (they use names defined elsewhere) are fenced as
``{code-block} python`` instead, which this test leaves out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, match in enumerate(BLOCK.finditer(page.read_text()), 1):
            found.append((f"{page.name}#{number}", match.group(1)))
    return found


BLOCKS = _blocks()


def test_the_docs_have_code_to_run() -> None:
    """The pages that teach with code have python blocks (the regex finds them)."""
    names = {name.split("#")[0] for name, _ in BLOCKS}
    assert {"README.md", "concepts.md", "howto.md", "tutorial.md", "index.md"} <= names


@pytest.mark.parametrize(("name", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_code_block_runs(name: str, code: str, engine: str, tmp_path: Path) -> None:
    """Each block runs to completion in a fresh interpreter without error."""
    env = {**os.environ, "ROCKET_ENGINE": engine}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stderr}"
