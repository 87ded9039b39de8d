// loop.sendfile() on StreamTransport, natively: the kernel copies file pages
// to the socket (sendfile(2)), nothing passes through Python.
//
// The behaviour is asyncio's _sendfile_native + _sock_sendfile_native:
// reading pauses for the duration, the job starts once the write queue has
// drained, write() is refused meanwhile, the file position ends up after
// the last byte sent, and a failure before any byte was sent is
// SendfileNotAvailableError so that loop.sendfile falls back to write().
// Unlike the selector transport, close() lets a running job finish before
// connection_lost, as it does queued data.
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "loop.hpp"
#include "stream_transport.hpp"

namespace cxxloop::py {
namespace {

// What one sendfile(2) call may move on Linux.
constexpr size_t kMaxChunk = 0x7ffff000;

// Settles the waiter unless its awaiter cancelled it.
int settle(ModuleState* st, PyObject* waiter, PyObject* method, PyObject* value) {
    Ref done = Ref::steal(PyObject_CallMethodNoArgs(waiter, st->s_done));
    int is_done = done ? PyObject_IsTrue(done.get()) : -1;
    if (is_done) return is_done < 0 ? -1 : 0;
    Ref r = Ref::steal(PyObject_CallMethodOneArg(waiter, method, value));
    return r ? 0 : -1;
}

// Ends the job: file position after the last byte sent, reading back on,
// the waiter settled with the byte count or `exc`; then whatever waited
// for the job (connection_lost after close(), shutdown after write_eof()).
int finish(PyObject* t, PyObject* exc) {
    StreamData* d = stream_data(t);
    SendfileJob job = std::exchange(d->sendfile, SendfileJob{});
    Ref waiter = Ref::steal(job.waiter);
    // As asyncio does, best effort: the data is sent whether or not this works.
    if (job.sent > 0) (void)lseek(job.file_fd, job.offset, SEEK_SET);
    if (job.resume_reading && stream_resume_reading(t) < 0) return -1;
    int rc;
    if (exc) {
        rc = settle(stream_state(d), waiter.get(), stream_state(d)->s_set_exception, exc);
    } else {
        Ref sent = Ref::steal(PyLong_FromSize_t(job.sent));
        rc = sent ? settle(stream_state(d), waiter.get(), stream_state(d)->s_set_result, sent.get()) : -1;
    }
    if (rc < 0) return -1;
    return d->conn_lost ? 0 : stream_write_done(t);
}

// A failed sendfile(2) with errno `err`.
int fail(PyObject* t, int err) {
    const SendfileJob& job = stream_data(t)->sendfile;
    Ref exc;
    if (job.sent == 0) {
        // Most often the file cannot be mapped (a pipe, a socket, ...):
        // loop.sendfile then falls back to reading and writing.
        exc = Ref::steal(PyObject_CallFunction(stream_state(stream_data(t))->SendfileNotAvailableError, "s",
                                               "os.sendfile call failed"));
    } else if (err == ENOTCONN) {
        // The peer went away mid-transfer; asyncio reports this uniformly.
        exc = Ref::steal(PyObject_CallFunction(PyExc_ConnectionError, "si", "socket is not connected", err));
    } else {
        exc = Ref::steal(PyObject_CallFunction(PyExc_OSError, "is", err, strerror(err)));
    }
    return exc ? finish(t, exc.get()) : -1;
}

// _sendfile(fileno, offset, count, blocksize): starts sending
// file[offset:offset+count] (to the end of the file if count is 0, in
// blocks of blocksize) and returns the future of the number of bytes sent.
// Loop._sendfile_native validates the file and calls this.
PyObject* start(PyObject* t, PyObject* args) {
    int file_fd;
    long long offset;
    Py_ssize_t count, blocksize;
    if (!PyArg_ParseTuple(args, "iLnn:_sendfile", &file_fd, &offset, &count, &blocksize)) return nullptr;
    if (offset < 0 || count < 0 || blocksize <= 0) {
        PyErr_SetString(PyExc_ValueError, "_sendfile: offset and count must be >= 0, blocksize > 0");
        return nullptr;
    }
    StreamData* d = stream_data(t);
    if (d->closing || !d->sock) {
        PyErr_SetString(PyExc_RuntimeError, "Transport is closing");
        return nullptr;
    }
    if (stream_sendfile_active(d)) {
        PyErr_SetString(PyExc_RuntimeError, "Empty waiter is already set");
        return nullptr;
    }
    Ref waiter = Ref::steal(PyObject_CallMethodNoArgs(d->loop, stream_state(d)->s_create_future));
    if (!waiter) return nullptr;
    bool was_reading = stream_is_reading(d);
    if (stream_pause_reading(t) < 0) return nullptr;
    d->sendfile = SendfileJob{Py_NewRef(waiter.get()), file_fd, off_t(offset), size_t(count), size_t(blocksize), 0,
                              was_reading};
    if (d->queue.empty() && stream_sendfile_ready(t) < 0) return nullptr;
    return waiter.release();
}

// Ends a job whose awaiter was cancelled (its waiter is then cancelled
// too, so it is left alone); nothing if none runs.
PyObject* cancel(PyObject* t, PyObject*) {
    if (stream_sendfile_active(stream_data(t)) && finish(t, nullptr) < 0) return nullptr;
    Py_RETURN_NONE;
}

}  // namespace

int stream_sendfile_ready(PyObject* t) {
    StreamData* d = stream_data(t);
    SendfileJob& job = d->sendfile;
    // Edge-triggered: send until the socket is full, or the job is done.
    for (;;) {
        size_t want = job.count ? job.count - job.sent : job.blocksize;
        if (want == 0) return finish(t, nullptr);
        ssize_t n = sendfile(d->fd, job.file_fd, &job.offset, std::min(want, kMaxChunk));
        if (n > 0) {
            job.sent += size_t(n);
        } else if (n == 0) {
            return finish(t, nullptr);  // end of file
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else if (errno != EINTR) {
            return fail(t, errno);
        }
    }
}

int stream_sendfile_abort(PyObject* t, PyObject* exc) {
    if (!stream_sendfile_active(stream_data(t))) return 0;
    if (exc != Py_None) return finish(t, exc);
    Ref aborted =
        Ref::steal(PyObject_CallFunction(PyExc_ConnectionAbortedError, "s", "transport aborted during sendfile"));
    return aborted ? finish(t, aborted.get()) : -1;
}

PyMethodDef stream_sendfile_methods[] = {
    {"_sendfile", start, METH_VARARGS, nullptr},
    {"_sendfile_cancel", cancel, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace cxxloop::py
