// The state of the cxxloop._core module: its types, the asyncio objects it
// calls, and the names it looks up, as CPython's own _asyncio keeps them.
//
// The module uses multi-phase initialisation: each module object owns one
// ModuleState, which its m_traverse visits, m_clear breaks cycles through
// and m_free releases. Every object that needs it reaches the state through
// its loop (LoopState::st), and a loop keeps the module alive through its
// type. The only process-wide values are layout constants (layout.hpp).
//
// asyncio's private names are not looked up here directly: they come from
// cxxloop._asyncio_internals, the one place that knows them per CPython
// version.
#pragma once

#include <vector>

#include "compat.hpp"

namespace cxxloop::py {

struct CoreLoop;

// Objects read at import: X(field, module, attribute).
#define CXXLOOP_IMPORTED_OBJECTS(X)                                                      \
    X(HandleBase, "asyncio.events", "Handle")                                            \
    X(TimerHandleBase, "asyncio.events", "TimerHandle")                                  \
    X(ThreadSafeHandleBase, "cxxloop._asyncio_internals", "ThreadSafeHandle")            \
    X(ReadTransportBase, "asyncio.transports", "ReadTransport")                          \
    X(DatagramTransportBase, "asyncio.transports", "DatagramTransport")                  \
    X(futures_dict, "asyncio.futures", "__dict__")                                       \
    X(tasks_dict, "asyncio.tasks", "__dict__")                                           \
    X(iscoroutine, "asyncio.coroutines", "iscoroutine")                                  \
    X(isfuture, "asyncio.futures", "isfuture")                                           \
    X(ensure_future, "asyncio.tasks", "ensure_future")                                   \
    X(extract_stack, "asyncio.format_helpers", "extract_stack")                          \
    X(logger, "asyncio.log", "logger")                                                   \
    X(BufferedProtocol, "asyncio.protocols", "BufferedProtocol")                         \
    X(TransportSocket, "asyncio.trsock", "TransportSocket")                              \
    X(SendfileNotAvailableError, "asyncio.exceptions", "SendfileNotAvailableError")      \
    X(get_asyncgen_hooks, "sys", "get_asyncgen_hooks")                                   \
    X(set_asyncgen_hooks, "sys", "set_asyncgen_hooks")                                   \
    X(socket_type, "socket", "socket")                                                   \
    X(iscoroutinefunction, "cxxloop._asyncio_internals", "iscoroutinefunction")          \
    X(set_running_loop, "cxxloop._asyncio_internals", "set_running_loop")                \
    X(get_running_loop, "cxxloop._asyncio_internals", "get_running_loop")                \
    X(format_callback_source, "cxxloop._asyncio_internals", "format_callback_source")    \
    X(format_handle, "cxxloop._asyncio_internals", "format_handle")                      \
    X(set_nodelay, "cxxloop._asyncio_internals", "set_nodelay")                          \
    X(set_result_unless_cancelled, "cxxloop._asyncio_internals", "set_result_unless_cancelled") \
    X(check_ssl_socket, "cxxloop._asyncio_internals", "check_ssl_socket")                \
    X(FlowControlMixin, "cxxloop._asyncio_internals", "FlowControlMixin")                \
    X(sendfile_try_native, "cxxloop._asyncio_internals", "SENDFILE_TRY_NATIVE")          \
    X(accept_retry_delay, "cxxloop._asyncio_internals", "ACCEPT_RETRY_DELAY")         \
    X(sendfile_fallback, "cxxloop._asyncio_internals", "SENDFILE_FALLBACK")           \
    X(CancelledError, "asyncio.exceptions", "CancelledError")                          \
    X(SSLObject, "cxxloop._asyncio_internals", "SSLObject")                            \
    X(MemoryBIO, "cxxloop._asyncio_internals", "MemoryBIO")                            \
    X(SSLSocketType, "cxxloop._asyncio_internals", "SSLSocketType")                    \
    X(SSLError, "cxxloop._asyncio_internals", "SSLError")                              \
    X(SSLWantReadError, "cxxloop._asyncio_internals", "SSLWantReadError")              \
    X(SSLSyscallError, "cxxloop._asyncio_internals", "SSLSyscallError")                \
    X(CertificateError, "cxxloop._asyncio_internals", "CertificateError")

// Flags of cxxloop._asyncio_internals: X(field, attribute).
#define CXXLOOP_IMPORTED_FLAGS(X)                                       \
    X(create_task_passes_kwargs, "CREATE_TASK_PASSES_KWARGS")           \
    X(server_attach_takes_transport, "SERVER_ATTACH_TAKES_TRANSPORT")   \
    X(format_callback_source_has_debug, "FORMAT_CALLBACK_SOURCE_HAS_DEBUG") \
    X(socket_writelines_joins, "SOCKET_WRITELINES_JOINS")               \
    X(datagram_sends_empty, "DATAGRAM_SENDS_EMPTY")                     \
    X(tls_is_closing_follows_socket, "TLS_IS_CLOSING_FOLLOWS_SOCKET")   \
    X(tls_shutdown_timeout_until_lost, "TLS_SHUTDOWN_TIMEOUT_UNTIL_LOST")

// Sizes from cxxloop._asyncio_internals: X(field, attribute).
#define CXXLOOP_IMPORTED_SIZES(X) X(datagram_header_size, "DATAGRAM_HEADER_SIZE")

// Interned attribute and keyword names: X(field, text). The private ones
// that are asyncio's (methods and attributes of its loop, futures, tasks
// and servers) are listed in cxxloop._asyncio_internals too, where
// tests/test_asyncio_contract.py checks that each still exists.
#define CXXLOOP_INTERNED_NAMES(X)                                        \
    X(context, "context")                                                \
    X(loop, "loop")                                                      \
    X(name, "name")                                                      \
    X(debug, "debug")                                                    \
    X(wait, "wait")                                                      \
    X(message, "message")                                                \
    X(generation, "generation")                                          \
    X(exception, "exception")                                            \
    X(handle, "handle")                                                  \
    X(time, "time")                                                      \
    X(timing, "timing")                                                  \
    X(watch_finished, "_watch_finished")                                 \
    X(run, "_run")                                                       \
    X(Future, "Future")                                                  \
    X(Task, "Task")                                                      \
    X(firstiter, "firstiter")                                            \
    X(finalizer, "finalizer")                                            \
    X(fileno, "fileno")                                                  \
    X(family, "family")                                                  \
    X(type, "type")                                                      \
    X(proto, "proto")                                                    \
    X(errno_, "errno")                                                   \
    X(set_name, "set_name")                                              \
    X(get_loop, "get_loop")                                              \
    X(add_done_callback, "add_done_callback")                            \
    X(remove_done_callback, "remove_done_callback")                      \
    X(done, "done")                                                      \
    X(cancelled, "cancelled")                                            \
    X(result, "result")                                                  \
    X(stop, "stop")                                                      \
    X(shutdown, "shutdown")                                              \
    X(call_later, "call_later")                                          \
    X(call_soon_threadsafe, "call_soon_threadsafe")                      \
    X(call_exception_handler, "call_exception_handler")                  \
    X(data_received, "data_received")                                    \
    X(get_buffer, "get_buffer")                                          \
    X(buffer_updated, "buffer_updated")                                  \
    X(eof_received, "eof_received")                                      \
    X(connection_made, "connection_made")                                \
    X(connection_lost, "connection_lost")                                \
    X(pause_writing, "pause_writing")                                    \
    X(resume_writing, "resume_writing")                                  \
    X(datagram_received, "datagram_received")                            \
    X(error_received, "error_received")                                  \
    X(set_result, "set_result")                                          \
    X(set_exception, "set_exception")                                    \
    X(close, "close")                                                    \
    X(create_future, "create_future")                                    \
    X(getsockname, "getsockname")                                        \
    X(getpeername, "getpeername")                                        \
    X(recv, "recv")                                                      \
    X(recv_into, "recv_into")                                            \
    X(recvfrom, "recvfrom")                                              \
    X(recvfrom_into, "recvfrom_into")                                    \
    X(send, "send")                                                      \
    X(sendto, "sendto")                                                  \
    X(accept, "accept")                                                  \
    X(setblocking, "setblocking")                                        \
    X(gettimeout, "gettimeout")                                          \
    X(asyncio_future_blocking, "_asyncio_future_blocking")               \
    X(log_destroy_pending, "_log_destroy_pending")                       \
    X(ensure_fd_no_transport, "_ensure_fd_no_transport")                 \
    X(call_connection_lost, "_call_connection_lost")                     \
    X(set_coroutine_origin_tracking, "_set_coroutine_origin_tracking")   \
    X(asyncgen_firstiter_hook, "_asyncgen_firstiter_hook")               \
    X(asyncgen_finalizer_hook, "_asyncgen_finalizer_hook")               \
    X(start_accepting, "_start_accepting")                               \
    X(remove_reader_, "_remove_reader")                                  \
    X(attach, "_attach")                                                 \
    X(detach, "_detach")                                                 \
    X(default_executor, "_default_executor")                             \
    X(executor_shutdown_called, "_executor_shutdown_called")             \
    X(do_handshake, "do_handshake")                                      \
    X(unwrap, "unwrap")                                                  \
    X(getpeercert, "getpeercert")                                        \
    X(cipher, "cipher")                                                  \
    X(compression, "compression")                                        \
    X(peercert, "peercert")                                              \
    X(ssl_object, "ssl_object")                                          \
    X(sslcontext, "sslcontext")                                          \
    X(sslobj, "_sslobj")

// Released handles kept for reuse (handle.cpp). Entries have refcount 0,
// are untracked, hold only their reference to their type, and all their
// object fields are null.
struct HandleFreeList {
    static constexpr int kMax = 2048;
    PyObject* items[kMax];
    int count = 0;
};

struct ModuleState {
    // Set when the module's exec slot placement-constructs the state in the
    // zeroed memory CPython allocated; m_free runs the destructor only then.
    bool constructed = true;

