"""The French quickstart of the seed README must run unchanged against this engine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SEED_README = Path(__file__).resolve().parents[1].parent / "shared" / "seed" / "README.fr.md"


def quickstart_source(readme: str) -> str:
    """The README's ```python blocks joined in order (the second one continues ``main()``)."""
    blocks = re.findall(r"^```python\n(.*?)^```", readme, flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) == 2, f"expected the two python blocks of the quickstart, found {len(blocks)}"
    return "".join(blocks)


def test_french_quickstart_runs_and_keeps_state_across_runs(tmp_path: Path) -> None:
    if not SEED_README.is_file():
        pytest.skip(f"seed README not found at {SEED_README} (the shared folder is not checked out next to the repo)")
    script = tmp_path / "quickstart.py"
    script.write_text(quickstart_source(SEED_README.read_text(encoding="utf-8")), encoding="utf-8")
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = [line for line in done.stdout.splitlines() if line.startswith("Résultat du workflow :")]
    assert results == [
        "Résultat du workflow : Processed 1 times, data length: 13",
        "Résultat du workflow : Processed 2 times, data length: 26",
    ], done.stdout
