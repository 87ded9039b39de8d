// SockOp: the awaitable of loop.sock_*(); see sock_op.hpp. This file holds
// its coroutine protocol (send, throw, close, am_send) and its fd watch;
// sock_calls.cpp holds the socket calls and the loop methods.
#include "sock_op.hpp"

#include <utility>

#include "compat.hpp"
#include "loop.hpp"
#include "methods.hpp"
#include "transport.hpp"

namespace cxxloop::py {
namespace {

SockOp* as_op(PyObject* o) { return reinterpret_cast<SockOp*>(o); }
CoreLoop* op_loop(SockOp* op) { return reinterpret_cast<CoreLoop*>(op->loop); }
ModuleState* op_state(SockOp* op) { return op_loop(op)->s.st; }

const char* method_name(SockKind kind) {
    switch (kind) {
        case SockKind::Recv: return "sock_recv";
        case SockKind::RecvInto: return "sock_recv_into";
        case SockKind::RecvFrom: return "sock_recvfrom";
        case SockKind::RecvFromInto: return "sock_recvfrom_into";
        case SockKind::SendAll: return "sock_sendall";
        case SockKind::SendTo: return "sock_sendto";
        case SockKind::Accept: return "sock_accept";
    }
    return "sock_op";
}

uint32_t direction(SockKind kind) {
    return kind == SockKind::SendAll || kind == SockKind::SendTo ? kWritable : kReadable;
}

// What asyncio's sock_* coroutines check first: no SSL socket, and in
// debug mode a non-blocking one.
int precheck(SockOp* op) {
    ModuleState* st = op_state(op);
    if (Py_TYPE(op->sock) != reinterpret_cast<PyTypeObject*>(st->socket_type)) {
        Ref r = Ref::steal(PyObject_CallOneArg(st->check_ssl_socket, op->sock));
        if (!r) return -1;
    }
    if (!op_loop(op)->s.debug) return 0;
    Ref timeout = Ref::steal(PyObject_CallMethodNoArgs(op->sock, op_state(op)->s_gettimeout));
    if (!timeout) return -1;
    Ref zero = Ref::steal(PyLong_FromLong(0));
    int blocking = zero ? PyObject_RichCompareBool(timeout.get(), zero.get(), Py_NE) : -1;
    if (blocking < 0) return -1;
    if (blocking) {
        PyErr_SetString(PyExc_ValueError, "the socket must be non-blocking");
        return -1;
    }
    return 0;
}

// The call would block: watch the fd with a Handle that calls this op, and
// return (a new reference to) the future to yield until the call is done.
PyObject* start_waiting(SockOp* op) {
    CoreLoop* loop = op_loop(op);
    if (check_closed(loop) < 0 || check_not_inherited(loop) < 0) return nullptr;
    ModuleState* st = op_state(op);
    int fd = sock_fileno(st, op->sock);
    if (fd < 0) return nullptr;
    // As asyncio, only checked once the call would block.
    Ref fileno = Ref::steal(PyLong_FromLong(fd));
    if (!fileno) return nullptr;
    Ref r = Ref::steal(PyObject_CallMethodOneArg(op->loop, op_state(op)->s_ensure_fd_no_transport, fileno.get()));
    if (!r) return nullptr;
    Ref future = Ref::steal(PyObject_CallMethodNoArgs(op->loop, op_state(op)->s_create_future));
    // Tasks wait only on futures that say they are being awaited.
    if (!future || PyObject_SetAttr(future.get(), op_state(op)->s_asyncio_future_blocking, Py_True) < 0) return nullptr;
    PyObject* self = reinterpret_cast<PyObject*>(op);
    PyObject* handle = watch_fd(loop, fd, op->sock, direction(op->kind), self, nullptr, 0, nullptr);
    if (!handle) return nullptr;
    op->fd = fd;
    op->handle = handle;
    op->future = Py_NewRef(future.get());
    op->state = SockOp::State::Waiting;
    return future.release();
}

void stop_watching(SockOp* op) {
    Ref handle = Ref::steal(std::exchange(op->handle, nullptr));
    if (handle) unwatch_fd(op_loop(op), op->fd, direction(op->kind), handle.get());
}

// Ends the op early (throw, close, finalize): it stops watching its fd and
// lets go of its future, which, as with asyncio's coroutines, is left as
// it is (a task cancelling us has cancelled it already).
void abandon(SockOp* op) {
    op->state = SockOp::State::Done;
    stop_watching(op);
    Py_CLEAR(op->future);
}

// The fd is ready: the Handle calls the op (tp_call). Completes the future
// unless the call would still block; asyncio's _sock_recv & co.
PyObject* io_ready(PyObject* self, PyObject*, PyObject*) {
    SockOp* op = as_op(self);
    if (op->state != SockOp::State::Waiting) Py_RETURN_NONE;
    Ref future = Ref::borrow(op->future);
    Ref done = Ref::steal(PyObject_CallMethodNoArgs(future.get(), op_state(op)->s_done));
    if (!done) return nullptr;
    if (done.get() == Py_True) Py_RETURN_NONE;  // cancelled: the task's throw() cleans up
    PyObject* value = nullptr;
    int rc = sock_attempt(op, &value);
    if (rc == 0) Py_RETURN_NONE;
    Ref r;
    if (rc > 0) {
        Ref result = Ref::steal(value);
        r = Ref::steal(PyObject_CallMethodOneArg(future.get(), op_state(op)->s_set_result, result.get()));
    } else {
        if (must_propagate()) return nullptr;
        Ref exc = Ref::steal(PyErr_GetRaisedException());
        r = Ref::steal(PyObject_CallMethodOneArg(future.get(), op_state(op)->s_set_exception, exc.get()));
    }
    if (!r) return nullptr;
    stop_watching(op);
    Py_RETURN_NONE;
}

PySendResult am_send(PyObject* self, PyObject* arg, PyObject** presult) {
    SockOp* op = as_op(self);
    *presult = nullptr;
    switch (op->state) {
        case SockOp::State::Fresh: {
            op->state = SockOp::State::Done;  // unless it has to wait, below
            if (arg != Py_None) {
                PyErr_SetString(PyExc_TypeError, "can't send non-None value to a just-started coroutine");
                return PYGEN_ERROR;
            }
            if (precheck(op) < 0) return PYGEN_ERROR;
            PyObject* value = nullptr;
            int rc = sock_attempt(op, &value);
            if (rc > 0) {
                *presult = value;
                return PYGEN_RETURN;
            }
            if (rc < 0 || !(*presult = start_waiting(op))) return PYGEN_ERROR;
            return PYGEN_NEXT;
        }
        case SockOp::State::Waiting: {
            // The task resumes us once the future is done.
            op->state = SockOp::State::Done;
            stop_watching(op);
            Ref future = Ref::steal(std::exchange(op->future, nullptr));
            *presult = PyObject_CallMethodNoArgs(future.get(), op_state(op)->s_result);
            return *presult ? PYGEN_RETURN : PYGEN_ERROR;
        }
        case SockOp::State::Done:
            break;
    }
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
    return PYGEN_ERROR;
}

// A generator's return value travels in StopIteration.
PyObject* stop_iteration(PyObject* value) {
    Ref exc = Ref::steal(PyObject_CallOneArg(PyExc_StopIteration, value));
    if (exc) PyErr_SetObject(PyExc_StopIteration, exc.get());
    return nullptr;
}

PyObject* send_method(PyObject* self, PyObject* arg) {
    PyObject* result;
    switch (am_send(self, arg, &result)) {
        case PYGEN_NEXT: return result;
        case PYGEN_RETURN: {
            Ref value = Ref::steal(result);
            return stop_iteration(value.get());
        }
        case PYGEN_ERROR: break;
    }
    return nullptr;
}

PyObject* iternext(PyObject* self) {
    PyObject* result;
    switch (am_send(self, Py_None, &result)) {
        case PYGEN_NEXT: return result;
        case PYGEN_RETURN: {
            Ref value = Ref::steal(result);
            return value.get() == Py_None ? nullptr : stop_iteration(value.get());
        }
        case PYGEN_ERROR: break;
    }
    return nullptr;
}

// throw(exc) or the old throw(type[, value[, traceback]]): the awaiting
// task was cancelled, or someone threw into it. The op ends and raises.
PyObject* throw_method(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "throw expected 1 to 3 arguments, got %zd", nargs);
        return nullptr;
    }
    abandon(as_op(self));
    PyObject* typ = args[0];
    PyObject* val = nargs > 1 ? args[1] : Py_None;
    PyObject* tb = nargs > 2 ? args[2] : Py_None;
    if (PyExceptionInstance_Check(typ)) {
        if (val != Py_None) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            return nullptr;
        }
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(typ)), typ);
    } else if (PyExceptionClass_Check(typ)) {
        PyErr_SetObject(typ, val);
    } else {
        PyErr_Format(PyExc_TypeError, "exceptions must be classes or instances deriving from BaseException, not %s",
                     Py_TYPE(typ)->tp_name);
        return nullptr;
    }
    if (tb != Py_None) {
        Ref exc = Ref::steal(PyErr_GetRaisedException());
        if (PyException_SetTraceback(exc.get(), tb) < 0) return nullptr;
        PyErr_SetRaisedException(exc.release());
    }
    return nullptr;
}

