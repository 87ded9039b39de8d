// The run loop: run_forever, run_until_complete, stop, close, and one
// iteration (run_once) in asyncio's order: poll, queue I/O callbacks, queue
// due timers, then run exactly the callbacks that were ready at that point.
#include <unistd.h>

#include <cerrno>

#include "../core/clock.hpp"
#include "handle.hpp"
#include "loop.hpp"
#include "loop_watch.hpp"
#include "leading_keywords.hpp"
#include "methods.hpp"
#include "transport.hpp"

namespace cxxloop::py {

namespace {

// asyncio compacts the heap once cancelled timers are more than half of at
// least this many entries; below it, popping them at the top is cheaper.
constexpr size_t kMinTimersToCompact = 100;

void drop_cancelled_timers(LoopState& s) {
    if (s.timers.size() > kMinTimersToCompact && s.timer_cancelled_count * 2 > s.timers.size()) {
        auto dropped = s.timers.extract_if([](PyObject* h) { return handle_data(h)->cancelled; });
        s.timer_cancelled_count = 0;
        // Released only now that the heap is whole again: a release can
        // run a __del__ that schedules a timer.
        for (auto& e : dropped) handle_data(e.item)->scheduled = false;
        for (auto& e : dropped) Py_DECREF(e.item);
        return;
    }
    while (!s.timers.empty() && handle_data(s.timers.top().item)->cancelled) {
        PyObject* h = s.timers.pop();
        handle_data(h)->scheduled = false;
        s.timer_cancelled_count--;
        Py_DECREF(h);
    }
}

int queue_io(CoreLoop* self, const PollEvent& ev) {
    LoopState& s = self->s;
    if (ev.token == kWakeupToken) {
        s.wakeup.drain();
        return 0;
    }
    if (s.stats.on) s.stats.io_events++;
    if (ev.token >= s.fds.size()) return 0;
    FdWatch& w = s.fds[ev.token];
    if (w.transport) return transport_of(w.transport)->schedule(ev.ready);
    if ((ev.ready & kReadable) && w.reader && !handle_data(w.reader)->cancelled &&
        push_ready(self, w.reader) < 0) {
        return -1;
    }
    if ((ev.ready & kWritable) && w.writer && !handle_data(w.writer)->cancelled &&
        push_ready(self, w.writer) < 0) {
        return -1;
    }
    return 0;
}

// Waits for I/O until the first timer is due (not at all if callbacks are
// ready), and queues what the poller reports.
int wait_for_events(CoreLoop* self) {
    LoopState& s = self->s;
    int64_t timeout_ns = -1;
    if (!s.ready.empty() || s.stopping) {
        timeout_ns = 0;
    } else if (!s.timers.empty()) {
        double now = loop_now(self);
        if (now < 0) return -1;
        timeout_ns = ns_until(s.timers.top().when, now);
    }
    constexpr size_t kMaxEvents = 256;
    PollEvent events[kMaxEvents];
    int n;
    if (timeout_ns == 0) {
        // Not worth giving up the GIL for a poll that cannot block.
        n = s.poller->wait(0, events, kMaxEvents);
    } else {
        // A signal may have tripped while only C code ran (or been simulated
        // with _thread.interrupt_main()): run its Python handler now, since
        // nothing would interrupt the wait for it. asyncio's Python loop gets
        // this from the bytecode it runs before every select().
        if (PyErr_CheckSignals() < 0) return -1;
        Py_BEGIN_ALLOW_THREADS
        n = s.poller->wait(timeout_ns, events, kMaxEvents);
        Py_END_ALLOW_THREADS
    }
    if (n == -EINTR) {
        // A signal: let Python run its handler (KeyboardInterrupt for ^C).
        return PyErr_CheckSignals();
    }
    if (n < 0) {
        errno = -n;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    for (int i = 0; i < n; ++i) {
        if (queue_io(self, events[i]) < 0) return -1;
    }
    return 0;
}

void queue_due_timers(LoopState& s, double now) {
    while (!s.timers.empty() && s.timers.top().when <= now) {
        PyObject* h = s.timers.pop();  // the heap's reference moves to ready
        HandleData* d = handle_data(h);
        d->scheduled = false;
        if (d->cancelled) {
            s.timer_cancelled_count--;
            Py_DECREF(h);
            continue;
        }
        note_timer_fired(s.stats, now - d->when);
        try {
            s.ready.push_back(h);
        } catch (const std::bad_alloc&) {
            Py_DECREF(h);
            throw;
        }
    }
}

int warn_if_slow(CoreLoop* self, PyObject* h, double elapsed) {
    if (elapsed < self->s.slow_callback_duration) return 0;
    Ref what = Ref::steal(PyObject_CallOneArg(self->s.st->format_handle, h));
    if (!what) return -1;
    Ref r = Ref::steal(PyObject_CallMethod(self->s.st->logger, "warning", "sOd", "Executing %s took %.3f seconds",
                                           what.get(), elapsed));
    return r ? 0 : -1;
}

int run_handle_debug(CoreLoop* self, PyObject* h) {
    set_ref(&self->s.current_handle, h);
    double t0 = monotonic_seconds();
    int rc = handle_run(h);
    double elapsed = monotonic_seconds() - t0;
    Py_CLEAR(self->s.current_handle);
    if (rc < 0) return -1;
    return warn_if_slow(self, h, elapsed);
}

// Inlined into run_once; run_entry() is the same for run_observed.
[[gnu::always_inline]] inline int run_ready(CoreLoop* self, PyObject* h) {
    if (!is_handle(h)) return transport_of(h)->dispatch();
    return self->s.debug ? run_handle_debug(self, h) : handle_run(h);
}

}  // namespace

int run_entry(CoreLoop* self, PyObject* h) { return run_ready(self, h); }

namespace {

int run_once(CoreLoop* self) {
    LoopState& s = self->s;
    if (s.stats.on) s.stats.iterations++;
    note_time_replaced(self);
    drop_cancelled_timers(s);
    if (wait_for_events(self) < 0) return -1;
    if (!s.timers.empty()) {
        // loop.time() after the poll, as asyncio's _run_once asks it.
        double now = loop_now(self);
        if (now < 0) return -1;
        try {
            queue_due_timers(s, now);
        } catch (const std::bad_alloc&) {
            PyErr_NoMemory();
            return -1;
        }
    }
    // Callbacks scheduled by these callbacks wait for the next iteration.
    // The ring holds handles and, queued by their fd events, transports:
    // the handle test comes first, as handles are the common case.
    for (size_t ntodo = s.ready.size(); ntodo > 0 && !s.ready.empty(); --ntodo) {
        PyObject* h = s.ready.pop_front();
        int rc = 0;
        if (!is_handle(h) || !handle_data(h)->cancelled) {
            s.stats.callbacks += s.stats.on;
            rc = s.stats.per_callback ? run_observed<run_ready>(self, h) : run_ready(self, h);
        }
        release_ready(h);
        if (rc < 0) return -1;
    }
    return 0;
}

int set_origin_tracking(CoreLoop* self, PyObject* enabled) {
    Ref r = Ref::steal(PyObject_CallMethodOneArg(reinterpret_cast<PyObject*>(self),
                                                 self->s.st->s_set_coroutine_origin_tracking, enabled));
    return r ? 0 : -1;
}

int check_can_run(CoreLoop* self) {
    if (check_closed(self) < 0) return -1;
    if (self->s.running) {
        PyErr_SetString(PyExc_RuntimeError, "This event loop is already running");
        return -1;
    }
    Ref running = Ref::steal(PyObject_CallNoArgs(self->s.st->get_running_loop));
    if (!running) return -1;
    if (running.get() != Py_None) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot run the event loop while another loop is running");
        return -1;
    }
    if (self->s.pid != getpid()) {
        // The poller and wake-up fd are shared with the parent process.
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot run an event loop inherited across fork(); create a new loop in the child");
        return -1;
    }
    return 0;
}

// asyncio's _run_forever_setup: hooks for async generators, the running
// loop for get_running_loop(), coroutine origin tracking in debug mode.
int setup_run(CoreLoop* self) {
    PyObject* op = reinterpret_cast<PyObject*>(self);
    ModuleState* st = self->s.st;
    if (set_origin_tracking(self, self->s.debug ? Py_True : Py_False) < 0) return -1;
    Ref old_hooks = Ref::steal(PyObject_CallNoArgs(st->get_asyncgen_hooks));
    if (!old_hooks) return -1;
    Ref firstiter = Ref::steal(PyObject_GetAttr(op, st->s_asyncgen_firstiter_hook));
    Ref finalizer = Ref::steal(PyObject_GetAttr(op, st->s_asyncgen_finalizer_hook));
    if (!firstiter || !finalizer) return -1;
    PyObject* hook_args[] = {firstiter.get(), finalizer.get()};
    Ref r = Ref::steal(PyObject_Vectorcall(st->set_asyncgen_hooks, hook_args, 0, st->kw_asyncgen_hooks));
    if (!r) return -1;
    Py_XSETREF(self->s.old_agen_hooks, old_hooks.release());
    self->s.thread_id = PyThread_get_thread_ident();
    self->s.running = true;
    r = Ref::steal(PyObject_CallOneArg(st->set_running_loop, op));
    return r ? 0 : -1;
}

// asyncio's _run_forever_cleanup. Runs with any exception from the loop
// stashed, so each step runs; a failure here is reported as unraisable
// when the loop itself already failed.
int cleanup_run(CoreLoop* self) {
    PyObject* op = reinterpret_cast<PyObject*>(self);
    Ref pending = Ref::steal(PyErr_GetRaisedException());
    self->s.stopping = false;
    self->s.running = false;
    self->s.thread_id = 0;
    int rc = 0;
    Ref r = Ref::steal(PyObject_CallOneArg(self->s.st->set_running_loop, Py_None));
    if (!r || set_origin_tracking(self, Py_False) < 0) rc = -1;
    if (rc == 0 && self->s.old_agen_hooks) {
        Ref hooks = Ref::steal(std::exchange(self->s.old_agen_hooks, nullptr));
        r = Ref::steal(PyObject_Call(self->s.st->set_asyncgen_hooks, hooks.get(), nullptr));
        if (!r) rc = -1;
    }
    if (pending) {
        if (rc < 0) PyErr_WriteUnraisable(op);
        PyErr_SetRaisedException(pending.release());
        return -1;
    }
    return rc;
}

int run_forever_impl(CoreLoop* self) {
    if (check_can_run(self) < 0) return -1;
    if (setup_run(self) < 0) {
        cleanup_run(self);
        return -1;
    }
    int rc = 0;
    for (;;) {
        if (run_once(self) < 0) {
            rc = -1;
            break;
        }
        if (self->s.stopping) break;
    }
    return cleanup_run(self) < 0 ? -1 : rc;
}

// BaseEventLoop._run_once, for code that drives the loop one step at a time
// (asyncio's own tests do). run_forever does not call through it.
PyObject* run_once_method(PyObject* op, PyObject*) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    if (!self->s.poller) {
        // Closed: asyncio's _run_once fails on its selector, gone by then.
        PyErr_SetString(PyExc_AttributeError, "'NoneType' object has no attribute 'select'");
        return nullptr;
    }
    if (run_once(self) < 0) return nullptr;
    Py_RETURN_NONE;
}

// BaseEventLoop._run_forever_setup / _run_forever_cleanup, for loops that
// drive iterations themselves (a GUI toolkit's loop calling _run_once).
PyObject* run_forever_setup(PyObject* op, PyObject*) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    if (check_can_run(self) < 0) return nullptr;
    if (setup_run(self) < 0) {
        cleanup_run(self);
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyObject* run_forever_cleanup(PyObject* op, PyObject*) {
    if (cleanup_run(reinterpret_cast<CoreLoop*>(op)) < 0) return nullptr;
    Py_RETURN_NONE;
}

// BaseEventLoop._write_to_self: wakes the loop from any thread (code that
// drives asyncio loops from outside calls it).
PyObject* write_to_self(PyObject* op, PyObject*) {
    reinterpret_cast<CoreLoop*>(op)->s.wakeup.signal();
    Py_RETURN_NONE;
}

// BaseEventLoop._timer_handle_cancelled, which asyncio's own TimerHandle
// calls from cancel(): such a handle was never in this loop's heap, whose
// own handles count their cancellation themselves.
PyObject* timer_handle_cancelled(PyObject*, PyObject*) { Py_RETURN_NONE; }

PyObject* run_forever(PyObject* op, PyObject*) {
    if (run_forever_impl(reinterpret_cast<CoreLoop*>(op)) < 0) return nullptr;
    Py_RETURN_NONE;
}

// Done callback of run_until_complete's future: stop the future's loop,
// except when it failed with SystemExit/KeyboardInterrupt, which already
// unwinds run_forever.
// The function's self is the module.
PyObject* run_until_complete_cb(PyObject* module, PyObject* fut) {
    ModuleState* st = module_state(module);
    Ref cancelled = Ref::steal(PyObject_CallMethodNoArgs(fut, st->s_cancelled));
    if (!cancelled) return nullptr;
    if (cancelled.get() == Py_False) {
        Ref exc = Ref::steal(PyObject_CallMethodNoArgs(fut, st->s_exception));
        if (!exc) return nullptr;
        if (PyErr_GivenExceptionMatches(exc.get(), PyExc_SystemExit) ||
            PyErr_GivenExceptionMatches(exc.get(), PyExc_KeyboardInterrupt)) {
            Py_RETURN_NONE;
        }
    }
    Ref loop = Ref::steal(PyObject_CallMethodNoArgs(fut, st->s_get_loop));
    if (!loop) return nullptr;
    return PyObject_CallMethodNoArgs(loop.get(), st->s_stop);
}

PyMethodDef run_until_complete_cb_def = method_o<run_until_complete_cb>("_run_until_complete_cb", nullptr);

// obj.method() is True; an error counts as False and is left set.
bool call_true(PyObject* obj, PyObject* method) {
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(obj, method));
    return r && r.get() == Py_True;
}

PyObject* run_until_complete(PyObject* op, PyObject* future) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    ModuleState* st = self->s.st;
    if (check_can_run(self) < 0) return nullptr;
    Ref is_future = Ref::steal(PyObject_CallOneArg(st->isfuture, future));
    if (!is_future) return nullptr;
    bool new_task = is_future.get() != Py_True;
    PyObject* ensure_args[] = {future, op};
    Ref fut = Ref::steal(PyObject_Vectorcall(st->ensure_future, ensure_args, 1, st->kw_loop));
    if (!fut) return nullptr;
    if (new_task && PyObject_SetAttr(fut.get(), st->s_log_destroy_pending, Py_False) < 0) return nullptr;
    Ref r = Ref::steal(PyObject_CallMethodOneArg(fut.get(), st->s_add_done_callback, st->run_until_complete_cb));
    if (!r) return nullptr;

