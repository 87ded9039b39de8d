// The write side of StreamTransport and WritePipeTransport: send at once
// when nothing is queued, otherwise queue (by reference when immutable) and
// flush with one sendmsg (writev on a pipe) of up to IOV_MAX chunks when the
// fd reports writable; flow control with asyncio's water marks; write_eof.
#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "loop.hpp"
#include "stream_transport.hpp"

namespace cxxloop::py {
namespace {

// asyncio's constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES.
constexpr int kLogThresholdForConnLostWrites = 5;
constexpr int kMaxIov = IOV_MAX < 1024 ? IOV_MAX : 1024;

// Writes iov[0:n], retried on EINTR. On a socket, sendmsg with
// MSG_NOSIGNAL: a peer that went away must surface as EPIPE even where
// SIGPIPE is not ignored. A pipe has only writev, as asyncio has os.write.
ssize_t send_iov(const StreamData* d, iovec* iov, int n) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = size_t(n);
    for (;;) {
        ssize_t r = is_pipe(d) ? writev(d->fd, iov, n) : sendmsg(d->fd, &msg, MSG_NOSIGNAL);
        if (r >= 0 || errno != EINTR) return r;
    }
}

// The immediate write of a single buffer: send() rather than sendmsg(),
// which also copies a msghdr and an iovec in from user space.
ssize_t send_one(const StreamData* d, const void* buf, size_t len) {
    for (;;) {
        ssize_t r = is_pipe(d) ? ::write(d->fd, buf, len) : send(d->fd, buf, len, MSG_NOSIGNAL);
        if (r >= 0 || errno != EINTR) return r;
    }
}

// Calls protocol.pause_writing() / resume_writing(); a failure is logged
// through the loop's handler, as asyncio's _FlowControlMixin does.
int call_flow(PyObject* t, PyObject* method, const char* message) {
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(stream_data(t)->protocol, method));
    return r ? 0 : report_raised_to_loop(t, message);
}

}  // namespace

int stream_maybe_pause_protocol(PyObject* t) {
    StreamData* d = stream_data(t);
    if (write_buffer_size(d) <= size_t(d->high_water) || d->protocol_paused) return 0;
    d->protocol_paused = true;
    return call_flow(t, stream_state(d)->s_pause_writing, "protocol.pause_writing() failed");
}

int stream_maybe_resume_protocol(PyObject* t) {
    StreamData* d = stream_data(t);
    if (!d->protocol_paused || write_buffer_size(d) > size_t(d->low_water)) return 0;
    d->protocol_paused = false;
    return call_flow(t, stream_state(d)->s_resume_writing, "protocol.resume_writing() failed");
}