PyObject* close_method(PyObject* self, PyObject*) {
    abandon(as_op(self));
    Py_RETURN_NONE;
}

PyObject* await(PyObject* self) { return Py_NewRef(self); }

PyObject* get_name(PyObject* self, void*) { return PyUnicode_FromString(method_name(as_op(self)->kind)); }

PyObject* get_qualname(PyObject* self, void*) {
    return PyUnicode_FromFormat("Loop.%s", method_name(as_op(self)->kind));
}

// A coroutine never awaited warns, as asyncio's sock_* coroutines do; a
// waiting one that goes away stops watching its fd.
void finalize(PyObject* self) {
    SockOp* op = as_op(self);
    Ref pending = Ref::steal(PyErr_GetRaisedException());
    if (op->state == SockOp::State::Fresh) {
        if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1, "coroutine '%s' was never awaited", method_name(op->kind)) <
            0) {
            PyErr_WriteUnraisable(self);
        }
    } else if (op->state == SockOp::State::Waiting) {
        abandon(op);
    }
    PyErr_SetRaisedException(pending.release());
}

int traverse(PyObject* self, visitproc visit, void* arg) {
    SockOp* op = as_op(self);
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(op->loop);
    Py_VISIT(op->sock);
    Py_VISIT(op->arg);
    Py_VISIT(op->arg2);
    Py_VISIT(op->future);
    Py_VISIT(op->handle);
    Py_VISIT(op->data.obj);
    return 0;
}

