#include "handle.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "loop.hpp"

namespace cxxloop::py {

namespace {

// Released handles, kept for reuse: call_soon and call_later make one per
// callback, and reuse skips the allocator, the zeroing and the GC
// allocation count (fewer young-generation collections, each of which
// traverses every queued handle). Sized for a busy iteration's batch of a
// thousand or so callbacks. Entries have refcount 0, are untracked, hold no
// reference but the one to their type, and all their object fields are null.
struct FreeList {
    static constexpr int kMax = 2048;
    PyObject* items[kMax];
    int count = 0;
};
FreeList handle_free, timer_free;

FreeList* free_list_for(PyTypeObject* type) {
    return type == g.Handle ? &handle_free : type == g.TimerHandle ? &timer_free : nullptr;
}

// `tracked`: whether the new handle starts out tracked by the GC (see
// soon_handle_new for the ones that do not).
PyObject* alloc_handle(PyTypeObject* type, bool tracked) {
    FreeList* fl = free_list_for(type);
    if (!fl || fl->count == 0) {
        PyObject* op = PyType_GenericAlloc(type, 0);
        if (op && !tracked) PyObject_GC_UnTrack(op);
        return op;
    }
    PyObject* op = fl->items[--fl->count];
    Py_SET_REFCNT(op, 1);
    HandleData* d = handle_data(op);
    d->when = 0.0;
    d->cancelled = false;
    d->scheduled = false;
    if (tracked) PyObject_GC_Track(op);
    return op;
}

// Drops the handle's callback, first giving it back to the GC if
// soon_handle_new took it out and it outlives the handle's reference.
void drop_callback(HandleData* d) {
    track_callback(d, false);
    d->callback_untracked = false;
    Py_CLEAR(d->callback);
}

// The type is_task_step() last found not to be a step. Borrowed and only
// compared: should that type die and another take its address, the worst
// is a step that stays tracked.
PyTypeObject* last_other_type;

// True for the callable a CPython Task schedules its next step with. The
// type is not exported, so it is recognised by name the first time
// ("TaskStepMethWrapper" up to 3.11, "_asyncio.TaskStepMethWrapper" from
// 3.12) and by identity after that; it is a C type that cannot be
// subclassed, which a Python class of the same name is not. Until a Task
// has run, every call_soon asks, so the last other type is remembered to
// keep the name comparison off that path. Only this foreign type is
// untracked: its tp_dealloc calls PyObject_GC_UnTrack, which accepts an
// untracked object, where some of CPython's own types (instance methods,
// for one) unlink unconditionally and would crash.
bool is_task_step(PyObject* callback) {
    PyTypeObject* tp = Py_TYPE(callback);
    if (tp == g.task_step_type) return true;
    if (g.task_step_type || tp == last_other_type) return false;
    if ((tp->tp_flags & Py_TPFLAGS_BASETYPE) || !(tp->tp_flags & Py_TPFLAGS_HAVE_GC) ||
        (std::strcmp(tp->tp_name, "_asyncio.TaskStepMethWrapper") != 0 &&
         std::strcmp(tp->tp_name, "TaskStepMethWrapper") != 0)) {
        last_other_type = tp;
        return false;
    }
    g.task_step_type = reinterpret_cast<PyTypeObject*>(Py_NewRef(tp));
    return true;
}

// Inlined into its two callers: it runs once per call_soon.
[[gnu::always_inline]] inline PyObject* make_handle(PyTypeObject* type, CoreLoop* loop, PyObject* callback,
                                                   PyObject* const* args, Py_ssize_t nargs, PyObject* context,
                                                   bool tracked) {
    Ref self = Ref::steal(alloc_handle(type, tracked));
    if (!self) return nullptr;
    HandleData* d = handle_data(self.get());
    if (nargs == 0) {
        // What PyTuple_New(0) returns, without the call: a Task's steps
        // take no arguments.
        d->args = Py_NewRef(g.empty_tuple);
    } else {
        if (!(d->args = PyTuple_New(nargs))) return nullptr;
        for (Py_ssize_t i = 0; i < nargs; ++i) PyTuple_SET_ITEM(d->args, i, Py_NewRef(args[i]));
    }
    if (context && context != Py_None) {
        d->context = Py_NewRef(context);
    } else if (!(d->context = PyContext_CopyCurrent())) {
        return nullptr;
    }
    d->callback = Py_NewRef(callback);
    d->loop = Py_NewRef(reinterpret_cast<PyObject*>(loop));
    if (loop->s.debug) {
        // No Python frame belongs to call_soon itself, so the innermost
        // frame extract_stack sees is already the caller's.
        if (!(d->source_traceback = PyObject_CallNoArgs(g.extract_stack))) return nullptr;
    }
    return self.release();
}

}  // namespace

PyObject* handle_new(PyTypeObject* type, CoreLoop* loop, PyObject* callback, PyObject* const* args,
                     Py_ssize_t nargs, PyObject* context) {
    return make_handle(type, loop, callback, args, nargs, context, true);
}

PyObject* soon_handle_new(CoreLoop* loop, PyObject* callback, PyObject* const* args, Py_ssize_t nargs,
                          PyObject* context) {
    PyObject* h = make_handle(g.Handle, loop, callback, args, nargs, context, false);
    if (!h) return nullptr;
    if (is_task_step(callback) && PyObject_GC_IsTracked(callback)) {
        PyObject_GC_UnTrack(callback);
        handle_data(h)->callback_untracked = true;
    }
    return h;
}

int handle_traverse(PyObject* self, visitproc visit, void* arg) {
    HandleData* d = handle_data(self);
    Py_VISIT(Py_TYPE(self));
    if (d->callback_untracked && Py_REFCNT(d->callback) == 1) {
        // A step only this (untracked, queued) handle holds: what it
        // holds, the handle holds.
        if (int rc = Py_TYPE(d->callback)->tp_traverse(d->callback, visit, arg)) return rc;
    } else {
        Py_VISIT(d->callback);
    }
    Py_VISIT(d->args);
    Py_VISIT(d->context);
    Py_VISIT(d->loop);
    Py_VISIT(d->source_traceback);
    Py_VISIT(d->repr);
    return 0;
}

namespace {

// Builds asyncio's exception-handler context for a failed callback and
// passes it to loop.call_exception_handler. Consumes the raised exception.
int report_callback_error(PyObject* self, HandleData* d) {
    Ref exc = Ref::steal(PyErr_GetRaisedException());
    PyObject* callback = d->callback ? d->callback : Py_None;
    PyObject* args = d->args ? d->args : Py_None;
#if PY_VERSION_HEX >= 0x030D0000
    // 3.13 shows the arguments only in debug mode.
    PyObject* debug = reinterpret_cast<CoreLoop*>(d->loop)->s.debug ? Py_True : Py_False;
    PyObject* fargs[] = {callback, args, debug};
    Ref source = Ref::steal(PyObject_Vectorcall(g.format_callback_source, fargs, 2, g.kw_debug));
#else
    Ref source = Ref::steal(PyObject_CallFunctionObjArgs(g.format_callback_source, callback, args, nullptr));
#endif
    if (!source) return -1;
    Ref message = Ref::steal(PyUnicode_FromFormat("Exception in callback %U", source.get()));
    Ref context = Ref::steal(PyDict_New());
    if (!message || !context) return -1;
    if (PyDict_SetItem(context.get(), g.s_message, message.get()) < 0 ||
        PyDict_SetItem(context.get(), g.s_exception, exc.get()) < 0 ||
        PyDict_SetItem(context.get(), g.s_handle, self) < 0) {
        return -1;
    }
    if (d->source_traceback && PyObject_IsTrue(d->source_traceback) == 1 &&
        PyDict_SetItemString(context.get(), "source_traceback", d->source_traceback) < 0) {
        return -1;
    }
    Ref r = Ref::steal(PyObject_CallMethodOneArg(d->loop, g.s_call_exception_handler, context.get()));
    return r ? 0 : -1;
}

}  // namespace

int handle_run(PyObject* self) {
    HandleData* d = handle_data(self);
    // The callback may cancel its own handle, which drops these references.
    Ref callback = Ref::borrow(d->callback);
    Ref args = Ref::borrow(d->args);
    if (PyContext_Enter(d->context) == 0) {
        // A callable without vectorcall (a Task's step is one) gets the
        // tuple itself: vectorcall would copy the arguments into a new one.
        PyObject* r = (Py_TYPE(callback.get())->tp_flags & Py_TPFLAGS_HAVE_VECTORCALL)
                          ? PyObject_Vectorcall(callback.get(), &PyTuple_GET_ITEM(args.get(), 0),
                                                size_t(PyTuple_GET_SIZE(args.get())), nullptr)
                          : PyObject_Call(callback.get(), args.get(), nullptr);
        // Exit cannot fail for a context this thread just entered.
        if (r) {
            PyContext_Exit(d->context);
            Py_DECREF(r);
            return 0;
        }
        // Keep the callback's exception intact across the exit.
        PyObject* exc = PyErr_GetRaisedException();
        PyContext_Exit(d->context);
        PyErr_SetRaisedException(exc);
    }
    if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        return -1;
    }
    return report_callback_error(self, d);
}

