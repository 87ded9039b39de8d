import asyncio
import gc

import pytest

import cxxloop
from parity import tls_contexts


@pytest.fixture(scope="session")
def contexts(tmp_path_factory):
    """(server, client) SSLContexts over a fresh certificate for 'localhost'."""
    return tls_contexts(tmp_path_factory.mktemp("tls"))


@pytest.fixture(autouse=True, scope="module")
def _freeze_what_earlier_modules_left():
    """Move what exists before each test module out of the collector's way.

    Collection imports CPython's asyncio test modules, and the modules run
    before leave caches and the like: 100,000 objects and more that live
    for the whole session. Tests call gc.collect() often (the fuzz test
    twice per example), and each full collection would walk all of them,
    50 ms apiece: 40 s of the fuzz test alone. Frozen objects are still
    roots for what the tests create, and are still freed by reference
    counting; only a cycle among them is left for the end of the session.
    """
    gc.collect()
    gc.freeze()
    yield


@pytest.fixture
def loop():
    """A fresh cxxloop loop, closed after the test (and checked closed)."""
    lp = cxxloop.new_event_loop()
    try:
        yield lp
    finally:
        lp.close()
        asyncio.set_event_loop(None)
    gc.collect()


@pytest.fixture(params=["asyncio", "cxxloop"])
def any_loop(request):
    """The stdlib loop and cxxloop, for tests that compare their behaviour."""
    lp = asyncio.SelectorEventLoop() if request.param == "asyncio" else cxxloop.new_event_loop()
    try:
        yield lp
    finally:
        lp.close()
