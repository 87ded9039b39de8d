"""Running one coroutine on asyncio's loop and on cxxloop, to compare what
each did. Tests import it as a sibling module."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import ssl
import subprocess
import sys

import cxxloop

LOOPS = {"asyncio": asyncio.SelectorEventLoop, "cxxloop": cxxloop.new_event_loop}


def on_both(main, *args):
    """main(*args) on each loop, in a fresh loop each; returns {loop name: result}."""
    results = {}
    for name, factory in LOOPS.items():
        with asyncio.Runner(loop_factory=factory) as runner:
            results[name] = runner.run(asyncio.wait_for(main(*args), 30))
    return results


def agree(main, *args):
    """main's result, checked to be the same on both loops."""
    results = on_both(main, *args)
    assert results["cxxloop"] == results["asyncio"], results
    return results["cxxloop"]


@contextlib.contextmanager
def asyncio_leaks_dropped():
    """In some fault scenarios asyncio's own loop leaves a socket or
    transport to the GC, which warns about it; those warnings are asyncio's
    and are dropped here (collected before leaving, so none is reported in
    a later test)."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    finally:
        gc.collect()
        sys.unraisablehook = hook


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


class LifecycleRecorder:
    """A protocol mixin recording connection_made, pause/resume_writing and
    connection_lost in `events`; `lost` resolves on connection_lost."""

    def __init__(self):
        self.events = []
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set_result(exc)


def tls_contexts(directory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for 'localhost'
    (made in `directory` unless one is there already), and a client
    context that trusts it; fresh contexts on each call."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
             "-keyout", key, "-out", cert],
            check=True, capture_output=True,
        )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=cert)
    return server, client
