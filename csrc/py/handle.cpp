#include "handle.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "loop.hpp"
#include "methods.hpp"

namespace cxxloop::py {

namespace {

// Released handles are kept for reuse (ModuleState::handle_free and
// timer_free): call_soon and call_later make one per callback, and reuse
// skips the allocator, the zeroing and the GC allocation count (fewer
// young-generation collections, each of which traverses every queued
// handle). Sized for a busy iteration's batch of a thousand or so callbacks.
HandleFreeList* free_list_for(ModuleState* st, PyTypeObject* type) {
    if (!st || !st->free_lists_open) return nullptr;
    return type == st->handle_type ? &st->handle_free : type == st->timer_handle_type ? &st->timer_free : nullptr;
}

// `tracked`: whether the new handle starts out tracked by the GC (see
// soon_handle_new for the ones that do not).
PyObject* alloc_handle(ModuleState* st, PyTypeObject* type, bool tracked) {
    HandleFreeList* fl = free_list_for(st, type);
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
bool is_task_step(ModuleState* st, PyObject* callback) {
    PyTypeObject* tp = Py_TYPE(callback);
    if (tp == st->task_step_type) return true;
    if (st->task_step_type || tp == st->last_other_type) return false;
    if ((tp->tp_flags & Py_TPFLAGS_BASETYPE) || !(tp->tp_flags & Py_TPFLAGS_HAVE_GC) ||
        (std::strcmp(tp->tp_name, "_asyncio.TaskStepMethWrapper") != 0 &&
         std::strcmp(tp->tp_name, "TaskStepMethWrapper") != 0)) {
        st->last_other_type = tp;
        return false;
    }
    st->task_step_type = reinterpret_cast<PyTypeObject*>(Py_NewRef(tp));
    return true;
}

// Inlined into its two callers: it runs once per call_soon.
[[gnu::always_inline]] inline PyObject* make_handle(PyTypeObject* type, CoreLoop* loop, PyObject* callback,
                                                   PyObject* const* args, Py_ssize_t nargs, PyObject* context,
                                                   bool tracked) {
    ModuleState* st = loop->s.st;
    Ref self = Ref::steal(alloc_handle(st, type, tracked));
    if (!self) return nullptr;
    HandleData* d = handle_data(self.get());
    if (nargs == 0) {
        // What PyTuple_New(0) returns, without the call: a Task's steps
        // take no arguments.
        d->args = Py_NewRef(st->empty_tuple);
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
        if (!(d->source_traceback = PyObject_CallNoArgs(st->extract_stack))) return nullptr;
    }
    return self.release();
}

}  // namespace

PyObject* handle_new(PyTypeObject* type, CoreLoop* loop, PyObject* callback, PyObject* const* args,
                     Py_ssize_t nargs, PyObject* context) {
    return make_handle(type, loop, callback, args, nargs, context, true);
}

PyObject* soon_handle_new(CoreLoop* loop, PyTypeObject* type, PyObject* callback, PyObject* const* args,
                          Py_ssize_t nargs, PyObject* context) {
    PyObject* h = make_handle(type, loop, callback, args, nargs, context, false);
    if (!h) return nullptr;
    if (is_task_step(loop->s.st, callback) && PyObject_GC_IsTracked(callback)) {
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
    Py_VISIT(d->when_obj);
    return 0;
}

namespace {

// Builds asyncio's exception-handler context for a failed callback and
// passes it to loop.call_exception_handler. Consumes the raised exception.
int report_callback_error(PyObject* self, HandleData* d) {
    Ref exc = Ref::steal(PyErr_GetRaisedException());
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(d->loop);
    ModuleState* st = loop->s.st;
    PyObject* callback = d->callback ? d->callback : Py_None;
    PyObject* args = d->args ? d->args : Py_None;
    Ref source;
    if (st->format_callback_source_has_debug) {
        // 3.13 shows the arguments only in debug mode.
        PyObject* fargs[] = {callback, args, loop->s.debug ? Py_True : Py_False};
        source = Ref::steal(PyObject_Vectorcall(st->format_callback_source, fargs, 2, st->kw_debug));
    } else {
        PyObject* fargs[] = {callback, args};
        source = Ref::steal(PyObject_Vectorcall(st->format_callback_source, fargs, 2, nullptr));
    }
    if (!source) return -1;
    Ref message = Ref::steal(PyUnicode_FromFormat("Exception in callback %U", source.get()));
    Ref context = Ref::steal(PyDict_New());
    if (!message || !context) return -1;
    if (PyDict_SetItem(context.get(), st->s_message, message.get()) < 0 ||
        PyDict_SetItem(context.get(), st->s_exception, exc.get()) < 0 ||
        PyDict_SetItem(context.get(), st->s_handle, self) < 0) {
        return -1;
    }
    if (d->source_traceback && PyObject_IsTrue(d->source_traceback) == 1 &&
        PyDict_SetItemString(context.get(), "source_traceback", d->source_traceback) < 0) {
        return -1;
    }
    Ref r = Ref::steal(PyObject_CallMethodOneArg(d->loop, st->s_call_exception_handler, context.get()));
    return r ? 0 : -1;
}

}  // namespace

namespace {

int run_callback(PyObject* self) {
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

// A call_soon_threadsafe handle runs holding its loop's gate, so that
// cancel() and cancelled() from another thread can wait for it to finish
// (asyncio's _ThreadSafeHandle holds a lock per handle for the same
// purpose). A waiter takes the gate and lets go of it at once, without the
// GIL, so the loop never waits on a waiter for long.
int run_threadsafe(PyObject* self, LoopState& s) {
    if (s.threadsafe_running) return run_callback(self);  // a nested _run(): the gate is taken
    PyThread_acquire_lock(s.threadsafe_gate, WAIT_LOCK);
    s.threadsafe_running = self;
    int rc = run_callback(self);
    s.threadsafe_running = nullptr;
    PyThread_release_lock(s.threadsafe_gate);
    return rc;
}

// cancel() and cancelled() of a call_soon_threadsafe handle that the loop
// is running in another thread wait until it is done, as 3.14's
// _ThreadSafeHandle does; from the loop's own thread (the callback
// cancelling itself) they do not.
void wait_while_running_elsewhere(PyObject* self) {
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(handle_data(self)->loop);
    if (!loop || loop->s.threadsafe_running != self || PyThread_get_thread_ident() == loop->s.thread_id) return;
    PyThread_type_lock gate = loop->s.threadsafe_gate;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(gate, WAIT_LOCK);
    PyThread_release_lock(gate);
    Py_END_ALLOW_THREADS
}

}  // namespace

int handle_run(PyObject* self) {
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(handle_data(self)->loop);
    if (Py_TYPE(self) == loop->s.st->threadsafe_handle_type) return run_threadsafe(self, loop->s);
    return run_callback(self);
}

void handle_cancel(PyObject* self) {
    HandleData* d = handle_data(self);
    if (d->cancelled) return;
    d->cancelled = true;
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(d->loop);
    if (d->scheduled) {
        loop->s.timer_cancelled_count++;
        if (loop->s.stats.on) loop->s.stats.timers_cancelled++;
    }
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
    wait_while_running_elsewhere(self);
    handle_cancel(self);
    Py_RETURN_NONE;
}

PyObject* Handle_cancelled(PyObject* self, PyObject*) {
    wait_while_running_elsewhere(self);
    return PyBool_FromLong(handle_data(self)->cancelled);
}

PyObject* Handle_get_context(PyObject* self, PyObject*) {
    return Py_NewRef(handle_data(self)->context);
}

PyObject* Handle_run(PyObject* self, PyObject*) {
    HandleData* d = handle_data(self);
    if (!d->callback) {
        // Cancelled (or cleared). A call_soon_threadsafe handle then does
        // nothing, as asyncio's _ThreadSafeHandle; the others do what
        // asyncio's Handle._run does with no callback, through that very
        // method, so the error and its report are asyncio's own.
        ModuleState* st = state_of_type(Py_TYPE(self));
        if (!st || Py_TYPE(self) == st->threadsafe_handle_type) Py_RETURN_NONE;
        Ref run = Ref::steal(PyObject_GetAttr(st->HandleBase, st->s_run));
        return run ? PyObject_CallOneArg(run.get(), self) : nullptr;
    }
    if (handle_run(self) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* TimerHandle_when(PyObject* self, PyObject*) {
    HandleData* d = handle_data(self);
    return d->when_obj ? Py_NewRef(d->when_obj) : PyFloat_FromDouble(d->when);
}

// Inlined into handle_dealloc, which runs once per callback; the tp_clear
// slot gets its own copy.
[[gnu::always_inline]] inline int Handle_clear(PyObject* self) {
    HandleData* d = handle_data(self);
    drop_callback(d);
    Py_CLEAR(d->args);
    Py_CLEAR(d->context);
    Py_CLEAR(d->loop);
    Py_CLEAR(d->source_traceback);
    Py_CLEAR(d->repr);
    Py_CLEAR(d->when_obj);
    return 0;
}

}  // namespace

void handle_dealloc(PyObject* self) {
    PyTypeObject* tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (tp->tp_weaklistoffset &&
        *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(self) + tp->tp_weaklistoffset)) {
        PyObject_ClearWeakRefs(self);
    }
    Handle_clear(self);
    HandleFreeList* fl = free_list_for(state_of_type(tp), tp);
    if (fl && fl->count < HandleFreeList::kMax) {
        fl->items[fl->count++] = self;  // keeps its reference to the type
        return;
    }
    tp->tp_free(self);
    Py_DECREF(tp);
}

namespace {

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
PyObject* get_when(PyObject* self, void*) { return TimerHandle_when(self, nullptr); }
PyObject* get_scheduled(PyObject* self, void*) { return PyBool_FromLong(handle_data(self)->scheduled); }

// TimerHandle derives from asyncio.TimerHandle, not from our Handle, so it
// lists the shared methods again rather than inheriting them.
#define HANDLE_METHODS                                                                          \
    method_noargs<Handle_cancel>("cancel", "Cancel the callback; a no-op once it has run."),    \
        method_noargs<Handle_cancelled>("cancelled", "Return True if the handle was cancelled."), \
        method_noargs<Handle_get_context>("get_context", "Return the contextvars.Context the callback runs in."), \
        method_noargs<Handle_run>("_run", nullptr)

PyMethodDef handle_methods[] = {
    HANDLE_METHODS,
    kMethodsEnd,
};

PyMethodDef timer_methods[] = {
    HANDLE_METHODS,
    method_noargs<TimerHandle_when>("when", "Return the scheduled time, as call_at() was given it."),
    kMethodsEnd,
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
        {Py_tp_dealloc, reinterpret_cast<void*>(handle_dealloc)},
        {Py_tp_traverse, reinterpret_cast<void*>(handle_traverse)},
        {Py_tp_clear, reinterpret_cast<void*>(Handle_clear)},
        {Py_tp_methods, methods},
        {Py_tp_getset, getsets},
        {0, nullptr},
    };
    PyType_Spec spec = {
        name,
        int(layout.handle_data + Py_ssize_t(sizeof(HandleData))),
        0,
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
        slots,
    };
    Ref bases = Ref::steal(PyTuple_Pack(1, base));
    if (!bases) return nullptr;
    return reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &spec, bases.get()));
}

}  // namespace

int init_handle_types(PyObject* module, ModuleState* st) {
    struct {
        PyTypeObject** out;
        const char* qualified_name;
        PyObject* base;
        PyMethodDef* methods;
        PyGetSetDef* getsets;
    } const types[] = {
        {&st->handle_type, "cxxloop._core.Handle", st->HandleBase, handle_methods, handle_getsets},
        {&st->timer_handle_type, "cxxloop._core.TimerHandle", st->TimerHandleBase, timer_methods, timer_getsets},
    };
    for (const auto& t : types) {
        if (!(*t.out = make_type(module, t.qualified_name, t.base, t.methods, t.getsets))) return -1;
        if (PyModule_AddType(module, *t.out) < 0) return -1;
    }
    // Named as asyncio names its class (repr() shows the name): 3.14's
    // _ThreadSafeHandle, and Handle before it.
    Ref base_name = Ref::steal(PyObject_GetAttrString(st->ThreadSafeHandleBase, "__name__"));
    const char* name = base_name ? PyUnicode_AsUTF8(base_name.get()) : nullptr;
    if (!name) return -1;
    std::string qualified = std::string("cxxloop._core.") + name;  // the type copies it
    st->threadsafe_handle_type = make_type(module, qualified.c_str(), st->ThreadSafeHandleBase, handle_methods,
                                           handle_getsets);
    if (!st->threadsafe_handle_type) return -1;
    return PyModule_AddObjectRef(module, "ThreadSafeHandle", reinterpret_cast<PyObject*>(st->threadsafe_handle_type));
}

}  // namespace cxxloop::py
