// SockOp: what loop.sock_recv() & co. return, a coroutine-like awaitable
// whose steps run in C++.
//
// Like the coroutine asyncio's sock_* methods return, it does nothing until
// awaited (a never-awaited one warns), then: try the socket call at once;
// if it would block, watch the fd with a Handle that calls the SockOp back,
// and yield a future until the call has gone through. It has send, throw,
// close and __await__, so asyncio.iscoroutine() holds and create_task()
// accepts it; Tasks drive it through am_send without a Python frame.
#pragma once

#include "module_state.hpp"

namespace cxxloop::py {

struct CoreLoop;

enum class SockKind : uint8_t { Recv, RecvInto, RecvFrom, RecvFromInto, SendAll, SendTo, Accept };

struct SockOp {
    PyObject_HEAD
    PyObject* loop;    // the CoreLoop
    PyObject* sock;
    PyObject* arg;     // nbytes, the buffer, or the data
    PyObject* arg2;    // recvfrom_into's nbytes, or sendto's address; may be null
    PyObject* future;  // while waiting
    PyObject* handle;  // the fd watch's Handle, while waiting
    Py_buffer data;    // sock_sendall's data once part of it is sent
    size_t sent;       // sock_sendall: bytes of `data` already sent
    int fd;
    SockKind kind;
    enum class State : uint8_t { Fresh, Waiting, Done } state;
};

// The socket call of `op`, tried once. 1: done, *result holds the value;
// 0: it would block; -1: it failed with the exception set.
int sock_attempt(SockOp* op, PyObject** result);

// A new SockOp (the loop methods in sock_calls.cpp build them).
PyObject* sock_op_new(CoreLoop* loop, SockKind kind, PyObject* sock, PyObject* arg, PyObject* arg2);

int init_sock_op_type(PyObject* module, ModuleState* st);

}  // namespace cxxloop::py
