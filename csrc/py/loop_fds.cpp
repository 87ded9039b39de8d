// add_reader / add_writer / remove_reader / remove_writer: level-triggered
// watches with selector_events' semantics (one reader and one writer per
// fd; adding replaces and cancels the previous handle).
//
// The underscore variants are BaseSelectorEventLoop's private hooks, which
// asyncio's selector transports, servers and sock_* methods call: they
// return the new Handle, take context= (as 3.15's do), and skip the public
// methods' check that no transport owns the fd.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <vector>

#include "handle.hpp"
#include "loop.hpp"
#include "leading_keywords.hpp"
#include "methods.hpp"

namespace cxxloop::py {

namespace {

char* scratch(std::unique_ptr<char[]>& buf) {
    if (!buf) {
        buf.reset(new (std::nothrow) char[kReadBufferSize]);
        if (!buf) PyErr_NoMemory();
    }
    return buf.get();
}

}  // namespace

char* read_buffer(CoreLoop* self) { return scratch(self->s.read_buf); }

char* plaintext_buffer(CoreLoop* self) { return scratch(self->s.plaintext_buf); }

FdWatch* fd_watch(CoreLoop* self, int fd) {
    auto& fds = self->s.fds;
    if (size_t(fd) >= fds.size()) {
        // Only an open fd grows the table: add_reader(100_000_000, cb)
        // gets the poller's EBADF, as on asyncio, not a 2 GB table.
        if (fcntl(fd, F_GETFD) < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return nullptr;
        }
        try {
            fds.resize(size_t(fd) + 1);
        } catch (const std::bad_alloc&) {
            PyErr_NoMemory();
            return nullptr;
        }
    }
    return &fds[size_t(fd)];
}

namespace {

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

// The fd of a watched file object, as a selector finds its key: by the
// object's fileno(), or, if that fails (a socket closed while watched
// reports -1), by the identity of the object the watch was added with.
int watched_fd(CoreLoop* self, PyObject* fileobj) {
    int fd = fileobj_to_fd(self->s.st, fileobj);
    if (fd >= 0 || !PyErr_ExceptionMatches(PyExc_ValueError)) return fd;
    const std::vector<FdWatch>& fds = self->s.fds;
    for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].fileobj == fileobj) {
            PyErr_Clear();
            return int(i);
        }
    }
    return -1;
}

// asyncio refuses public add/remove on an fd that a live transport owns.
int ensure_no_transport(CoreLoop* self, PyObject* fileobj) {
    Ref r = Ref::steal(
        PyObject_CallMethodOneArg(reinterpret_cast<PyObject*>(self), self->s.st->s_ensure_fd_no_transport, fileobj));
    return r ? 0 : -1;
}

// Returns a new reference to the watch's Handle. `kwnames` may carry
// context= (the private hooks only).
PyObject* add_watch(CoreLoop* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, uint32_t which,
                    const char* method) {
    PyObject* context = nullptr;
    ModuleState* st = self->s.st;
    if (!parse_kwonly(st, method, args, nargs, kwnames, {st->s_context}, {&context})) return nullptr;
    if (nargs < 2) {
        PyErr_Format(PyExc_TypeError, "%s() missing required positional arguments: 'fd' and 'callback'", method);
        return nullptr;
    }
    if (check_closed(self) < 0) return nullptr;
    int fd = fileobj_to_fd(st, args[0]);
    if (fd < 0) return nullptr;
    if (!PyCallable_Check(args[1])) {
        PyErr_Format(PyExc_TypeError, "a callable object was expected by %s(), got %R", method, args[1]);
        return nullptr;
    }
    if (context && context != Py_None && !PyContext_CheckExact(context)) {
        PyErr_Format(PyExc_TypeError, "context must be a contextvars.Context, not %.200s", Py_TYPE(context)->tp_name);
        return nullptr;
    }
    if (check_not_inherited(self) < 0) return nullptr;
    return watch_fd(self, fd, args[0], which, args[1], args + 2, nargs - 2, context);
}

// What take_watch() took out of the fd table; released once the table is
// consistent again (a release can run code).
struct Taken {
    PyObject* handle = nullptr;    // the watch's, cancelled
    PyObject* other = nullptr;     // the other direction's, when the whole registration went
    PyObject* fileobj = nullptr;   // when the fd's last watch went
    void release() {
        for (PyObject* h : {handle, other}) {
            if (!h) continue;
            handle_cancel(h);
            Py_DECREF(h);
        }
        Py_XDECREF(fileobj);
    }
};

// Empties the watch slot and updates the poller. If the other direction
// stays watched but the poller refuses the change (the fd was closed while
// watched), the whole registration goes and the poller's negative errno is
// returned, for the caller to raise as a selector's modify() does after
// unregistering the key.
int take_watch(CoreLoop* self, int fd, uint32_t which, Taken* taken) {
    LoopState& s = self->s;
    FdWatch& w = s.fds[size_t(fd)];
    taken->handle = std::exchange(w.*slot_for(which), nullptr);
    uint32_t mask = mask_of(w);
    int err = 0;
    if (!inherited_across_fork(self)) {
        if (mask) {
            err = s.poller->modify(fd, mask, uint64_t(fd), false);
        } else {
            s.poller->remove(fd);  // fails only for an fd closed already, which unregistered it
        }
    }
    if (err < 0) {
        taken->other = std::exchange(w.*slot_for(which == kReadable ? kWritable : kReadable), nullptr);
        mask = 0;
    }
    if (!mask) taken->fileobj = std::exchange(w.fileobj, nullptr);
    return err;
}