void handle_cancel(PyObject* self) {
    HandleData* d = handle_data(self);
    if (d->cancelled) return;
    d->cancelled = true;
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(d->loop);
    if (d->scheduled) loop->s.timer_cancelled_count++;
    if (loop->s.debug) {
        // Keep the description of what was cancelled for later repr().
        PyObject* repr = PyObject_Repr(self);
        if (repr) {
            Py_XSETREF(d->repr, repr);
        } else {
            PyErr_WriteUnraisable(self);
        }
    }
    drop_callback(d);
    Py_CLEAR(d->args);
}

namespace {

PyObject* Handle_cancel(PyObject* self, PyObject*) {
    handle_cancel(self);
    Py_RETURN_NONE;
}

PyObject* Handle_cancelled(PyObject* self, PyObject*) {
    return PyBool_FromLong(handle_data(self)->cancelled);
}

PyObject* Handle_get_context(PyObject* self, PyObject*) {
    return Py_NewRef(handle_data(self)->context);
}

PyObject* Handle_run(PyObject* self, PyObject*) {
    if (handle_run(self) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* TimerHandle_when(PyObject* self, PyObject*) {
    return PyFloat_FromDouble(handle_data(self)->when);
}

// Inlined into Handle_dealloc, which runs once per callback; the tp_clear
// slot gets its own copy.
[[gnu::always_inline]] inline int Handle_clear(PyObject* self) {
    HandleData* d = handle_data(self);
    drop_callback(d);
    Py_CLEAR(d->args);
    Py_CLEAR(d->context);
    Py_CLEAR(d->loop);
    Py_CLEAR(d->source_traceback);
    Py_CLEAR(d->repr);
    return 0;
}

void Handle_dealloc(PyObject* self) {
    PyTypeObject* tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (tp->tp_weaklistoffset &&
        *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(self) + tp->tp_weaklistoffset)) {
        PyObject_ClearWeakRefs(self);
    }
    Handle_clear(self);
    FreeList* fl = free_list_for(tp);
    if (fl && fl->count < FreeList::kMax) {
        fl->items[fl->count++] = self;  // keeps its reference to the type
        return;
    }
    tp->tp_free(self);
    Py_DECREF(tp);
}

// Getters for asyncio's slot names; asyncio's Python methods (__repr__,
// _repr_info, TimerHandle comparisons) read the handle through these.
PyObject* or_none(PyObject* o) { return Py_NewRef(o ? o : Py_None); }
PyObject* get_callback(PyObject* self, void*) { return or_none(handle_data(self)->callback); }
PyObject* get_args(PyObject* self, void*) { return or_none(handle_data(self)->args); }
PyObject* get_context(PyObject* self, void*) { return or_none(handle_data(self)->context); }
PyObject* get_loop(PyObject* self, void*) { return or_none(handle_data(self)->loop); }
PyObject* get_source_traceback(PyObject* self, void*) { return or_none(handle_data(self)->source_traceback); }
PyObject* get_repr(PyObject* self, void*) { return or_none(handle_data(self)->repr); }
PyObject* get_cancelled(PyObject* self, void*) { return PyBool_FromLong(handle_data(self)->cancelled); }
PyObject* get_when(PyObject* self, void*) { return PyFloat_FromDouble(handle_data(self)->when); }
PyObject* get_scheduled(PyObject* self, void*) { return PyBool_FromLong(handle_data(self)->scheduled); }

// TimerHandle derives from asyncio.TimerHandle, not from our Handle, so it
// lists the shared methods again rather than inheriting them.
#define HANDLE_METHODS                                                                           \
    {"cancel", Handle_cancel, METH_NOARGS, "Cancel the callback; a no-op once it has run."},     \
        {"cancelled", Handle_cancelled, METH_NOARGS, "Return True if the handle was cancelled."}, \
        {"get_context", Handle_get_context, METH_NOARGS,                                         \
         "Return the contextvars.Context the callback runs in."},                                \
        {"_run", Handle_run, METH_NOARGS, nullptr}

PyMethodDef handle_methods[] = {
    HANDLE_METHODS,
    {nullptr, nullptr, 0, nullptr},
};

PyMethodDef timer_methods[] = {
    HANDLE_METHODS,
    {"when", TimerHandle_when, METH_NOARGS, "Return the scheduled time as a loop.time() float."},
    {nullptr, nullptr, 0, nullptr},
};

#undef HANDLE_METHODS

#define HANDLE_GETSETS                                                         \
    {"_callback", get_callback, nullptr, nullptr, nullptr},                    \
        {"_args", get_args, nullptr, nullptr, nullptr},                        \
        {"_context", get_context, nullptr, nullptr, nullptr},                  \
        {"_loop", get_loop, nullptr, nullptr, nullptr},                        \
        {"_source_traceback", get_source_traceback, nullptr, nullptr, nullptr}, \
        {"_repr", get_repr, nullptr, nullptr, nullptr},                        \
        {"_cancelled", get_cancelled, nullptr, nullptr, nullptr}

PyGetSetDef handle_getsets[] = {
    HANDLE_GETSETS,
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyGetSetDef timer_getsets[] = {
    HANDLE_GETSETS,
    {"_when", get_when, nullptr, nullptr, nullptr},
    {"_scheduled", get_scheduled, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

#undef HANDLE_GETSETS

PyTypeObject* make_type(PyObject* module, const char* name, PyObject* base, PyMethodDef* methods,
                        PyGetSetDef* getsets) {
    PyType_Slot slots[] = {
        {Py_tp_dealloc, reinterpret_cast<void*>(Handle_dealloc)},
        {Py_tp_traverse, reinterpret_cast<void*>(handle_traverse)},
        {Py_tp_clear, reinterpret_cast<void*>(Handle_clear)},
        {Py_tp_methods, methods},
        {Py_tp_getset, getsets},
        {0, nullptr},
    };
    PyType_Spec spec = {
        name,
        int(g.handle_data_offset + Py_ssize_t(sizeof(HandleData))),
        0,
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
        slots,
    };
    Ref bases = Ref::steal(PyTuple_Pack(1, base));
    if (!bases) return nullptr;
    return reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &spec, bases.get()));
}

}  // namespace

int init_handle_types(PyObject* module) {
    Ref events = Ref::steal(PyImport_ImportModule("asyncio.events"));
    if (!events) return -1;
    Ref handle_base = Ref::steal(PyObject_GetAttrString(events.get(), "Handle"));
    Ref timer_base = Ref::steal(PyObject_GetAttrString(events.get(), "TimerHandle"));
    if (!handle_base || !timer_base) return -1;
    // One offset for both types keeps handle_data() branch-free.
    Py_ssize_t end = std::max(reinterpret_cast<PyTypeObject*>(handle_base.get())->tp_basicsize,
                              reinterpret_cast<PyTypeObject*>(timer_base.get())->tp_basicsize);
    constexpr Py_ssize_t align = alignof(HandleData);
    g.handle_data_offset = (end + align - 1) / align * align;

    g.Handle = make_type(module, "cxxloop._core.Handle", handle_base.get(), handle_methods, handle_getsets);
    if (!g.Handle) return -1;
    g.TimerHandle = make_type(module, "cxxloop._core.TimerHandle", timer_base.get(), timer_methods, timer_getsets);
    if (!g.TimerHandle) return -1;
    if (PyModule_AddObjectRef(module, "Handle", reinterpret_cast<PyObject*>(g.Handle)) < 0 ||
        PyModule_AddObjectRef(module, "TimerHandle", reinterpret_cast<PyObject*>(g.TimerHandle)) < 0) {
        return -1;
    }
    return 0;
}

}  // namespace cxxloop::py
