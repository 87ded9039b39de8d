// The read side of StreamTransport and ReadPipeTransport: one read per
// readiness event into the loop's scratch buffer (then an exact-size bytes
// for data_received), or straight into a BufferedProtocol's get_buffer();
// EOF; pause/resume.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "loop.hpp"
#include "stream_transport.hpp"

namespace cxxloop::py {
namespace {

// read() retried on EINTR; on a socket it is recv() without flags, and it
// works on pipes and ttys too. Returns the byte count, or -1 with errno set.
ssize_t recv_some(int fd, void* buf, size_t len) {
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0 || errno != EINTR) return n;
    }
}

// Calls protocol.<method>(arg); a failure becomes asyncio's fatal error.
int call_protocol(PyObject* t, PyObject* method, PyObject* arg, const char* message) {
    PyObject* args[] = {stream_data(t)->protocol, arg};
    Ref r = Ref::steal(PyObject_VectorcallMethod(method, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    if (r) return 0;
    return must_propagate() ? -1 : stream_fatal_error(t, message);
}

int on_eof(PyObject* t) {
    StreamData* d = stream_data(t);
    if (is_pipe(d)) return pipe_read_eof(t);
    ModuleState* st = stream_state(d);
    if (stream_loop(d)->s.debug) {
        Ref r = Ref::steal(PyObject_CallMethod(st->logger, "debug", "sO", "%r received EOF", t));
        if (!r) return -1;
    }
    Ref keep_open = Ref::steal(PyObject_CallMethodNoArgs(d->protocol, st->s_eof_received));
    int truth = keep_open ? PyObject_IsTrue(keep_open.get()) : -1;
    if (truth < 0) {
        return must_propagate() ? -1 : stream_fatal_error(t, "Fatal error: protocol.eof_received() call failed.");
    }
    if (truth) {
        // The protocol may still write, but nothing more can be received.
        d->read_eof = true;
        return 0;
    }
    return stream_close(t);
}

const char* read_error_message(PyObject* t) {
    return is_pipe(stream_data(t)) ? "Fatal read error on pipe transport" : "Fatal read error on socket transport";
}

int read_error(PyObject* t) {
    PyErr_SetFromErrno(PyExc_OSError);
    return stream_fatal_error(t, read_error_message(t));
}

// Handles the outcome of a recv: EOF, an error, or `n` bytes. A full read
// may leave more data queued in the kernel, and an edge-triggered fd will
// not report it again, so the transport asks to read once more next
// iteration, as a level-triggered reader would; so it does after a hang-up
// until the EOF itself is read.
int after_recv(PyObject* t, ssize_t n, size_t asked, bool* more) {
    if (n == 0) return on_eof(t);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return read_error(t);
    }
    *more = size_t(n) == asked;
    return 0;
}

int read_into_protocol(PyObject* t, bool* more) {
    StreamData* d = stream_data(t);
    PyObject* args[] = {d->protocol, nullptr};
    Ref size_hint = Ref::steal(PyLong_FromLong(-1));
    if (!size_hint) return -1;
    args[1] = size_hint.get();
    ModuleState* st = stream_state(d);
    Ref buf = Ref::steal(PyObject_VectorcallMethod(st->s_get_buffer, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    Py_ssize_t len = buf ? PyObject_Size(buf.get()) : -1;
    if (len == 0) PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
    if (len <= 0) {
        return must_propagate() ? -1 : stream_fatal_error(t, "Fatal error: protocol.get_buffer() call failed.");
    }
    Py_buffer view;
    if (PyObject_GetBuffer(buf.get(), &view, PyBUF_WRITABLE) < 0) return stream_fatal_error(t, read_error_message(t));
    ssize_t n = recv_some(d->fd, view.buf, size_t(view.len));
    int saved = errno;
    size_t asked = size_t(view.len);
    PyBuffer_Release(&view);
    if (n <= 0) {
        errno = saved;
        return after_recv(t, n, asked, more);
    }
    *more = size_t(n) == asked;
    Ref nbytes = Ref::steal(PyLong_FromSsize_t(n));
    if (!nbytes) return -1;
    return call_protocol(t, st->s_buffer_updated, nbytes.get(), "Fatal error: protocol.buffer_updated() call failed.");
}

// Below this, copying out of the scratch buffer costs less than the
// FIONREAD call that sizing a bytes object takes.
constexpr size_t kLargeRead = 32 * 1024;

// Reads what FIONREAD says is waiting (up to kReadBufferSize) straight into
// a bytes object of that size, saving the copy out of the scratch buffer:
// at 100 KiB per message that copy was 6% of an echo server's time.
// Returns 1 if there was not enough waiting to be worth it, and the caller
// reads the usual way.
int read_large(PyObject* t, bool* more) {
    StreamData* d = stream_data(t);
    int waiting = 0;
    if (ioctl(d->fd, FIONREAD, &waiting) < 0 || size_t(waiting) < kLargeRead) return 1;
    size_t want = std::min(size_t(waiting), kReadBufferSize);
    PyObject* raw = PyBytes_FromStringAndSize(nullptr, Py_ssize_t(want));
    if (!raw) return -1;
    ssize_t n = recv_some(d->fd, PyBytes_AS_STRING(raw), want);
    if (n <= 0) {
        Py_DECREF(raw);
        return after_recv(t, n, want, more);
    }
    // Data that arrives after FIONREAD raises a new edge; only a capped
    // read leaves bytes behind that nothing will report again.
    *more = size_t(waiting) > want;
    if (size_t(n) < want && _PyBytes_Resize(&raw, n) < 0) return -1;
    Ref data = Ref::steal(raw);
    return call_protocol(t, stream_state(d)->s_data_received, data.get(),
                         "Fatal error: protocol.data_received() call failed.");
}

// A transport whose last read was large tries read_large() first; the
// rest read into the loop's scratch buffer and copy out an exact-size
// bytes, which for small messages is one system call and a cheap copy.
int read_to_bytes(PyObject* t, bool* more) {
    StreamData* d = stream_data(t);
    if (d->large_reads) {
        int rc = read_large(t, more);
        if (rc <= 0) return rc;
        d->large_reads = false;
    }
    char* buf = read_buffer(stream_loop(d));
    if (!buf) return -1;
    ssize_t n = recv_some(d->fd, buf, kReadBufferSize);
    if (n <= 0) return after_recv(t, n, kReadBufferSize, more);
    *more = size_t(n) == kReadBufferSize;
    d->large_reads = size_t(n) >= kLargeRead;
    Ref data = Ref::steal(PyBytes_FromStringAndSize(buf, n));
    if (!data) return -1;
    return call_protocol(t, stream_state(d)->s_data_received, data.get(),
                         "Fatal error: protocol.data_received() call failed.");
}

}  // namespace

int stream_read_ready(PyObject* t) {
    StreamData* d = stream_data(t);
    if (d->conn_lost) return 0;
    bool more = false;
    int rc = d->buffered ? read_into_protocol(t, &more) : read_to_bytes(t, &more);
    if (rc < 0) return -1;
    if ((more || d->peer_closed) && !d->closing && !d->paused && !d->read_eof) return stream_schedule(t, kReadable);
    return 0;
}

namespace {

int log_debug(PyObject* t, const char* format) {
    if (!stream_loop(stream_data(t))->s.debug) return 0;
    Ref r = Ref::steal(PyObject_CallMethod(stream_state(stream_data(t))->logger, "debug", "sO", format, t));
    return r ? 0 : -1;
}

PyObject* is_reading(PyObject* t, PyObject*) { return PyBool_FromLong(stream_is_reading(stream_data(t))); }

PyObject* pause_reading(PyObject* t, PyObject*) {
    if (stream_pause_reading(t) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* resume_reading(PyObject* t, PyObject*) {
    if (stream_resume_reading(t) < 0) return nullptr;
    Py_RETURN_NONE;
}

}  // namespace

bool stream_is_reading(StreamData* d) { return !d->closing && !d->paused; }

int stream_pause_reading(PyObject* t) {
    StreamData* d = stream_data(t);
    if (d->closing || d->paused) return 0;
    d->paused = true;
    return log_debug(t, "%r pauses reading");
}

// The fd stays registered while paused, but an edge that arrived meanwhile
// was dropped; so resuming always tries one read, which costs a single
// EAGAIN when nothing is waiting.
int stream_resume_reading(PyObject* t) {
    StreamData* d = stream_data(t);
    if (d->closing || !d->paused) return 0;
    d->paused = false;
    if (stream_schedule(t, kReadable) < 0) return -1;
    return log_debug(t, "%r resumes reading");
}

PyMethodDef stream_read_methods[] = {
    {"is_reading", is_reading, METH_NOARGS, "Return True if the transport is receiving."},
    {"pause_reading", pause_reading, METH_NOARGS, "Stop calling the protocol's data_received() until resumed."},
    {"resume_reading", resume_reading, METH_NOARGS, "Resume receiving."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace cxxloop::py
