// The accept loop of a plain (non-TLS) server: asyncio's _accept_connection
// and _accept_connection2 in one C++ callback, without a task per
// connection.
//
// Loop._start_serving calls loop._start_accepting(protocol_factory, sock,
// server, backlog, context), which watches the listening fd with a Handle calling an
// Acceptor. On each readable event the Acceptor accepts up to `backlog`
// connections with accept4 (non-blocking and close-on-exec in the same
// call), wraps each in a socket.socket, calls protocol_factory() and
// creates the StreamTransport, which schedules connection_made; each
// connection is set up in a contextvars.Context of its own. Errors
// follow asyncio: a connection whose set-up fails is closed and, in debug
// mode only, reported; running out of fds (EMFILE, ENFILE, ENOBUFS,
// ENOMEM) is reported, and accepting stops for ACCEPT_RETRY_DELAY before
// the socket is watched again, so a full fd table does not
// make the loop spin.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <vector>

#include "compat.hpp"
#include "handle.hpp"
#include "methods.hpp"
#include "stream_transport.hpp"

namespace cxxloop::py {
namespace {

struct Acceptor {
    PyObject_HEAD
    PyObject* loop;              // the CoreLoop
    PyObject* protocol_factory;
    PyObject* sock;              // the listening socket.socket
    PyObject* server;            // asyncio Server or None
    // The context each connection's copy is made from (3.15's Server
    // passes its own), or null for the one current when it is accepted.
    PyObject* context;
    int fd;
    int family;
    int type;
    int proto;
    int backlog;
};

Acceptor* as_acceptor(PyObject* o) { return reinterpret_cast<Acceptor*>(o); }
ModuleState* acceptor_state(Acceptor* a) { return reinterpret_cast<CoreLoop*>(a->loop)->s.st; }

bool out_of_resources(int err) { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }

int call_handler(Acceptor* a, PyObject* context) {
    Ref r = Ref::steal(PyObject_CallMethodOneArg(a->loop, acceptor_state(a)->s_call_exception_handler, context));
    return r ? 0 : -1;
}

// Out of fds (exc): report, stop watching, and serve again after asyncio's
// constants.ACCEPT_RETRY_DELAY (read now, as asyncio reads it).
int back_off(Acceptor* a, PyObject* exc) {
    ModuleState* st = acceptor_state(a);
    Ref trsock = Ref::steal(PyObject_CallOneArg(st->TransportSocket, a->sock));
    if (!trsock) return -1;
    Ref context = Ref::steal(Py_BuildValue("{sssOsO}", "message", "socket.accept() out of system resource",
                                           "exception", exc, "socket", trsock.get()));
    if (!context || call_handler(a, context.get()) < 0) return -1;
    Ref fd = Ref::steal(PyLong_FromLong(a->fd));
    if (!fd) return -1;
    Ref r = Ref::steal(PyObject_CallMethodOneArg(a->loop, st->s_remove_reader_, fd.get()));
    if (!r) return -1;
    Ref restart = Ref::steal(PyObject_GetAttr(a->loop, st->s_start_accepting));
    Ref backlog = Ref::steal(PyLong_FromLong(a->backlog));
    if (!restart || !backlog) return -1;
    PyObject* args[] = {a->loop,   st->accept_retry_delay, restart.get(),
                        a->protocol_factory, a->sock,      a->server,
                        backlog.get(), a->context ? a->context : Py_None};
    r = Ref::steal(PyObject_VectorcallMethod(st->s_call_later, args, 8 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    return r ? 0 : -1;
}

// The errno of the raised exception if it is an OSError, else 0.
int raised_errno(ModuleState* st) {
    if (!PyErr_ExceptionMatches(PyExc_OSError)) return 0;
    Ref exc = Ref::steal(PyErr_GetRaisedException());
    Ref err = Ref::steal(PyObject_GetAttr(exc.get(), st->s_errno_));
    long n = err && PyLong_Check(err.get()) ? PyLong_AsLong(err.get()) : 0;
    PyErr_Clear();
    PyErr_SetRaisedException(exc.release());
    return int(n);
}

// Accepts one connection into *conn (non-blocking): 1; nothing to accept
// now: 0; an error: -1 with it raised. A plain socket.socket is accepted
// with accept4, non-blocking and close-on-exec in one call; a subclass
// through its own accept(), as asyncio calls it.
int accept_one(Acceptor* a, PyObject** conn) {
    ModuleState* st = acceptor_state(a);
    if (Py_TYPE(a->sock) != reinterpret_cast<PyTypeObject*>(st->socket_type)) {
        Ref pair = Ref::steal(PyObject_CallMethodNoArgs(a->sock, st->s_accept));
        if (!pair) {
            bool empty = PyErr_ExceptionMatches(PyExc_BlockingIOError) ||
                         PyErr_ExceptionMatches(PyExc_InterruptedError) ||
                         PyErr_ExceptionMatches(PyExc_ConnectionAbortedError);
            if (!empty) return -1;
            PyErr_Clear();
            return 0;
        }
        PyObject* c = PyTuple_Check(pair.get()) && PyTuple_GET_SIZE(pair.get()) == 2 ? PyTuple_GET_ITEM(pair.get(), 0)
                                                                                      : nullptr;
        if (!c) {
            PyErr_SetString(PyExc_TypeError, "sock.accept() must return (socket, address)");
            return -1;
        }
        Ref r = Ref::steal(PyObject_CallMethodOneArg(c, st->s_setblocking, Py_False));
        if (!r) return -1;
        *conn = Py_NewRef(c);
        return 1;
    }
    int fd = accept4(a->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) return 0;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    // A socket.socket, as socket.accept() makes. SOCK_NONBLOCK in the type
    // tells it the fd is non-blocking already (timeout 0, no fcntl);
    // socket.type leaves the flag out.
    *conn = PyObject_CallFunction(st->socket_type, "iiii", a->family, a->type | SOCK_NONBLOCK, a->proto, fd);
    if (*conn) return 1;
    close(fd);
    return -1;
}

// In debug mode, what asyncio's _accept_connection2 reports when setting
// up an accepted connection fails; otherwise the failure is dropped.
int report_setup_error(Acceptor* a, PyObject* protocol) {
    if (must_propagate()) return -1;
    Ref exc = Ref::steal(PyErr_GetRaisedException());
    if (!reinterpret_cast<CoreLoop*>(a->loop)->s.debug) return 0;
    Ref context = Ref::steal(Py_BuildValue("{sssO}", "message",
                                           "Error on transport creation for incoming connection", "exception",
                                           exc.get()));
    if (!context) return -1;
    if (protocol && PyDict_SetItemString(context.get(), "protocol", protocol) < 0) return -1;
    return call_handler(a, context.get());
}

// The context an accepted connection is set up and runs in: a copy of the
// server's, or of the current one, as asyncio's accept task runs in a copy
// of the context the server was started from. A new reference.
PyObject* connection_context(Acceptor* a) {
    return a->context ? PyContext_Copy(a->context) : PyContext_CopyCurrent();
}

// Sets up the connection inside its context: the protocol factory runs
// there, so what it sets stays with this connection.
PyObject* new_connection(Acceptor* a, PyObject* conn, PyObject* context, Ref* protocol) {
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(a->loop);
    if (PyContext_Enter(context) < 0) return nullptr;
    *protocol = Ref::steal(PyObject_CallNoArgs(a->protocol_factory));
    PyObject* transport = nullptr;
    if (*protocol) {
        // Given a server's context, the transport runs in the copy itself,
        // as 3.15's does; else it copies the one current here, as asyncio's
        // earlier transports do.
        transport = stream_transport_new(loop, conn, protocol->get(), Py_None, Py_None, a->server,
                                         a->context ? context : Py_None);
    }
    Ref pending_exc = Ref::steal(PyErr_GetRaisedException());
    PyContext_Exit(context);
    PyErr_SetRaisedException(pending_exc.release());
    return transport;
}

// One accepted connection: its protocol and transport.
int serve(Acceptor* a, PyObject* conn) {
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(a->loop);
    if (loop->s.debug) {
        Ref r = Ref::steal(PyObject_CallMethod(loop->s.st->logger, "debug", "sOO", "%r got a new connection: %r", a->server,
                                               conn));
        if (!r) return -1;
    }
    Ref protocol;
    Ref context = Ref::steal(connection_context(a));
    Ref transport = context ? Ref::steal(new_connection(a, conn, context.get(), &protocol)) : Ref();
    if (transport) return 0;
    // Neither the protocol nor a transport owns the connection: close it.
    Ref pending = Ref::steal(PyErr_GetRaisedException());
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(conn, loop->s.st->s_close));
    if (!r) PyErr_Clear();
    PyErr_SetRaisedException(pending.release());
    return report_setup_error(a, protocol.get());
}

// True while the listening fd's reader is still this acceptor: the
// protocol factory (or anything it called) may have closed the server.
bool still_accepting(Acceptor* a) {
    const std::vector<FdWatch>& fds = reinterpret_cast<CoreLoop*>(a->loop)->s.fds;
    if (size_t(a->fd) >= fds.size() || !fds[size_t(a->fd)].reader) return false;
    return handle_data(fds[size_t(a->fd)].reader)->callback == reinterpret_cast<PyObject*>(a);
}

// The listening fd is readable: accept up to `backlog` connections.
PyObject* accept_ready(PyObject* self, PyObject*, PyObject*) {
    Acceptor* a = as_acceptor(self);
    Ref keep = Ref::borrow(self);  // back_off drops the watch that owns us
    for (int i = 0; i < a->backlog && still_accepting(a); ++i) {
        PyObject* accepted = nullptr;
        int rc = accept_one(a, &accepted);
        if (rc == 0) break;
        if (rc < 0) {
            if (!out_of_resources(raised_errno(acceptor_state(a)))) return nullptr;  // the Handle reports it
            Ref exc = Ref::steal(PyErr_GetRaisedException());
            if (back_off(a, exc.get()) < 0) return nullptr;
            break;
        }
        Ref conn = Ref::steal(accepted);
        if (serve(a, conn.get()) < 0) return nullptr;
    }
    Py_RETURN_NONE;
}

int to_int(PyObject* v, int* out) {
    int overflow;
    long n = PyLong_AsLongAndOverflow(v, &overflow);
    if (n == -1 && PyErr_Occurred()) return -1;
    if (overflow || n < INT32_MIN || n > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to C int");
        return -1;
    }
    *out = int(n);
    return 0;
}

int int_attr(PyObject* o, PyObject* name, int* out) {
    Ref v = Ref::steal(PyObject_GetAttr(o, name));
    return v ? to_int(v.get(), out) : -1;
}

// loop._start_accepting(protocol_factory, sock, server, backlog, context)
PyObject* start_accepting(PyObject* op, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "_start_accepting() takes 5 arguments (%zd given)", nargs);
        return nullptr;
    }
    if (check_context_arg(args[4]) < 0) return nullptr;
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(op);
    if (check_closed(loop) < 0 || check_not_inherited(loop) < 0) return nullptr;
    int backlog;
    if (to_int(args[3], &backlog) < 0) return nullptr;
    ModuleState* st = loop->s.st;
    Ref self = Ref::steal(reinterpret_cast<PyObject*>(PyObject_GC_New(Acceptor, st->acceptor_type)));
    if (!self) return nullptr;
    Acceptor* a = as_acceptor(self.get());
    a->loop = Py_NewRef(op);
    a->protocol_factory = Py_NewRef(args[0]);
    a->sock = Py_NewRef(args[1]);
    a->server = Py_NewRef(args[2]);
    a->context = args[4] == Py_None ? nullptr : Py_NewRef(args[4]);
    a->backlog = backlog;
    PyObject_GC_Track(self.get());
    if ((a->fd = sock_fileno(st, a->sock)) < 0) return nullptr;
    if (int_attr(a->sock, st->s_family, &a->family) < 0 || int_attr(a->sock, st->s_type, &a->type) < 0 ||
        int_attr(a->sock, st->s_proto, &a->proto) < 0) {
        return nullptr;
    }
    Ref handle = Ref::steal(watch_fd(loop, a->fd, a->sock, kReadable, self.get(), nullptr, 0, nullptr));
    if (!handle) return nullptr;
    Py_RETURN_NONE;
}

int traverse(PyObject* self, visitproc visit, void* arg) {
    Acceptor* a = as_acceptor(self);
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(a->loop);
    Py_VISIT(a->protocol_factory);
    Py_VISIT(a->sock);
    Py_VISIT(a->server);
    Py_VISIT(a->context);
    return 0;
}

int clear(PyObject* self) {
    Acceptor* a = as_acceptor(self);
    Py_CLEAR(a->context);
    Py_CLEAR(a->server);
    Py_CLEAR(a->sock);
    Py_CLEAR(a->protocol_factory);
    Py_CLEAR(a->loop);
    return 0;
}

void dealloc(PyObject* self) {
    PyTypeObject* tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

}  // namespace

const PyMethodDef loop_accept_methods[] = {
    method_fastcall<start_accepting>("_start_accepting", nullptr),
    kMethodsEnd,
};

int init_acceptor_type(PyObject* module, ModuleState* st) {
    PyType_Slot slots[] = {
        {Py_tp_call, slot<accept_ready>()},
        {Py_tp_traverse, reinterpret_cast<void*>(traverse)},
        {Py_tp_clear, reinterpret_cast<void*>(clear)},
        {Py_tp_dealloc, reinterpret_cast<void*>(dealloc)},
        {Py_tp_doc, const_cast<char*>("A server's accept loop: the callback of its listening socket's watch.")},
        {0, nullptr},
    };
    PyType_Spec spec = {
        "cxxloop._core.Acceptor",
        int(sizeof(Acceptor)),
        0,
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
        slots,
    };
    st->acceptor_type = reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &spec, nullptr));
    return st->acceptor_type ? 0 : -1;
}

}  // namespace cxxloop::py
