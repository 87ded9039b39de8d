#include "globals.hpp"

namespace cxxloop::py {

Globals g;

// _asyncio's Task and Future pass the same uninterned "context" string to
// every call_soon: comparing it in full each time cost about 500
// instructions per task in a gather (of 56,700, callgrind). The last such
// string is remembered (and held, so that its address stays its own); two
// interned names differ in content whenever they differ in address, so it
// can only equal the name it matched.
bool name_equal(PyObject* kwname, PyObject* name) noexcept {
    static PyObject* alias = nullptr;
    static PyObject* alias_of = nullptr;
    if (kwname == alias) return name == alias_of;
    if (PyUnicode_Compare(kwname, name) != 0) return false;
    set_ref(&alias, kwname);
    alias_of = name;
    return true;
}

namespace {

PyObject* attr(const char* module, const char* name) {
    Ref mod = Ref::steal(PyImport_ImportModule(module));
    if (!mod) return nullptr;
    return PyObject_GetAttrString(mod.get(), name);
}

int intern(PyObject** out, const char* s) {
    *out = PyUnicode_InternFromString(s);
    return *out ? 0 : -1;
}

}  // namespace

int init_globals() {
    struct {
        PyObject** out;
        const char* module;
        const char* name;
    } const lookups[] = {
        {&g.Future, "asyncio", "Future"},
        {&g.Task, "asyncio", "Task"},
        {&g.set_running_loop, "asyncio.events", "_set_running_loop"},
        {&g.get_running_loop, "asyncio.events", "_get_running_loop"},
        {&g.iscoroutine, "asyncio.coroutines", "iscoroutine"},
        {&g.iscoroutinefunction, "asyncio.coroutines", "iscoroutinefunction"},
        {&g.isfuture, "asyncio.futures", "isfuture"},
        {&g.ensure_future, "asyncio", "ensure_future"},
        {&g.format_callback_source, "asyncio.format_helpers", "_format_callback_source"},
        {&g.format_handle, "asyncio.base_events", "_format_handle"},
        {&g.extract_stack, "asyncio.format_helpers", "extract_stack"},
        {&g.logger, "asyncio.log", "logger"},
        {&g.get_asyncgen_hooks, "sys", "get_asyncgen_hooks"},
        {&g.set_asyncgen_hooks, "sys", "set_asyncgen_hooks"},
        {&g.BufferedProtocol, "asyncio.protocols", "BufferedProtocol"},
        {&g.TransportSocket, "asyncio.trsock", "TransportSocket"},
        {&g.set_nodelay, "asyncio.base_events", "_set_nodelay"},
        {&g.set_result_unless_cancelled, "asyncio.futures", "_set_result_unless_cancelled"},
        {&g.SendfileNotAvailableError, "asyncio.exceptions", "SendfileNotAvailableError"},
        {&g.check_ssl_socket, "asyncio.base_events", "_check_ssl_socket"},
        {&g.socket_type, "socket", "socket"},
    };
    for (const auto& l : lookups) {
        if (!(*l.out = attr(l.module, l.name))) return -1;
    }

    Ref create_task = Ref::steal(attr("asyncio.base_events", "BaseEventLoop"));
    if (!create_task) return -1;
    create_task = Ref::steal(PyObject_GetAttrString(create_task.get(), "create_task"));
    if (!create_task) return -1;
    Ref code = Ref::steal(PyObject_GetAttrString(create_task.get(), "__code__"));
    if (!code) return -1;
    g.create_task_passthrough = (reinterpret_cast<PyCodeObject*>(code.get())->co_flags & CO_VARKEYWORDS) != 0;

    struct {
        PyObject** out;
        const char* s;
    } const names[] = {
        {&g.s_context, "context"},
        {&g.s_loop, "loop"},
        {&g.s_name, "name"},
        {&g.s_debug, "debug"},
        {&g.s_message, "message"},
        {&g.s_generation, "generation"},
        {&g.s_exception, "exception"},
        {&g.s_handle, "handle"},
        {&g.s_source_traceback, "_source_traceback"},
        {&g.s_call_exception_handler, "call_exception_handler"},
        {&g.s_set_coroutine_origin_tracking, "_set_coroutine_origin_tracking"},
        {&g.s_asyncgen_firstiter_hook, "_asyncgen_firstiter_hook"},
        {&g.s_asyncgen_finalizer_hook, "_asyncgen_finalizer_hook"},
        {&g.s_firstiter, "firstiter"},
        {&g.s_finalizer, "finalizer"},
        {&g.s_fileno, "fileno"},
        {&g.s_set_name, "set_name"},
        {&g.s_add_done_callback, "add_done_callback"},
        {&g.s_remove_done_callback, "remove_done_callback"},
        {&g.s_done, "done"},
        {&g.s_cancelled, "cancelled"},
        {&g.s_result, "result"},
        {&g.s_log_destroy_pending, "_log_destroy_pending"},
        {&g.s_warning, "warning"},
        {&g.s_stop, "stop"},
        {&g.s_ensure_fd_no_transport, "_ensure_fd_no_transport"},
        {&g.s_data_received, "data_received"},
        {&g.s_get_buffer, "get_buffer"},
        {&g.s_buffer_updated, "buffer_updated"},
        {&g.s_eof_received, "eof_received"},
        {&g.s_connection_made, "connection_made"},
        {&g.s_connection_lost, "connection_lost"},
        {&g.s_pause_writing, "pause_writing"},
        {&g.s_resume_writing, "resume_writing"},
        {&g.s_transport, "transport"},
        {&g.s_protocol, "protocol"},
        {&g.s_call_connection_lost, "_call_connection_lost"},
        {&g.s_set_result, "set_result"},
        {&g.s_set_exception, "set_exception"},
        {&g.s_close, "close"},
        {&g.s_get, "get"},
        {&g.s_create_future, "create_future"},
        {&g.s_recv, "recv"},
        {&g.s_recv_into, "recv_into"},
        {&g.s_recvfrom, "recvfrom"},
        {&g.s_recvfrom_into, "recvfrom_into"},
        {&g.s_send, "send"},
        {&g.s_sendto, "sendto"},
        {&g.s_datagram_received, "datagram_received"},
        {&g.s_error_received, "error_received"},
        {&g.s_accept, "accept"},
        {&g.s_setblocking, "setblocking"},
        {&g.s_gettimeout, "gettimeout"},
        {&g.s_asyncio_future_blocking, "_asyncio_future_blocking"},
    };
    for (const auto& n : names) {
        if (intern(n.out, n.s) < 0) return -1;
    }
    if (!(g.empty_tuple = PyTuple_New(0))) return -1;
    if (!(g.kw_loop = PyTuple_Pack(1, g.s_loop))) return -1;
    if (!(g.kw_context = PyTuple_Pack(1, g.s_context))) return -1;
    if (!(g.kw_debug = PyTuple_Pack(1, g.s_debug))) return -1;
    return 0;
}

}  // namespace cxxloop::py
