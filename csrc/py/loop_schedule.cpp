// Scheduling: call_soon, call_soon_threadsafe, call_at, call_later, time,
// create_future, create_task. These run per callback, so each parses its
// vectorcall arguments directly and allocates nothing it does not return.

#include <sched.h>

#include <cmath>
#include <new>
#include <vector>

#include "../core/clock.hpp"
#include "handle.hpp"
#include "loop.hpp"
#include "leading_keywords.hpp"
#include "methods.hpp"

namespace cxxloop::py {

int check_closed(CoreLoop* self) {
    if (self->s.closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

int push_ready(CoreLoop* self, PyObject* handle) {
    try {
        self->s.ready.push_back(Py_NewRef(handle));
    } catch (const std::bad_alloc&) {
        Py_DECREF(handle);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

namespace {

// asyncio checks only in debug mode that the call comes from the loop's
// thread; so do we.
int check_thread(CoreLoop* self) {
    if (self->s.thread_id && PyThread_get_thread_ident() != self->s.thread_id) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Non-thread-safe operation invoked on an event loop other than the current one");
        return -1;
    }
    return 0;
}

// asyncio only type-checks callbacks in debug mode and otherwise fails when
// the callback runs. A non-callable is rejected here always, because the
// check costs one type-slot test; the costlier coroutine-function test stays
// debug-only, as in asyncio. Messages are asyncio's.
int check_callback_slow(CoreLoop* self, PyObject* callback, const char* method) {
    ModuleState* st = self->s.st;
    Ref is_coro = Ref::steal(PyObject_CallOneArg(st->iscoroutine, callback));
    if (!is_coro) return -1;
    int coro = PyObject_IsTrue(is_coro.get());
    if (coro == 0 && self->s.debug) {
        is_coro = Ref::steal(PyObject_CallOneArg(st->iscoroutinefunction, callback));
        if (!is_coro) return -1;
        coro = PyObject_IsTrue(is_coro.get());
    }
    if (coro < 0) return -1;
    if (coro) {
        PyErr_Format(PyExc_TypeError, "coroutines cannot be used with %s()", method);
        return -1;
    }
    if (!PyCallable_Check(callback)) {
        PyErr_Format(PyExc_TypeError, "a callable object was expected by %s(), got %R", method, callback);
        return -1;
    }
    return 0;
}

// The common case stays inline: a callable (PyCallable_Check's own test),
// outside debug mode.
inline int check_callback(CoreLoop* self, PyObject* callback, const char* method) {
    if (Py_TYPE(callback)->tp_call && !self->s.debug) return 0;
    return check_callback_slow(self, callback, method);
}

int check_context(PyObject* context) {
    if (context && context != Py_None && !PyContext_CheckExact(context)) {
        PyErr_Format(PyExc_TypeError, "context must be a contextvars.Context, not %.200s",
                     Py_TYPE(context)->tp_name);
        return -1;
    }
    return 0;
}

// Shared front half of the call_* methods: `context=` and the checks.
// `first` names the argument before the callback (when, delay), if any.
// Inlined into each, where the constant arguments fold its checks away.
[[gnu::always_inline]] inline int parse_callback_call(CoreLoop* self, const char* method, const char* first,
                                                      PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                                                      PyObject** context, bool check_owner) {
    Py_ssize_t required = first ? 2 : 1;
    if (nargs < required) {
        PyErr_Format(PyExc_TypeError, "%s() missing required positional argument: '%s'", method,
                     nargs + 1 < required ? first : "callback");
        return -1;
    }
    if (!parse_kwonly(self->s.st, method, args, nargs, kwnames, {self->s.st->s_context}, {context})) return -1;
    if (check_context(*context) < 0 || check_closed(self) < 0) return -1;
    if (check_owner && self->s.debug && check_thread(self) < 0) return -1;
    return 0;
}

PyObject* call_soon(PyObject* op, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject* context = nullptr;
    if (parse_callback_call(self, "call_soon", nullptr, args, nargs, kwnames, &context, true) < 0 ||
        check_callback(self, args[0], "call_soon") < 0) {
        return nullptr;
    }
    Ref h = Ref::steal(soon_handle_new(self, self->s.st->handle_type, args[0], args + 1, nargs - 1, context));
    if (!h || push_ready(self, h.get()) < 0) return nullptr;
    return h.release();
}

// Threads that call call_soon_threadsafe flat out would otherwise keep the
// GIL from the loop's thread: the call never blocks, and the loop, waiting
// its turn for the GIL, falls ever further behind, so a due timer waits for
// seconds. asyncio's own call_soon_threadsafe writes to its self-pipe every
// time, and that system call lets the loop's thread in. Here a call from
// another thread lets go of the GIL for a moment once the loop is behind
// (more than kBusyBacklog callbacks ready), which paces the producers to
// the loop as that system call does.
constexpr size_t kBusyBacklog = 1024;

void yield_to_a_busy_loop(CoreLoop* self) {
    const LoopState& s = self->s;
    if (s.ready.size() <= kBusyBacklog || !s.running || PyThread_get_thread_ident() == s.thread_id) return;
    Py_BEGIN_ALLOW_THREADS
    sched_yield();
    Py_END_ALLOW_THREADS
}

PyObject* call_soon_threadsafe(PyObject* op, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject* context = nullptr;
    if (parse_callback_call(self, "call_soon_threadsafe", nullptr, args, nargs, kwnames, &context, false) < 0 ||
        check_callback(self, args[0], "call_soon_threadsafe") < 0) {
        return nullptr;
    }
    Ref h = Ref::steal(
        soon_handle_new(self, self->s.st->threadsafe_handle_type, args[0], args + 1, nargs - 1, context));
    if (!h || push_ready(self, h.get()) < 0) return nullptr;
    self->s.wakeup.signal();
    yield_to_a_busy_loop(self);
    return h.release();
}

// Converts a deadline or delay argument; asyncio's messages for None.
bool to_seconds(PyObject* value, const char* none_message, double* out) {
    if (value == Py_None) {
        PyErr_SetString(PyExc_TypeError, none_message);
        return false;
    }
    double v = PyFloat_AsDouble(value);
    if (v == -1.0 && PyErr_Occurred()) return false;
    if (std::isnan(v)) {
        // A NaN deadline would silently break the heap's ordering.
        PyErr_SetString(PyExc_ValueError, "timer deadline must not be NaN");
        return false;
    }
    *out = v;
    return true;
}

// `when_obj`: the deadline as call_at was given it, which when() returns
// (asyncio keeps an int an int); null for a float.
PyObject* schedule_timer(CoreLoop* self, double when, PyObject* when_obj, PyObject* const* args, Py_ssize_t nargs,
                         PyObject* context) {
    if (check_callback(self, args[0], "call_at") < 0) return nullptr;
    Ref h = Ref::steal(handle_new(self->s.st->timer_handle_type, self, args[0], args + 1, nargs - 1, context));
    if (!h) return nullptr;
    HandleData* d = handle_data(h.get());
    d->when = when;
    d->when_obj = Py_XNewRef(when_obj);
    try {
        self->s.timers.push(when, Py_NewRef(h.get()));
    } catch (const std::bad_alloc&) {
        Py_DECREF(h.get());
        return PyErr_NoMemory();
    }
    d->scheduled = true;
    if (self->s.stats.on) self->s.stats.timers_scheduled++;
    return h.release();
}

PyObject* call_at(PyObject* op, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject* context = nullptr;
    double when;
    if (parse_callback_call(self, "call_at", "when", args, nargs, kwnames, &context, true) < 0 ||
        !to_seconds(args[0], "when cannot be None", &when)) {
        return nullptr;
    }
    return schedule_timer(self, when, PyFloat_CheckExact(args[0]) ? nullptr : args[0], args + 1, nargs - 1, context);
}

PyObject* call_later(PyObject* op, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject* context = nullptr;
    double delay;
    if (parse_callback_call(self, "call_later", "delay", args, nargs, kwnames, &context, true) < 0 ||
        !to_seconds(args[0], "delay must not be None", &delay)) {
        return nullptr;
    }
    double now = loop_now(self);
    if (now < 0) return nullptr;
    return schedule_timer(self, now + delay, nullptr, args + 1, nargs - 1, context);
}

PyObject* loop_time(PyObject*, PyObject*) { return PyFloat_FromDouble(monotonic_seconds()); }

}  // namespace

double loop_now(CoreLoop* self) {
    if (!self->s.time_replaced) return monotonic_seconds();
    ModuleState* st = self->s.st;
    Ref t = Ref::steal(PyObject_CallMethodNoArgs(reinterpret_cast<PyObject*>(self), st->s_time));
    double now = t ? PyFloat_AsDouble(t.get()) : -1.0;
    if (now < 0 && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "loop.time() returned a negative time");
    }
    return now;
}

void note_time_replaced(CoreLoop* self) {
    LoopState& s = self->s;
    PyObject* found = _PyType_Lookup(Py_TYPE(reinterpret_cast<PyObject*>(self)), s.st->s_time);  // borrowed
    s.time_replaced = s.time_set_on_instance || found != s.st->loop_time_method;
}

namespace {

// asyncio.futures.Future and asyncio.tasks.Task, looked up at each call as
// BaseEventLoop.create_future and create_task do: a program (or asyncio's
// own tests) may replace them with the pure-Python classes. A new reference.
PyObject* asyncio_class(PyObject* module_dict, PyObject* name) {
    PyObject* cls = PyDict_GetItemWithError(module_dict, name);  // borrowed
    if (!cls && !PyErr_Occurred()) PyErr_Format(PyExc_AttributeError, "asyncio has no attribute '%U'", name);
    return Py_XNewRef(cls);
}

PyObject* create_future(PyObject* op, PyObject*) {
    ModuleState* st = reinterpret_cast<CoreLoop*>(op)->s.st;
    Ref future_type = Ref::steal(asyncio_class(st->futures_dict, st->s_Future));
    if (!future_type) return nullptr;
    PyObject* args[] = {op};
    return PyObject_Vectorcall(future_type.get(), args, 0, st->kw_loop);
}

// create_task with no task factory: Task(coro, loop=self, **kwargs).
PyObject* new_task(CoreLoop* self, PyObject* const* args, PyObject* kwnames) {
    ModuleState* st = self->s.st;
    PyObject* loop = reinterpret_cast<PyObject*>(self);
    Ref task_type = Ref::steal(asyncio_class(st->tasks_dict, st->s_Task));
    if (!task_type) return nullptr;
    if (!kwnames) {
        PyObject* call[] = {args[0], loop};
        return PyObject_Vectorcall(task_type.get(), call, 1, st->kw_loop);
    }
    Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    Ref names = Ref::steal(PyTuple_New(nkw + 1));
    if (!names) return nullptr;
    PyTuple_SET_ITEM(names.get(), 0, Py_NewRef(st->s_loop));
    std::vector<PyObject*> call(size_t(nkw) + 2);
    call[0] = args[0];
    call[1] = loop;
    for (Py_ssize_t i = 0; i < nkw; ++i) {
        PyTuple_SET_ITEM(names.get(), i + 1, Py_NewRef(PyTuple_GET_ITEM(kwnames, i)));
        call[size_t(i) + 2] = args[1 + i];
    }
    return PyObject_Vectorcall(task_type.get(), call.data(), 1, names.get());
}

// create_task with a task factory. asyncio 3.13.3+ passes every keyword to
// the factory; earlier releases call factory(loop, coro[, context=]) and
// then set_name(). We follow whichever the running asyncio does, and pass
// keywords other than name/context (eager_start) through in both cases.
PyObject* factory_task(CoreLoop* self, PyObject* const* args, PyObject* kwnames) {
    ModuleState* st = self->s.st;
    PyObject* factory = self->s.task_factory;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    std::vector<PyObject*> call{reinterpret_cast<PyObject*>(self), args[0]};
    Ref names = Ref::steal(PyList_New(0));
    if (!names) return nullptr;
    PyObject* name = Py_None;
    for (Py_ssize_t i = 0; i < nkw; ++i) {
        PyObject* kw = PyTuple_GET_ITEM(kwnames, i);
        PyObject* value = args[1 + i];
        if (!st->create_task_passes_kwargs) {
            if (name_is(st, kw, st->s_name)) {
                name = value;
                continue;
            }
            if (name_is(st, kw, st->s_context) && value == Py_None) continue;
        }
        call.push_back(value);
        if (PyList_Append(names.get(), kw) < 0) return nullptr;
    }
    Ref kwtuple = Ref::steal(PyList_AsTuple(names.get()));
    if (!kwtuple) return nullptr;
    Ref task = Ref::steal(PyObject_Vectorcall(factory, call.data(), 2,
                                              PyTuple_GET_SIZE(kwtuple.get()) ? kwtuple.get() : nullptr));
    if (!task || name == Py_None) return task.release();
    Ref r = Ref::steal(PyObject_CallMethodOneArg(task.get(), st->s_set_name, name));
    return r ? task.release() : nullptr;
}

PyObject* create_task(PyObject* op, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    if (PyVectorcall_NARGS(nargsf) != 1) {
        PyErr_Format(PyExc_TypeError, "create_task() takes 1 positional argument but %zd were given",
                     PyVectorcall_NARGS(nargsf));
        return nullptr;
    }
    if (check_closed(self) < 0) return nullptr;
    if (self->s.task_factory) return factory_task(self, args, kwnames);
    return new_task(self, args, kwnames);
}

}  // namespace

// Their leading parameters may come by keyword too (leading_keywords.hpp).
const PyMethodDef loop_schedule_methods[] = {
    method_fastcall_kw<by_keyword<call_soon, Sig<"call_soon", "callback">>>("call_soon", "call_soon($self, callback, *args, context=None)\n--\n\nCall callback(*args) soon; return its Handle."),
    method_fastcall_kw<by_keyword<call_soon_threadsafe, Sig<"call_soon_threadsafe", "callback">>>("call_soon_threadsafe",
                                             "call_soon_threadsafe($self, callback, *args, context=None)\n--\n\nLike call_soon(), but safe from any thread; wakes the loop."),
    method_fastcall_kw<by_keyword<call_at, Sig<"call_at", "when", "callback">>>("call_at", "call_at($self, when, callback, *args, context=None)\n--\n\nCall callback(*args) at loop.time() `when`; return its TimerHandle."),
    method_fastcall_kw<by_keyword<call_later, Sig<"call_later", "delay", "callback">>>("call_later", "call_later($self, delay, callback, *args, context=None)\n--\n\nCall callback(*args) after `delay` seconds; return its TimerHandle."),
    method_noargs<loop_time>("time", "Return the loop's clock: time.monotonic()."),
    method_noargs<create_future>("create_future", "Create an asyncio.Future attached to the loop."),
    method_fastcall_kw<by_keyword<create_task, Sig<"create_task", "coro">>>("create_task", "create_task($self, coro, **kwargs)\n--\n\nSchedule the coroutine as a Task (or through the task factory)."),
    kMethodsEnd,
};

}  // namespace cxxloop::py
