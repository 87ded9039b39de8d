// StreamTransport: the type, loop._make_socket_transport, and the paths
// that end a connection (close, abort, fatal errors, connection_lost), in
// the order and with the messages of asyncio's selector transport.
#include "stream_transport.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <deque>
#include <new>
#include <vector>

#include <structmember.h>

#include "handle.hpp"
#include "loop.hpp"

namespace cxxloop::py {

bool must_propagate() {
    return PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
}

int report_to_loop(PyObject* t, const char* message, PyObject* exc) {
    StreamData* d = stream_data(t);
    ModuleState* st = stream_state(d);
    Ref context = Ref::steal(Py_BuildValue("{sssOsOsO}", "message", message, "exception", exc, "transport", t,
                                           "protocol", d->protocol ? d->protocol : Py_None));
    if (!context) return -1;
    Ref r = Ref::steal(PyObject_CallMethodOneArg(d->loop, st->s_call_exception_handler, context.get()));
    return r ? 0 : -1;
}

int report_raised_to_loop(PyObject* t, const char* message) {
    if (must_propagate()) return -1;
    Ref exc = Ref::steal(PyErr_GetRaisedException());
    return report_to_loop(t, message, exc.get());
}

int stream_schedule(PyObject* t, uint32_t events) {
    StreamData* d = stream_data(t);
    d->pending |= events;
    if (d->queued) return 0;
    if (push_ready(stream_loop(d), t) < 0) return -1;
    d->queued = true;
    return 0;
}

int stream_run_io(PyObject* t) {
    StreamData* d = stream_data(t);
    d->queued = false;
    uint32_t events = std::exchange(d->pending, 0u);
    if (d->kind == TransportKind::write_pipe) {
        // asyncio watches a write pipe for reading only to learn that the
        // other end is gone (a pipe's writer gets EPOLLERR, a socket EOF).
        bool gone = (events & kHangup) || ((events & kReadable) && d->peer_watch);
        if (gone && !d->conn_lost) return pipe_peer_closed(t);
    } else if (d->kind == TransportKind::datagram) {
        if ((events & kReadable) && !d->closing && datagram_read_ready(t) < 0) return -1;
        if ((events & kWritable) && !d->dgram->queue.empty() && d->sock) return datagram_write_ready(t);
        return 0;
    } else {
        if (events & kHangup) d->peer_closed = true;
        // Read first, then write: the order of the selector loop's callbacks.
        if ((events & kReadable) && !d->closing && !d->paused && !d->read_eof && stream_read_ready(t) < 0) return -1;
    }
    bool sending = !d->queue.empty() || stream_sendfile_active(d);
    if ((events & kWritable) && sending && d->sock) return stream_write_ready(t);
    return 0;
}

// Raises if the loop is closed, as asyncio's transports do when used after
// loop.close().
int stream_call_soon(PyObject* t, PyObject* callback, PyObject* const* args, size_t nargs) {
    CoreLoop* loop = stream_loop(stream_data(t));
    if (check_closed(loop) < 0) return -1;
    Ref h = Ref::steal(soon_handle_new(loop, loop->s.st->handle_type, callback, args, Py_ssize_t(nargs), nullptr));
    return h ? push_ready(loop, h.get()) : -1;
}

namespace {

template <size_t N>
int call_soon(PyObject* t, PyObject* callback, PyObject* const (&args)[N]) {
    return stream_call_soon(t, callback, args, N);
}

}  // namespace

int stream_schedule_connection_lost(PyObject* t, PyObject* exc) {
    Ref cb = Ref::steal(PyObject_GetAttr(t, stream_state(stream_data(t))->s_call_connection_lost));
    return cb ? call_soon(t, cb.get(), {exc}) : -1;
}

namespace {

// A forked child shares the parent's epoll instance; it must not touch it.
bool poller_usable(CoreLoop* loop) { return loop->s.poller && !inherited_across_fork(loop); }

int register_fd(PyObject* t) {
    StreamData* d = stream_data(t);
    CoreLoop* loop = stream_loop(d);
    FdWatch* w = fd_watch(loop, d->fd);
    if (!w) return -1;
    int err = loop->s.poller->add(d->fd, kReadable | kWritable, uint64_t(d->fd), true);
    if (err < 0) {
        errno = -err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    w->transport = Py_NewRef(t);
    d->registered = true;
    return 0;
}

}  // namespace

void stream_unregister(PyObject* t) {
    StreamData* d = stream_data(t);
    if (!std::exchange(d->registered, false)) return;
    CoreLoop* loop = stream_loop(d);
    if (poller_usable(loop)) loop->s.poller->remove(d->fd);
    auto& fds = loop->s.fds;
    if (size_t(d->fd) < fds.size() && fds[size_t(d->fd)].transport == t) {
        fds[size_t(d->fd)].transport = nullptr;
        Py_DECREF(t);
    }
}

namespace {

// server._attach(transport) / _detach(transport): `method` is one of the
// two names; the transport is passed where asyncio's Server takes it.
int notify_server(ModuleState* st, PyObject* server, PyObject* method, PyObject* t) {
    PyObject* args[] = {server, t};
    size_t nargs = st->server_attach_takes_transport ? 2 : 1;
    Ref r = Ref::steal(PyObject_VectorcallMethod(method, args, nargs | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    return r ? 0 : -1;
}

int set_protocol(PyObject* t, PyObject* protocol) {
    StreamData* d = stream_data(t);
    int buffered = PyObject_IsInstance(protocol, stream_state(d)->BufferedProtocol);
    if (buffered < 0) return -1;
    d->buffered = buffered;
    set_ref(&d->protocol, protocol);
    return 0;
}

// extra[key] = sock.<method>(), or None if the socket refuses (OSError).
int store_address(PyObject* extra, const char* key, PyObject* sock, PyObject* method) {
    Ref addr = Ref::steal(PyObject_CallMethodNoArgs(sock, method));
    if (!addr) {
        if (!PyErr_ExceptionMatches(PyExc_OSError)) return -1;
        PyErr_Clear();
        addr = Ref::borrow(Py_None);
    }
    return PyMapping_SetItemString(extra, key, addr.get());
}

}  // namespace

int stream_fill_extra(ModuleState* st, PyObject* extra, PyObject* sock) {
    Ref trsock = Ref::steal(PyObject_CallOneArg(st->TransportSocket, sock));
    if (!trsock || PyMapping_SetItemString(extra, "socket", trsock.get()) < 0) return -1;
    if (store_address(extra, "sockname", sock, st->s_getsockname) < 0) return -1;
    int has_peer = PyMapping_HasKeyString(extra, "peername");
    return has_peer ? 0 : store_address(extra, "peername", sock, st->s_getpeername);
}

int sock_fileno(ModuleState* st, PyObject* sock) {
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(sock, st->s_fileno));
    if (!r) return -1;
    long fd = PyLong_AsLong(r.get());
    if (fd == -1 && PyErr_Occurred()) return -1;
    if (fd < 0 || fd > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %ld", fd);
        return -1;
    }
    return int(fd);
}

PyObject* stream_transport_start(CoreLoop* loop, PyTypeObject* type, TransportKind kind, int fd, PyObject* sock,
                                 PyObject* protocol, PyObject* waiter, PyObject* extra, PyObject* server) {
    if (size_t(fd) < loop->s.fds.size() && loop->s.fds[size_t(fd)].transport) {
        PyErr_Format(PyExc_RuntimeError, "File descriptor %d is used by transport %R", fd,
                     loop->s.fds[size_t(fd)].transport);
        return nullptr;
    }
    Ref t = Ref::steal(PyType_GenericAlloc(type, 0));
    if (!t) return nullptr;
    StreamData* d = stream_data(t.get());
    new (d) StreamData();
    d->loop = Py_NewRef(reinterpret_cast<PyObject*>(loop));
    d->fd = fd;
    d->kind = kind;
    if (kind == TransportKind::datagram) {
        d->dgram.reset(new (std::nothrow) DatagramState());
        if (!d->dgram) {
            PyErr_NoMemory();
            return nullptr;
        }
    }
    d->high_water = 64 * 1024;
    d->low_water = 16 * 1024;
    d->extra = Py_NewRef(extra);
    if (set_protocol(t.get(), protocol) < 0 || register_fd(t.get()) < 0) return nullptr;
    // From here the transport owns `sock`; a failure below leaves it to be
    // closed like any other transport's.
    d->sock = Py_NewRef(sock);
    if (server != Py_None) {
        d->server = Py_NewRef(server);
        if (notify_server(loop->s.st, server, loop->s.st->s_attach, t.get()) < 0) return nullptr;
    }
    ModuleState* st = loop->s.st;
    Ref made = Ref::steal(PyObject_GetAttr(protocol, st->s_connection_made));
    if (!made || call_soon(t.get(), made.get(), {t.get()}) < 0) return nullptr;
    if (waiter != Py_None && call_soon(t.get(), st->set_result_unless_cancelled, {waiter, Py_None}) < 0) return nullptr;
    return t.release();
}

PyObject* stream_transport_new(CoreLoop* loop, PyObject* sock, PyObject* protocol, PyObject* waiter, PyObject* extra,
                               PyObject* server) {
    if (check_closed(loop) < 0) return nullptr;
    ModuleState* st = loop->s.st;
    int fd = sock_fileno(st, sock);
    if (fd < 0) return nullptr;
    Ref extra_dict = Ref::steal(extra == Py_None ? PyDict_New() : Py_NewRef(extra));
    if (!extra_dict || stream_fill_extra(st, extra_dict.get(), sock) < 0) return nullptr;
    Ref r = Ref::steal(PyObject_CallOneArg(st->set_nodelay, sock));
    if (!r) return nullptr;
    return stream_transport_start(loop, st->stream_transport_type, TransportKind::socket, fd, sock, protocol, waiter,
                                  extra_dict.get(), server);
}

namespace {

// loop._make_socket_transport(sock, protocol, waiter=None, *, extra=None, server=None)
PyObject* make_socket_transport(PyObject* op, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"sock", "protocol", "waiter", "extra", "server", nullptr};
    PyObject *sock, *protocol, *waiter = Py_None, *extra = Py_None, *server = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O$OO:_make_socket_transport", const_cast<char**>(kwlist),
                                     &sock, &protocol, &waiter, &extra, &server)) {
        return nullptr;
    }
    return stream_transport_new(reinterpret_cast<CoreLoop*>(op), sock, protocol, waiter, extra, server);
}

}  // namespace

