"""Every private asyncio name cxxloop uses, looked up here and nowhere else.

cxxloop.Loop reuses asyncio's per-loop and per-connection Python code, and
the C++ core calls a few of asyncio's private helpers; both depend on names
that asyncio may rename or drop in any release. Each one is looked up in
this module, and every difference between CPython versions is decided here,
so that a new CPython that changes one of them fails
tests/test_asyncio_contract.py by name rather than a user's program.

The C++ extension reads its share (the names under "for the C++ core")
from this module when it is imported.

typeshed declares few of asyncio's private names: the lines that look up
one it does not carry a type: ignore[attr-defined].
"""

from __future__ import annotations

import inspect
import sys
from asyncio import (
    base_events,
    constants,
    coroutines,
    events,
    format_helpers,
    futures,
    selector_events,
    sslproto,
    streams,
    tasks,
    transports,
    unix_events,
)
from typing import Any

try:
    import _ssl
    import ssl
except ImportError:  # an interpreter built without OpenSSL
    _ssl = ssl = None  # type: ignore[assignment]

VERSION = sys.version_info[:2]

# --- classes cxxloop.Loop and its transports build on ---

# The stdlib loop whose Python methods Loop inherits.
UnixSelectorEventLoop = unix_events._UnixSelectorEventLoop
# asyncio's subprocess transport, around a child Loop starts itself.
UnixSubprocessTransport = unix_events._UnixSubprocessTransport  # type: ignore[attr-defined]
# asyncio's TLS state machine, the fallback TLS implementation.
SSLProtocol = sslproto.SSLProtocol

SSL_HANDSHAKE_TIMEOUT: float = constants.SSL_HANDSHAKE_TIMEOUT
SSL_SHUTDOWN_TIMEOUT: float = constants.SSL_SHUTDOWN_TIMEOUT
# The context SSLProtocol makes when given none (ssl=True).
create_transport_context = sslproto._create_transport_context


def ssl_message_callback(sslcontext: Any) -> Any:
    """The ssl module's TLS message debugging hook set on a context, or None."""
    return getattr(sslcontext, "_msg_callback", None)


# start_tls on the server side hands what a StreamReaderProtocol's reader
# holds unread on to the TLS object (the start of the client's handshake):
# asyncio's does from the releases whose start_tls reads that buffer.
# (It reads it with getattr(protocol, "_stream_reader", None): a constant.)
START_TLS_MOVES_STREAM_BUFFER = "_stream_reader" in base_events.BaseEventLoop.start_tls.__code__.co_consts


def stream_reader_buffer(protocol: Any) -> bytearray | None:
    """The unread bytes of a StreamReaderProtocol's reader, or None."""
    if not isinstance(protocol, streams.StreamReaderProtocol):
        return None
    reader = getattr(protocol, "_stream_reader", None)
    return None if reader is None else reader._buffer

# --- helpers the Python side calls ---

is_debug_mode = coroutines._is_debug_mode  # type: ignore[attr-defined]
check_sendfile_params = base_events.BaseEventLoop._check_sendfile_params  # type: ignore[attr-defined]


def start_serving(loop: Any, protocol_factory: Any, sock: Any, sslcontext: Any, server: Any, backlog: int,
                  ssl_handshake_timeout: Any, ssl_shutdown_timeout: Any, context: Any) -> None:
    """asyncio's own _start_serving (for TLS servers), with the context=
    that only 3.15's takes."""
    args = (protocol_factory, sock, sslcontext, server, backlog, ssl_handshake_timeout, ssl_shutdown_timeout)
    if context is not None:
        UnixSelectorEventLoop._start_serving(loop, *args, context=context)  # type: ignore[attr-defined]
    else:
        UnixSelectorEventLoop._start_serving(loop, *args)  # type: ignore[attr-defined]

# The coroutine-function test asyncio itself applies to callbacks: 3.14
# deprecates the public asyncio.iscoroutinefunction and keeps this one.
iscoroutinefunction = getattr(coroutines, "_iscoroutinefunction", None) or coroutines.iscoroutinefunction


