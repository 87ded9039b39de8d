// _core.Watchdog: the C half of cxxloop.watch()'s watchdog thread.
//
// A Python thread calls wait() in a loop. wait() gives up the GIL and ticks
// on a condition variable, reading the loop's callback sequence (see
// loop_watch.hpp); it comes back with the GIL only when there is something
// to do in Python: a callback just found slow, whose stack the thread
// samples, or one still running after report_after, which it reports.
#include "loop_watch.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "../core/clock.hpp"
#include "loop.hpp"
#include "methods.hpp"

namespace cxxloop::py {
namespace {

struct Watchdog {
    PyObject_HEAD
    WatchShared* shared;  // a reference
    uint64_t generation;
    // What the watching thread saw at its last tick; only it reads these.
    uint64_t last_seq;
    int64_t first_seen;  // when it first saw last_seq running
    bool flag_sent;      // "slow" returned for last_seq
    bool running_sent;   // "running" returned for last_seq
};

Watchdog* as_watchdog(PyObject* op) { return reinterpret_cast<Watchdog*>(op); }

struct Event {
    const char* kind = nullptr;  // null: the watch has stopped
    uint64_t seq = 0;
    int64_t elapsed_ns = 0;
};

// Ticks until there is something to report or the generation changes.
// Runs without the GIL: it touches only the atomics and what `mu` guards.
Event watch_for(Watchdog& self, WatchShared& w) {
    std::unique_lock<std::mutex> lock(w.mu);
    while (w.generation == self.generation) {
        w.changed.wait_for(lock, std::chrono::nanoseconds(w.tick_ns));
        if (w.generation != self.generation) break;
        uint64_t seq = w.seq.load(std::memory_order_acquire);
        int64_t now = monotonic_ns();
        if (!(seq & 1) || seq != self.last_seq) {
            // Idle, or another callback since the last tick.
            self.last_seq = seq;
            self.first_seen = now;
            self.flag_sent = self.running_sent = false;
            continue;
        }
        int64_t elapsed = now - self.first_seen;
        if (!self.flag_sent && elapsed >= w.threshold_ns) {
            self.flag_sent = true;
            w.flagged_since.store(self.first_seen, std::memory_order_relaxed);
            w.flagged.store(seq, std::memory_order_release);
            return {"slow", seq, elapsed};
        }
        if (!self.running_sent && w.report_after_ns && elapsed >= w.report_after_ns) {
            self.running_sent = true;
            return {"running", seq, elapsed};
        }
    }
    return {};
}

bool is_current(const Watchdog* self) { return self->shared->generation == self->generation; }

void stop(Watchdog* self) {
    if (!is_current(self)) return;
    WatchShared& w = *self->shared;
    if (w.loop) {
        LoopStats& stats = w.loop->s.stats;
        stats.set_modes(stats.on, stats.timing, false);
    }
    w.next_generation();
}

// Watchdog(loop, threshold, report_after): watches `loop` from now on,
// replacing any earlier watch of it. Seconds; report_after 0 for none.
PyObject* Watchdog_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"loop", "threshold", "report_after", nullptr};
    PyObject* loop_obj;
    double threshold, report_after;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Odd:Watchdog", const_cast<char**>(kwlist), &loop_obj, &threshold,
                                     &report_after)) {
        return nullptr;
    }
    PyObject* module = PyType_GetModuleByDef(type, &core_module_def);  // borrowed
    if (!module) return nullptr;
    if (!PyObject_TypeCheck(loop_obj, module_state(module)->loop_type)) {
        PyErr_Format(PyExc_TypeError, "a cxxloop loop is needed, not %.200s", Py_TYPE(loop_obj)->tp_name);
        return nullptr;
    }
    if (!(threshold > 0.0) || !std::isfinite(threshold) || !(report_after >= 0.0) || !std::isfinite(report_after)) {
        PyErr_SetString(PyExc_ValueError, "threshold must be a positive number of seconds, report_after >= 0");
        return nullptr;
    }
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(loop_obj);
    if (check_closed(loop) < 0 || check_not_inherited(loop) < 0) return nullptr;
    Ref op = Ref::steal(type->tp_alloc(type, 0));
    if (!op) return nullptr;
    Watchdog* self = as_watchdog(op.get());
    LoopStats& stats = loop->s.stats;
    if (!stats.watch) stats.watch = new WatchShared;
    self->shared = stats.watch;
    WatchShared& w = *self->shared;
    w.refs++;
    w.loop = loop;
    {
        std::lock_guard<std::mutex> lock(w.mu);
        w.threshold_ns = int64_t(threshold * 1e9);
        w.report_after_ns = int64_t(report_after * 1e9);
        // A tick is an eighth of the threshold: what a reported duration
        // may fall short by. Never below 1 ms or above 100 ms.
        w.tick_ns = std::clamp<int64_t>(w.threshold_ns / 8, 1'000'000, 100'000'000);
    }
    self->generation = w.next_generation();
    stats.set_modes(true, stats.timing, true);
    return op.release();
}