    run_forever_impl(self);
    Ref pending = Ref::steal(PyErr_GetRaisedException());
    if (pending && new_task && call_true(fut.get(), st->s_done) && !call_true(fut.get(), st->s_cancelled)) {
        // The loop was interrupted (^C) after the task failed: mark the
        // task's exception as retrieved so it is not logged as never retrieved.
        Ref ignored = Ref::steal(PyObject_CallMethodNoArgs(fut.get(), st->s_exception));
    }
    PyErr_Clear();
    r = Ref::steal(PyObject_CallMethodOneArg(fut.get(), st->s_remove_done_callback, st->run_until_complete_cb));
    if (pending) {
        if (!r) PyErr_WriteUnraisable(op);
        PyErr_SetRaisedException(pending.release());
        return nullptr;
    }
    if (!r) return nullptr;
    Ref done = Ref::steal(PyObject_CallMethodNoArgs(fut.get(), st->s_done));
    if (!done) return nullptr;
    if (done.get() != Py_True) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop stopped before Future completed.");
        return nullptr;
    }
    return PyObject_CallMethodNoArgs(fut.get(), st->s_result);
}

PyObject* stop_method(PyObject* op, PyObject*) {
    reinterpret_cast<CoreLoop*>(op)->s.stopping = true;
    Py_RETURN_NONE;
}

