// ReadPipeTransport and WritePipeTransport: loop.connect_read_pipe and
// connect_write_pipe (and so every subprocess's stdin, stdout and stderr).
//
// They are StreamData transports like StreamTransport (the reads, writes,
// queue and flow control are stream_read.cpp's and stream_write.cpp's),
// with asyncio's pipe semantics at the ends: the fd must be a pipe, a
// socket or a character device; EOF on a read pipe always ends it; a write
// pipe's write_eof() is its close; a write pipe learns that its reader left
// when its fd turns readable (or hangs up).
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "loop.hpp"
#include "stream_transport.hpp"

namespace cxxloop::py {

namespace {

// asyncio's debug-mode line when the other end of a pipe closes.
int log_closed_by_peer(PyObject* t) {
    if (!stream_loop(stream_data(t))->s.debug) return 0;
    Ref r = Ref::steal(PyObject_CallMethod(stream_state(stream_data(t))->logger, "info", "sO", "%r was closed by peer", t));
    return r ? 0 : -1;
}

}  // namespace

int pipe_read_eof(PyObject* t) {
    StreamData* d = stream_data(t);
    if (log_closed_by_peer(t) < 0) return -1;
    d->closing = true;
    d->conn_lost++;
    Ref eof_received = Ref::steal(PyObject_GetAttr(d->protocol, stream_state(d)->s_eof_received));
    if (!eof_received || stream_call_soon(t, eof_received.get(), nullptr, 0) < 0) return -1;
    return stream_schedule_connection_lost(t, Py_None);
}

int pipe_peer_closed(PyObject* t) {
    StreamData* d = stream_data(t);
    if (log_closed_by_peer(t) < 0) return -1;
    if (d->queue.empty()) return stream_force_close(t, Py_None);
    Ref exc = Ref::steal(PyObject_CallNoArgs(PyExc_BrokenPipeError));
    return exc ? stream_force_close(t, exc.get()) : -1;
}

namespace {

// What asyncio's pipe transports accept. Regular files never block, and
// epoll refuses them.
int check_pipe_fd(int fd, TransportKind kind, bool* is_char_device) {
    struct stat st;
    if (fstat(fd, &st) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    *is_char_device = S_ISCHR(st.st_mode);
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode)) return 0;
    PyErr_SetString(PyExc_ValueError, kind == TransportKind::read_pipe
                                          ? "Pipe transport is for pipes/sockets only."
                                          : "Pipe transport is only for pipes, sockets and character devices");
    return -1;
}

int set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

PyObject* pipe_transport_new(PyObject* op, PyObject* args, PyObject* kwargs, TransportKind kind, const char* format) {
    static const char* kwlist[] = {"pipe", "protocol", "waiter", "extra", nullptr};
    PyObject *pipe, *protocol, *waiter = Py_None, *extra = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, const_cast<char**>(kwlist), &pipe, &protocol, &waiter,
                                     &extra)) {
        return nullptr;
    }
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(op);
    if (check_closed(loop) < 0) return nullptr;
    int fd = sock_fileno(loop->s.st, pipe);
    bool is_char_device = false;
    if (fd < 0 || check_pipe_fd(fd, kind, &is_char_device) < 0 || set_nonblocking(fd) < 0) return nullptr;
    Ref extra_dict = Ref::steal(extra == Py_None ? PyDict_New() : Py_NewRef(extra));
    if (!extra_dict || PyMapping_SetItemString(extra_dict.get(), "pipe", pipe) < 0) return nullptr;
    PyTypeObject* type = kind == TransportKind::read_pipe ? loop->s.st->read_pipe_type : loop->s.st->write_pipe_type;
    Ref t = Ref::steal(stream_transport_start(loop, type, kind, fd, pipe, protocol, waiter, extra_dict.get(), Py_None));
    // A terminal is readable whenever someone types, so asyncio does not
    // watch one it writes to for readability; here only its hang-up counts.
    if (t && kind == TransportKind::write_pipe) stream_data(t.get())->peer_watch = !is_char_device;
    return t.release();
}

