// The read side of ByteStreamTransport: one read per readiness event into
// the loop's scratch buffer (then an exact-size bytes for data_received),
// or straight into a BufferedProtocol's get_buffer(); EOF; pause/resume.
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "byte_stream_transport.hpp"
#include "methods.hpp"

namespace cxxloop::py {

ssize_t ByteStreamTransport::read_some(void* buf, size_t len) {
    // read() is recv() without flags on a socket, and works on pipes and
    // ttys too.
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0 || errno != EINTR) return n;
    }
}

int ByteStreamTransport::set_protocol(PyObject* protocol_) {
    int is_buffered = 0;
    if (supports_buffered_protocol()) {
        is_buffered = PyObject_IsInstance(protocol_, state()->BufferedProtocol);
        if (is_buffered < 0) return -1;
    }
    buffered = is_buffered;
    return Transport::set_protocol(protocol_);
}

namespace {

bool would_block() {
    return PyErr_ExceptionMatches(PyExc_BlockingIOError) || PyErr_ExceptionMatches(PyExc_InterruptedError);
}

}  // namespace

// A socket method (a subclass's recv or recv_into) raised: nothing to read
// yet, the loop unwinding, or asyncio's fatal read error.
int ByteStreamTransport::after_failed_call() {
    if (would_block()) {
        PyErr_Clear();
        return 0;
    }
    return must_propagate() ? -1 : fatal_error(read_error_message());
}

// The outcome of a read: EOF, an error, or `n` bytes. A full read may
// leave more data queued in the kernel, and an edge-triggered fd will not
// report it again, so the transport asks to read once more next
// iteration, as a level-triggered reader would; so it does after a hang-up
// until the EOF itself is read, and after every read of a kind whose reads
// return one message each.
int ByteStreamTransport::after_read(ssize_t n, size_t asked, bool* more) {
    if (n == 0) return on_eof();
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        PyErr_SetFromErrno(PyExc_OSError);
        return fatal_error(read_error_message());
    }
    *more = size_t(n) == asked || reads_are_messages();
    return 0;
}

