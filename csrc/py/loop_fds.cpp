// add_reader / add_writer / remove_reader / remove_writer: level-triggered
// watches with selector_events' semantics (one reader and one writer per
// fd; adding replaces and cancels the previous handle).
//
// The underscore variants are BaseSelectorEventLoop's private hooks, which
// asyncio's selector transports, servers and sock_* methods call: they
// return the new Handle and skip the public methods' check that no
// transport owns the fd.
#include <unistd.h>

#include <cerrno>
#include <new>
#include <vector>

#include "handle.hpp"
#include "loop.hpp"

namespace cxxloop::py {

char* read_buffer(CoreLoop* self) {
    std::unique_ptr<char[]>& buf = self->s.read_buf;
    if (!buf) {
        buf.reset(new (std::nothrow) char[kReadBufferSize]);
        if (!buf) PyErr_NoMemory();
    }
    return buf.get();
}

FdWatch* fd_watch(CoreLoop* self, int fd) {
    auto& fds = self->s.fds;
    try {
        if (size_t(fd) >= fds.size()) fds.resize(size_t(fd) + 1);
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
        return nullptr;
    }
    return &fds[size_t(fd)];
}

namespace {

// selectors._fileobj_to_fd, with its messages.
int fileobj_to_fd(ModuleState* st, PyObject* fileobj) {
    long fd = -1;  // set on every path that reads it; GCC cannot tell
    if (PyLong_Check(fileobj)) {
        fd = PyLong_AsLong(fileobj);
        if (fd == -1 && PyErr_Occurred()) return -1;
    } else {
        Ref r = Ref::steal(PyObject_CallMethodNoArgs(fileobj, st->s_fileno));
        if (r && PyLong_Check(r.get())) fd = PyLong_AsLong(r.get());
        if (!r || !PyLong_Check(r.get()) || (fd == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "Invalid file object: %R", fileobj);
            return -1;
        }
    }
    if (fd < 0 || fd > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %ld", fd);
        return -1;
    }
    return int(fd);
}

uint32_t mask_of(const FdWatch& w) {
    return (w.reader ? kReadable : 0u) | (w.writer ? kWritable : 0u);
}

PyObject* FdWatch::*slot_for(uint32_t which) {
    return which == kReadable ? &FdWatch::reader : &FdWatch::writer;
}

// A transport's fd is the transport's: asyncio refuses watches on it too.
int check_no_transport(const FdWatch& w, int fd) {
    if (!w.transport) return 0;
    PyErr_Format(PyExc_RuntimeError, "File descriptor %d is used by transport %R", fd, w.transport);
    return -1;
}


// asyncio refuses public add/remove on an fd that a live transport owns.
int ensure_no_transport(CoreLoop* self, PyObject* fileobj) {
    Ref r = Ref::steal(PyObject_CallMethodOneArg(reinterpret_cast<PyObject*>(self), self->s.st->s_ensure_fd_no_transport,
                                                 fileobj));
    return r ? 0 : -1;
}

// Returns a new reference to the watch's Handle.
PyObject* add_watch(CoreLoop* self, PyObject* const* args, Py_ssize_t nargs, uint32_t which,
                    const char* method) {
    if (nargs < 2) {
        PyErr_Format(PyExc_TypeError, "%s() missing required positional arguments: 'fd' and 'callback'", method);
        return nullptr;
    }
    if (check_closed(self) < 0) return nullptr;
    int fd = fileobj_to_fd(self->s.st, args[0]);
    if (fd < 0) return nullptr;
    if (!PyCallable_Check(args[1])) {
        PyErr_Format(PyExc_TypeError, "a callable object was expected by %s(), got %R", method, args[1]);
        return nullptr;
    }
    if (check_not_inherited(self) < 0) return nullptr;
    return watch_fd(self, fd, which, args[1], args + 2, nargs - 2);
}

// Empties the watch slot and updates the poller; the caller releases the
// returned (cancelled) handle.
PyObject* take_watch(CoreLoop* self, int fd, uint32_t which) {
    LoopState& s = self->s;
    FdWatch& w = s.fds[size_t(fd)];
    PyObject* old = std::exchange(w.*slot_for(which), nullptr);
    if (!inherited_across_fork(self)) {
        // Errors mean the fd is already closed, which unregistered it.
        uint32_t mask = mask_of(w);
        if (mask) {
            s.poller->modify(fd, mask, uint64_t(fd), false);
        } else {
            s.poller->remove(fd);
        }
    }
    handle_cancel(old);
    return old;
}

PyObject* remove_watch(CoreLoop* self, PyObject* fileobj, uint32_t which) {
    if (self->s.closed) Py_RETURN_FALSE;
    int fd = fileobj_to_fd(self->s.st, fileobj);
    if (fd < 0) return nullptr;
    LoopState& s = self->s;
    if (size_t(fd) >= s.fds.size()) Py_RETURN_FALSE;
    if (check_no_transport(s.fds[size_t(fd)], fd) < 0) return nullptr;
    if (!(s.fds[size_t(fd)].*slot_for(which))) Py_RETURN_FALSE;
    Py_DECREF(take_watch(self, fd, which));
    Py_RETURN_TRUE;
}

PyObject* public_add(PyObject* op, PyObject* const* args, Py_ssize_t nargs, uint32_t which, const char* method) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    if (nargs >= 1 && ensure_no_transport(self, args[0]) < 0) return nullptr;
    Ref handle = Ref::steal(add_watch(self, args, nargs, which, method));
    if (!handle) return nullptr;
    Py_RETURN_NONE;
}

PyObject* public_remove(PyObject* op, PyObject* fd, uint32_t which) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    if (ensure_no_transport(self, fd) < 0) return nullptr;
    return remove_watch(self, fd, which);
}