def task_of_handle(handle: Any) -> Any:
    """The Task whose step `handle` runs, or None; found as _format_handle
    finds it."""
    task = getattr(handle._callback, "__self__", None)
    return task if isinstance(task, tasks.Task) else None


# The selector loop's self-pipe methods: cxxloop wakes with an eventfd of
# its C++ core instead, so Loop has none of them (_write_to_self, which
# outside code calls to wake a loop, it does have).
SELF_PIPE_METHODS = ("_make_self_pipe", "_close_self_pipe", "_read_from_self")

# The private names of asyncio's classes that cxxloop uses by name (the C++
# core looks up the ones in _core._PRIVATE_NAMES): what each class must
# still have. tests/test_asyncio_contract.py checks both.
PRIVATE_NAMES_USED: dict[Any, tuple[str, ...]] = {
    base_events.BaseEventLoop: (
        "_set_coroutine_origin_tracking", "_asyncgen_firstiter_hook", "_asyncgen_finalizer_hook",
        "_check_sendfile_params",
    ),
    selector_events.BaseSelectorEventLoop: ("_ensure_fd_no_transport", "_start_serving", "_remove_reader"),
    base_events.Server: ("_attach", "_detach"),
    futures.Future: ("_asyncio_future_blocking",),
    events.Handle: ("_run", "_callback"),
    streams.StreamReaderProtocol: ("_stream_reader",),
    **({ssl.SSLContext: ("_msg_callback",)} if ssl else {}),
}
# Attributes a running asyncio sets on its own objects, which the C++ core
# sets the same way: Task._log_destroy_pending (run_until_complete), and
# the executor state that BaseEventLoop.__init__ creates and Loop.__init__
# creates for it.
ATTRIBUTES_SET = {"_log_destroy_pending", "_default_executor", "_executor_shutdown_called"}
# The attributes of asyncio's loop that the Python methods Loop inherits
# use, which Loop.__init__ makes (the rest of that state is the C++ core's).
LOOP_ATTRIBUTES = (
    "_asyncgens", "_asyncgens_shutdown_called", "_coroutine_origin_tracking_enabled",
    "_coroutine_origin_tracking_saved_depth", "_default_executor", "_exception_handler",
    "_executor_shutdown_called", "_transports", "_unix_server_sockets",
)

# cxxloop's own private names among the core's: not asyncio's to keep.
OWN_PRIVATE_NAMES = {"_call_connection_lost", "_start_accepting", "_watch_finished"}

# --- event loop policies: deprecated in 3.14, removed in 3.16 ---

# asyncio's Unix policy, or None where asyncio has no policies any more.
UnixDefaultEventLoopPolicy: type | None = getattr(unix_events, "_UnixDefaultEventLoopPolicy", None)


def set_event_loop_policy(policy: Any) -> None:
    """asyncio.set_event_loop_policy, without 3.14's deprecation warning
    for callers (cxxloop.install) that exist to set one."""
    setter = getattr(events, "_set_event_loop_policy", None) or events.set_event_loop_policy
    setter(policy)


# 3.11's default child watcher waits in a thread and reports the exit with
# call_soon_threadsafe, so process_exited() runs in that thread's empty
# context; from 3.12 the pidfd watcher reports it from the loop.
CHILD_EXIT_IN_EMPTY_CONTEXT = VERSION < (3, 12)


def child_watcher_of_policy() -> Any:
    """The child watcher a program set on asyncio's policy through the
    child-watcher API (removed in 3.14), unless it is one of the kinds the
    policy makes by itself, which do what Loop does for itself. None if
    there is none."""
    default_kinds = tuple(
        getattr(unix_events, name)
        for name in ("PidfdChildWatcher", "ThreadedChildWatcher")
        if VERSION < (3, 14) and hasattr(unix_events, name)
    )
    if not default_kinds:
        return None
    policy = getattr(events, "_event_loop_policy", None)
    watcher = getattr(policy, "_watcher", None) if policy is not None else None
    return None if type(watcher) in default_kinds else watcher


