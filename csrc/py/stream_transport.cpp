// StreamTransport: loop._make_socket_transport, the socket's end of a
// connection (EOF, write_eof), and the Python type.
#include "stream_transport.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "methods.hpp"

namespace cxxloop::py {

int StreamTransport::on_events(uint32_t events) {
    if (events & kHangup) peer_closed = true;
    // Read first, then write: the order of the selector loop's callbacks.
    if ((events & kReadable) && !closing && !paused && !read_eof && read_ready() < 0) return -1;
    if ((events & kWritable) && has_queued_writes() && sock) {
        return queue.empty() && sendfile_active() ? sendfile_ready() : flush();
    }
    return 0;
}

int StreamTransport::on_eof() {
    ModuleState* st = state();
    if (core_loop()->s.debug) {
        Ref r = Ref::steal(PyObject_CallMethod(st->logger, "debug", "sO", "%r received EOF", object()));
        if (!r) return -1;
    }
    Ref keep_open = Ref::steal(PyObject_CallMethodNoArgs(protocol, st->s_eof_received));
    int truth = keep_open ? PyObject_IsTrue(keep_open.get()) : -1;
    if (truth < 0) {
        return must_propagate() ? -1 : fatal_error("Fatal error: protocol.eof_received() call failed.");
    }
    if (truth) {
        // The protocol may still write, but nothing more can be received.
        read_eof = true;
        return 0;
    }
    return close();
}

const char* StreamTransport::write_refused() const {
    if (sendfile_active()) return "unable to %s; sendfile is in progress";
    return ByteStreamTransport::write_refused();
}

ssize_t StreamTransport::write_some(const void* buf, size_t len) {
    for (;;) {
        ssize_t r = send(fd, buf, len, MSG_NOSIGNAL);
        if (r >= 0 || errno != EINTR) return r;
    }
}

ssize_t StreamTransport::write_iov(iovec* iov, int n) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = size_t(n);
    for (;;) {
        ssize_t r = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (r >= 0 || errno != EINTR) return r;
    }
}

int StreamTransport::after_flush() {
    // A sendfile waits for the queue to drain before it starts.
    return sendfile_active() ? sendfile_ready() : write_done();
}

int StreamTransport::drop_queued_writes(PyObject* exc) {
    queue.clear();
    return sendfile_abort(exc);
}

int StreamTransport::traverse_kind(visitproc visit, void* arg) const {
    Py_VISIT(sendfile.waiter);
    return ByteStreamTransport::traverse_kind(visit, arg);
}

void StreamTransport::clear_kind() {
    Py_CLEAR(sendfile.waiter);
    ByteStreamTransport::clear_kind();
}