int stream_force_close(PyObject* t, PyObject* exc) {
    StreamData* d = stream_data(t);
    if (d->conn_lost) return 0;
    d->queue.clear();
    if (d->dgram) d->dgram->clear();
    d->closing = true;
    d->conn_lost++;
    if (stream_sendfile_abort(t, exc) < 0) return -1;
    return stream_schedule_connection_lost(t, exc);
}

namespace {

// asyncio logs an OSError of a socket or write pipe transport only in
// debug mode, since peers reset connections all the time; a read pipe's
// only if it is EIO (a closed pty), and reports any other to the
// exception handler.
bool is_quiet_error(StreamData* d, PyObject* exc) {
    if (!PyErr_GivenExceptionMatches(exc, PyExc_OSError)) return false;
    if (d->kind != TransportKind::read_pipe) return true;
    Ref err = Ref::steal(PyObject_GetAttrString(exc, "errno"));
    if (!err) {
        PyErr_Clear();
        return false;
    }
    return PyLong_Check(err.get()) && PyLong_AsLong(err.get()) == EIO;
}

}  // namespace

int stream_fatal_error(PyObject* t, const char* message) {
    Ref exc = Ref::steal(PyErr_GetRaisedException());
    StreamData* d = stream_data(t);
    if (is_quiet_error(d, exc.get())) {
        if (stream_loop(d)->s.debug) {
            Ref kw = Ref::steal(Py_BuildValue("{sO}", "exc_info", exc.get()));
            Ref debug = Ref::steal(PyObject_GetAttr(stream_state(d)->logger, stream_state(d)->s_debug));
            Ref args = Ref::steal(Py_BuildValue("(sOs)", "%r: %s", t, message));
            if (!kw || !debug || !args) return -1;
            Ref r = Ref::steal(PyObject_Call(debug.get(), args.get(), kw.get()));
            if (!r) return -1;
        }
    } else if (report_to_loop(t, message, exc.get()) < 0) {
        return -1;
    }
    return stream_force_close(t, exc.get());
}

