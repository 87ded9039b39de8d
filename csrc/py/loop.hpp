// CoreLoop: the C part of cxxloop.Loop.
//
// Python sees `class Loop(_core.CoreLoop, ..., unix_events._UnixSelectorEventLoop)`.
// CoreLoop owns everything per callback (ready queue, timer heap, poller,
// fd watches, stream transports, the run loop itself); asyncio's selector
// loop contributes its per-loop and per-connection logic (executors,
// exception handler, async generators, connection set-up, servers, TLS,
// subprocesses), which reaches the C++ state through the hooks
// (_add_reader, _make_socket_transport, ...) and the getsets named like
// BaseEventLoop's attributes.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "../core/poller.hpp"
#include "../core/ring.hpp"
#include "../core/timer_heap.hpp"
#include "../core/wakeup.hpp"
#include "loop_stats.hpp"
#include "module_state.hpp"

namespace cxxloop::py {

// Poller tokens. The loop's own wake-up fd is kWakeupToken; every other
// token is the registered fd itself, and the fd's FdWatch says who owns it:
// either add_reader/add_writer handles (registered level-triggered) or one
// transport (registered edge-triggered for both directions, once, for its
// whole life). An fd is never both: add_reader on a transport's fd raises,
// as asyncio's does. Looking the owner up by fd, instead of putting a
// pointer in the token, means a stale event for a closed and reused fd can
// never reach a freed object.
constexpr uint64_t kWakeupToken = ~uint64_t(0);

// What the loop holds for one fd (all strong references).
struct FdWatch {
    PyObject* reader = nullptr;
    PyObject* writer = nullptr;
    // What add_reader/add_writer was given for the fd (an int or a file
    // object), while either watch is set: remove_reader finds the watch by
    // it once its fileno() no longer answers, as a selector does.
    PyObject* fileobj = nullptr;
    PyObject* transport = nullptr;  // a Transport
};

// recv() size of stream transports, asyncio's max_size.
constexpr size_t kReadBufferSize = 256 * 1024;

struct LoopState {
    LoopState() = default;
    LoopState(const LoopState&) = delete;
    LoopState& operator=(const LoopState&) = delete;
    ~LoopState() {
        if (threadsafe_gate) PyThread_free_lock(threadsafe_gate);
    }