    // The module's own types.
    PyTypeObject* handle_type = nullptr;
    PyTypeObject* timer_handle_type = nullptr;
    PyTypeObject* threadsafe_handle_type = nullptr;
    PyTypeObject* loop_type = nullptr;
    PyTypeObject* stream_transport_type = nullptr;
    PyTypeObject* read_pipe_type = nullptr;
    PyTypeObject* write_pipe_type = nullptr;
    PyTypeObject* datagram_type = nullptr;
    PyTypeObject* tls_transport_type = nullptr;
    PyTypeObject* acceptor_type = nullptr;
    PyTypeObject* sock_op_type = nullptr;

#define CXXLOOP_DECLARE(field, ...) PyObject* field = nullptr;
    CXXLOOP_IMPORTED_OBJECTS(CXXLOOP_DECLARE)
#undef CXXLOOP_DECLARE
#define CXXLOOP_DECLARE(field, ...) bool field = false;
    CXXLOOP_IMPORTED_FLAGS(CXXLOOP_DECLARE)
#undef CXXLOOP_DECLARE
#define CXXLOOP_DECLARE(field, ...) size_t field = 0;
    CXXLOOP_IMPORTED_SIZES(CXXLOOP_DECLARE)
#undef CXXLOOP_DECLARE
#define CXXLOOP_DECLARE(field, ...) PyObject* s_##field = nullptr;
    CXXLOOP_INTERNED_NAMES(CXXLOOP_DECLARE)
#undef CXXLOOP_DECLARE

