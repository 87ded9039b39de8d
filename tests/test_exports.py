"""The extension exports its init function and nothing else: the static
core library's symbols stay inside, where they cannot clash with another
module's."""

import shutil
import subprocess

import pytest

from cxxloop import _core


def test_only_the_init_function_is_exported():
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed, so the exported symbols cannot be listed")
    out = subprocess.run([nm, "-D", "--defined-only", _core.__file__], capture_output=True, text=True,
                         check=True).stdout
    assert [line.split()[-1] for line in out.splitlines()] == ["PyInit__core"]
