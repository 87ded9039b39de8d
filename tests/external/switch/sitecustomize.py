"""Switches every Python process of an external suite's run to cxxloop.

Python imports sitecustomize at start-up from sys.path, and the runner puts
this directory on PYTHONPATH, so subprocesses that a suite starts (servers,
workers, reloaders) switch too. CXXLOOP_EXTERNAL_LOOP=cxxloop switches;
anything else leaves asyncio alone.
"""

import importlib.abc
import importlib.util
import os
import sys
import warnings


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Runs patch(module) right after the module named name is first executed."""

    def __init__(self, name, patch):
        self.name, self.patch = name, patch

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            self.patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def _patch_on_import(name, patch):
    sys.meta_path.insert(0, _PatchOnImport(name, patch))


if os.environ.get("CXXLOOP_EXTERNAL_LOOP") == "cxxloop":
    import asyncio

    import cxxloop

    # The one switch every suite reaches: asyncio.new_event_loop(), asyncio.run(),
    # asyncio.Runner and unittest.IsolatedAsyncioTestCase all ask the policy.
    # Python 3.14 deprecates setting it; the suites run with warnings as errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(cxxloop.EventLoopPolicy())

    if os.environ.get("CXXLOOP_EXTERNAL_SUITE") == "uvicorn":
        # Config(loop="asyncio") names asyncio.SelectorEventLoop itself,
        # bypassing the policy; this is what `--loop cxxloop:new_event_loop`
        # gives. Patched once uvicorn imports it: importing uvicorn here would
        # import anyio, a pytest plugin, before pytest can rewrite its asserts.
        def _cxxloop_factory(use_subprocess: bool = False):
            return cxxloop.new_event_loop

        def _patch(module):
            module.asyncio_loop_factory = _cxxloop_factory

        _patch_on_import("uvicorn.loops.asyncio", _patch)