// loop._make_read_pipe_transport(pipe, protocol, waiter=None, extra=None)
PyObject* make_read_pipe_transport(PyObject* op, PyObject* args, PyObject* kwargs) {
    return pipe_transport_new(op, args, kwargs, TransportKind::read_pipe, "OO|OO:_make_read_pipe_transport");
}

// loop._make_write_pipe_transport(pipe, protocol, waiter=None, extra=None)
PyObject* make_write_pipe_transport(PyObject* op, PyObject* args, PyObject* kwargs) {
    return pipe_transport_new(op, args, kwargs, TransportKind::write_pipe, "OO|OO:_make_write_pipe_transport");
}

// The attribute names of asyncio's pipe transports.
PyObject* get_pipe(PyObject* t, void*) {
    PyObject* p = stream_data(t)->sock;
    return Py_NewRef(p ? p : Py_None);
}

// `transport._pipe = None` lets go of the pipe without closing it, which
// is how asyncio's own tests silence the unclosed-transport warning.
int set_pipe(PyObject* t, PyObject* value, void*) {
    if (value != Py_None) {
        PyErr_SetString(PyExc_AttributeError, "_pipe can only be set to None");
        return -1;
    }
    stream_unregister(t);
    Py_CLEAR(stream_data(t)->sock);
    return 0;
}
PyObject* get_fileno(PyObject* t, void*) { return PyLong_FromLong(stream_data(t)->fd); }

PyGetSetDef pipe_getsets[] = {
    {"_pipe", get_pipe, set_pipe, nullptr, nullptr},
    {"_fileno", get_fileno, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

// The direction's state while the loop runs, "open" once it is closed.
PyObject* pipe_repr(PyObject* t) {
    StreamData* d = stream_data(t);
    const char* name = Py_TYPE(t)->tp_name;
    if (!d->sock) return PyUnicode_FromFormat("<%s closed fd=%d closed>", name, d->fd);
    const char* state = d->closing ? " closing" : "";
    if (stream_loop(d)->s.closed) return PyUnicode_FromFormat("<%s%s fd=%d open>", name, state, d->fd);
    if (d->kind == TransportKind::read_pipe) {
        return PyUnicode_FromFormat("<%s%s fd=%d %s>", name, state, d->fd, stream_is_reading(d) ? "polling" : "idle");
    }
    return PyUnicode_FromFormat("<%s%s fd=%d %s bufsize=%zu>", name, state, d->fd,
                                d->queue.empty() ? "idle" : "polling", d->queue.bytes());
}

PyMethodDef loop_pipe_methods[] = {
    {"_make_read_pipe_transport",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(make_read_pipe_transport)),
     METH_VARARGS | METH_KEYWORDS, nullptr},
    {"_make_write_pipe_transport",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(make_write_pipe_transport)),
     METH_VARARGS | METH_KEYWORDS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

int init_pipe_transport_types(PyObject* module, ModuleState* st) {
    static const TransportTables read_tables({stream_core_methods, stream_read_methods},
                                             {stream_core_getsets, pipe_getsets});
    static const TransportTables write_tables({stream_core_methods, stream_write_methods, stream_flow_methods},
                                              {stream_core_getsets, stream_write_getsets, pipe_getsets});
    st->read_pipe_type = make_transport_type(module, "cxxloop._core.ReadPipeTransport",
                                                "The read end of a pipe, FIFO, socket or tty.", st->ReadTransportBase,
                                                read_tables);
    if (!st->read_pipe_type) return -1;
    st->write_pipe_type = make_transport_type(module, "cxxloop._core.WritePipeTransport",
                                                 "The write end of a pipe, FIFO, socket or tty.", st->FlowControlMixin,
                                                 write_tables);
    if (!st->write_pipe_type) return -1;
    if (PyModule_AddObjectRef(module, "ReadPipeTransport", reinterpret_cast<PyObject*>(st->read_pipe_type)) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "WritePipeTransport", reinterpret_cast<PyObject*>(st->write_pipe_type));
}

}  // namespace cxxloop::py
