"""The benchmark's C programs, shipped as source and compiled on first use:
loadgen.c (the echo load generator) and echo_server.c (the C epoll echo
and HTTP server that serves as the ceiling)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path


def compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def binary(name: str) -> Path:
    """The compiled program `name` (loadgen, echo_server), built into a
    cache keyed by its source, so an edit rebuilds it."""
    source = resources.files(__name__).joinpath(f"{name}.c").read_bytes()
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler (cc or gcc) to build the benchmark's load generator")
    digest = hashlib.sha256(source + cc.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cxxloop-bench"
    path = cache / f"{name}-{digest}"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        src = cache / f"{name}-{digest}.c"
        src.write_bytes(source)
        # Build to a temporary name: concurrent runs never see half a binary.
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        subprocess.run([cc, "-O2", "-o", str(tmp), str(src)], check=True, capture_output=True)
        tmp.replace(path)
    return path