    PyObject* empty_tuple = nullptr;  // ()
    // Prebuilt vectorcall keyword-name tuples.
    PyObject* kw_loop = nullptr;      // ("loop",)
    PyObject* kw_context = nullptr;   // ("context",)
    PyObject* kw_debug = nullptr;     // ("debug",)
    PyObject* kw_wait = nullptr;      // ("wait",)
    PyObject* kw_asyncgen_hooks = nullptr;  // ("firstiter", "finalizer")
    PyObject* run_until_complete_cb = nullptr;  // loop_run.cpp
    PyObject* loop_time_method = nullptr;       // CoreLoop.time, to tell a replaced one

    // _asyncio's TaskStepMethWrapper, once a call_soon has seen it, and the
    // type that test last found not to be one (handle.cpp); the second is
    // only compared, never dereferenced, so it is not a reference.
    PyTypeObject* task_step_type = nullptr;
    PyTypeObject* last_other_type = nullptr;
    // The last uninterned keyword string found equal to an interned name,
    // and that name (pyref.cpp: name_equal).
    PyObject* name_alias = nullptr;
    PyObject* name_alias_of = nullptr;

    HandleFreeList handle_free, timer_free;
    bool free_lists_open = true;     // false once the module is cleared
    std::vector<CoreLoop*> live_loops;  // ready_gc.cpp; guarded by the GIL
};

// The state of the module object `module`.
inline ModuleState* module_state(PyObject* module) noexcept {
    return static_cast<ModuleState*>(PyModule_GetState(module));
}

// The state of the module that created heap type `tp`, or null once the
// type has let go of it (a type's tp_clear during the teardown of a cycle
// through the module). Sets no exception: deallocators call it.
ModuleState* state_of_type(PyTypeObject* tp) noexcept;

// The module definition, for PyType_GetModuleByDef.
extern PyModuleDef core_module_def;

// Fills the state from asyncio and cxxloop._asyncio_internals.
// Returns -1 with an exception set.
int init_module_state(ModuleState* st);
int traverse_module_state(ModuleState* st, visitproc visit, void* arg);
// m_clear: drops what may take part in a reference cycle.
void clear_module_state(ModuleState* st);
// m_free: drops the rest.
void free_module_state(ModuleState* st);

}  // namespace cxxloop::py