# --- for the C++ core (csrc/py/module_state.cpp reads these at import) ---

# The Python base of the handles call_soon_threadsafe returns: 3.14 gave
# them a class of their own, whose cancel() waits for a running callback.
ThreadSafeHandle = getattr(events, "_ThreadSafeHandle", events.Handle)

set_running_loop = events._set_running_loop
get_running_loop = events._get_running_loop
format_callback_source = format_helpers._format_callback_source
# asyncio's description of a handle, as its debug mode logs a slow one: the
# task for a task's step, else the callback and where it is defined. The
# slow-callback watch shows it too.
format_handle = base_events._format_handle  # type: ignore[attr-defined]
set_nodelay = base_events._set_nodelay  # type: ignore[attr-defined]
set_result_unless_cancelled = futures._set_result_unless_cancelled  # type: ignore[attr-defined]
check_ssl_socket = base_events._check_ssl_socket  # type: ignore[attr-defined]
FlowControlMixin = transports._FlowControlMixin

# The ssl module's classes the C++ TLS transport works with, None in an
# interpreter built without ssl (which has no TLS to offer). _ssl's
# _SSLSocket is the object behind an SSLObject that holds its OpenSSL SSL.
SSLObject = ssl.SSLObject if ssl else None
MemoryBIO = ssl.MemoryBIO if ssl else None
SSLSocketType = _ssl._SSLSocket if _ssl else None  # type: ignore[attr-defined]
SSLError = ssl.SSLError if ssl else None
SSLWantReadError = ssl.SSLWantReadError if ssl else None
SSLSyscallError = ssl.SSLSyscallError if ssl else None
CertificateError = ssl.CertificateError if ssl else None
# What the TLS transport reads of an SSLObject (the C++ core by name, see
# _core._PRIVATE_NAMES): its _sslobj, the _ssl._SSLSocket holding the SSL.
SSL_OBJECT_ATTRIBUTES = ("_sslobj",)
SENDFILE_TRY_NATIVE = constants._SendfileMode.TRY_NATIVE
SENDFILE_FALLBACK = constants._SendfileMode.FALLBACK
ACCEPT_RETRY_DELAY: float = constants.ACCEPT_RETRY_DELAY

# 3.13.3 and later pass create_task(**kwargs) straight to the task factory;
# earlier releases only know name= and context=.
CREATE_TASK_PASSES_KWARGS = bool(base_events.BaseEventLoop.create_task.__code__.co_flags & inspect.CO_VARKEYWORDS)
# Server._attach/_detach take the transport from 3.13 on.
SERVER_ATTACH_TAKES_TRANSPORT = len(inspect.signature(base_events.Server._attach).parameters) == 2  # type: ignore[attr-defined]
# 3.13 shows a failed callback's arguments only in debug mode.
FORMAT_CALLBACK_SOURCE_HAS_DEBUG = "debug" in inspect.signature(format_helpers._format_callback_source).parameters
# asyncio's socket transport writelines() joins the items (b"".join)
# before 3.12, and takes each as a memoryview since; its TypeError shows it.
SOCKET_WRITELINES_JOINS = "writelines" not in vars(selector_events._SelectorSocketTransport)  # type: ignore[attr-defined]
# The bytes a queued datagram counts beyond its payload (8 from 3.13; an
# attribute from 3.13.1), and whether an empty one is sent (from 3.13) or
# dropped.
DATAGRAM_HEADER_SIZE: int = getattr(
    selector_events._SelectorDatagramTransport, "_header_size", 8 if VERSION >= (3, 13) else 0  # type: ignore[attr-defined]
)
DATAGRAM_SENDS_EMPTY = VERSION >= (3, 13)
# asyncio's TLS transport: from 3.14 its is_closing() also follows the
# socket's, and the shutdown timeout stays armed until connection_lost.
TLS_IS_CLOSING_FOLLOWS_SOCKET = hasattr(sslproto.SSLProtocol, "_is_transport_closing")
TLS_SHUTDOWN_TIMEOUT_UNTIL_LOST = VERSION >= (3, 14)