namespace {

int fatal_write_error(PyObject* t) {
    StreamData* d = stream_data(t);
    d->queue.clear();
    PyErr_SetFromErrno(PyExc_OSError);
    return stream_fatal_error(t, is_pipe(d) ? "Fatal write error on pipe transport"
                                            : "Fatal write error on socket transport");
}

// Queues view[offset:], taking over the export. Mutable memory is copied,
// since the caller may change it as soon as write() returns.
int enqueue(StreamData* d, Py_buffer* view, size_t offset) {
    if (view->readonly) return d->queue.push(view, offset);
    Ref copy = Ref::steal(PyBytes_FromStringAndSize(static_cast<char*>(view->buf) + offset,
                                                    view->len - Py_ssize_t(offset)));
    PyBuffer_Release(view);
    if (!copy) return -1;
    Py_buffer owned;
    if (PyObject_GetBuffer(copy.get(), &owned, PyBUF_SIMPLE) < 0) return -1;
    return d->queue.push(&owned, 0);
}

int check_can_write(StreamData* d, const char* method) {
    if (d->eof) {
        PyErr_Format(PyExc_RuntimeError, "Cannot call %s() after write_eof()", method);
        return -1;
    }
    if (stream_sendfile_active(d)) {
        PyErr_SetString(PyExc_RuntimeError, "unable to write; sendfile is in progress");
        return -1;
    }
    return 0;
}

// A pipe being closed takes no more data, unlike a socket, whose close()
// still sends what is written before the last flush.
bool drops_data(const StreamData* d) { return d->conn_lost || (is_pipe(d) && d->closing); }

PyObject* write(PyObject* t, PyObject* data) {
    StreamData* d = stream_data(t);
    if (!is_bytes_like(data)) {
        PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%.200s'",
                     Py_TYPE(data)->tp_name);
        return nullptr;
    }
    if (check_can_write(d, "write") < 0) return nullptr;
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return nullptr;
    bool lost = drops_data(d);
    if (view.len == 0 || lost) {
        PyBuffer_Release(&view);
        if (lost && stream_drop_after_lost(d) < 0) return nullptr;
        Py_RETURN_NONE;
    }
    size_t sent = 0;
    if (d->queue.empty()) {
        ssize_t n = send_one(d, view.buf, size_t(view.len));
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            PyBuffer_Release(&view);
            if (fatal_write_error(t) < 0) return nullptr;
            Py_RETURN_NONE;
        }
        sent = n < 0 ? 0 : size_t(n);
        if (sent == size_t(view.len)) {
            PyBuffer_Release(&view);
            Py_RETURN_NONE;
        }
        // The rest goes out when the fd reports writable again.
    }
    if (enqueue(d, &view, sent) < 0 || stream_maybe_pause_protocol(t) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* writelines(PyObject* t, PyObject* list_of_data) {
    StreamData* d = stream_data(t);
    if (check_can_write(d, "writelines") < 0) return nullptr;
    Ref it = Ref::steal(PyObject_GetIter(list_of_data));
    if (!it) return nullptr;
    bool was_empty = d->queue.empty();
    while (Ref item = Ref::steal(PyIter_Next(it.get()))) {
        if (!is_bytes_like(item.get())) {
            PyErr_Format(PyExc_TypeError, "memoryview: a bytes-like object is required, not '%.200s'",
                         Py_TYPE(item.get())->tp_name);
            return nullptr;
        }
        Py_buffer view;
        if (PyObject_GetBuffer(item.get(), &view, PyBUF_SIMPLE) < 0) return nullptr;
        if (view.len == 0 || drops_data(d)) {
            PyBuffer_Release(&view);
            continue;
        }
        if (enqueue(d, &view, 0) < 0) return nullptr;
    }
    if (PyErr_Occurred()) return nullptr;
    if (drops_data(d)) {
        if (stream_drop_after_lost(d) < 0) return nullptr;
        Py_RETURN_NONE;
    }
    // One sendmsg for the whole batch; queued data already waits for the fd.
    if (was_empty && !d->queue.empty() && stream_write_ready(t) < 0) return nullptr;
    if (stream_maybe_pause_protocol(t) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* write_eof(PyObject* t, PyObject*) {
    StreamData* d = stream_data(t);
    if (d->kind == TransportKind::write_pipe) {
        // A pipe's EOF is its close, once the queue has drained.
        if (stream_close(t) < 0) return nullptr;
        Py_RETURN_NONE;
    }
    if (d->closing || d->eof) Py_RETURN_NONE;
    d->eof = true;
    bool sending = !d->queue.empty() || stream_sendfile_active(d);
    if (!sending && shutdown(d->fd, SHUT_WR) < 0) return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

PyObject* can_write_eof(PyObject*, PyObject*) { Py_RETURN_TRUE; }

PyObject* get_write_buffer_size(PyObject* t, PyObject*) { return PyLong_FromSize_t(write_buffer_size(stream_data(t))); }

PyObject* get_write_buffer_limits(PyObject* t, PyObject*) {
    StreamData* d = stream_data(t);
    return Py_BuildValue("(nn)", d->low_water, d->high_water);
}

// asyncio's defaults: 64 KiB high; a missing bound derives from the other.
PyObject* set_write_buffer_limits(PyObject* t, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"high", "low", nullptr};
    PyObject *high_obj = Py_None, *low_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:set_write_buffer_limits", const_cast<char**>(kwlist),
                                     &high_obj, &low_obj)) {
        return nullptr;
    }
    Py_ssize_t high = 0, low = 0;
    if (high_obj != Py_None && (high = PyNumber_AsSsize_t(high_obj, PyExc_OverflowError)) == -1 && PyErr_Occurred()) {
        return nullptr;
    }
    if (low_obj != Py_None && (low = PyNumber_AsSsize_t(low_obj, PyExc_OverflowError)) == -1 && PyErr_Occurred()) {
        return nullptr;
    }
    if (high_obj == Py_None) high = low_obj == Py_None ? 64 * 1024 : 4 * low;
    if (low_obj == Py_None) low = high / 4;
    if (!(high >= low && low >= 0)) {
        PyErr_Format(PyExc_ValueError, "high (%zd) must be >= low (%zd) must be >= 0", high, low);
        return nullptr;
    }
    StreamData* d = stream_data(t);
    d->high_water = high;
    d->low_water = low;
    if (stream_maybe_pause_protocol(t) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* get_protocol_paused(PyObject* t, void*) { return PyBool_FromLong(stream_data(t)->protocol_paused); }
PyObject* get_high_water(PyObject* t, void*) { return PyLong_FromSsize_t(stream_data(t)->high_water); }
PyObject* get_low_water(PyObject* t, void*) { return PyLong_FromSsize_t(stream_data(t)->low_water); }

}  // namespace

// A closing pipe that still flushes its queue is not lost: it drops the
// data without counting it, since conn_lost would stop the flush.
int stream_drop_after_lost(StreamData* d) {
    if (!d->conn_lost) return 0;
    if (d->conn_lost >= kLogThresholdForConnLostWrites) {
        Ref r = Ref::steal(PyObject_CallMethod(stream_state(d)->logger, "warning", "s", "socket.send() raised exception."));
        if (!r) return -1;
    }
    d->conn_lost++;
    return 0;
}

int stream_write_ready(PyObject* t) {
    StreamData* d = stream_data(t);
    if (d->conn_lost) return 0;
    while (!d->queue.empty()) {
        iovec iov[kMaxIov];
        int n = d->queue.fill(iov, kMaxIov);
        size_t want = 0;
        for (int i = 0; i < n; ++i) want += iov[i].iov_len;
        ssize_t sent = send_iov(d, iov, n);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return fatal_write_error(t);
        }
        d->queue.consume(size_t(sent));
        // A short write means the socket buffer is full: the next edge
        // says when to go on. A full one may just have hit kMaxIov.
        if (size_t(sent) < want) break;
    }
    if (stream_maybe_resume_protocol(t) < 0) return -1;  // may write more
    if (!d->queue.empty()) return 0;
    // A sendfile waits for the queue to drain before it starts.
    if (stream_sendfile_active(d)) return stream_sendfile_ready(t);
    return stream_write_done(t);
}

int stream_write_done(PyObject* t) {
    StreamData* d = stream_data(t);
    if (d->closing) return stream_connection_lost(t, Py_None);
    if (d->eof && shutdown(d->fd, SHUT_WR) < 0) return fatal_write_error(t);
    return 0;
}

PyMethodDef stream_write_methods[] = {
    {"write", write, METH_O, "Send bytes-like data; what the kernel does not take at once is buffered."},
    {"writelines", writelines, METH_O, "Send an iterable of bytes-like objects."},
    {"write_eof", write_eof, METH_NOARGS, "Shut the write side down once buffered data is sent."},
    {"can_write_eof", can_write_eof, METH_NOARGS, "Return True: stream sockets support write_eof()."},
    {nullptr, nullptr, 0, nullptr},
};

PyMethodDef stream_flow_methods[] = {
    {"get_write_buffer_size", get_write_buffer_size, METH_NOARGS, "Return the number of buffered bytes."},
    {"get_write_buffer_limits", get_write_buffer_limits, METH_NOARGS, "Return (low, high) water marks."},
    {"set_write_buffer_limits", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(set_write_buffer_limits)),
     METH_VARARGS | METH_KEYWORDS, "set_write_buffer_limits(high=None, low=None)"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef stream_write_getsets[] = {
    {"_protocol_paused", get_protocol_paused, nullptr, nullptr, nullptr},
    {"_high_water", get_high_water, nullptr, nullptr, nullptr},
    {"_low_water", get_low_water, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace cxxloop::py