namespace {

// sock.shutdown(SHUT_WR), through the socket's own method for a subclass.
int shutdown_write(StreamTransport* tr) {
    if (!tr->socket_methods) {
        if (shutdown(tr->fd, SHUT_WR) == 0) return 0;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    Ref how = Ref::steal(PyLong_FromLong(SHUT_WR));
    Ref r = how ? Ref::steal(PyObject_CallMethodOneArg(tr->sock, tr->state()->s_shutdown, how.get())) : Ref();
    return r ? 0 : -1;
}

}  // namespace

int StreamTransport::write_done() {
    if (closing) return connection_lost(Py_None);
    if (eof && shutdown_write(this) < 0) return write_failed();
    return 0;
}

int StreamTransport::write_eof() {
    if (closing || eof) return 0;
    eof = true;
    return has_queued_writes() ? 0 : shutdown_write(this);
}

namespace {

StreamTransport* socket_of(PyObject* t) { return kind_of<StreamTransport>(t); }

PyObject* write_eof_method(PyObject* t, PyObject*) {
    if (socket_of(t)->write_eof() < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* can_write_eof_method(PyObject*, PyObject*) { Py_RETURN_TRUE; }

const PyMethodDef stream_eof_methods[] = {
    method_noargs<write_eof_method>("write_eof", "Shut the write side down once buffered data is sent."),
    method_noargs<can_write_eof_method>("can_write_eof", "Return True: stream sockets support write_eof()."),
    kMethodsEnd,
};

PyObject* repr(PyObject* t) {
    StreamTransport* tr = socket_of(t);
    const char* state = !tr->sock ? " closed" : tr->closing ? " closing" : "";
    const char* name = Py_TYPE(t)->tp_name;
    if (!tr->sock || tr->core_loop()->s.closed) return PyUnicode_FromFormat("<%s%s fd=%d>", name, state, tr->fd);
    bool reading = !tr->closing && !tr->paused && !tr->read_eof;
    return PyUnicode_FromFormat("<%s%s fd=%d read=%s write=<%s, bufsize=%zu>>", name, state, tr->fd,
                                reading ? "polling" : "idle", tr->has_queued_writes() ? "polling" : "idle",
                                tr->write_buffer_size());
}

// loop._make_socket_transport(sock, protocol, waiter=None, *, extra=None,
// server=None, context=None)
PyObject* make_socket_transport(PyObject* op, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"sock", "protocol", "waiter", "extra", "server", "context", nullptr};
    PyObject *sock, *protocol, *waiter = Py_None, *extra = Py_None, *server = Py_None, *context = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O$OOO:_make_socket_transport", const_cast<char**>(kwlist),
                                     &sock, &protocol, &waiter, &extra, &server, &context)) {
        return nullptr;
    }
    return stream_transport_new(reinterpret_cast<CoreLoop*>(op), sock, protocol, waiter, extra, server, context);
}

}  // namespace

PyObject* stream_transport_new(CoreLoop* loop, PyObject* sock, PyObject* protocol, PyObject* waiter, PyObject* extra,
                               PyObject* server, PyObject* context) {
    if (check_closed(loop) < 0 || check_context_arg(context) < 0) return nullptr;
    ModuleState* st = loop->s.st;
    int fd = sock_fileno(st, sock);
    if (fd < 0) return nullptr;
    Ref extra_dict = Ref::steal(extra == Py_None ? PyDict_New() : Py_NewRef(extra));
    if (!extra_dict || fill_socket_extra(st, extra_dict.get(), sock) < 0) return nullptr;
    Ref r = Ref::steal(PyObject_CallOneArg(st->set_nodelay, sock));
    if (!r) return nullptr;
    Ref own_context = Ref::steal(context == Py_None ? PyContext_CopyCurrent() : Py_NewRef(context));
    if (!own_context) return nullptr;
    Ref t = Ref::steal(
        new_transport<StreamTransport>(st->stream_transport_type, loop, fd, own_context.get(), context != Py_None));
    if (!t) return nullptr;
    StreamTransport* tr = socket_of(t.get());
    tr->socket_methods = Py_TYPE(sock) != reinterpret_cast<PyTypeObject*>(st->socket_type);
    if (tr->start(sock, protocol, waiter, extra_dict.get(), server) < 0) return nullptr;
    return t.release();
}

const PyMethodDef loop_stream_methods[] = {
    method_varargs_kw<make_socket_transport>(
        "_make_socket_transport",
        "_make_socket_transport($self, sock, protocol, waiter=None, *, extra=None, server=None, context=None)\n--\n\n"),
    kMethodsEnd,
};

int init_stream_transport_type(PyObject* module, ModuleState* st) {
    static const TransportTables tables(
        {transport_close_methods, transport_abort_methods, transport_protocol_methods, transport_reading_methods,
         byte_stream_write_methods, stream_eof_methods, flow_control_methods, stream_sendfile_methods},
        {transport_getsets, flow_control_getsets});
    st->stream_transport_type =
        make_transport_type(module, "cxxloop._core.StreamTransport", "A TCP or Unix stream socket transport.",
                            st->FlowControlMixin, sizeof(StreamTransport), tables, slot<repr>());
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
