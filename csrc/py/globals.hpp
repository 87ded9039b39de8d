// Objects the extension looks up once at import and keeps for its lifetime.
//
// The module uses single-phase initialisation, so these are process-wide;
// cxxloop does not support subinterpreters.
#pragma once

#include "compat.hpp"

namespace cxxloop::py {

struct Globals {
    // Our types.
    PyTypeObject* Handle;
    PyTypeObject* TimerHandle;
    PyTypeObject* CoreLoop;
    PyTypeObject* StreamTransport;
    PyTypeObject* ReadPipeTransport;
    PyTypeObject* WritePipeTransport;
    PyTypeObject* DatagramTransport;
    // Byte offset of HandleData inside both handle types (see handle.hpp).
    Py_ssize_t handle_data_offset;
    // Byte offset of StreamData inside the four transport types (see
    // stream_transport.hpp).
    Py_ssize_t stream_data_offset;

    // asyncio objects.
    PyObject* Future;                  // asyncio.Future
    PyObject* Task;                    // asyncio.Task
    PyTypeObject* task_step_type;      // _asyncio's TaskStepMethWrapper, once seen (handle.cpp)
    PyObject* set_running_loop;        // asyncio.events._set_running_loop
    PyObject* get_running_loop;        // asyncio.events._get_running_loop
    PyObject* iscoroutine;             // asyncio.coroutines.iscoroutine
    PyObject* iscoroutinefunction;     // asyncio.coroutines.iscoroutinefunction
    PyObject* isfuture;                // asyncio.futures.isfuture
    PyObject* ensure_future;           // asyncio.ensure_future
    PyObject* format_callback_source;  // asyncio.format_helpers._format_callback_source
    PyObject* format_handle;           // asyncio.base_events._format_handle
    PyObject* extract_stack;           // asyncio.format_helpers.extract_stack
    PyObject* logger;                  // asyncio.log.logger
    PyObject* get_asyncgen_hooks;      // sys.get_asyncgen_hooks
    PyObject* set_asyncgen_hooks;      // sys.set_asyncgen_hooks
    PyObject* BufferedProtocol;        // asyncio.BufferedProtocol
    PyObject* TransportSocket;         // asyncio.trsock.TransportSocket
    PyObject* set_nodelay;             // asyncio.base_events._set_nodelay
    PyObject* set_result_unless_cancelled;  // asyncio.futures._set_result_unless_cancelled
    PyObject* SendfileNotAvailableError;    // asyncio.exceptions.SendfileNotAvailableError
    PyObject* check_ssl_socket;             // asyncio.base_events._check_ssl_socket
    PyObject* socket_type;                  // socket.socket
    // True where the running asyncio passes create_task(**kwargs) straight
    // to the task factory (3.13.3+); older releases only know name/context.
    bool create_task_passthrough;

    // Interned names.
    PyObject* s_context;
    PyObject* s_loop;
    PyObject* s_name;
    PyObject* s_debug;
    PyObject* s_message;
    PyObject* s_generation;
    PyObject* s_exception;
    PyObject* s_handle;
    PyObject* s_source_traceback;
    PyObject* s_call_exception_handler;
    PyObject* s_set_coroutine_origin_tracking;
    PyObject* s_asyncgen_firstiter_hook;
    PyObject* s_asyncgen_finalizer_hook;
    PyObject* s_firstiter;
    PyObject* s_finalizer;
    PyObject* s_fileno;
    PyObject* s_set_name;
    PyObject* s_add_done_callback;
    PyObject* s_remove_done_callback;
    PyObject* s_done;
    PyObject* s_cancelled;
    PyObject* s_result;
    PyObject* s_log_destroy_pending;
    PyObject* s_warning;
    PyObject* s_stop;
    PyObject* s_ensure_fd_no_transport;
    PyObject* s_data_received;
    PyObject* s_get_buffer;
    PyObject* s_buffer_updated;
    PyObject* s_eof_received;
    PyObject* s_connection_made;
    PyObject* s_connection_lost;
    PyObject* s_pause_writing;
    PyObject* s_resume_writing;
    PyObject* s_transport;
    PyObject* s_protocol;
    PyObject* s_call_connection_lost;
    PyObject* s_set_result;
    PyObject* s_set_exception;
    PyObject* s_close;
    PyObject* s_get;
    PyObject* s_create_future;
    PyObject* s_recv;
    PyObject* s_recv_into;
    PyObject* s_recvfrom;
    PyObject* s_recvfrom_into;
    PyObject* s_send;
    PyObject* s_sendto;
    PyObject* s_datagram_received;
    PyObject* s_error_received;
    PyObject* s_accept;
    PyObject* s_setblocking;
    PyObject* s_gettimeout;
    PyObject* s_asyncio_future_blocking;

    PyObject* empty_tuple;  // ()

    // Prebuilt vectorcall keyword-name tuples.
    PyObject* kw_loop;     // ("loop",)
    PyObject* kw_context;  // ("context",)
    PyObject* kw_debug;    // ("debug",)
};

extern Globals g;

// Fills g from the asyncio and sys modules. Returns -1 with an exception set.
int init_globals();

}  // namespace cxxloop::py
