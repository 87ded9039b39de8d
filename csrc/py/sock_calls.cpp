// loop.sock_recv / sock_recv_into / sock_recvfrom / sock_recvfrom_into /
// sock_sendall / sock_sendto / sock_accept: each returns a SockOp
// (sock_op.hpp), and this file holds the socket call each one makes, as
// asyncio's selector loop makes it. The calls go through the socket
// object's own methods, so argument checks, errors and socket subclasses
// behave exactly as under asyncio. sock_connect (which resolves
// addresses) stays asyncio's.
#include <utility>

#include "loop.hpp"
#include "methods.hpp"
#include "sock_op.hpp"

namespace cxxloop::py {
namespace {

ModuleState* op_state(SockOp* op) { return reinterpret_cast<CoreLoop*>(op->loop)->s.st; }

// asyncio retries these; every other exception fails the call.
bool would_block() {
    if (!PyErr_ExceptionMatches(PyExc_BlockingIOError) && !PyErr_ExceptionMatches(PyExc_InterruptedError)) {
        return false;
    }
    PyErr_Clear();
    return true;
}

// Maps a method call's outcome to sock_attempt's convention.
int outcome(PyObject* value, PyObject** result) {
    if (value) {
        *result = value;
        return 1;
    }
    return would_block() ? 0 : -1;
}

PyObject* call(PyObject* sock, PyObject* name, PyObject* a) {
    PyObject* args[] = {sock, a};
    return PyObject_VectorcallMethod(name, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
}

PyObject* call(PyObject* sock, PyObject* name, PyObject* a, PyObject* b) {
    PyObject* args[] = {sock, a, b};
    return PyObject_VectorcallMethod(name, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
}

// recvfrom_into(buf, nbytes): nbytes 0 means len(buf), decided once.
int recvfrom_into(SockOp* op, PyObject** result) {
    int given = op->arg2 ? PyObject_IsTrue(op->arg2) : 0;
    if (given < 0) return -1;
    if (!given) {
        Py_ssize_t len = PyObject_Length(op->arg);
        if (len < 0) return -1;
        PyObject* nbytes = PyLong_FromSsize_t(len);
        if (!nbytes) return -1;
        Py_XSETREF(op->arg2, nbytes);
    }
    return outcome(call(op->sock, op_state(op)->s_recvfrom_into, op->arg, op->arg2), result);
}

// sendall: send what the kernel takes; the rest waits for the fd, held as
// a buffer export of the caller's object (no copy).
int sendall(SockOp* op, PyObject** result) {
    Ref sent;
    if (!op->data.obj) {
        sent = Ref::steal(call(op->sock, op_state(op)->s_send, op->arg));
        if (!sent && !would_block()) return -1;
        if (PyObject_GetBuffer(op->arg, &op->data, PyBUF_SIMPLE) < 0) return -1;
    } else {
        char* rest = static_cast<char*>(op->data.buf) + op->sent;
        Ref view = Ref::steal(PyMemoryView_FromMemory(rest, op->data.len - Py_ssize_t(op->sent), PyBUF_READ));
        if (!view) return -1;
        sent = Ref::steal(call(op->sock, op_state(op)->s_send, view.get()));
        if (!sent) return would_block() ? 0 : -1;
    }
    if (sent) {
        Py_ssize_t n = PyLong_AsSsize_t(sent.get());
        if (n < 0) return PyErr_Occurred() ? -1 : 0;
        op->sent += size_t(n);
    }
    if (op->sent < size_t(op->data.len)) return 0;
    PyBuffer_Release(&op->data);
    *result = Py_NewRef(Py_None);
    return 1;
}

// accept, then make the connection non-blocking, as asyncio's _sock_accept.
int try_accept(SockOp* op, PyObject** result) {
    Ref pair = Ref::steal(PyObject_CallMethodNoArgs(op->sock, op_state(op)->s_accept));
    if (!pair) return would_block() ? 0 : -1;
    if (!PyTuple_Check(pair.get()) || PyTuple_GET_SIZE(pair.get()) != 2) {
        PyErr_SetString(PyExc_TypeError, "sock.accept() must return (socket, address)");
        return -1;
    }
    Ref r = Ref::steal(call(PyTuple_GET_ITEM(pair.get(), 0), op_state(op)->s_setblocking, Py_False));
    if (!r) return -1;
    *result = pair.release();
    return 1;
}

PyObject* make(PyObject* loop, SockKind kind, PyObject* sock, PyObject* arg, PyObject* arg2) {
    return sock_op_new(reinterpret_cast<CoreLoop*>(loop), kind, sock, arg, arg2);
}

PyObject* sock_recv(PyObject* loop, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"sock", "n", nullptr};
    PyObject *sock, *n;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:sock_recv", const_cast<char**>(kwlist), &sock, &n)) {
        return nullptr;
    }
    return make(loop, SockKind::Recv, sock, n, nullptr);
}

PyObject* sock_recv_into(PyObject* loop, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"sock", "buf", nullptr};
    PyObject *sock, *buf;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:sock_recv_into", const_cast<char**>(kwlist), &sock, &buf)) {
        return nullptr;
    }
    return make(loop, SockKind::RecvInto, sock, buf, nullptr);
}

