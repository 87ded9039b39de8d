// The CoreLoop type: construction, destruction, GC support, and the
// attributes asyncio.BaseEventLoop's Python methods read.
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <vector>

#include "../core/heap_tuning.hpp"
#include "handle.hpp"
#include "loop.hpp"
#include "transport.hpp"

namespace cxxloop::py {

void clear_queues(CoreLoop* self) {
    LoopState& s = self->s;
    // Move everything out first, without allocating (this runs from
    // tp_clear too): a released handle can run arbitrary code (a __del__)
    // that schedules on this loop again.
    Ring<PyObject*> ready;
    ready.swap(s.ready);
    std::vector<FdWatch> fds;
    fds.swap(s.fds);
    std::vector<TimerHeap<PyObject*>::Entry> timers = s.timers.take_all();
    s.timer_cancelled_count = 0;
    for (auto& e : timers) handle_data(e.item)->scheduled = false;
    while (!ready.empty()) release_ready(ready.pop_front());
    for (auto& e : timers) Py_DECREF(e.item);
    for (FdWatch& w : fds) {
        Py_XDECREF(w.reader);
        Py_XDECREF(w.writer);
        Py_XDECREF(w.fileobj);
        if (w.transport) {
            // The transport outlives its registration only if someone
            // else holds it; then it must not touch the table again.
            transport_of(w.transport)->registered = false;
            Py_DECREF(w.transport);
        }
    }
}

namespace {

PyObject* CoreLoop_new(PyTypeObject* type, PyObject*, PyObject*) {
    Ref op = Ref::steal(type->tp_alloc(type, 0));
    if (!op) return nullptr;
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op.get());
    new (&self->s) LoopState();
    // A Python subclass (cxxloop.Loop) has no module of its own: look the
    // module up along the MRO, once.
    PyObject* module = PyType_GetModuleByDef(type, &core_module_def);  // borrowed
    if (!module) return nullptr;
    self->s.module = Py_NewRef(module);
    self->s.st = module_state(module);
    self->s.pid = getpid();
    if (!(self->s.threadsafe_gate = PyThread_allocate_lock())) return PyErr_NoMemory();
    raise_heap_trim_threshold();
    self->s.poller = make_epoll_poller();
    if (!self->s.poller) return PyErr_SetFromErrno(PyExc_OSError);
    int err = self->s.wakeup.open();
    if (err == 0) err = self->s.poller->add(self->s.wakeup.fd(), kReadable, kWakeupToken, false);
    if (err < 0) {
        errno = -err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (register_live_loop(self) < 0) return nullptr;
    note_time_replaced(self);
    return op.release();
}

// Notes a time attribute set on (or deleted from) the loop itself.
int CoreLoop_setattro(PyObject* op, PyObject* name, PyObject* value) {
    if (PyObject_GenericSetAttr(op, name, value) < 0) return -1;
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    ModuleState* st = self->s.st;
    if (PyUnicode_Check(name) && name_is(st, name, st->s_time)) {
        self->s.time_set_on_instance = value != nullptr;
        note_time_replaced(self);
    }
    return 0;
}

int CoreLoop_traverse(PyObject* op, visitproc visit, void* arg) {
    LoopState& s = reinterpret_cast<CoreLoop*>(op)->s;
    Py_VISIT(Py_TYPE(op));
    for (size_t i = 0; i < s.ready.size(); ++i) {
        PyObject* entry = s.ready[i];
        if (PyObject_GC_IsTracked(entry)) {
            Py_VISIT(entry);
        } else if (Py_REFCNT(entry) == 1) {
            // An untracked handle only the queue holds (see soon_handle_new):
            // what it holds, the loop holds.
            if (int rc = handle_traverse(entry, visit, arg)) return rc;
        }
    }
    int rc = 0;
    s.timers.for_each([&](PyObject* h) {
        if (rc == 0 && h) rc = visit(h, arg);
    });
    if (rc) return rc;
    for (const FdWatch& w : s.fds) {
        Py_VISIT(w.reader);
        Py_VISIT(w.writer);
        Py_VISIT(w.fileobj);
        Py_VISIT(w.transport);
    }
    Py_VISIT(s.task_factory);
    Py_VISIT(s.current_handle);
    Py_VISIT(s.old_agen_hooks);
    Py_VISIT(s.module);
    return 0;
}

int CoreLoop_clear(PyObject* op) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    clear_queues(self);
    Py_CLEAR(self->s.task_factory);
    Py_CLEAR(self->s.current_handle);
    Py_CLEAR(self->s.old_agen_hooks);
    return 0;
}

void CoreLoop_dealloc(PyObject* op) {
    PyTypeObject* tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    unregister_live_loop(reinterpret_cast<CoreLoop*>(op));
    CoreLoop_clear(op);
    Ref module = Ref::steal(std::exchange(reinterpret_cast<CoreLoop*>(op)->s.module, nullptr));
    reinterpret_cast<CoreLoop*>(op)->s.~LoopState();  // closes the poller and eventfd
    tp->tp_free(op);
    Py_DECREF(tp);
}

CoreLoop* as_loop(PyObject* op) { return reinterpret_cast<CoreLoop*>(op); }

PyObject* get_closed(PyObject* op, void*) { return PyBool_FromLong(as_loop(op)->s.closed); }
PyObject* get_stopping(PyObject* op, void*) { return PyBool_FromLong(as_loop(op)->s.stopping); }
PyObject* get_debug_attr(PyObject* op, void*) { return PyBool_FromLong(as_loop(op)->s.debug); }
PyObject* get_thread_id(PyObject* op, void*) {
    unsigned long id = as_loop(op)->s.thread_id;
    return id ? PyLong_FromUnsignedLong(id) : Py_NewRef(Py_None);
}
PyObject* get_current_handle(PyObject* op, void*) {
    PyObject* h = as_loop(op)->s.current_handle;
    return Py_NewRef(h ? h : Py_None);
}
PyObject* get_task_factory(PyObject* op, void*) {
    PyObject* f = as_loop(op)->s.task_factory;
    return Py_NewRef(f ? f : Py_None);
}
// BaseEventLoop.set_task_factory validates and then assigns here.
int set_task_factory(PyObject* op, PyObject* value, void*) {
    if (value && value != Py_None && !PyCallable_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "task factory must be a callable or None");
        return -1;
    }
    set_ref(&as_loop(op)->s.task_factory, value == Py_None ? nullptr : value);
    return 0;
}
PyObject* get_timer_cancelled_count(PyObject* op, void*) {
    return PyLong_FromSize_t(as_loop(op)->s.timer_cancelled_count);
}
PyObject* get_clock_resolution(PyObject*, void*) {
    timespec ts;
    clock_getres(CLOCK_MONOTONIC, &ts);
    return PyFloat_FromDouble(double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9);
}
// Read-only snapshots of the queues under BaseEventLoop's attribute names:
// code that inspects loop._ready or loop._scheduled (tests, debuggers) sees
// the handles; nothing can mutate the C++ queues through them.
PyObject* get_ready(PyObject* op, void*) {
    Ring<PyObject*>& ready = as_loop(op)->s.ready;
    PyObject* t = PyTuple_New(Py_ssize_t(ready.size()));
    if (!t) return nullptr;
    for (size_t i = 0; i < ready.size(); ++i) PyTuple_SET_ITEM(t, Py_ssize_t(i), Py_NewRef(ready[i]));
    return t;
}
PyObject* get_scheduled(PyObject* op, void*) {
    Ref list = Ref::steal(PyList_New(0));
    if (!list) return nullptr;
    bool ok = true;
    as_loop(op)->s.timers.for_each([&](PyObject* h) { ok = ok && PyList_Append(list.get(), h) == 0; });
    return ok ? list.release() : nullptr;
}
PyObject* get_slow_callback_duration(PyObject* op, void*) {
    return PyFloat_FromDouble(as_loop(op)->s.slow_callback_duration);
}
int set_slow_callback_duration(PyObject* op, PyObject* value, void*) {
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete slow_callback_duration");
        return -1;
    }
    double v = PyFloat_AsDouble(value);
    if (v == -1.0 && PyErr_Occurred()) return -1;
    as_loop(op)->s.slow_callback_duration = v;
    return 0;
}

