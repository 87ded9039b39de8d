"""gunicorn worker classes: resolution by dotted path and by entry point."""

import importlib

import pytest

import cxxloop.workers
from parity import require


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
    module, _, name = base.rpartition(".")
    require("gunicorn")
    require(module.partition(".")[0])
    from gunicorn.util import load_class

    cls = load_class(uri)
    assert issubclass(cls, getattr(importlib.import_module(module), name))
    assert cls.__module__ == "cxxloop.workers"


def test_uvicorn_worker_uses_cxxloop_factory():
    require("gunicorn")
    require("uvicorn_worker")
    from uvicorn.config import Config

    config = Config(app=None, **cxxloop.workers.UvicornWorker.CONFIG_KWARGS)
    assert config.get_loop_factory() is cxxloop.new_event_loop


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="NoSuchWorker"):
        _ = cxxloop.workers.NoSuchWorker