PyObject* sock_recvfrom(PyObject* loop, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"sock", "bufsize", nullptr};
    PyObject *sock, *bufsize;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:sock_recvfrom", const_cast<char**>(kwlist), &sock,
                                     &bufsize)) {
        return nullptr;
    }
    return make(loop, SockKind::RecvFrom, sock, bufsize, nullptr);
}

PyObject* sock_recvfrom_into(PyObject* loop, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"sock", "buf", "nbytes", nullptr};
    PyObject *sock, *buf, *nbytes = nullptr;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:sock_recvfrom_into", const_cast<char**>(kwlist), &sock,
                                     &buf, &nbytes)) {
        return nullptr;
    }
    return make(loop, SockKind::RecvFromInto, sock, buf, nbytes);
}

PyObject* sock_sendall(PyObject* loop, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"sock", "data", nullptr};
    PyObject *sock, *data;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:sock_sendall", const_cast<char**>(kwlist), &sock, &data)) {
        return nullptr;
    }
    return make(loop, SockKind::SendAll, sock, data, nullptr);
}

PyObject* sock_sendto(PyObject* loop, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"sock", "data", "address", nullptr};
    PyObject *sock, *data, *address;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO:sock_sendto", const_cast<char**>(kwlist), &sock, &data,
                                     &address)) {
        return nullptr;
    }
    return make(loop, SockKind::SendTo, sock, data, address);
}

PyObject* sock_accept(PyObject* loop, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"sock", nullptr};
    PyObject* sock;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:sock_accept", const_cast<char**>(kwlist), &sock)) {
        return nullptr;
    }
    return make(loop, SockKind::Accept, sock, nullptr, nullptr);
}

}  // namespace

int sock_attempt(SockOp* op, PyObject** result) {
    switch (op->kind) {
        case SockKind::Recv: return outcome(call(op->sock, op_state(op)->s_recv, op->arg), result);
        case SockKind::RecvInto: return outcome(call(op->sock, op_state(op)->s_recv_into, op->arg), result);
        case SockKind::RecvFrom: return outcome(call(op->sock, op_state(op)->s_recvfrom, op->arg), result);
        case SockKind::RecvFromInto: return recvfrom_into(op, result);
        case SockKind::SendAll: return sendall(op, result);
        case SockKind::SendTo: return outcome(call(op->sock, op_state(op)->s_sendto, op->arg, op->arg2), result);
        case SockKind::Accept: return try_accept(op, result);
    }
    PyErr_SetString(PyExc_SystemError, "unknown sock operation");
    return -1;
}

const PyMethodDef loop_sock_methods[] = {
    method_varargs_kw<sock_recv>("sock_recv", "sock_recv($self, sock, n)\n--\n\nReceive up to n bytes from the non-blocking socket."),
    method_varargs_kw<sock_recv_into>("sock_recv_into", "sock_recv_into($self, sock, buf)\n--\n\nReceive into buf; return the number of bytes."),
    method_varargs_kw<sock_recvfrom>("sock_recvfrom", "sock_recvfrom($self, sock, bufsize)\n--\n\nReceive a datagram; return (data, address)."),
    method_varargs_kw<sock_recvfrom_into>("sock_recvfrom_into", "sock_recvfrom_into($self, sock, buf, nbytes=0)\n--\n\nReceive a datagram into buf; return (nbytes, address)."),
    method_varargs_kw<sock_sendall>("sock_sendall", "sock_sendall($self, sock, data)\n--\n\nSend all of data."),
    method_varargs_kw<sock_sendto>("sock_sendto", "sock_sendto($self, sock, data, address)\n--\n\nSend a datagram; return the number of bytes sent."),
    method_varargs_kw<sock_accept>("sock_accept", "sock_accept($self, sock)\n--\n\nAccept a connection; return (conn, address) with conn non-blocking."),
    kMethodsEnd,
};

}  // namespace cxxloop::py