PyObject* add_reader(PyObject* op, PyObject* const* args, Py_ssize_t nargs) {
    return public_add(op, args, nargs, kReadable, "add_reader");
}
PyObject* add_writer(PyObject* op, PyObject* const* args, Py_ssize_t nargs) {
    return public_add(op, args, nargs, kWritable, "add_writer");
}
PyObject* remove_reader(PyObject* op, PyObject* fd) { return public_remove(op, fd, kReadable); }
PyObject* remove_writer(PyObject* op, PyObject* fd) { return public_remove(op, fd, kWritable); }

PyObject* private_add_reader(PyObject* op, PyObject* const* args, Py_ssize_t nargs) {
    return add_watch(reinterpret_cast<CoreLoop*>(op), args, nargs, kReadable, "_add_reader");
}
PyObject* private_add_writer(PyObject* op, PyObject* const* args, Py_ssize_t nargs) {
    return add_watch(reinterpret_cast<CoreLoop*>(op), args, nargs, kWritable, "_add_writer");
}
PyObject* private_remove_reader(PyObject* op, PyObject* fd) {
    return remove_watch(reinterpret_cast<CoreLoop*>(op), fd, kReadable);
}
PyObject* private_remove_writer(PyObject* op, PyObject* fd) {
    return remove_watch(reinterpret_cast<CoreLoop*>(op), fd, kWritable);
}

// The selectors.EVENT_READ / EVENT_WRITE mask watched on fd (our Interest
// bits have the same values), for the selector view transports' repr uses.
PyObject* watched_events(PyObject* op, PyObject* fileobj) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    int fd = fileobj_to_fd(self->s.st, fileobj);
    if (fd < 0) return nullptr;
    const std::vector<FdWatch>& fds = self->s.fds;
    return PyLong_FromUnsignedLong(size_t(fd) < fds.size() ? mask_of(fds[size_t(fd)]) : 0);
}

}  // namespace

int check_not_inherited(CoreLoop* self) {
    if (!inherited_across_fork(self)) return 0;
    PyErr_SetString(PyExc_RuntimeError, "Cannot use an event loop inherited across fork()");
    return -1;
}

PyObject* watch_fd(CoreLoop* self, int fd, uint32_t which, PyObject* callback, PyObject* const* args,
                   Py_ssize_t nargs) {
    LoopState& s = self->s;
    FdWatch* watch = fd_watch(self, fd);
    if (!watch || check_no_transport(*watch, fd) < 0) return nullptr;
    Ref handle = Ref::steal(handle_new(s.st->handle_type, self, callback, args, nargs, nullptr));
    if (!handle) return nullptr;

    FdWatch& w = s.fds[size_t(fd)];  // handle_new cannot grow the table
    uint32_t old_mask = mask_of(w);
    uint32_t mask = old_mask | which;
    int err = old_mask ? s.poller->modify(fd, mask, uint64_t(fd), false)
                       : s.poller->add(fd, mask, uint64_t(fd), false);
    if (err == -ENOENT && old_mask) {
        // The fd was closed and its number reused since the last watch was
        // added; the kernel already forgot the old registration.
        err = s.poller->add(fd, mask, uint64_t(fd), false);
    }
    if (err < 0) {
        errno = -err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject* old = std::exchange(w.*slot_for(which), Py_NewRef(handle.get()));
    if (old) {
        handle_cancel(old);
        Py_DECREF(old);
    }
    return handle.release();
}

void unwatch_fd(CoreLoop* self, int fd, uint32_t which, PyObject* handle) {
    if (self->s.closed || size_t(fd) >= self->s.fds.size()) return;
    if (self->s.fds[size_t(fd)].*slot_for(which) != handle) return;  // replaced since
    Py_DECREF(take_watch(self, fd, which));
}

PyMethodDef loop_fd_methods[] = {
    {"add_reader", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(add_reader)), METH_FASTCALL,
     "add_reader(fd, callback, *args): call callback(*args) while fd is readable."},
    {"add_writer", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(add_writer)), METH_FASTCALL,
     "add_writer(fd, callback, *args): call callback(*args) while fd is writable."},
    {"remove_reader", remove_reader, METH_O, "Stop watching fd for reading; return True if it was watched."},
    {"remove_writer", remove_writer, METH_O, "Stop watching fd for writing; return True if it was watched."},
    {"_add_reader", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(private_add_reader)), METH_FASTCALL,
     nullptr},
    {"_add_writer", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(private_add_writer)), METH_FASTCALL,
     nullptr},
    {"_remove_reader", private_remove_reader, METH_O, nullptr},
    {"_remove_writer", private_remove_writer, METH_O, nullptr},
    {"_watched_events", watched_events, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace cxxloop::py