PyObject* is_running(PyObject* op, PyObject*) { return PyBool_FromLong(reinterpret_cast<CoreLoop*>(op)->s.running); }
PyObject* is_closed(PyObject* op, PyObject*) { return PyBool_FromLong(reinterpret_cast<CoreLoop*>(op)->s.closed); }
PyObject* get_debug(PyObject* op, PyObject*) { return PyBool_FromLong(reinterpret_cast<CoreLoop*>(op)->s.debug); }

PyObject* set_debug(PyObject* op, PyObject* enabled) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    int on = PyObject_IsTrue(enabled);
    if (on < 0) return nullptr;
    self->s.debug = on;
    if (self->s.running) {
        // Origin tracking is per thread; switch it in the loop's thread.
        Ref track = Ref::steal(PyObject_GetAttr(op, self->s.st->s_set_coroutine_origin_tracking));
        if (!track) return nullptr;
        PyObject* args[] = {op, track.get(), on ? Py_True : Py_False};
        return PyObject_VectorcallMethod(self->s.st->s_call_soon_threadsafe, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                         nullptr);
    }
    Py_RETURN_NONE;
}

// Shuts the default executor down without waiting, as asyncio's close().
int close_executor(CoreLoop* self) {
    PyObject* op = reinterpret_cast<PyObject*>(self);
    ModuleState* st = self->s.st;
    if (PyObject_SetAttr(op, st->s_executor_shutdown_called, Py_True) < 0) return -1;
    Ref executor = Ref::steal(PyObject_GetAttr(op, st->s_default_executor));
    if (!executor) return -1;
    if (executor.get() == Py_None) return 0;
    if (PyObject_SetAttr(op, st->s_default_executor, Py_None) < 0) return -1;
    PyObject* args[] = {executor.get(), Py_False};
    Ref r = Ref::steal(PyObject_VectorcallMethod(st->s_shutdown, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, st->kw_wait));
    return r ? 0 : -1;
}

