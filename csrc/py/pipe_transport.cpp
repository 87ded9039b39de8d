// ReadPipeTransport and WritePipeTransport: loop.connect_read_pipe and
// connect_write_pipe (and so every subprocess's stdin, stdout and stderr),
// asyncio's _UnixReadPipeTransport and _UnixWritePipeTransport.
//
// Both are ByteStreamTransports with asyncio's pipe semantics at the ends:
// the fd must be a pipe, a socket or a character device; EOF on a read
// pipe always ends it; a write pipe's write_eof() is its close; a write
// pipe learns that its reader left when its fd turns readable (or hangs up).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>

#include "byte_stream_transport.hpp"
#include "methods.hpp"

namespace cxxloop::py {
namespace {

// asyncio's debug-mode line when the other end of a pipe closes.
int log_closed_by_peer(Transport* tr) {
    if (!tr->core_loop()->s.debug) return 0;
    Ref r = Ref::steal(PyObject_CallMethod(tr->state()->logger, "info", "sO", "%r was closed by peer", tr->object()));
    return r ? 0 : -1;
}

class ReadPipeTransport : public ByteStreamTransport {
public:
    ReadPipeTransport(CoreLoop* loop, int fd, PyObject* context, bool reads_messages)
        : ByteStreamTransport(loop, fd, context, false), reads_messages_(reads_messages) {}

    int on_events(uint32_t events) override {
        if (events & kHangup) peer_closed = true;
        if ((events & kReadable) && !closing && !paused && !read_eof) return read_ready();
        return 0;
    }

    // The end of a read pipe: eof_received(), then connection_lost(None).
    int on_eof() override {
        if (log_closed_by_peer(this) < 0) return -1;
        closing = true;
        conn_lost++;
        Ref eof_received = Ref::steal(PyObject_GetAttr(protocol, state()->s_eof_received));
        if (!eof_received || call_soon(eof_received.get(), {}) < 0) return -1;
        return schedule_connection_lost(Py_None);
    }

    const char* read_error_message() const override { return "Fatal read error on pipe transport"; }
    const char* write_error_message() const override { return read_error_message(); }
    bool reads_are_messages() const override { return reads_messages_; }

    // asyncio's read pipe calls data_received() from its reader callback,
    // so what that raises is the loop's "Exception in callback", and the
    // pipe reads on.
    int data_received_failed() override {
        Ref exc = Ref::steal(PyErr_GetRaisedException());
        Ref type_name = Ref::steal(PyType_GetName(Py_TYPE(object())));
        Ref message = type_name ? Ref::steal(PyUnicode_FromFormat("Exception in callback %U._read_ready()",
                                                                  type_name.get()))
                                : Ref();
        Ref context = message ? Ref::steal(Py_BuildValue("{sOsO}", "message", message.get(), "exception", exc.get()))
                              : Ref();
        if (!context) return -1;
        Ref r = Ref::steal(PyObject_CallMethodOneArg(loop, state()->s_call_exception_handler, context.get()));
        return r ? 0 : -1;
    }

    // A read pipe's OSError is logged only if it is EIO (a closed pty);
    // asyncio reports any other to the exception handler.
    bool is_quiet_error(PyObject* exc) const override {
        if (!PyErr_GivenExceptionMatches(exc, PyExc_OSError)) return false;
        Ref err = Ref::steal(PyObject_GetAttr(exc, state()->s_errno_));
        if (!err) {
            PyErr_Clear();
            return false;
        }
        return PyLong_Check(err.get()) && PyLong_AsLong(err.get()) == EIO;
    }

protected:
    // asyncio's read pipe calls data_received() whatever the protocol.
    bool supports_buffered_protocol() const override { return false; }

private:
    bool reads_messages_;
};

class WritePipeTransport : public ByteStreamTransport {
public:
    WritePipeTransport(CoreLoop* loop, int fd, PyObject* context, bool watches_peer)
        : ByteStreamTransport(loop, fd, context, false), peer_watch(watches_peer) {}

    int on_events(uint32_t events) override {
        // asyncio watches a write pipe for reading only to learn that the
        // other end is gone (a pipe's writer gets EPOLLERR, a socket EOF).
        bool gone = (events & kHangup) || ((events & kReadable) && peer_watch);
        if (gone && !conn_lost) return peer_left();
        if ((events & kWritable) && !queue.empty() && sock) return flush();
        return 0;
    }

