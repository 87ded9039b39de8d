"""The pinned releases of the external suites: downloaded once, checked, unpacked.

A library comes from its PyPI sdist (pip download --no-binary :all:). Where
the sdist leaves the tests out, they come from Debian's source package of the
same release, whose orig tarball is upstream's release tarball (apt-get source
--tar-only, over a private deb-src list so the host's apt setup is untouched).
Every file is checked against the sha256 in the suite's configuration.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from suite import Suite


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checked(path: Path, sha256: str) -> Path:
    got = _sha256(path)
    if got != sha256:
        path.unlink()
        raise SystemExit(f"{path.name}: sha256 {got}, expected {sha256}")
    return path


def sdist(suite: Suite, cache: Path) -> Path:
    """The suite's sdist, downloaded from PyPI into cache/ if it is not there."""
    cache.mkdir(parents=True, exist_ok=True)
    for path in cache.glob(f"{suite.name}-{suite.version}.tar.gz"):
        return _checked(path, suite.sdist_sha256)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
         "--no-deps", "--no-binary", ":all:", "-d", str(cache), f"{suite.name}=={suite.version}"],
        check=True, stderr=subprocess.DEVNULL,
    )
    return _checked(cache / f"{suite.name}-{suite.version}.tar.gz", suite.sdist_sha256)


def debian_orig(suite: Suite, cache: Path) -> Path:
    """The orig tarball of the suite's Debian source package, through apt-get."""
    src = suite.tests_source
    name = f"{src['debian_package']}_{src['debian_version'].rsplit('-', 1)[0]}.orig.tar.gz"
    path = cache / name
    if path.exists():
        return _checked(path, src["sha256"])
    apt = cache / "apt"
    for d in ("lists/partial", "cache/archives/partial"):
        (apt / d).mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(
        "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        f"http://deb.debian.org/debian {src['debian_suite']} main\n"
    )
    options = [
        "-o", f"Dir::Etc::SourceList={apt / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/nonexistent",
        "-o", f"Dir::State::Lists={apt / 'lists'}",
        "-o", f"Dir::Cache={apt / 'cache'}",
    ]
    subprocess.run(["apt-get", "-qq", *options, "update"], check=True)
    subprocess.run(
        ["apt-get", "-qq", *options, "source", "--download-only", "--tar-only",
         f"{src['debian_package']}={src['debian_version']}"],
        check=True, cwd=cache,
    )
    shutil.rmtree(apt)  # the source index is only needed for this one download
    return _checked(path, src["sha256"])


def unpack(tarball: Path, dest: Path) -> Path:
    """Unpack tarball into a fresh dest/ and return its top directory."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    (top,) = dest.iterdir()
    return top


def test_tree(suite: Suite, cache: Path, work: Path) -> Path:
    """A fresh copy of the source tree that holds the suite's tests."""
    if suite.tests_source:
        return unpack(debian_orig(suite, cache), work)
    return unpack(sdist(suite, cache), work)
