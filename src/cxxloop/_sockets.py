"""The loop's sock_* coroutines and the native half of sock_sendfile.

Each tries the syscall first and, only if it would block, waits for the fd
with a one-shot add_reader/add_writer that is removed on every way out,
cancellation included. asyncio's semantics and messages; written over the
loop's C fd watches rather than in C++ (see docs/streams.md).
"""

from __future__ import annotations

import errno
import io
import os
import socket
from asyncio import base_events, exceptions
from typing import Any, Callable, TypeVar

_T = TypeVar("_T")

# Errors of a first os.sendfile() call that mean "this file or socket cannot
# use sendfile", so sock_sendfile falls back to reading and sending.
_SENDFILE_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP, errno.ESPIPE}


def _wake(fut: Any) -> None:
    if not fut.done():
        fut.set_result(None)


def _check_sock(sock: socket.socket) -> None:
    base_events._check_ssl_socket(sock)
    if sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


class SocketMethods:
    """Mixin of Loop: needs create_future and the fd watch methods."""

    async def _fd_ready(self, sock: socket.socket, write: bool) -> None:
        fd = sock.fileno()
        fut = self.create_future()  # type: ignore[attr-defined]
        add = self.add_writer if write else self.add_reader  # type: ignore[attr-defined]
        remove = self.remove_writer if write else self.remove_reader  # type: ignore[attr-defined]
        add(fd, _wake, fut)
        try:
            await fut
        finally:
            remove(fd)

    async def _retry(self, sock: socket.socket, write: bool, op: Callable[..., _T], *args: Any) -> _T:
        _check_sock(sock)
        while True:
            try:
                return op(*args)
            except (BlockingIOError, InterruptedError):
                await self._fd_ready(sock, write)

    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        return await self._retry(sock, False, sock.recv, n)

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        return await self._retry(sock, False, sock.recv_into, buf)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        return await self._retry(sock, False, sock.recvfrom, bufsize)

    async def sock_recvfrom_into(self, sock: socket.socket, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
        return await self._retry(sock, False, sock.recvfrom_into, buf, nbytes or len(buf))

    async def sock_sendto(self, sock: socket.socket, data: Any, address: Any) -> int:
        return await self._retry(sock, True, sock.sendto, data, address)

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        _check_sock(sock)
        view = memoryview(data).cast("B")
        sent = 0
        while sent < len(view):
            try:
                sent += sock.send(view[sent:])
            except (BlockingIOError, InterruptedError):
                await self._fd_ready(sock, True)

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        conn, address = await self._retry(sock, False, sock.accept)
        conn.setblocking(False)
        return conn, address

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        _check_sock(sock)
        if sock.family != getattr(socket, "AF_UNIX", None):
            resolved = await self._ensure_resolved(  # type: ignore[attr-defined]
                address, family=sock.family, type=sock.type, proto=sock.proto, loop=self
            )
            address = resolved[0][4]
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass
        # In progress: the socket turns writable when the handshake ends,
        # and SO_ERROR says how.
        while True:
            await self._fd_ready(sock, True)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                return
            if err not in (errno.EINPROGRESS, errno.EAGAIN, errno.EINTR):
                raise OSError(err, f"Connect call failed {address}")

    async def _sock_sendfile_native(self, sock: socket.socket, file: Any, offset: int, count: int | None) -> int:
        # Called by BaseEventLoop.sock_sendfile, which checked the arguments
        # and falls back to read + sock_sendall on SendfileNotAvailableError.
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation) as err:
            raise exceptions.SendfileNotAvailableError("not a regular file") from err
        try:
            size = os.fstat(fileno).st_size
        except OSError as err:
            raise exceptions.SendfileNotAvailableError("not a regular file") from err
        todo = count if count else size - offset
        sent = 0
        try:
            while sent < todo:
                try:
                    n = os.sendfile(sock.fileno(), fileno, offset + sent, todo - sent)
                except (BlockingIOError, InterruptedError):
                    await self._fd_ready(sock, True)
                    continue
                except OSError as exc:
                    if sent == 0 and exc.errno in _SENDFILE_UNSUPPORTED:
                        raise exceptions.SendfileNotAvailableError("os.sendfile call failed") from exc
                    raise
                if n == 0:
                    break  # end of file
                sent += n
            return sent
        finally:
            if sent > 0:
                file.seek(offset + sent)