void Watchdog_dealloc(PyObject* op) {
    Watchdog* self = as_watchdog(op);
    PyTypeObject* tp = Py_TYPE(op);
    if (self->shared) {
        stop(self);
        release_watch(self->shared);
    }
    tp->tp_free(op);
    Py_DECREF(tp);
}

PyObject* Watchdog_wait(PyObject* op, PyObject*) {
    // The call holds `self`, and so its reference to the shared part.
    Watchdog* self = as_watchdog(op);
    Event ev;
    Py_BEGIN_ALLOW_THREADS
    ev = watch_for(*self, *self->shared);
    Py_END_ALLOW_THREADS
    if (!ev.kind) Py_RETURN_NONE;
    return Py_BuildValue("(sKd)", ev.kind, static_cast<unsigned long long>(ev.seq), double(ev.elapsed_ns) * 1e-9);
}

PyObject* Watchdog_current(PyObject* op, PyObject*) {
    Watchdog* self = as_watchdog(op);
    WatchShared& w = *self->shared;
    if (!is_current(self) || !w.loop || !w.running) Py_RETURN_NONE;
    return Py_BuildValue("(KOk)", static_cast<unsigned long long>(w.seq.load(std::memory_order_relaxed)), w.running,
                         w.loop->s.thread_id);
}

PyObject* Watchdog_close(PyObject* op, PyObject*) {
    stop(as_watchdog(op));
    Py_RETURN_NONE;
}

PyMethodDef watchdog_methods[] = {
    method_noargs<Watchdog_wait>("wait",
                                 "Wait, without the GIL, for a callback to be found slow: ('slow', seq, seconds) at "
                                 "the threshold, ('running', seq, seconds) at report_after; None once stopped."),
    method_noargs<Watchdog_current>("current",
                                    "(seq, entry, thread id) of the callback running now, or None."),
    method_noargs<Watchdog_close>("close", "Stop watching; wait() returns None."),
    kMethodsEnd,
};

}  // namespace

int init_watchdog_type(PyObject* module) {
    PyType_Slot slots[] = {
        {Py_tp_new, slot<Watchdog_new>()},
        {Py_tp_dealloc, reinterpret_cast<void*>(Watchdog_dealloc)},
        {Py_tp_methods, watchdog_methods},
        {Py_tp_doc, const_cast<char*>("Watchdog(loop, threshold, report_after): the C half of cxxloop.watch().")},
        {0, nullptr},
    };
    PyType_Spec spec = {
        "cxxloop._core.Watchdog",
        int(sizeof(Watchdog)),
        0,
        Py_TPFLAGS_DEFAULT,
        slots,
    };
    Ref type = Ref::steal(PyType_FromModuleAndSpec(module, &spec, nullptr));
    if (!type) return -1;
    return PyModule_AddType(module, reinterpret_cast<PyTypeObject*>(type.get()));
}

}  // namespace cxxloop::py
