import asyncio
import gc

import pytest

import cxxloop


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
