// The write side of ByteStreamTransport: send at once when nothing is
// queued, otherwise queue (by reference when immutable) and flush with one
// sendmsg (writev on a pipe) of up to IOV_MAX chunks when the fd reports
// writable.
#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "byte_stream_transport.hpp"
#include "methods.hpp"

namespace cxxloop::py {
namespace {

constexpr int kMaxIov = IOV_MAX < 1024 ? IOV_MAX : 1024;

// True if the memory behind `data` cannot change: a bytes, or a memoryview
// of one. A read-only memoryview of a bytearray is not: its owner can
// still write to it.
bool is_immutable(PyObject* data) {
    if (PyBytes_Check(data)) return true;
    return PyMemoryView_Check(data) && PyBytes_Check(PyMemoryView_GET_BASE(data));
}

// Queues view[offset:], taking over the export. What may still change is
// copied, since the caller may reuse it as soon as write() returns.
int enqueue(WriteQueue& queue, PyObject* data, Py_buffer* view, size_t offset) {
    if (is_immutable(data)) return queue.push(view, offset);
    Ref copy = Ref::steal(PyBytes_FromStringAndSize(static_cast<char*>(view->buf) + offset,
                                                    view->len - Py_ssize_t(offset)));
    PyBuffer_Release(view);
    if (!copy) return -1;
    Py_buffer owned;
    if (PyObject_GetBuffer(copy.get(), &owned, PyBUF_SIMPLE) < 0) return -1;
    return queue.push(&owned, 0);
}

}  // namespace

ssize_t ByteStreamTransport::write_some(const void* buf, size_t len) {
    for (;;) {
        ssize_t r = ::write(fd, buf, len);
        if (r >= 0 || errno != EINTR) return r;
    }
}

ssize_t ByteStreamTransport::write_iov(iovec* iov, int n) {
    for (;;) {
        ssize_t r = writev(fd, iov, n);
        if (r >= 0 || errno != EINTR) return r;
    }
}

const char* ByteStreamTransport::write_refused() const {
    return eof ? "Cannot call %s() after write_eof()" : nullptr;
}

int ByteStreamTransport::drop_queued_writes(PyObject* exc) {
    (void)exc;
    queue.clear();
    return 0;
}

// The immediate write of write(): the bytes sent (0 if the kernel would
// block), or kFailed with the exception set.
ssize_t ByteStreamTransport::send_now(PyObject* data, const Py_buffer& view) {
    if (!socket_methods) {
        ssize_t n = write_some(view.buf, size_t(view.len));
        if (n >= 0) return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        PyErr_SetFromErrno(PyExc_OSError);
        return kFailed;
    }
    return sent_by(Ref::steal(PyObject_CallMethodOneArg(sock, state()->s_send, data)));
}

// What a socket method's send() returned, as send_now() reports it.
ssize_t ByteStreamTransport::sent_by(Ref result) {
    if (result) {
        Py_ssize_t n = PyLong_AsSsize_t(result.get());
        if (n >= 0) return n;
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "send() returned a negative count");
        return kFailed;
    }
    if (PyErr_ExceptionMatches(PyExc_BlockingIOError) || PyErr_ExceptionMatches(PyExc_InterruptedError)) {
        PyErr_Clear();
        return 0;
    }
    return kFailed;
}

int ByteStreamTransport::write_failed() {
    queue.clear();
    return fatal_error(write_error_message());
}

int ByteStreamTransport::write_data(PyObject* data) {
    if (!is_bytes_like(data)) {
        PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%.200s'",
                     Py_TYPE(data)->tp_name);
        return -1;
    }
    if (const char* refused = write_refused()) {
        PyErr_Format(PyExc_RuntimeError, refused, "write");
        return -1;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        // Not contiguous: the socket call fails on it in asyncio's transport,
        // which makes that its fatal write error, not write()'s exception.
        return must_propagate() ? -1 : write_failed();
    }
    bool lost = conn_lost || (closing && closing_drops_writes());
    if (view.len == 0 || lost) {
        PyBuffer_Release(&view);
        return lost ? drop_after_lost() : 0;
    }
    size_t sent = 0;
    if (queue.empty()) {
        ssize_t n = send_now(data, view);
        if (n == kFailed) {
            PyBuffer_Release(&view);
            return must_propagate() ? -1 : write_failed();
        }
        sent = size_t(n);
        note_written(core_loop()->s.stats, n);
        if (sent == size_t(view.len)) {
            PyBuffer_Release(&view);
            return 0;
        }
        // The rest waits for the fd, which asyncio's closed loop refuses.
        if (check_can_wait_for_writable() < 0) {
            PyBuffer_Release(&view);
            return -1;
        }
    }
    if (enqueue(queue, data, &view, sent) < 0) return -1;
    return maybe_pause_protocol();
}