namespace {

// Whether a read of fd would return at once (data, EOF or an error).
bool read_would_return(int fd) {
    pollfd p{fd, POLLIN, 0};
    int n;
    do {
        n = poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    return n != 0;  // on a failed poll, the read itself says what is wrong
}

}  // namespace

int ByteStreamTransport::read_into_protocol(bool* more) {
    ModuleState* st = state();
    // A retried read asks the fd first: get_buffer() with nothing to read
    // is a call asyncio never makes. poll() is level-triggered, so nothing
    // waiting is missed; what arrives later raises a new edge.
    if (std::exchange(read_unconfirmed, false) && !read_would_return(fd)) return 0;
    Ref size_hint = Ref::steal(PyLong_FromLong(-1));
    if (!size_hint) return -1;
    PyObject* args[] = {protocol, size_hint.get()};
    Ref buf = Ref::steal(PyObject_VectorcallMethod(st->s_get_buffer, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    Py_ssize_t len = buf ? PyObject_Size(buf.get()) : -1;
    if (len == 0) PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
    if (len <= 0) {
        return must_propagate() ? -1 : fatal_error("Fatal error: protocol.get_buffer() call failed.");
    }
    if (socket_methods) {
        Ref got = Ref::steal(PyObject_CallMethodOneArg(sock, st->s_recv_into, buf.get()));
        if (!got) return after_failed_call();
        Py_ssize_t n = PyLong_AsSsize_t(got.get());
        if (n < 0) return PyErr_Occurred() ? after_failed_call() : 0;
        if (n == 0) return on_eof();
        note_read(core_loop()->s.stats, n);
        *more = n == len;
        return call_protocol(st->s_buffer_updated, {got.get()}, "Fatal error: protocol.buffer_updated() call failed.");
    }
    Py_buffer view;
    if (PyObject_GetBuffer(buf.get(), &view, PyBUF_WRITABLE) < 0) {
        // Not writable (a bytes, say): asyncio's recv_into(buf) fails on it,
        // and the error it reports is the socket module's, so ask it.
        PyErr_Clear();
        Ref r = Ref::steal(PyObject_CallMethodOneArg(sock, st->s_recv_into, buf.get()));
        if (r) PyErr_SetString(PyExc_TypeError, "get_buffer() returned a read-only buffer");
        return must_propagate() ? -1 : fatal_error(read_error_message());
    }
    ssize_t n = read_some(view.buf, size_t(view.len));
    int saved = errno;
    size_t asked = size_t(view.len);
    PyBuffer_Release(&view);
    if (n <= 0) {
        errno = saved;
        return after_read(n, asked, more);
    }
    *more = size_t(n) == asked || reads_are_messages();
    note_read(core_loop()->s.stats, n);
    Ref nbytes = Ref::steal(PyLong_FromSsize_t(n));
    if (!nbytes) return -1;
    return call_protocol(st->s_buffer_updated, {nbytes.get()}, "Fatal error: protocol.buffer_updated() call failed.");
}

namespace {

// Below this, copying out of the scratch buffer costs less than the
// FIONREAD call that sizing a bytes object takes.
constexpr size_t kLargeRead = 32 * 1024;

}  // namespace

// Reads what FIONREAD says is waiting (up to kReadBufferSize) straight into
// a bytes object of that size, saving the copy out of the scratch buffer:
// at 100 KiB per message that copy was 6% of an echo server's time.
// Returns 1 if there was not enough waiting to be worth it, and the caller
// reads the usual way.
int ByteStreamTransport::read_large(bool* more) {
    int waiting = 0;
    if (ioctl(fd, FIONREAD, &waiting) < 0 || size_t(waiting) < kLargeRead) return 1;
    size_t want = std::min(size_t(waiting), kReadBufferSize);
    PyObject* raw = PyBytes_FromStringAndSize(nullptr, Py_ssize_t(want));
    if (!raw) return -1;
    ssize_t n = read_some(PyBytes_AS_STRING(raw), want);
    if (n <= 0) {
        Py_DECREF(raw);
        return after_read(n, want, more);
    }
    // Data that arrives after FIONREAD raises a new edge; only a capped
    // read leaves bytes behind that nothing will report again.
    *more = size_t(waiting) > want;
    note_read(core_loop()->s.stats, n);
    if (size_t(n) < want && _PyBytes_Resize(&raw, n) < 0) return -1;
    Ref data = Ref::steal(raw);
    return deliver(data.get());
}

int ByteStreamTransport::deliver(PyObject* data) {
    PyObject* args[] = {protocol, data};
    Ref r = Ref::steal(
        PyObject_VectorcallMethod(state()->s_data_received, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    if (r) return 0;
    return must_propagate() ? -1 : data_received_failed();
}

int ByteStreamTransport::data_received_failed() {
    return fatal_error("Fatal error: protocol.data_received() call failed.");
}

// sock.recv(max_size), as asyncio's transport reads.
int ByteStreamTransport::recv_to_bytes(bool* more) {
    ModuleState* st = state();
    Ref size = Ref::steal(PyLong_FromSize_t(kReadBufferSize));
    if (!size) return -1;
    Ref data = Ref::steal(PyObject_CallMethodOneArg(sock, st->s_recv, size.get()));
    if (!data) return after_failed_call();
    Py_ssize_t n = PyObject_Size(data.get());
    if (n < 0) return after_failed_call();
    if (n == 0) return on_eof();
    *more = size_t(n) == kReadBufferSize;
    note_read(core_loop()->s.stats, n);
    return deliver(data.get());
}

// A transport whose last read was large tries read_large() first; the
// rest read into the loop's scratch buffer and copy out an exact-size
// bytes, which for small messages is one system call and a cheap copy.
int ByteStreamTransport::read_to_bytes(bool* more) {
    if (socket_methods) return recv_to_bytes(more);
    if (large_reads && !reads_are_messages()) {
        int rc = read_large(more);
        if (rc <= 0) return rc;
        large_reads = false;
    }
    char* buf = read_buffer(core_loop());
    if (!buf) return -1;
    ssize_t n = read_some(buf, kReadBufferSize);
    if (n <= 0) return after_read(n, kReadBufferSize, more);
    *more = size_t(n) == kReadBufferSize || reads_are_messages();
    large_reads = size_t(n) >= kLargeRead;
    note_read(core_loop()->s.stats, n);
    Ref data = Ref::steal(PyBytes_FromStringAndSize(buf, n));
    if (!data) return -1;
    return deliver(data.get());
}

int ByteStreamTransport::read_ready() {
    if (conn_lost) return 0;
    bool more = false;
    int rc = buffered ? read_into_protocol(&more) : read_to_bytes(&more);
    if (rc < 0) return -1;
    if ((more || peer_closed) && !closing && !paused && !read_eof) return schedule(kReadable);
    return 0;
}

}  // namespace cxxloop::py