PyObject* remove_watch(CoreLoop* self, PyObject* fileobj, uint32_t which) {
    if (self->s.closed) Py_RETURN_FALSE;
    int fd = watched_fd(self, fileobj);
    if (fd < 0) return nullptr;
    LoopState& s = self->s;
    if (size_t(fd) >= s.fds.size()) Py_RETURN_FALSE;
    if (check_no_transport(s.fds[size_t(fd)], fd) < 0) return nullptr;
    if (!(s.fds[size_t(fd)].*slot_for(which))) Py_RETURN_FALSE;
    Taken taken;
    int err = take_watch(self, fd, which, &taken);
    taken.release();
    if (err < 0) {
        errno = -err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_TRUE;
}

PyObject* public_add(PyObject* op, PyObject* const* args, Py_ssize_t nargs, uint32_t which, const char* method) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    if (nargs >= 1 && ensure_no_transport(self, args[0]) < 0) return nullptr;
    Ref handle = Ref::steal(add_watch(self, args, nargs, nullptr, which, method));
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

PyObject* private_add_reader(PyObject* op, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    return add_watch(reinterpret_cast<CoreLoop*>(op), args, PyVectorcall_NARGS(nargsf), kwnames, kReadable,
                     "_add_reader");
}
PyObject* private_add_writer(PyObject* op, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    return add_watch(reinterpret_cast<CoreLoop*>(op), args, PyVectorcall_NARGS(nargsf), kwnames, kWritable,
                     "_add_writer");
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
    int fd = watched_fd(self, fileobj);
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

PyObject* watch_fd(CoreLoop* self, int fd, PyObject* fileobj, uint32_t which, PyObject* callback, PyObject* const* args,
                   Py_ssize_t nargs, PyObject* context) {
    LoopState& s = self->s;
    FdWatch* watch = fd_watch(self, fd);
    if (!watch || check_no_transport(*watch, fd) < 0) return nullptr;
    Ref handle = Ref::steal(handle_new(s.st->handle_type, self, callback, args, nargs, context));
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
    // The file object a later remove finds the watch by, once its fileno()
    // no longer answers: the first one added for the fd, as a selector's key.
    PyObject* replaced_fileobj = nullptr;
    if (!old_mask) replaced_fileobj = std::exchange(w.fileobj, Py_NewRef(fileobj));
    PyObject* old = std::exchange(w.*slot_for(which), Py_NewRef(handle.get()));
    Py_XDECREF(replaced_fileobj);
    if (old) {
        handle_cancel(old);
        Py_DECREF(old);
    }
    return handle.release();
}

void unwatch_fd(CoreLoop* self, int fd, uint32_t which, PyObject* handle) {
    if (self->s.closed || size_t(fd) >= self->s.fds.size()) return;
    if (self->s.fds[size_t(fd)].*slot_for(which) != handle) return;  // replaced since
    Taken taken;
    take_watch(self, fd, which, &taken);  // a refusal means the fd is gone: nothing left to watch
    taken.release();
}

void drop_fd_watches(CoreLoop* self, int fd) {
    LoopState& s = self->s;
    FdWatch& w = s.fds[size_t(fd)];
    if (!w.reader && !w.writer) return;
    PyObject* reader = std::exchange(w.reader, nullptr);
    PyObject* writer = std::exchange(w.writer, nullptr);
    PyObject* fileobj = std::exchange(w.fileobj, nullptr);
    if (!inherited_across_fork(self)) s.poller->remove(fd);
    for (PyObject* h : {reader, writer}) {
        if (!h) continue;
        handle_cancel(h);
        Py_DECREF(h);
    }
    Py_XDECREF(fileobj);
}

// Their leading parameters may come by keyword too (leading_keywords.hpp).
const PyMethodDef loop_fd_methods[] = {
    method_fastcall_kw<positional_by_keyword<add_reader, Sig<"add_reader", "fd", "callback">>>("add_reader", "add_reader($self, fd, callback, *args)\n--\n\nCall callback(*args) while fd is readable."),
    method_fastcall_kw<positional_by_keyword<add_writer, Sig<"add_writer", "fd", "callback">>>("add_writer", "add_writer($self, fd, callback, *args)\n--\n\nCall callback(*args) while fd is writable."),
    method_fastcall_kw<one_by_keyword<remove_reader, Sig<"remove_reader", "fd">>>("remove_reader", "remove_reader($self, fd)\n--\n\nStop watching fd for reading; return True if it was watched."),
    method_fastcall_kw<one_by_keyword<remove_writer, Sig<"remove_writer", "fd">>>("remove_writer", "remove_writer($self, fd)\n--\n\nStop watching fd for writing; return True if it was watched."),
    method_fastcall_kw<by_keyword<private_add_reader, Sig<"_add_reader", "fd", "callback">>>("_add_reader", "_add_reader($self, fd, callback, *args, context=None)\n--\n\n"),
    method_fastcall_kw<by_keyword<private_add_writer, Sig<"_add_writer", "fd", "callback">>>("_add_writer", "_add_writer($self, fd, callback, *args, context=None)\n--\n\n"),
    method_fastcall_kw<one_by_keyword<private_remove_reader, Sig<"_remove_reader", "fd">>>("_remove_reader", "_remove_reader($self, fd)\n--\n\n"),
    method_fastcall_kw<one_by_keyword<private_remove_writer, Sig<"_remove_writer", "fd">>>("_remove_writer", "_remove_writer($self, fd)\n--\n\n"),
    method_o<watched_events>("_watched_events", nullptr),
    kMethodsEnd,
};

}  // namespace cxxloop::py
