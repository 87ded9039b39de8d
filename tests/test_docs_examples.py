"""The user guides' examples run as shown: each ```python block of a guide
is saved to a file and run with this interpreter (a file, so that process
pools with the spawn start method can import it), and where a ```text block
follows it, that is exactly what it must print.

docs/workers.md is not listed: its snippets start servers that run until
stopped, and tests/test_servers_real.py runs those with real processes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
GUIDES = ["bridges.md", "executors.md"]
BLOCK = re.compile(r"```python\n(?P<code>.*?)```\n(?:\n```text\n(?P<output>.*?)```)?", re.S)


def examples():
    for guide in GUIDES:
        text = (DOCS / guide).read_text()
        for number, match in enumerate(BLOCK.finditer(text), 1):
            yield pytest.param(match["code"], match["output"], id=f"{guide}-{number}")


@pytest.mark.parametrize(("code", "output"), list(examples()))
def test_guide_example_runs_as_shown(code, output, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    if output is not None:
        assert proc.stdout == output
