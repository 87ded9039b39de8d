"""add_signal_handler / remove_signal_handler, and ^C."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest


def test_handler_runs_in_the_loop_with_args(loop):
    got = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, lambda *a: got.set_result(a), "x", 2)
    try:
        loop.call_later(0.01, os.kill, os.getpid(), signal.SIGUSR1)
        assert loop.run_until_complete(asyncio.wait_for(got, 5)) == ("x", 2)
    finally:
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


def test_signal_while_blocked_in_poll(loop):
    # The loop sleeps in epoll_wait; the signal must wake it via the wakeup fd.
    got = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR2, got.set_result, "woke")
    try:
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR2)).start()
        assert loop.run_until_complete(asyncio.wait_for(got, 5)) == "woke"
    finally:
        loop.remove_signal_handler(signal.SIGUSR2)


def test_many_signals_each_call_handler(loop):
    count = [0]
    loop.add_signal_handler(signal.SIGUSR1, lambda: count.__setitem__(0, count[0] + 1))
    try:
        for _ in range(5):
            os.kill(os.getpid(), signal.SIGUSR1)
            loop.run_until_complete(asyncio.sleep(0.005))
        assert count[0] == 5
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)


def test_remove_sigint_restores_keyboard_interrupt(loop):
    loop.add_signal_handler(signal.SIGINT, print)
    loop.remove_signal_handler(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_close_removes_handlers(loop):
    loop.add_signal_handler(signal.SIGUSR1, print)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_bad_signals(loop):
    with pytest.raises(TypeError, match="sig must be an int, not 'x'"):
        loop.add_signal_handler("x", print)
    with pytest.raises(ValueError, match="invalid signal number 0"):
        loop.add_signal_handler(0, print)
    with pytest.raises(RuntimeError, match="cannot be caught"):
        loop.add_signal_handler(signal.SIGKILL, print)
    assert loop._signal_handlers == {}

    async def coro_fn():
        pass

    with pytest.raises(TypeError, match="coroutines cannot be used with add_signal_handler"):
        loop.add_signal_handler(signal.SIGUSR1, coro_fn)


def test_not_in_main_thread(loop):
    errors = []

    def worker():
        try:
            loop.add_signal_handler(signal.SIGUSR1, print)
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert len(errors) == 1 and "main thread" in str(errors[0])


def _run_child(code, sig):
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_ctrl_c_interrupts_cxxloop_run():
    # asyncio.Runner turns ^C into cancelling the main task, then re-raises
    # KeyboardInterrupt; the poll must be interrupted to notice.
    code, out, err = _run_child(
        """
        import asyncio, cxxloop
        async def main():
            print("ready", flush=True)
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                print("cancelled", flush=True)
                raise
        try:
            cxxloop.run(main())
        except KeyboardInterrupt:
            print("keyboard interrupt", flush=True)
        """,
        signal.SIGINT,
    )
    assert out.split() == ["cancelled", "keyboard", "interrupt"], err
    assert code == 0


def test_ctrl_c_interrupts_plain_run_forever():
    code, out, err = _run_child(
        """
        import cxxloop
        loop = cxxloop.new_event_loop()
        loop.call_soon(lambda: print("ready", flush=True))
        try:
            loop.run_forever()
        except KeyboardInterrupt:
            print("keyboard interrupt", flush=True)
        finally:
            loop.close()
        """,
        signal.SIGINT,
    )
    assert "keyboard interrupt" in out, err
    assert code == 0


def test_sigterm_handler_stops_server_like_program():
    code, out, err = _run_child(
        """
        import asyncio, signal, cxxloop
        async def main():
            stop = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, "term")
            print("ready", flush=True)
            print(await stop, flush=True)
        cxxloop.run(main())
        """,
        signal.SIGTERM,
    )
    assert out.split() == ["term"], err
    assert code == 0


def test_pending_signal_handler_runs_before_the_loop_blocks(loop):
    # interrupt_main() trips SIGINT without a real signal, and as a C
    # callback it leaves no bytecode to run the handler: nothing interrupts
    # the poll, so the loop must run the pending handler itself.
    import _thread

    loop.call_soon(_thread.interrupt_main)
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(loop.create_future())  # never resolved
