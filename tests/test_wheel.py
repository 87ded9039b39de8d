"""What `make wheel` puts in dist/ (make test runs it first): the wheel
installs into a clean venv and works there, away from the source tree, and
the sdist it was built from holds the sources and no build output."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import cxxloop

DIST = Path(__file__).resolve().parent.parent / "dist"
TAG = "cp{}{}".format(*sys.version_info[:2])

SMOKE = """
import asyncio, importlib.metadata, json, os, socket, subprocess
import cxxloop
from cxxloop.bench import native


class Echo(asyncio.Protocol):
    def __init__(self, lost):
        self.lost = lost

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        self.lost.set_result(exc)


async def main():
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(0.05)
    slept = loop.time() - start
    a, b = socket.socketpair()
    lost = loop.create_future()
    await loop.connect_accepted_socket(lambda: Echo(lost), a)
    reader, writer = await asyncio.open_connection(sock=b)
    writer.write(b"ping")
    echoed = await reader.readexactly(4)
    writer.close()
    await writer.wait_closed()
    await lost
    return {"loop": type(loop).__module__, "slept": slept, "echoed": echoed.decode()}


result = cxxloop.run(main())
loadgen = subprocess.run([native.binary("loadgen")], capture_output=True, text=True)
result.update(
    version=cxxloop.__version__,
    distribution=importlib.metadata.version("cxxloop"),
    license=importlib.metadata.metadata("cxxloop")["License-Expression"],
    core=cxxloop._core.__file__,
    helpers_missing=native.missing(),
    loadgen=[loadgen.returncode, loadgen.stderr.startswith("usage:")],
)
print(json.dumps(result))
"""


def in_dist(pattern, what):
    found = sorted(DIST.glob(pattern))
    if not found:
        pytest.skip(f"no {what} in dist/: `make wheel` builds it")
    return found[-1]


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory):
    """A clean venv, of this Python, holding only the wheel."""
    wheel = in_dist(f"cxxloop-{cxxloop.__version__}-{TAG}-{TAG}-manylinux_*.whl",
                    f"{TAG} wheel of cxxloop {cxxloop.__version__}")
    venv = tmp_path_factory.mktemp("wheel") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
                    "--no-deps", "--disable-pip-version-check", str(wheel)], check=True)
    return python


def test_the_wheel_runs_a_loop_in_a_clean_venv(venv_python, tmp_path):
    # -I: neither the source tree nor PYTHONPATH nor user site-packages.
    proc = subprocess.run([str(venv_python), "-I", "-c", SMOKE], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    result = json.loads(proc.stdout)
    assert result["loop"] == "cxxloop._loop"
    assert result["slept"] >= 0.05
    assert result["echoed"] == "ping"
    assert result["version"] == result["distribution"] == cxxloop.__version__
    assert result["license"] == "MIT"
    assert Path(result["core"]).is_relative_to(venv_python.parent.parent)
    assert result["helpers_missing"] is None
    assert result["loadgen"] == [2, True]  # it runs, and asks for its arguments


def test_the_sdist_holds_the_sources_and_no_build_output():
    sdist = in_dist(f"cxxloop-{cxxloop.__version__}.tar.gz", f"sdist of cxxloop {cxxloop.__version__}")
    with tarfile.open(sdist) as tar:
        names = {name.partition("/")[2] for name in tar.getnames()}
    for needed in ["PKG-INFO", "pyproject.toml", "CMakeLists.txt", "LICENSE", "README.md",
                   "csrc/py/module.cpp", "csrc/core/epoll_poller.cpp", "csrc/bench/loadgen.c",
                   "src/cxxloop/__init__.py"]:
        assert needed in names
    built = [name for name in names
             if name.startswith(("build/", ".venv", "dist/")) or "__pycache__" in name or name.endswith(".so")]
    assert built == []
