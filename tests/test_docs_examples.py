"""The user guides' examples run as shown: each ```python block of a guide
is run with this interpreter, and where a ```text block follows it, that is
exactly what it must print."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
GUIDES = ["bridges.md"]
BLOCK = re.compile(r"```python\n(?P<code>.*?)```\n(?:\n```text\n(?P<output>.*?)```)?", re.S)


def examples():
    for guide in GUIDES:
        text = (DOCS / guide).read_text()
        for number, match in enumerate(BLOCK.finditer(text), 1):
            yield pytest.param(match["code"], match["output"], id=f"{guide}-{number}")


@pytest.mark.parametrize(("code", "output"), list(examples()))
def test_guide_example_runs_as_shown(code, output):
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    if output is not None:
        assert proc.stdout == output
