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

#include "methods.hpp"
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

}  // namespace

// Ends the job: file position after the last byte sent, reading back on,
// the waiter settled with the byte count or `exc`; then whatever waited
// for the job (connection_lost after close(), shutdown after write_eof()).
int StreamTransport::sendfile_finish(PyObject* exc) {
    SendfileJob job = std::exchange(sendfile, SendfileJob{});
    Ref waiter = Ref::steal(job.waiter);
    ModuleState* st = state();
    // As asyncio does, best effort: the data is sent whether or not this works.
    if (job.sent > 0) (void)lseek(job.file_fd, job.offset, SEEK_SET);
    if (job.resume_reading && resume_reading() < 0) return -1;
    int rc;
    if (exc) {
        rc = settle(st, waiter.get(), st->s_set_exception, exc);
    } else {
        Ref sent = Ref::steal(PyLong_FromSize_t(job.sent));
        rc = sent ? settle(st, waiter.get(), st->s_set_result, sent.get()) : -1;
    }
    if (rc < 0) return -1;
    return conn_lost ? 0 : write_done();
}

// A failed sendfile(2) with errno `err`.
int StreamTransport::sendfile_fail(int err) {
    Ref exc;
    if (sendfile.sent == 0) {
        // Most often the file cannot be mapped (a pipe, a socket, ...):
        // loop.sendfile then falls back to reading and writing.
        exc = Ref::steal(PyObject_CallFunction(state()->SendfileNotAvailableError, "s", "os.sendfile call failed"));
    } else if (err == ENOTCONN) {
        // The peer went away mid-transfer; asyncio reports this uniformly.
        exc = Ref::steal(PyObject_CallFunction(PyExc_ConnectionError, "si", "socket is not connected", err));
    } else {
        exc = Ref::steal(PyObject_CallFunction(PyExc_OSError, "is", err, strerror(err)));
    }
    return exc ? sendfile_finish(exc.get()) : -1;
}

int StreamTransport::sendfile_ready() {
    // Edge-triggered: send until the socket is full, or the job is done.
    for (;;) {
        size_t want = sendfile.count ? sendfile.count - sendfile.sent : sendfile.blocksize;
        if (want == 0) return sendfile_finish(nullptr);
        ssize_t n = ::sendfile(fd, sendfile.file_fd, &sendfile.offset, std::min(want, kMaxChunk));
        if (n > 0) {
            sendfile.sent += size_t(n);
            note_written(core_loop()->s.stats, n);
        } else if (n == 0) {
            return sendfile_finish(nullptr);  // end of file
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else if (errno != EINTR) {
            return sendfile_fail(errno);
        }
    }
}

int StreamTransport::sendfile_abort(PyObject* exc) {
    if (!sendfile_active()) return 0;
    if (exc != Py_None) return sendfile_finish(exc);
    Ref aborted =
        Ref::steal(PyObject_CallFunction(PyExc_ConnectionAbortedError, "s", "transport aborted during sendfile"));
    return aborted ? sendfile_finish(aborted.get()) : -1;
}

namespace {

// _sendfile(fileno, offset, count, blocksize): starts sending
// file[offset:offset+count] (to the end of the file if count is 0, in
// blocks of blocksize) and returns the future of the number of bytes sent.
// Loop._sendfile_native validates the file and calls this.
PyObject* start_sendfile(PyObject* t, PyObject* args) {
    int file_fd;
    long long offset;
    Py_ssize_t count, blocksize;
    if (!PyArg_ParseTuple(args, "iLnn:_sendfile", &file_fd, &offset, &count, &blocksize)) return nullptr;
    if (offset < 0 || count < 0 || blocksize <= 0) {
        PyErr_SetString(PyExc_ValueError, "_sendfile: offset and count must be >= 0, blocksize > 0");
        return nullptr;
    }
    StreamTransport* tr = kind_of<StreamTransport>(t);
    if (tr->closing || !tr->sock) {
        PyErr_SetString(PyExc_RuntimeError, "Transport is closing");
        return nullptr;
    }
    if (tr->sendfile_active()) {
        PyErr_SetString(PyExc_RuntimeError, "Empty waiter is already set");
        return nullptr;
    }
    Ref waiter = Ref::steal(PyObject_CallMethodNoArgs(tr->loop, tr->state()->s_create_future));
    if (!waiter) return nullptr;
    bool was_reading = tr->is_reading();
    if (tr->pause_reading() < 0) return nullptr;
    tr->sendfile = SendfileJob{Py_NewRef(waiter.get()), file_fd, off_t(offset), size_t(count), size_t(blocksize), 0,
                               was_reading};
    if (tr->queue.empty() && tr->sendfile_ready() < 0) return nullptr;
    return waiter.release();
}

// Ends a job whose awaiter was cancelled (its waiter is then cancelled
// too, so it is left alone); nothing if none runs.
PyObject* cancel_sendfile(PyObject* t, PyObject*) {
    StreamTransport* tr = kind_of<StreamTransport>(t);
    if (tr->sendfile_active() && tr->sendfile_finish(nullptr) < 0) return nullptr;
    Py_RETURN_NONE;
}

}  // namespace

const PyMethodDef stream_sendfile_methods[] = {
    method_varargs<start_sendfile>("_sendfile", nullptr),
    method_noargs<cancel_sendfile>("_sendfile_cancel", nullptr),
    kMethodsEnd,
};

}  // namespace cxxloop::py