int stream_close(PyObject* t) {
    StreamData* d = stream_data(t);
    if (d->closing) return 0;
    d->closing = true;
    // The last flush, or the end of a sendfile, calls connection_lost.
    if (has_queued_writes(d)) return 0;
    d->conn_lost++;
    return stream_schedule_connection_lost(t, Py_None);
}

namespace {

// The `finally:` half of connection_lost: the transport lets go of its
// fd, socket, protocol and server.
int release_socket(PyObject* t) {
    StreamData* d = stream_data(t);
    ModuleState* st = stream_state(d);
    stream_unregister(t);
    Py_CLEAR(d->protocol);
    Ref sock = Ref::steal(std::exchange(d->sock, nullptr));
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(sock.get(), st->s_close));
    if (!r) return -1;
    Ref server = Ref::steal(std::exchange(d->server, nullptr));
    return server ? notify_server(st, server.get(), st->s_detach, t) : 0;
}

}  // namespace

int stream_connection_lost(PyObject* t, PyObject* exc) {
    StreamData* d = stream_data(t);
    if (!d->sock) return 0;
    Ref keep = Ref::borrow(t);  // the fd table's reference goes below
    Ref r;
    if (d->protocol) r = Ref::steal(PyObject_CallMethodOneArg(d->protocol, stream_state(d)->s_connection_lost, exc));
    Ref pending = Ref::steal(PyErr_GetRaisedException());
    int rc = release_socket(t);
    if (pending) {
        if (rc < 0) PyErr_WriteUnraisable(t);
        PyErr_SetRaisedException(pending.release());
        return -1;
    }
    return rc;
}

