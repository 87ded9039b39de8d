"""cxxloop in subinterpreters with a GIL of their own, as its module
declares it supports (Py_mod_multiple_interpreters): each interpreter gets
its own module state, and loops in several interpreters run at once."""

from __future__ import annotations

import sys
import threading

import pytest

from parity import tls_contexts

if sys.version_info >= (3, 14):
    from concurrent import interpreters

    def run_isolated(code: str) -> None:
        interp = interpreters.create()
        try:
            interp.exec(code)
        finally:
            interp.close()

elif sys.version_info >= (3, 13):
    import _interpreters

    def run_isolated(code: str) -> None:
        interp = _interpreters.create(_interpreters.new_config("isolated"))
        try:
            failure = _interpreters.exec(interp, code)
        finally:
            _interpreters.destroy(interp)
        assert failure is None, failure

else:
    pytest.skip(
        "3.11 has no per-interpreter GIL, and 3.12.1 aborts at exit after an isolated interpreter is "
        "destroyed even when it ran only asyncio", allow_module_level=True)


def workload(cert_dir: str, out: str) -> str:
    """A TCP echo, a TLS echo and call_soon_threadsafe, in whatever
    interpreter runs it; writes 'ok' to `out`."""
    return f"""
import asyncio, os, ssl, threading, cxxloop

async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()

async def main():
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(os.path.join({cert_dir!r}, "cert.pem"), os.path.join({cert_dir!r}, "key.pem"))
    client_ctx = ssl.create_default_context(cafile=os.path.join({cert_dir!r}, "cert.pem"))
    for ssl_args in ({{}}, {{"ssl": client_ctx, "server_hostname": "localhost"}}):
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx if ssl_args else None)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, **ssl_args)
        for _ in range(50):
            writer.write(b"x" * 1000)
            assert await reader.readexactly(1000) == b"x" * 1000
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    threading.Thread(target=loop.call_soon_threadsafe, args=(done.set_result, "woken")).start()
    assert await done == "woken"

cxxloop.run(main())
with open({out!r}, "w") as f:
    f.write("ok")
"""


def test_a_loop_runs_in_an_isolated_interpreter(tmp_path):
    tls_contexts(tmp_path)  # the certificate's files, for the interpreter to load
    out = tmp_path / "out"
    run_isolated(workload(str(tmp_path), str(out)))
    assert out.read_text() == "ok"


def test_loops_in_several_interpreters_run_at_once(tmp_path):
    tls_contexts(tmp_path)
    outs = [tmp_path / f"out{i}" for i in range(3)]
    errors = []

    def one(out):
        try:
            run_isolated(workload(str(tmp_path), str(out)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(out,)) for out in outs]
    for t in threads:
        t.start()
    # And one in the main interpreter meanwhile.
    exec(workload(str(tmp_path), str(tmp_path / "main")), {})
    for t in threads:
        t.join()
    assert not errors
    assert [o.read_text() for o in outs] == ["ok"] * 3
    assert (tmp_path / "main").read_text() == "ok"
