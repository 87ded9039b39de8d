"""Real servers on cxxloop: gunicorn and uvicorn processes on loopback
answering real requests (the in-process aiohttp exchange is in
test_streams_server.py)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from parity import require

APPS = Path(__file__).resolve().parent / "apps"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(port, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                return json.loads(resp.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start(cmd):
    env = dict(os.environ, PYTHONPATH=str(APPS))
    # A session of its own, so a hung server's workers can be killed too.
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def require_worker(worker):
    """Skip unless gunicorn and the framework behind `worker` are installed."""
    require("gunicorn")
    require("aiohttp" if "aiohttp" in worker.lower() else "uvicorn_worker")


def stop(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"server did not stop on {sig!r}:\n{out}")
    return proc.returncode, out


@pytest.mark.parametrize(
    ("worker", "app"),
    [
        ("cxxloop.workers.AiohttpWorker", "aiohttp_app:make_app"),
        ("egg:cxxloop#aiohttp", "aiohttp_app:make_app"),
        ("cxxloop.workers.UvicornWorker", "asgi_app:app"),
        ("egg:cxxloop#uvicorn", "asgi_app:app"),
    ],
)
def test_gunicorn_worker_serves_reloads_and_stops(worker, app):
    require_worker(worker)
    port = free_port()
    proc = start(
        [sys.executable, "-m", "gunicorn", app, "-k", worker, "-w", "1",
         "-b", f"127.0.0.1:{port}", "--graceful-timeout", "10"]
    )
    try:
        first = get_json(port)
        assert first["loop"] == "cxxloop._loop"
        # SIGHUP: the arbiter replaces the worker; the new one runs cxxloop too.
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while (second := get_json(port))["pid"] == first["pid"]:
            assert time.monotonic() < deadline, "worker was not replaced after SIGHUP"
            time.sleep(0.2)
        assert second["loop"] == "cxxloop._loop"
    finally:
        code, out = stop(proc)
    assert code == 0, out


def test_uvicorn_loop_option():
    require("uvicorn")
    port = free_port()
    proc = start(
        [sys.executable, "-m", "uvicorn", "asgi_app:app", "--loop", "cxxloop:new_event_loop",
         "--port", str(port), "--host", "127.0.0.1"]
    )
    try:
        assert get_json(port)["loop"] == "cxxloop._loop"
    finally:
        code, out = stop(proc, signal.SIGINT)
    assert code == 0, out


# gunicorn's SIGQUIT is a quick shutdown. With --graceful-timeout above
# stop()'s 30 s, a worker that ignores SIGQUIT makes stop() fail instead of
# being killed by the arbiter in time.
@pytest.mark.parametrize(
    ("worker", "app"),
    [("cxxloop.workers.AiohttpWorker", "aiohttp_app:make_app"),
     ("cxxloop.workers.UvicornWorker", "asgi_app:app")],
)
def test_gunicorn_quick_shutdown_on_sigquit(worker, app):
    require_worker(worker)
    port = free_port()
    proc = start(
        [sys.executable, "-m", "gunicorn", app, "-k", worker,
         "-w", "2", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "60"]
    )
    try:
        assert get_json(port)["loop"] == "cxxloop._loop"
    finally:
        code, out = stop(proc, signal.SIGQUIT)
    assert code == 0, out
    assert "Handling signal: quit" in out
    assert "SIGKILL" not in out, out
