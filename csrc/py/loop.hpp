// CoreLoop: the C part of cxxloop.Loop.
//
// Python sees `class Loop(_core.CoreLoop, asyncio.BaseEventLoop)`. CoreLoop
// owns everything per callback (ready queue, timer heap, poller, the run
// loop itself); BaseEventLoop contributes asyncio's own per-loop logic
// (executors, exception handler, async generators, and later address
// resolution and connection set-up), which reads the state below through
// the getsets named like BaseEventLoop's attributes.
#pragma once

#include <sys/types.h>

#include <memory>
#include <vector>

#include "../core/poller.hpp"
#include "../core/ring.hpp"
#include "../core/timer_heap.hpp"
#include "../core/wakeup.hpp"
#include "globals.hpp"

namespace cxxloop::py {

// Poller token of the loop's own wake-up fd; any other token is a user fd.
constexpr uint64_t kWakeupToken = ~uint64_t(0);

// add_reader / add_writer registrations of one fd (strong references).
struct FdWatch {
    PyObject* reader = nullptr;
    PyObject* writer = nullptr;
};

struct LoopState {
    Ring<PyObject*> ready;           // Handles, owned
    TimerHeap<PyObject*> timers;     // TimerHandles, owned
    std::unique_ptr<Poller> poller;  // null once closed
    Wakeup wakeup;
    std::vector<FdWatch> fds;        // indexed by fd
    PyObject* task_factory = nullptr;
    PyObject* current_handle = nullptr;  // debug mode only, as in asyncio
    PyObject* old_agen_hooks = nullptr;  // saved by run_forever
    double slow_callback_duration = 0.1;
    unsigned long thread_id = 0;         // of the running thread
    size_t timer_cancelled_count = 0;    // cancelled timers still in the heap
    pid_t pid = 0;                       // process that created the loop
    bool running = false;
    bool closed = false;
    bool stopping = false;
    bool debug = false;
};

struct CoreLoop {
    PyObject_HEAD
    LoopState s;
};

// Raises RuntimeError('Event loop is closed') and returns -1 if it is.
int check_closed(CoreLoop* self);
// Appends a Handle (new reference taken) to the ready queue.
int push_ready(CoreLoop* self, PyObject* handle);
// Releases every Python reference the loop holds in its queues.
void clear_queues(CoreLoop* self);

// Method tables, one per file, joined by the type in loop_type.cpp.
extern PyMethodDef loop_run_methods[];
extern PyMethodDef loop_schedule_methods[];
extern PyMethodDef loop_fd_methods[];

int init_run_until_complete_cb();
int init_loop_type(PyObject* module);

}  // namespace cxxloop::py