namespace {

PyObject* StreamTransport_close(PyObject* t, PyObject*) {
    if (stream_close(t) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* StreamTransport_abort(PyObject* t, PyObject*) {
    if (stream_force_close(t, Py_None) < 0) return nullptr;
    Py_RETURN_NONE;
}

// asyncio's _force_close(exc), which sslproto calls on its transport.
PyObject* StreamTransport_force_close(PyObject* t, PyObject* exc) {
    if (stream_force_close(t, exc) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* StreamTransport_call_connection_lost(PyObject* t, PyObject* exc) {
    if (stream_connection_lost(t, exc) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* StreamTransport_is_closing(PyObject* t, PyObject*) { return PyBool_FromLong(stream_data(t)->closing); }

PyObject* StreamTransport_get_extra_info(PyObject* t, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "get_extra_info() takes 1 or 2 arguments (%zd given)", nargs);
        return nullptr;
    }
    PyObject* dflt = nargs == 2 ? args[1] : Py_None;
    PyObject* extra = stream_data(t)->extra;
    if (!extra) return Py_NewRef(dflt);  // cleared by the GC
    if (PyDict_CheckExact(extra)) {
        PyObject* v = PyDict_GetItemWithError(extra, args[0]);
        if (v) return Py_NewRef(v);
        return PyErr_Occurred() ? nullptr : Py_NewRef(dflt);
    }
    return PyObject_CallMethod(extra, "get", "OO", args[0], dflt);
}

PyObject* StreamTransport_set_protocol(PyObject* t, PyObject* protocol) {
    if (set_protocol(t, protocol) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* StreamTransport_get_protocol(PyObject* t, PyObject*) {
    PyObject* p = stream_data(t)->protocol;
    return Py_NewRef(p ? p : Py_None);
}

PyObject* StreamTransport_repr(PyObject* t) {
    StreamData* d = stream_data(t);
    if (is_pipe(d)) return pipe_repr(t);
    const char* state = !d->sock ? " closed" : d->closing ? " closing" : "";
    if (!d->sock || stream_loop(d)->s.closed) {
        return PyUnicode_FromFormat("<%s%s fd=%d>", Py_TYPE(t)->tp_name, state, d->fd);
    }
    bool reading = !d->closing && !d->paused && !d->read_eof;
    return PyUnicode_FromFormat("<%s%s fd=%d read=%s write=<%s, bufsize=%zu>>", Py_TYPE(t)->tp_name, state, d->fd,
                                reading ? "polling" : "idle", has_queued_writes(d) ? "polling" : "idle",
                                write_buffer_size(d));
}

// The selector transport's __del__: an unclosed transport warns and closes
// its socket. A registered transport is owned by the loop's fd table, so
// this only runs for one the loop already let go of (loop closed).
void StreamTransport_finalize(PyObject* t) {
    StreamData* d = stream_data(t);
    if (!d->sock) return;
    Ref pending = Ref::steal(PyErr_GetRaisedException());
    if (PyErr_ResourceWarning(t, 1, "unclosed transport %R", t) < 0) PyErr_WriteUnraisable(t);
    ModuleState* st = stream_state(d);
    Ref sock = Ref::steal(std::exchange(d->sock, nullptr));
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(sock.get(), st->s_close));
    if (!r) PyErr_WriteUnraisable(t);
    if (Ref server = Ref::steal(std::exchange(d->server, nullptr)); server) {
        if (notify_server(st, server.get(), st->s_detach, t) < 0) PyErr_WriteUnraisable(t);
    }
    PyErr_SetRaisedException(pending.release());
}

int StreamTransport_traverse(PyObject* t, visitproc visit, void* arg) {
    StreamData* d = stream_data(t);
    Py_VISIT(Py_TYPE(t));
    Py_VISIT(d->loop);
    Py_VISIT(d->sock);
    Py_VISIT(d->protocol);
    Py_VISIT(d->server);
    Py_VISIT(d->extra);
    Py_VISIT(d->sendfile.waiter);
    Py_VISIT(d->dict);
    if (d->dgram) {
        int rc = d->dgram->traverse(visit, arg);
        if (rc) return rc;
    }
    return d->queue.traverse(visit, arg);
}

int StreamTransport_clear(PyObject* t) {
    StreamData* d = stream_data(t);
    d->queue.clear();
    if (d->dgram) {
        d->dgram->clear();
        Py_CLEAR(d->dgram->address);
        Py_CLEAR(d->dgram->last_addr);
    }
    Py_CLEAR(d->sendfile.waiter);
    Py_CLEAR(d->dict);
    Py_CLEAR(d->protocol);
    Py_CLEAR(d->server);
    Py_CLEAR(d->extra);
    Py_CLEAR(d->sock);
    // The loop goes last and only when unregistered: stream_unregister needs it.
    if (!d->registered) Py_CLEAR(d->loop);
    return 0;
}

void StreamTransport_dealloc(PyObject* t) {
    PyTypeObject* tp = Py_TYPE(t);
    if (PyObject_CallFinalizerFromDealloc(t) < 0) return;  // resurrected
    PyObject_GC_UnTrack(t);
    StreamData* d = stream_data(t);
    if (d->weakreflist) PyObject_ClearWeakRefs(t);
    StreamTransport_clear(t);
    Py_CLEAR(d->loop);
    d->~StreamData();
    tp->tp_free(t);
    Py_DECREF(tp);
}

PyObject* get_loop(PyObject* t, void*) {
    StreamData* d = stream_data(t);
    return Py_NewRef(d->sock && d->loop ? d->loop : Py_None);
}
PyObject* get_sock(PyObject* t, void*) {
    PyObject* s = stream_data(t)->sock;
    return Py_NewRef(s ? s : Py_None);
}
PyObject* get_sock_fd(PyObject* t, void*) { return PyLong_FromLong(stream_data(t)->fd); }
PyObject* get_extra(PyObject* t, void*) {
    PyObject* e = stream_data(t)->extra;
    return Py_NewRef(e ? e : Py_None);
}
PyObject* get_server(PyObject* t, void*) {
    PyObject* s = stream_data(t)->server;
    return Py_NewRef(s ? s : Py_None);
}
PyObject* get_closing(PyObject* t, void*) { return PyBool_FromLong(stream_data(t)->closing); }
PyObject* get_conn_lost(PyObject* t, void*) { return PyLong_FromLong(stream_data(t)->conn_lost); }

}  // namespace

PyMethodDef stream_core_methods[] = {
    {"close", StreamTransport_close, METH_NOARGS, "Close after flushing buffered data; connection_lost(None) follows."},
    {"abort", StreamTransport_abort, METH_NOARGS, "Close now, dropping buffered data; connection_lost(None) follows."},
    {"is_closing", StreamTransport_is_closing, METH_NOARGS, "Return True once close() or abort() was called."},
    {"get_extra_info", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(StreamTransport_get_extra_info)),
     METH_FASTCALL, "get_extra_info(name, default=None)"},
    {"set_protocol", StreamTransport_set_protocol, METH_O, "Replace the protocol."},
    {"get_protocol", StreamTransport_get_protocol, METH_NOARGS, "Return the protocol."},
    {"_call_connection_lost", StreamTransport_call_connection_lost, METH_O, nullptr},
    {"_force_close", StreamTransport_force_close, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef stream_core_getsets[] = {
    {"_loop", get_loop, nullptr, nullptr, nullptr},
    {"_sock", get_sock, nullptr, nullptr, nullptr},
    {"_sock_fd", get_sock_fd, nullptr, nullptr, nullptr},
    {"_extra", get_extra, nullptr, nullptr, nullptr},
    {"_server", get_server, nullptr, nullptr, nullptr},
    {"_closing", get_closing, nullptr, nullptr, nullptr},
    {"_conn_lost", get_conn_lost, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

namespace {

// Concatenates null-terminated tables (methods or getsets) into one.
const char* entry_name(const PyMethodDef& m) { return m.ml_name; }
const char* entry_name(const PyGetSetDef& gs) { return gs.name; }

template <class T>
std::vector<T> join(std::initializer_list<T*> tables) {
    std::vector<T> out;
    for (T* table : tables) {
        for (T* e = table; entry_name(*e); ++e) out.push_back(*e);
    }
    out.push_back(T{});
    return out;
}

}  // namespace

PyMethodDef loop_stream_methods[] = {
    {"_make_socket_transport", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(make_socket_transport)),
     METH_VARARGS | METH_KEYWORDS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyTypeObject* make_transport_type(PyObject* module, const char* name, const char* doc, PyObject* bases,
                                  const TransportTables& tables) {
    // __weaklistoffset__ and __dictoffset__, once: the offsets are layout
    // constants, the same for every transport type and every import.
    static PyMemberDef* members = [] {
        static PyMemberDef defs[] = {
            {"__weaklistoffset__", T_PYSSIZET, layout.transport_data + Py_ssize_t(offsetof(StreamData, weakreflist)),
             READONLY, nullptr},
            {"__dictoffset__", T_PYSSIZET, layout.transport_data + Py_ssize_t(offsetof(StreamData, dict)), READONLY,
             nullptr},
            {nullptr, 0, 0, 0, nullptr},
        };
        return defs;
    }();
    PyType_Slot slots[] = {
        {Py_tp_dealloc, reinterpret_cast<void*>(StreamTransport_dealloc)},
        {Py_tp_finalize, reinterpret_cast<void*>(StreamTransport_finalize)},
        {Py_tp_traverse, reinterpret_cast<void*>(StreamTransport_traverse)},
        {Py_tp_clear, reinterpret_cast<void*>(StreamTransport_clear)},
        {Py_tp_repr, reinterpret_cast<void*>(StreamTransport_repr)},
        {Py_tp_methods, const_cast<PyMethodDef*>(tables.methods.data())},
        {Py_tp_getset, const_cast<PyGetSetDef*>(tables.getsets.data())},
        {Py_tp_members, members},
        {Py_tp_doc, const_cast<char*>(doc)},
        {0, nullptr},
    };
    PyType_Spec spec = {
        name,
        int(layout.transport_data + Py_ssize_t(sizeof(StreamData))),
        0,
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
        slots,
    };
    return reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &spec, bases));
}

TransportTables::TransportTables(std::initializer_list<PyMethodDef*> method_tables,
                                 std::initializer_list<PyGetSetDef*> getset_tables)
    : methods(join<PyMethodDef>(method_tables)), getsets(join<PyGetSetDef>(getset_tables)) {}

int init_stream_transport_type(PyObject* module, ModuleState* st) {
    static const TransportTables tables(
        {stream_core_methods, stream_read_methods, stream_write_methods, stream_flow_methods, stream_sendfile_methods},
        {stream_core_getsets, stream_write_getsets});
    st->stream_transport_type = make_transport_type(module, "cxxloop._core.StreamTransport",
                                              "A TCP or Unix stream socket transport.", st->FlowControlMixin, tables);
    if (!st->stream_transport_type) return -1;
    PyObject* type = reinterpret_cast<PyObject*>(st->stream_transport_type);
    // Class attributes asyncio reads: start_tls may wrap this transport;
    // loop.sendfile tries the native zero-copy path (Loop._sendfile_native).
    if (PyObject_SetAttrString(type, "_start_tls_compatible", Py_True) < 0 ||
        PyObject_SetAttrString(type, "_sendfile_compatible", st->sendfile_try_native) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "StreamTransport", type);
}

}  // namespace cxxloop::py