int clear(PyObject* self) {
    SockOp* op = as_op(self);
    if (op->data.obj) PyBuffer_Release(&op->data);
    Py_CLEAR(op->handle);
    Py_CLEAR(op->future);
    Py_CLEAR(op->arg2);
    Py_CLEAR(op->arg);
    Py_CLEAR(op->sock);
    Py_CLEAR(op->loop);
    return 0;
}

void dealloc(PyObject* self) {
    PyTypeObject* tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc(self) < 0) return;  // resurrected
    PyObject_GC_UnTrack(self);
    clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

const PyMethodDef methods[] = {
    method_o<send_method>("send", "send(value): step the operation, as coroutine.send()."),
    method_fastcall<throw_method>("throw", "throw(exc): end the operation by raising exc, as coroutine.throw()."),
    method_noargs<close_method>("close", "End the operation, as coroutine.close()."),
    kMethodsEnd,
};

PyGetSetDef getsets[] = {
    {"__name__", get_name, nullptr, nullptr, nullptr},
    {"__qualname__", get_qualname, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

PyObject* sock_op_new(CoreLoop* loop, SockKind kind, PyObject* sock, PyObject* arg, PyObject* arg2) {
    SockOp* op = PyObject_GC_New(SockOp, loop->s.st->sock_op_type);
    if (!op) return nullptr;
    op->loop = Py_NewRef(reinterpret_cast<PyObject*>(loop));
    op->sock = Py_NewRef(sock);
    op->arg = Py_XNewRef(arg);
    op->arg2 = Py_XNewRef(arg2);
    op->future = nullptr;
    op->handle = nullptr;
    op->data = Py_buffer{};
    op->sent = 0;
    op->fd = -1;
    op->kind = kind;
    op->state = SockOp::State::Fresh;
    PyObject_GC_Track(op);
    return reinterpret_cast<PyObject*>(op);
}

int init_sock_op_type(PyObject* module, ModuleState* st) {
    PyType_Slot slots[] = {
        {Py_am_await, reinterpret_cast<void*>(await)},
        {Py_am_send, slot<am_send>()},
        {Py_tp_iter, reinterpret_cast<void*>(await)},
        {Py_tp_iternext, slot<iternext>()},
        {Py_tp_call, slot<io_ready>()},
        {Py_tp_finalize, reinterpret_cast<void*>(finalize)},
        {Py_tp_traverse, reinterpret_cast<void*>(traverse)},
        {Py_tp_clear, reinterpret_cast<void*>(clear)},
        {Py_tp_dealloc, reinterpret_cast<void*>(dealloc)},
        {Py_tp_methods, const_cast<PyMethodDef*>(methods)},
        {Py_tp_getset, getsets},
        {Py_tp_doc, const_cast<char*>("The awaitable a loop.sock_*() call returns.")},
        {0, nullptr},
    };
    PyType_Spec spec = {
        "cxxloop._core.SockOp",
        int(sizeof(SockOp)),
        0,
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
        slots,
    };
    st->sock_op_type = reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &spec, nullptr));
    if (!st->sock_op_type) return -1;
    return PyModule_AddObjectRef(module, "SockOp", reinterpret_cast<PyObject*>(st->sock_op_type));
}

}  // namespace cxxloop::py