    // The state of the module that made the loop's type, and a reference
    // to that module, kept until dealloc so the state outlives everything
    // that reaches it through the loop (handles, transports).
    ModuleState* st = nullptr;
    PyObject* module = nullptr;
    Ring<PyObject*> ready;           // Handles, owned
    TimerHeap<PyObject*> timers;     // TimerHandles, owned
    std::unique_ptr<Poller> poller;  // null once closed
    Wakeup wakeup;
    std::vector<FdWatch> fds;        // indexed by fd
    std::unique_ptr<char[]> read_buf;  // kReadBufferSize scratch, made on first read
    std::unique_ptr<char[]> plaintext_buf;  // the same, for what TLS decrypts
    PyObject* task_factory = nullptr;
    PyObject* current_handle = nullptr;  // debug mode only, as in asyncio
    PyObject* old_agen_hooks = nullptr;  // saved by run_forever
    // The call_soon_threadsafe handle running now (borrowed), and the gate
    // it runs holding (handle.cpp: run_threadsafe).
    PyObject* threadsafe_running = nullptr;
    PyThread_type_lock threadsafe_gate = nullptr;
    double slow_callback_duration = 0.1;
    // A program replaced loop.time (an instance attribute, as
    // mock.patch.object(loop, "time") sets one, or a class's own time):
    // the loop then asks it for the time, as asyncio's run loop does.
    bool time_set_on_instance = false;
    bool time_replaced = false;
    unsigned long thread_id = 0;         // of the running thread
    size_t timer_cancelled_count = 0;    // cancelled timers still in the heap
    pid_t pid = 0;                       // process that created the loop
    bool running = false;
    bool closed = false;
    bool stopping = false;
    bool debug = false;
    LoopStats stats;  // loop.stats(), and the slow-callback watch
};

struct CoreLoop {
    PyObject_HEAD
    LoopState s;
};

// The loop's kReadBufferSize scratch buffer that transports read into,
// made on first use; null with MemoryError.
char* read_buffer(CoreLoop* self);
// A second such buffer, for the plaintext a TLS transport decrypts while
// the first still holds the ciphertext it came in.
char* plaintext_buffer(CoreLoop* self);
// loop.time() as the loop reads it (loop_schedule.cpp): the monotonic
// clock, unless time_replaced; -1.0 with an exception set.
double loop_now(CoreLoop* self);
// Recomputes time_replaced (the class's time may have been patched).
void note_time_replaced(CoreLoop* self);
// Raises RuntimeError('Event loop is closed') and returns -1 if it is.
int check_closed(CoreLoop* self);
// Appends a Handle (new reference taken) to the ready queue.
int push_ready(CoreLoop* self, PyObject* handle);
// Releases every Python reference the loop holds in its queues.
void clear_queues(CoreLoop* self);
// In a forked child the epoll instance is still the parent's: touching its
// interest list would change which events the parent sees.
inline bool inherited_across_fork(const CoreLoop* self) { return self->s.pid != getpid(); }
// Raises RuntimeError and returns -1 if it is.
int check_not_inherited(CoreLoop* self);
// The FdWatch of fd, growing the table as needed, for an fd that is open;
// null with OSError (EBADF) or MemoryError.
FdWatch* fd_watch(CoreLoop* self, int fd);
// Watches fd, level-triggered, for `which` (kReadable or kWritable) with a
// Handle calling callback(*args) in `context` (null or None: a copy of the
// current one), replacing and cancelling the previous watch; raises
// asyncio's RuntimeError if a transport owns fd. `fileobj` is what the
// caller was given for fd. The caller has checked that the loop is open and
// not inherited across fork(). Returns a new reference to the Handle.
PyObject* watch_fd(CoreLoop* self, int fd, PyObject* fileobj, uint32_t which, PyObject* callback, PyObject* const* args,
                   Py_ssize_t nargs, PyObject* context);
// Stops watching fd for `which` if `handle` (borrowed) is still the watch,
// not one that replaced it since; the handle is cancelled.
void unwatch_fd(CoreLoop* self, int fd, uint32_t which, PyObject* handle);
// A transport takes fd over: its watches are cancelled and its level-
// triggered registration dropped. The caller has made the FdWatch.
void drop_fd_watches(CoreLoop* self, int fd);

// Method tables, one per file, joined by the type in loop_type.cpp.
extern const PyMethodDef loop_run_methods[];
extern const PyMethodDef loop_schedule_methods[];
extern const PyMethodDef loop_fd_methods[];
extern const PyMethodDef loop_sock_methods[];
extern const PyMethodDef loop_stream_methods[];    // stream_transport.cpp
extern const PyMethodDef loop_accept_methods[];    // server_acceptor.cpp
extern const PyMethodDef loop_pipe_methods[];      // pipe_transport.cpp
extern const PyMethodDef loop_datagram_methods[];  // datagram_transport.cpp
extern const PyMethodDef loop_tls_methods[];       // tls_transport_type.cpp

// The types of the other files, made at import (module.cpp).
int init_stream_transport_type(PyObject* module, ModuleState* st);
int init_acceptor_type(PyObject* module, ModuleState* st);
int init_pipe_transport_types(PyObject* module, ModuleState* st);
int init_datagram_transport_type(PyObject* module, ModuleState* st);
int init_tls_transport_type(PyObject* module, ModuleState* st);

// ready_gc.cpp: the loops a full collection checks for shared untracked
// handles, and the gc.callbacks hook that does it.
int register_live_loop(CoreLoop* loop);  // -1 with MemoryError
void unregister_live_loop(CoreLoop* loop);
int init_ready_gc(PyObject* module);

int init_run_until_complete_cb(PyObject* module, ModuleState* st);
int init_loop_type(PyObject* module, ModuleState* st);

}  // namespace cxxloop::py
