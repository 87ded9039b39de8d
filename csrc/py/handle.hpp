// Handle and TimerHandle: the objects call_soon / call_later return.
//
// Both are C types whose Python bases are asyncio.Handle and
// asyncio.TimerHandle, so isinstance() checks against asyncio's classes hold
// and asyncio's own __repr__ and ordering methods apply. The C state lives in
// a HandleData placed after the larger of the two bases; getsets named like
// asyncio's slots (_callback, _args, _when, ...) shadow the unused base slots.
#pragma once

#include "globals.hpp"

namespace cxxloop::py {

struct CoreLoop;

struct HandleData {
    PyObject* callback;          // null once cancelled
    PyObject* args;              // tuple; null once cancelled
    PyObject* context;           // contextvars.Context
    PyObject* loop;              // the CoreLoop that scheduled it
    PyObject* source_traceback;  // debug mode only
    PyObject* repr;              // frozen repr of a cancelled handle, debug only
    double when;                 // TimerHandle only
    bool cancelled;
    bool scheduled;              // TimerHandle only: still in the loop's heap
};

inline HandleData* handle_data(PyObject* h) noexcept {
    return reinterpret_cast<HandleData*>(reinterpret_cast<char*>(h) + g.handle_data_offset);
}

// True for Handle and TimerHandle: the only handles the loop queues are
// the ones handle_new() made, of exactly these types.
inline bool is_handle(PyObject* op) noexcept {
    PyTypeObject* tp = Py_TYPE(op);
    return tp == g.Handle || tp == g.TimerHandle;
}

// Creates a Handle or, for type g.TimerHandle, a TimerHandle (the caller sets
// `when` and schedules it).
// `context` may be null: the current context is copied, as asyncio does.
// Returns a new reference, or null with an exception set.
PyObject* handle_new(PyTypeObject* type, CoreLoop* loop, PyObject* callback, PyObject* const* args,
                     Py_ssize_t nargs, PyObject* context);

// A Handle for the ready queue (call_soon and the transports' callbacks),
// made untracked by the GC. Most are held by the queue alone until they
// run, and a gather of 100,000 tasks keeps 100,000 of them queued: every
// full collection would traverse them all. While untracked, the loop's
// tp_traverse visits what such a handle holds, if the queue's reference is
// its only one (so a cycle through an abandoned loop is still found), and
// release_ready() gives it back to the GC if anyone else holds it when it
// leaves the queue (ready_gc.cpp does the same before a full collection).
PyObject* soon_handle_new(CoreLoop* loop, PyObject* callback, PyObject* const* args, Py_ssize_t nargs,
                          PyObject* context);

// Gives an untracked ready entry back to the GC if anyone besides the
// queue holds it.
inline void track_if_shared(PyObject* entry) {
    if (Py_REFCNT(entry) > 1 && !PyObject_GC_IsTracked(entry)) PyObject_GC_Track(entry);
}

// Drops the ready queue's reference to an entry (a handle or a transport).
inline void release_ready(PyObject* entry) {
    track_if_shared(entry);
    Py_DECREF(entry);
}

// tp_traverse of both handle types.
int handle_traverse(PyObject* self, visitproc visit, void* arg);

// Runs the callback in its context. An exception other than SystemExit or
// KeyboardInterrupt goes to the loop's exception handler and 0 is returned;
// those two (or a failure of the handler itself) return -1 to unwind the loop.
int handle_run(PyObject* h);

// Marks the handle cancelled and drops its callback and arguments.
void handle_cancel(PyObject* h);

// Creates both types. Returns -1 with an exception set.
int init_handle_types(PyObject* module);

}  // namespace cxxloop::py
