// Handle and TimerHandle: the objects call_soon / call_later return.
//
// Both are C types whose Python bases are asyncio.Handle and
// asyncio.TimerHandle, so isinstance() checks against asyncio's classes hold
// and asyncio's own __repr__ and ordering methods apply. The C state lives in
// a HandleData placed after the larger of the two bases; getsets named like
// asyncio's slots (_callback, _args, _when, ...) shadow the unused base slots.
#pragma once

#include "layout.hpp"
#include "module_state.hpp"

namespace cxxloop::py {

struct CoreLoop;

struct HandleData {
    PyObject* callback;          // null once cancelled
    PyObject* args;              // tuple; null once cancelled
    PyObject* context;           // contextvars.Context
    PyObject* loop;              // the CoreLoop that scheduled it
    PyObject* source_traceback;  // debug mode only
    PyObject* repr;              // frozen repr of a cancelled handle, debug only
    PyObject* when_obj;          // TimerHandle only: call_at's deadline as given, if not a float
    double when;                 // TimerHandle only
    bool cancelled;
    bool scheduled;              // TimerHandle only: still in the loop's heap
    bool callback_untracked;     // soon_handle_new took the callback out of the GC
};

inline HandleData* handle_data(PyObject* h) noexcept {
    return reinterpret_cast<HandleData*>(reinterpret_cast<char*>(h) + layout.handle_data);
}

// The deallocator of the three handle types (Handle, TimerHandle,
// ThreadSafeHandle), which tells them apart from any other object.
void handle_dealloc(PyObject* self);

// True for the handles handle_new() makes: the loop's ready queue holds
// these and transports.
inline bool is_handle(PyObject* op) noexcept { return Py_TYPE(op)->tp_dealloc == handle_dealloc; }

// Creates a Handle or, for type st->timer_handle_type, a TimerHandle (the caller sets
// `when` and schedules it).
// `context` may be null: the current context is copied, as asyncio does.
// Returns a new reference, or null with an exception set.
PyObject* handle_new(PyTypeObject* type, CoreLoop* loop, PyObject* callback, PyObject* const* args,
                     Py_ssize_t nargs, PyObject* context);

// A Handle for the ready queue (call_soon and the transports' callbacks),
// made untracked by the GC, and so is its callback if it is a Task's step
// (CPython's TaskStepMethWrapper, made for this one call_soon). Most are
// held by the queue alone until they run, and a gather of 100,000 tasks
// keeps 100,000 of each queued: every young collection would move them to
// an older generation and every full collection would traverse them all.
//
// While untracked, the loop's tp_traverse visits what such a handle (and
// its step) holds, if the queue's reference is its only one, so a cycle
// through an abandoned loop is still found. Whatever in an entry someone
// else holds goes back to the GC when the entry leaves the queue
// (release_ready) and before every full collection (ready_gc.cpp).
// `type` is the module's Handle type, or its ThreadSafeHandle type for
// call_soon_threadsafe.
PyObject* soon_handle_new(CoreLoop* loop, PyTypeObject* type, PyObject* callback, PyObject* const* args,
                          Py_ssize_t nargs, PyObject* context);

// Gives the callback soon_handle_new took out of the GC back to it: if
// `always` (its handle is going back to the GC), else only if anyone
// besides the handle holds it.
inline void track_callback(HandleData* d, bool always) {
    if (!d->callback_untracked || (!always && Py_REFCNT(d->callback) == 1)) return;
    d->callback_untracked = false;
    if (!PyObject_GC_IsTracked(d->callback)) PyObject_GC_Track(d->callback);
}

// Gives an untracked ready entry back to the GC if anyone besides the
// queue holds it, and its step callback if anyone besides the entry does.
inline void track_if_shared(PyObject* entry) {
    bool handle = is_handle(entry);
    if (Py_REFCNT(entry) == 1) {
        if (handle) track_callback(handle_data(entry), false);
    } else if (!PyObject_GC_IsTracked(entry)) {
        PyObject_GC_Track(entry);
        if (handle) track_callback(handle_data(entry), true);
    }
}

// Drops the ready queue's reference to an entry (a handle or a transport).
inline void release_ready(PyObject* entry) {
    track_if_shared(entry);
    Py_DECREF(entry);
}

// tp_traverse of both handle types. The loop also calls it for the
// untracked handles only its queue holds.
int handle_traverse(PyObject* self, visitproc visit, void* arg);

// Runs the callback in its context. An exception other than SystemExit or
// KeyboardInterrupt goes to the loop's exception handler and 0 is returned;
// those two (or a failure of the handler itself) return -1 to unwind the loop.
int handle_run(PyObject* h);

// Marks the handle cancelled and drops its callback and arguments.
void handle_cancel(PyObject* h);

// Creates both types. Returns -1 with an exception set.
int init_handle_types(PyObject* module, ModuleState* st);

}  // namespace cxxloop::py