PyGetSetDef loop_getsets[] = {
    {"_closed", get_closed, nullptr, nullptr, nullptr},
    {"_stopping", get_stopping, nullptr, nullptr, nullptr},
    {"_debug", get_debug_attr, nullptr, nullptr, nullptr},
    {"_thread_id", get_thread_id, nullptr, nullptr, nullptr},
    {"_current_handle", get_current_handle, nullptr, nullptr, nullptr},
    {"_task_factory", get_task_factory, set_task_factory, nullptr, nullptr},
    {"_timer_cancelled_count", get_timer_cancelled_count, nullptr, nullptr, nullptr},
    {"_clock_resolution", get_clock_resolution, nullptr, nullptr, nullptr},
    {"_ready", get_ready, nullptr, nullptr, nullptr},
    {"_scheduled", get_scheduled, nullptr, nullptr, nullptr},
    {"slow_callback_duration", get_slow_callback_duration, set_slow_callback_duration,
     "Callbacks slower than this many seconds are logged in debug mode.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

std::vector<PyMethodDef> all_methods() {
    std::vector<PyMethodDef> out;
    for (const PyMethodDef* table : {loop_run_methods, loop_schedule_methods, loop_fd_methods, loop_stream_methods,
                                       loop_sock_methods, loop_accept_methods, loop_pipe_methods,
                                       loop_datagram_methods, loop_tls_methods, loop_stats_methods}) {
        for (const PyMethodDef* m = table; m->ml_name; ++m) out.push_back(*m);
    }
    out.push_back({nullptr, nullptr, 0, nullptr});
    return out;
}

}  // namespace

int init_loop_type(PyObject* module, ModuleState* st) {
    // PyType_FromSpec keeps a pointer to the method table: it must outlive the type.
    static std::vector<PyMethodDef> methods = all_methods();
    PyType_Slot slots[] = {
        {Py_tp_new, reinterpret_cast<void*>(CoreLoop_new)},
        {Py_tp_dealloc, reinterpret_cast<void*>(CoreLoop_dealloc)},
        {Py_tp_traverse, reinterpret_cast<void*>(CoreLoop_traverse)},
        {Py_tp_clear, reinterpret_cast<void*>(CoreLoop_clear)},
        {Py_tp_setattro, reinterpret_cast<void*>(CoreLoop_setattro)},
        {Py_tp_methods, methods.data()},
        {Py_tp_getset, loop_getsets},
        {Py_tp_doc, const_cast<char*>("The C++ core of cxxloop.Loop: ready queue, timers, poller, run loop.")},
        {0, nullptr},
    };
    PyType_Spec spec = {
        "cxxloop._core.CoreLoop",
        int(sizeof(CoreLoop)),
        0,
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
        slots,
    };
    st->loop_type = reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &spec, nullptr));
    if (!st->loop_type) return -1;
    st->loop_time_method = Py_XNewRef(_PyType_Lookup(st->loop_type, st->s_time));
    if (!st->loop_time_method) {
        PyErr_SetString(PyExc_SystemError, "CoreLoop has no time method");
        return -1;
    }
    return PyModule_AddObjectRef(module, "CoreLoop", reinterpret_cast<PyObject*>(st->loop_type));
}

}  // namespace cxxloop::py