namespace {

// What writelines() takes before anything is queued, so that a failing
// iterable or a bad item leaves the queue as it was, as asyncio's does.
struct Exports {
    std::vector<std::pair<PyObject*, Py_buffer>> items;  // each holds a reference and an export
    ~Exports() {
        for (auto& [obj, view] : items) {
            PyBuffer_Release(&view);
            Py_DECREF(obj);
        }
    }
};

}  // namespace

int ByteStreamTransport::write_lines(PyObject* iterable) {
    if (const char* refused = write_refused()) {
        PyErr_Format(PyExc_RuntimeError, refused, "writelines");
        return -1;
    }
    Ref it = Ref::steal(PyObject_GetIter(iterable));
    if (!it) return -1;
    Exports exports;
    Py_ssize_t index = 0;
    while (Ref item = Ref::steal(PyIter_Next(it.get()))) {
        if (!is_bytes_like(item.get())) {
            // The message of asyncio's own writelines: b"".join's where it
            // joins (pipes, and sockets before 3.12), else memoryview's.
            if (writelines_joins()) {
                PyErr_Format(PyExc_TypeError, "sequence item %zd: expected a bytes-like object, %.80s found", index,
                             Py_TYPE(item.get())->tp_name);
            } else {
                PyErr_Format(PyExc_TypeError, "memoryview: a bytes-like object is required, not '%.200s'",
                             Py_TYPE(item.get())->tp_name);
            }
            return -1;
        }
        Py_buffer view;
        if (PyObject_GetBuffer(item.get(), &view, PyBUF_SIMPLE) < 0) return -1;
        exports.items.emplace_back(item.release(), view);
        ++index;
    }
    if (PyErr_Occurred()) return -1;
    if (conn_lost || (closing && closing_drops_writes())) return drop_after_lost();
    bool was_empty = queue.empty();
    for (auto& [obj, view] : exports.items) {
        Ref data = Ref::steal(std::exchange(obj, nullptr));
        Py_buffer taken = view;
        view = Py_buffer{};
        if (taken.len == 0) {
            PyBuffer_Release(&taken);
            continue;
        }
        if (enqueue(queue, data.get(), &taken, 0) < 0) return -1;
    }
    exports.items.clear();
    // One sendmsg for the whole batch; queued data already waits for the fd.
    if (was_empty && !queue.empty()) {
        if (flush() < 0) return -1;
        if (!queue.empty() && check_can_wait_for_writable() < 0) return -1;
    }
    return maybe_pause_protocol();
}

int ByteStreamTransport::flush() {
    if (conn_lost) return 0;
    while (!queue.empty()) {
        iovec iov[kMaxIov];
        int n = queue.fill(iov, kMaxIov);
        size_t want = 0;
        for (int i = 0; i < n; ++i) want += iov[i].iov_len;
        ssize_t sent;
        if (socket_methods) {
            // One chunk per send(), as asyncio's transport hands its buffer
            // to the socket's own method.
            want = iov[0].iov_len;
            Ref chunk = Ref::steal(
                PyMemoryView_FromMemory(static_cast<char*>(iov[0].iov_base), Py_ssize_t(want), PyBUF_READ));
            if (!chunk) return -1;
            sent = sent_by(Ref::steal(PyObject_CallMethodOneArg(sock, state()->s_send, chunk.get())));
            if (sent == kFailed) return must_propagate() ? -1 : write_failed();
        } else {
            sent = write_iov(iov, n);
            if (sent < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
                PyErr_SetFromErrno(PyExc_OSError);
                return write_failed();
            }
        }
        if (sent == 0) return 0;
        note_written(core_loop()->s.stats, sent);
        queue.consume(size_t(sent));
        // A short write means the kernel's buffer is full: the next edge
        // says when to go on. A full one may just have hit kMaxIov.
        if (size_t(sent) < want) break;
    }
    if (after_send() < 0) return -1;  // may write more
    if (!queue.empty()) return 0;
    return after_flush();
}

int ByteStreamTransport::write_done() {
    if (closing) return connection_lost(Py_None);
    return 0;
}

namespace {

ByteStreamTransport* stream_of(PyObject* t) { return kind_of<ByteStreamTransport>(t); }

PyObject* write_method(PyObject* t, PyObject* data) {
    if (stream_of(t)->write_data(data) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* writelines_method(PyObject* t, PyObject* iterable) {
    if (stream_of(t)->write_lines(iterable) < 0) return nullptr;
    Py_RETURN_NONE;
}

}  // namespace

const PyMethodDef byte_stream_write_methods[] = {
    method_o<write_method>("write", "Send bytes-like data; what the kernel does not take at once is buffered."),
    method_o<writelines_method>("writelines", "Send an iterable of bytes-like objects."),
    kMethodsEnd,
};

}  // namespace cxxloop::py
