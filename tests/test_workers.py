"""gunicorn worker classes: resolution by dotted path and by entry point."""

import pytest
from gunicorn.util import load_class

import cxxloop.workers


@pytest.mark.parametrize(
    ("uri", "base"),
    [
        ("cxxloop.workers.AiohttpWorker", "aiohttp.worker.GunicornWebWorker"),
        ("egg:cxxloop#aiohttp", "aiohttp.worker.GunicornWebWorker"),
        ("cxxloop.workers.UvicornWorker", "uvicorn_worker.UvicornWorker"),
        ("egg:cxxloop#uvicorn", "uvicorn_worker.UvicornWorker"),
    ],
)
def test_gunicorn_resolves_worker(uri, base):
    cls = load_class(uri)
    module, _, name = base.rpartition(".")
    assert issubclass(cls, getattr(__import__(module, fromlist=[name]), name))
    assert cls.__module__ == "cxxloop.workers"


def test_uvicorn_worker_uses_cxxloop_factory():
    from uvicorn.config import Config

    config = Config(app=None, **cxxloop.workers.UvicornWorker.CONFIG_KWARGS)
    assert config.get_loop_factory() is cxxloop.new_event_loop


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="NoSuchWorker"):
        cxxloop.workers.NoSuchWorker