PyObject* close_method(PyObject* op, PyObject*) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    if (self->s.running) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot close a running event loop");
        return nullptr;
    }
    if (self->s.closed) Py_RETURN_NONE;
    if (self->s.debug) {
        Ref r = Ref::steal(PyObject_CallMethod(self->s.st->logger, "debug", "sO", "Close %r", op));
        if (!r) return nullptr;
    }
    self->s.closed = true;
    clear_queues(self);
    self->s.poller.reset();
    self->s.wakeup.close();
    if (close_executor(self) < 0) return nullptr;
    Py_RETURN_NONE;
}

}  // namespace

int init_run_until_complete_cb(PyObject* module, ModuleState* st) {
    st->run_until_complete_cb = PyCFunction_NewEx(&run_until_complete_cb_def, module, nullptr);
    return st->run_until_complete_cb ? 0 : -1;
}

// Their parameters may come by keyword too (leading_keywords.hpp).
const PyMethodDef loop_run_methods[] = {
    method_noargs<run_forever>("run_forever", "Run the loop until stop() is called."),
    method_fastcall_kw<one_by_keyword<run_until_complete, Sig<"run_until_complete", "future">>>("run_until_complete", "run_until_complete($self, future)\n--\n\nRun until the future (or coroutine) is done."),
    method_noargs<run_once_method>("_run_once", nullptr),
    method_noargs<run_forever_setup>("_run_forever_setup", nullptr),
    method_noargs<run_forever_cleanup>("_run_forever_cleanup", nullptr),
    method_noargs<write_to_self>("_write_to_self", nullptr),
    method_fastcall_kw<one_by_keyword<timer_handle_cancelled, Sig<"_timer_handle_cancelled", "handle">>>("_timer_handle_cancelled", "_timer_handle_cancelled($self, handle)\n--\n\n"),
    method_noargs<stop_method>("stop", "Stop after the callbacks of the current iteration have run."),
    method_noargs<close_method>("close", "Close the loop; pending callbacks are discarded."),
    method_noargs<is_running>("is_running", "Return True if the loop is running."),
    method_noargs<is_closed>("is_closed", "Return True if the loop was closed."),
    method_noargs<get_debug>("get_debug", "Return the debug-mode flag."),
    method_fastcall_kw<one_by_keyword<set_debug, Sig<"set_debug", "enabled">>>("set_debug", "set_debug($self, enabled)\n--\n\nSet the debug-mode flag."),
    kMethodsEnd,
};

}  // namespace cxxloop::py
