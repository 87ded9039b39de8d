"""The public entry points: new_event_loop, run, Runner, policy, install."""

import asyncio
import sys
import warnings

import pytest

import cxxloop


async def _running_loop_type():
    return type(asyncio.get_running_loop())


def test_new_event_loop_is_an_asyncio_loop():
    loop = cxxloop.new_event_loop()
    try:
        assert isinstance(loop, cxxloop.Loop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert not loop.is_running() and not loop.is_closed()
        # set_event_loop insists on an AbstractEventLoop.
        asyncio.set_event_loop(loop)
        assert asyncio.get_event_loop() is loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_run_returns_the_result_and_closes_the_loop():
    loops = []

    async def main():
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return 42

    assert cxxloop.run(main()) == 42
    assert type(loops[0]) is cxxloop.Loop
    assert loops[0].is_closed()


def test_run_propagates_exceptions():
    async def main():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        cxxloop.run(main())


@pytest.mark.parametrize("debug", [True, False])
def test_run_debug_flag(debug):
    async def main():
        return asyncio.get_running_loop().get_debug()

    assert cxxloop.run(main(), debug=debug) is debug


def test_runner_with_loop_factory():
    with asyncio.Runner(loop_factory=cxxloop.new_event_loop) as runner:
        assert runner.run(_running_loop_type()) is cxxloop.Loop
        assert runner.run(_running_loop_type()) is cxxloop.Loop
        loop = runner.get_loop()
    assert loop.is_closed()


def test_policy_and_install():
    """install() still works where asyncio has policies; from 3.14 it warns
    as asyncio's policy functions do (theirs are silenced here: they are
    the test's, not what it checks)."""
    deprecated = sys.version_info >= (3, 14)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'asyncio.[gs]et_event_loop_policy' is deprecated", DeprecationWarning)
        old = asyncio.get_event_loop_policy()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cxxloop.install()
            assert [w.category for w in caught] == ([DeprecationWarning] if deprecated else [])
            assert isinstance(asyncio.get_event_loop_policy(), cxxloop.EventLoopPolicy)
            loop = asyncio.new_event_loop()
            try:
                assert isinstance(loop, cxxloop.Loop)
            finally:
                loop.close()
            # asyncio.run with the policy installed uses cxxloop too.
            assert asyncio.run(_running_loop_type()) is cxxloop.Loop
        finally:
            asyncio.set_event_loop_policy(old)


def test_public_names_and_stub():
    import importlib.resources

    assert set(cxxloop.__all__) >= {
        "EventLoopPolicy", "Loop", "install", "new_event_loop", "run",
        "sync_to_async", "async_to_sync", "ThreadSensitiveContext",
    }
    files = importlib.resources.files("cxxloop")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_core.pyi").is_file()


def test_python_version_is_supported():
    assert sys.version_info >= (3, 11)