    // Nothing is read from a write pipe.
    int on_eof() override { return 0; }
    const char* read_error_message() const override { return write_error_message(); }
    const char* write_error_message() const override { return "Fatal write error on pipe transport"; }
    bool closing_drops_writes() const override { return true; }

    // The reader went away: connection_lost, with BrokenPipeError if data
    // was still queued.
    int peer_left() {
        if (log_closed_by_peer(this) < 0) return -1;
        if (queue.empty()) return force_close(Py_None);
        Ref exc = Ref::steal(PyObject_CallNoArgs(PyExc_BrokenPipeError));
        return exc ? force_close(exc.get()) : -1;
    }

    // A terminal is readable whenever someone types, so asyncio does not
    // watch one it writes to for readability; then only its hang-up counts.
    bool peer_watch;
};

// What asyncio's pipe transports accept. Regular files never block, and
// epoll refuses them. `messages`: a read returns one message (a tty's
// line, a non-stream socket's datagram or record).
int check_pipe_fd(int fd, bool reading, bool* is_char_device, bool* messages) {
    struct stat st;
    if (fstat(fd, &st) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    *is_char_device = S_ISCHR(st.st_mode);
    *messages = *is_char_device;
    if (S_ISSOCK(st.st_mode)) {
        int type = 0;
        socklen_t len = sizeof type;
        *messages = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type != SOCK_STREAM;
    }
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode)) return 0;
    PyErr_SetString(PyExc_ValueError, reading ? "Pipe transport is for pipes/sockets only."
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

// loop._make_read_pipe_transport(pipe, protocol, waiter=None, extra=None)
// and _make_write_pipe_transport(...).
PyObject* make_pipe_transport(PyObject* op, PyObject* args, PyObject* kwargs, bool reading) {
    static const char* kwlist[] = {"pipe", "protocol", "waiter", "extra", nullptr};
    PyObject *pipe, *protocol, *waiter = Py_None, *extra = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs,
                                     reading ? "OO|OO:_make_read_pipe_transport" : "OO|OO:_make_write_pipe_transport",
                                     const_cast<char**>(kwlist), &pipe, &protocol, &waiter, &extra)) {
        return nullptr;
    }
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(op);
    if (check_closed(loop) < 0) return nullptr;
    ModuleState* st = loop->s.st;
    int fd = sock_fileno(st, pipe);
    bool is_char_device = false, messages = false;
    if (fd < 0 || check_pipe_fd(fd, reading, &is_char_device, &messages) < 0 || set_nonblocking(fd) < 0) {
        return nullptr;
    }
    Ref extra_dict = Ref::steal(extra == Py_None ? PyDict_New() : Py_NewRef(extra));
    if (!extra_dict || PyMapping_SetItemString(extra_dict.get(), "pipe", pipe) < 0) return nullptr;
    Ref context = Ref::steal(PyContext_CopyCurrent());
    if (!context) return nullptr;
    Ref t = Ref::steal(reading ? new_transport<ReadPipeTransport>(st->read_pipe_type, loop, fd, context.get(), messages)
                               : new_transport<WritePipeTransport>(st->write_pipe_type, loop, fd, context.get(),
                                                                   !is_char_device));
    if (!t || transport_of(t.get())->start(pipe, protocol, waiter, extra_dict.get(), Py_None) < 0) return nullptr;
    return t.release();
}

PyObject* make_read_pipe_transport(PyObject* op, PyObject* args, PyObject* kwargs) {
    return make_pipe_transport(op, args, kwargs, true);
}

PyObject* make_write_pipe_transport(PyObject* op, PyObject* args, PyObject* kwargs) {
    return make_pipe_transport(op, args, kwargs, false);
}

// The attribute names of asyncio's pipe transports.
PyObject* get_pipe(PyObject* t, void*) {
    PyObject* p = transport_of(t)->sock;
    return Py_NewRef(p ? p : Py_None);
}

// `transport._pipe = None` lets go of the pipe without closing it, which
// is how asyncio's own tests silence the unclosed-transport warning.
int set_pipe(PyObject* t, PyObject* value, void*) {
    if (value != Py_None) {
        PyErr_SetString(PyExc_AttributeError, "_pipe can only be set to None");
        return -1;
    }
    Transport* tr = transport_of(t);
    tr->unregister();
    Py_CLEAR(tr->sock);
    return 0;
}

PyObject* get_fileno(PyObject* t, void*) { return PyLong_FromLong(transport_of(t)->fd); }

const PyGetSetDef pipe_getsets[] = {
    {"_pipe", get_pipe, set_pipe, nullptr, nullptr},
    {"_fileno", get_fileno, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// A write pipe's EOF is its close, once the queue has drained.
PyObject* write_eof_method(PyObject* t, PyObject*) {
    if (transport_of(t)->close() < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* can_write_eof_method(PyObject*, PyObject*) { Py_RETURN_TRUE; }

const PyMethodDef write_pipe_eof_methods[] = {
    method_noargs<write_eof_method>("write_eof", "Close the pipe once buffered data is sent."),
    method_noargs<can_write_eof_method>("can_write_eof", "Return True: closing is a pipe's end of data."),
    kMethodsEnd,
};

// The direction's state while the loop runs, "open" once it is closed.
PyObject* read_pipe_repr(PyObject* t) {
    auto* tr = kind_of<ReadPipeTransport>(t);
    const char* name = Py_TYPE(t)->tp_name;
    if (!tr->sock) return PyUnicode_FromFormat("<%s closed fd=%d closed>", name, tr->fd);
    const char* state = tr->closing ? " closing" : "";
    if (tr->core_loop()->s.closed) return PyUnicode_FromFormat("<%s%s fd=%d open>", name, state, tr->fd);
    return PyUnicode_FromFormat("<%s%s fd=%d %s>", name, state, tr->fd, tr->is_reading() ? "polling" : "idle");
}

PyObject* write_pipe_repr(PyObject* t) {
    auto* tr = kind_of<WritePipeTransport>(t);
    const char* name = Py_TYPE(t)->tp_name;
    if (!tr->sock) return PyUnicode_FromFormat("<%s closed fd=%d closed>", name, tr->fd);
    const char* state = tr->closing ? " closing" : "";
    if (tr->core_loop()->s.closed) return PyUnicode_FromFormat("<%s%s fd=%d open>", name, state, tr->fd);
    return PyUnicode_FromFormat("<%s%s fd=%d %s bufsize=%zu>", name, state, tr->fd,
                                tr->queue.empty() ? "idle" : "polling", tr->queue.bytes());
}

}  // namespace

const PyMethodDef loop_pipe_methods[] = {
    method_varargs_kw<make_read_pipe_transport>(
        "_make_read_pipe_transport", "_make_read_pipe_transport($self, pipe, protocol, waiter=None, extra=None)\n--\n\n"),
    method_varargs_kw<make_write_pipe_transport>(
        "_make_write_pipe_transport", "_make_write_pipe_transport($self, pipe, protocol, waiter=None, extra=None)\n--\n\n"),
    kMethodsEnd,
};

int init_pipe_transport_types(PyObject* module, ModuleState* st) {
    static const TransportTables read_tables({transport_close_methods, transport_protocol_methods, transport_reading_methods},
                                             {transport_getsets, pipe_getsets});
    static const TransportTables write_tables(
        {transport_close_methods, transport_abort_methods, transport_protocol_methods, byte_stream_write_methods, write_pipe_eof_methods,
         flow_control_methods},
        {transport_getsets, flow_control_getsets, pipe_getsets});
    st->read_pipe_type = make_transport_type(module, "cxxloop._core.ReadPipeTransport",
                                             "The read end of a pipe, FIFO, socket or tty.", st->ReadTransportBase,
                                             sizeof(ReadPipeTransport), read_tables, slot<read_pipe_repr>());
    if (!st->read_pipe_type) return -1;
    st->write_pipe_type = make_transport_type(module, "cxxloop._core.WritePipeTransport",
                                              "The write end of a pipe, FIFO, socket or tty.", st->FlowControlMixin,
                                              sizeof(WritePipeTransport), write_tables, slot<write_pipe_repr>());
    if (!st->write_pipe_type) return -1;
    if (PyModule_AddObjectRef(module, "ReadPipeTransport", reinterpret_cast<PyObject*>(st->read_pipe_type)) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "WritePipeTransport", reinterpret_cast<PyObject*>(st->write_pipe_type));
}

}  // namespace cxxloop::py
