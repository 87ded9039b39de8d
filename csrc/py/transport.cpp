// Transport: what all the loop's transports share, in the order and with
// the messages of asyncio's _SelectorTransport: registration in the loop,
// the dispatch of poller events, close / abort / fatal errors,
// connection_lost, and the Python type's slots and common methods.
#include "transport.hpp"

#include <cerrno>
#include <cstddef>
#include <utility>

#include <structmember.h>

#include "handle.hpp"
#include "methods.hpp"

namespace cxxloop::py {

bool must_propagate() {
    return PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
}

int sock_fileno(ModuleState* st, PyObject* sock) {
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(sock, st->s_fileno));
    if (!r) return -1;
    long fd = PyLong_AsLong(r.get());
    if (fd == -1 && PyErr_Occurred()) return -1;
    if (fd < 0 || fd > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %ld", fd);
        return -1;
    }
    return int(fd);
}

namespace {

// extra[key] = sock.<method>(), or None if the socket refuses (OSError).
int store_address(PyObject* extra, const char* key, PyObject* sock, PyObject* method) {
    Ref addr = Ref::steal(PyObject_CallMethodNoArgs(sock, method));
    if (!addr) {
        if (!PyErr_ExceptionMatches(PyExc_OSError)) return -1;
        PyErr_Clear();
        addr = Ref::borrow(Py_None);
    }
    return PyMapping_SetItemString(extra, key, addr.get());
}

// server._attach(transport) / _detach(transport): `method` is one of the
// two names; the transport is passed where asyncio's Server takes it.
int notify_server(ModuleState* st, PyObject* server, PyObject* method, PyObject* t) {
    PyObject* args[] = {server, t};
    size_t nargs = st->server_attach_takes_transport ? 2 : 1;
    Ref r = Ref::steal(PyObject_VectorcallMethod(method, args, nargs | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    return r ? 0 : -1;
}

// A forked child shares the parent's epoll instance; it must not touch it.
bool poller_usable(CoreLoop* loop) { return loop->s.poller && !inherited_across_fork(loop); }

}  // namespace

int fill_socket_extra(ModuleState* st, PyObject* extra, PyObject* sock) {
    Ref trsock = Ref::steal(PyObject_CallOneArg(st->TransportSocket, sock));
    if (!trsock || PyMapping_SetItemString(extra, "socket", trsock.get()) < 0) return -1;
    if (store_address(extra, "sockname", sock, st->s_getsockname) < 0) return -1;
    int has_peer = PyMapping_HasKeyString(extra, "peername");
    return has_peer ? 0 : store_address(extra, "peername", sock, st->s_getpeername);
}

int check_context_arg(PyObject* context) {
    if (context == Py_None || PyContext_CheckExact(context)) return 0;
    PyErr_Format(PyExc_TypeError, "context must be a contextvars.Context, not %.200s", Py_TYPE(context)->tp_name);
    return -1;
}

Transport::Transport(CoreLoop* loop_, int fd_, PyObject* context_, bool schedule_in_context_)
    : loop(Py_NewRef(reinterpret_cast<PyObject*>(loop_))),
      context(Py_NewRef(context_)),
      fd(fd_),
      schedule_in_context(schedule_in_context_) {}

bool Transport::is_quiet_error(PyObject* exc) const {
    // asyncio logs a transport's OSError only in debug mode: peers reset
    // connections all the time.
    return PyErr_GivenExceptionMatches(exc, PyExc_OSError);
}

int Transport::set_protocol(PyObject* protocol_) {
    set_ref(&protocol, protocol_);
    return 0;
}

int Transport::schedule_started(PyObject* waiter) {
    ModuleState* st = state();
    PyObject* t = object();
    Ref made = Ref::steal(PyObject_GetAttr(protocol, st->s_connection_made));
    if (!made || call_soon(made.get(), {t}) < 0) return -1;
    return waiter == Py_None ? 0 : call_soon(st->set_result_unless_cancelled, {waiter, Py_None});
}

int Transport::check_protocol(PyObject* protocol_) {
    // A protocol factory that returned something without connection_made
    // (or None) fails here, before the fd or the server is taken.
    Ref made = Ref::steal(PyObject_GetAttr(protocol_, state()->s_connection_made));
    return made ? 0 : -1;
}

int Transport::start(PyObject* sock_, PyObject* protocol_, PyObject* waiter, PyObject* extra_, PyObject* server_) {
    CoreLoop* core = core_loop();
    ModuleState* st = state();
    PyObject* t = object();
    extra = Py_NewRef(extra_);
    if (set_protocol(protocol_) < 0 || check_protocol(protocol_) < 0) return -1;
    FdWatch* w = fd_watch(core, fd);
    if (!w) return -1;
    if (w->transport) {
        PyErr_Format(PyExc_RuntimeError, "File descriptor %d is used by transport %R", fd, w->transport);
        return -1;
    }
    // add_reader/add_writer watches on the fd give way to the transport, as
    // asyncio's transport replaces them when it starts reading.
    drop_fd_watches(core, fd);
    int err = core->s.poller->add(fd, kReadable | kWritable, uint64_t(fd), true);
    if (err < 0) {
        errno = -err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    core->s.fds[size_t(fd)].transport = Py_NewRef(t);
    registered = true;
    if (server_ != Py_None) {
        if (notify_server(st, server_, st->s_attach, t) < 0) {
            unregister();
            return -1;
        }
        server = Py_NewRef(server_);
    }
    if (schedule_started(waiter) < 0) {
        // Scheduling failed (MemoryError): the transport gives everything
        // back, and the caller still owns the socket.
        Ref pending_exc = Ref::steal(PyErr_GetRaisedException());
        unregister();
        if (detach_from_server() < 0) PyErr_WriteUnraisable(t);
        PyErr_SetRaisedException(pending_exc.release());
        return -1;
    }
    sock = Py_NewRef(sock_);
    return 0;
}

int Transport::detach_from_server() {
    Ref srv = Ref::steal(std::exchange(server, nullptr));
    Ref known_as = Ref::steal(std::exchange(attached_as, nullptr));
    if (!srv) return 0;
    return notify_server(state(), srv.get(), state()->s_detach, known_as ? known_as.get() : object());
}

void Transport::pass_socket_to(Transport* to) {
    PyObject* t = object();
    PyObject*& slot = core_loop()->s.fds[size_t(fd)].transport;
    PyObject* mine = std::exchange(slot, Py_NewRef(to->object()));
    to->registered = std::exchange(registered, false);
    to->sock = std::exchange(sock, nullptr);
    to->server = std::exchange(server, nullptr);
    if (to->server) to->attached_as = Py_NewRef(attached_as ? attached_as : t);
    Py_CLEAR(attached_as);
    successor = Py_NewRef(to->object());
    closing = true;
    conn_lost = 1;  // writes are dropped, as after connection_lost
    Py_DECREF(mine);  // the caller holds another reference to this one
}

void Transport::unregister() {
    if (!std::exchange(registered, false)) return;
    CoreLoop* core = core_loop();
    if (poller_usable(core)) core->s.poller->remove(fd);
    auto& fds = core->s.fds;
    if (size_t(fd) < fds.size() && fds[size_t(fd)].transport == object()) {
        PyObject* t = std::exchange(fds[size_t(fd)].transport, nullptr);
        Py_DECREF(t);
    }
}

int Transport::schedule(uint32_t events) {
    pending |= events;
    if (queued) return 0;
    if (push_ready(core_loop(), object()) < 0) return -1;
    queued = true;
    return 0;
}

int Transport::dispatch() {
    queued = false;
    uint32_t events = std::exchange(pending, 0u);
    // Events that came before the socket changed hands (start_tls) are
    // the new transport's.
    if (successor) return events ? transport_of(successor)->schedule(events) : 0;
    // The I/O runs in the transport's context, as asyncio runs its reader
    // and writer handles in theirs: what the protocol's callbacks set there
    // stays with this connection, and what they schedule copies it. Entering
    // fails only if the context is already entered further up this thread.
    // Held here: connection_lost may let go of the transport's reference.
    Ref entered_context = Ref::borrow(context);
    bool entered = entered_context && PyContext_Enter(entered_context.get()) == 0;
    if (entered_context && !entered) PyErr_Clear();
    int rc = on_events(events);
    Ref exc = Ref::steal(PyErr_GetRaisedException());
    if (entered) PyContext_Exit(entered_context.get());
    if (rc < 0 && registered && !conn_lost) {
        // A BaseException out of a protocol callback unwinds the loop. The
        // edge-triggered fd will not report again what was left unread or
        // unsent, so the events are retried next iteration, as a
        // level-triggered watch would fire again.
        if (events & kReadable) read_unconfirmed = true;
        if (schedule(events) < 0) PyErr_WriteUnraisable(object());
    }
    PyErr_SetRaisedException(exc.release());
    return rc;
}

namespace {

// In `context`, or in a copy of the current one if it is null.
int call_soon_in(Transport& t, PyObject* context, PyObject* callback, std::initializer_list<PyObject*> args) {
    CoreLoop* core = t.core_loop();
    // Raises if the loop is closed, as asyncio's transports do when used
    // after loop.close().
    if (check_closed(core) < 0) return -1;
    Ref h = Ref::steal(soon_handle_new(core, t.state()->handle_type, callback, std::data(args), Py_ssize_t(args.size()),
                                       context));
    return h ? push_ready(core, h.get()) : -1;
}

}  // namespace

int Transport::call_soon(PyObject* callback, std::initializer_list<PyObject*> args) {
    return call_soon_in(*this, schedule_in_context ? context : nullptr, callback, args);
}

int Transport::call_soon_current(PyObject* callback, std::initializer_list<PyObject*> args) {
    return call_soon_in(*this, nullptr, callback, args);
}

int Transport::schedule_connection_lost(PyObject* exc) {
    Ref cb = Ref::steal(PyObject_GetAttr(object(), state()->s_call_connection_lost));
    return cb ? call_soon(cb.get(), {exc}) : -1;
}

int Transport::report(const char* message, PyObject* exc) {
    Ref ctx = Ref::steal(Py_BuildValue("{sssOsOsO}", "message", message, "exception", exc, "transport", object(),
                                       "protocol", protocol ? protocol : Py_None));
    if (!ctx) return -1;
    Ref r = Ref::steal(PyObject_CallMethodOneArg(loop, state()->s_call_exception_handler, ctx.get()));
    return r ? 0 : -1;
}

int Transport::report_raised(const char* message) {
    if (must_propagate()) return -1;
    Ref exc = Ref::steal(PyErr_GetRaisedException());
    return report(message, exc.get());
}

int Transport::call_protocol(PyObject* method, std::initializer_list<PyObject*> args, const char* message) {
    PyObject* argv[4] = {protocol};
    size_t n = 1;
    for (PyObject* a : args) argv[n++] = a;
    Ref r = Ref::steal(PyObject_VectorcallMethod(method, argv, n | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    if (r) return 0;
    return must_propagate() ? -1 : fatal_error(message);
}

int Transport::force_close(PyObject* exc) {
    if (conn_lost) return 0;
    closing = true;
    conn_lost++;
    if (drop_queued_writes(exc) < 0) return -1;
    return schedule_connection_lost(exc);
}

int Transport::fatal_error(const char* message) {
    Ref exc = Ref::steal(PyErr_GetRaisedException());
    if (is_quiet_error(exc.get())) {
        if (core_loop()->s.debug) {
            ModuleState* st = state();
            Ref kw = Ref::steal(Py_BuildValue("{sO}", "exc_info", exc.get()));
            Ref debug = Ref::steal(PyObject_GetAttr(st->logger, st->s_debug));
            Ref args = Ref::steal(Py_BuildValue("(sOs)", "%r: %s", object(), message));
            if (!kw || !debug || !args) return -1;
            Ref r = Ref::steal(PyObject_Call(debug.get(), args.get(), kw.get()));
            if (!r) return -1;
        }
    } else if (report(message, exc.get()) < 0) {
        return -1;
    }
    return force_close(exc.get());
}

int Transport::close() {
    if (closing) return 0;
    closing = true;
    // The last flush (or the end of a sendfile) calls connection_lost.
    if (has_queued_writes()) return 0;
    conn_lost++;
    return schedule_connection_lost(Py_None);
}

int Transport::protocol_connection_lost(PyObject* exc) {
    if (!protocol) return 0;
    Ref r = Ref::steal(PyObject_CallMethodOneArg(protocol, state()->s_connection_lost, exc));
    return r ? 0 : -1;
}

int Transport::connection_lost(PyObject* exc) {
    if (!sock) return 0;
    PyObject* t = object();
    Ref keep = Ref::borrow(t);  // the fd table's reference goes below
    ModuleState* st = state();
    protocol_connection_lost(exc);
    Ref pending_exc = Ref::steal(PyErr_GetRaisedException());
    // asyncio's `finally:` the transport lets go of its fd, socket,
    // protocol and server whatever connection_lost did.
    unregister();
    Py_CLEAR(protocol);
    // asyncio's transports before 3.15 hold no context: the connection's
    // goes with their reader and writer handles. From 3.15 they keep the
    // one they were given (schedule_in_context) for as long as they live.
    if (!schedule_in_context) Py_CLEAR(context);
    Ref s = Ref::steal(std::exchange(sock, nullptr));
    int rc = Ref::steal(PyObject_CallMethodNoArgs(s.get(), st->s_close)) ? 0 : -1;
    if (rc == 0) {
        rc = detach_from_server();
    } else {
        Py_CLEAR(server);
        Py_CLEAR(attached_as);
    }
    if (pending_exc) {
        if (rc < 0) PyErr_WriteUnraisable(t);
        PyErr_SetRaisedException(pending_exc.release());
        return -1;
    }
    return rc;
}

int Transport::check_can_wait_for_writable() { return check_closed(core_loop()); }

int Transport::drop_after_lost() {
    // asyncio's constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES.
    constexpr int kLogThreshold = 5;
    if (!conn_lost) return 0;
    if (conn_lost >= kLogThreshold) {
        Ref r = Ref::steal(PyObject_CallMethod(state()->logger, "warning", "s", "socket.send() raised exception."));
        if (!r) return -1;
    }
    conn_lost++;
    return 0;
}

int Transport::traverse(visitproc visit, void* arg) const {
    Py_VISIT(loop);
    Py_VISIT(sock);
    Py_VISIT(protocol);
    Py_VISIT(server);
    Py_VISIT(attached_as);
    Py_VISIT(successor);
    Py_VISIT(extra);
    Py_VISIT(context);
    Py_VISIT(high_water_obj);
    Py_VISIT(low_water_obj);
    return traverse_kind(visit, arg);
}

void Transport::clear() {
    clear_kind();
    Py_CLEAR(protocol);
    Py_CLEAR(server);
    Py_CLEAR(attached_as);
    Py_CLEAR(successor);
    Py_CLEAR(extra);
    Py_CLEAR(context);
    Py_CLEAR(high_water_obj);
    Py_CLEAR(low_water_obj);
    Py_CLEAR(sock);
    // The loop goes last and only when unregistered: unregister() needs it.
    if (!registered) Py_CLEAR(loop);
}

namespace {

// ---- the type's slots ----

// The selector transport's __del__: an unclosed transport warns and closes
// its socket. A registered transport is owned by the loop's fd table, so
// this only runs for one the loop already let go of (loop closed).
void finalize_transport(PyObject* t) {
    Transport* tr = transport_of(t);
    if (!tr->sock) return;
    Ref pending_exc = Ref::steal(PyErr_GetRaisedException());
    if (PyErr_ResourceWarning(t, 1, "unclosed transport %R", t) < 0) PyErr_WriteUnraisable(t);
    ModuleState* st = tr->state();
    Ref s = Ref::steal(std::exchange(tr->sock, nullptr));
    if (!Ref::steal(PyObject_CallMethodNoArgs(s.get(), st->s_close))) PyErr_WriteUnraisable(t);
    if (tr->detach_from_server() < 0) PyErr_WriteUnraisable(t);
    PyErr_SetRaisedException(pending_exc.release());
}

int traverse_transport(PyObject* t, visitproc visit, void* arg) {
    Py_VISIT(Py_TYPE(t));
    Py_VISIT(*transport_dict_slot(t));
    return transport_of(t)->traverse(visit, arg);
}

int clear_transport(PyObject* t) {
    Py_CLEAR(*transport_dict_slot(t));
    transport_of(t)->clear();
    return 0;
}

void dealloc_transport(PyObject* t) {
    PyTypeObject* tp = Py_TYPE(t);
    if (PyObject_CallFinalizerFromDealloc(t) < 0) return;  // resurrected
    PyObject_GC_UnTrack(t);
    Transport* tr = transport_of(t);
    if (*reinterpret_cast<PyObject**>(reinterpret_cast<char*>(t) + layout.transport_weaklist)) {
        PyObject_ClearWeakRefs(t);
    }
    clear_transport(t);
    Py_CLEAR(tr->loop);
    tr->~Transport();
    tp->tp_free(t);
    Py_DECREF(tp);
}

// ---- methods every transport has ----

// The transport that holds the connection now: after start_tls, the TLS
// transport that took the socket over, whose socket-level close() and
// abort() these are, as for asyncio's transport under its TLS one.
Transport* connection_of(PyObject* t) {
    Transport* tr = transport_of(t);
    return tr->successor ? transport_of(tr->successor) : tr;
}

PyObject* close_method(PyObject* t, PyObject*) {
    if (connection_of(t)->close() < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* abort_method(PyObject* t, PyObject*) {
    if (connection_of(t)->force_close(Py_None) < 0) return nullptr;
    Py_RETURN_NONE;
}

// asyncio's _force_close(exc), which sslproto calls on its transport.
PyObject* force_close_method(PyObject* t, PyObject* exc) {
    if (connection_of(t)->force_close(exc) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* call_connection_lost_method(PyObject* t, PyObject* exc) {
    if (transport_of(t)->connection_lost(exc) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* is_closing_method(PyObject* t, PyObject*) { return PyBool_FromLong(connection_of(t)->closing); }

PyObject* set_protocol_method(PyObject* t, PyObject* protocol) {
    if (transport_of(t)->set_protocol(protocol) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* get_protocol_method(PyObject* t, PyObject*) {
    PyObject* p = transport_of(t)->protocol;
    return Py_NewRef(p ? p : Py_None);
}

PyObject* or_none(PyObject* o) { return Py_NewRef(o ? o : Py_None); }

PyObject* get_loop(PyObject* t, void*) {
    Transport* tr = transport_of(t);
    return or_none(tr->sock ? tr->loop : nullptr);
}
PyObject* get_sock(PyObject* t, void*) { return or_none(transport_of(t)->sock); }
PyObject* get_sock_fd(PyObject* t, void*) { return PyLong_FromLong(transport_of(t)->fd); }
PyObject* get_extra(PyObject* t, void*) { return or_none(transport_of(t)->extra); }
PyObject* get_server(PyObject* t, void*) { return or_none(transport_of(t)->server); }
PyObject* get_context(PyObject* t, void*) { return or_none(transport_of(t)->context); }
PyObject* get_closing(PyObject* t, void*) { return PyBool_FromLong(transport_of(t)->closing); }
PyObject* get_conn_lost(PyObject* t, void*) { return PyLong_FromLong(transport_of(t)->conn_lost); }

// Concatenates null-terminated tables (methods or getsets) into one.
const char* entry_name(const PyMethodDef& m) { return m.ml_name; }
const char* entry_name(const PyGetSetDef& gs) { return gs.name; }

template <class T>
std::vector<T> join(std::initializer_list<const T*> tables) {
    std::vector<T> out;
    for (const T* table : tables) {
        for (const T* e = table; entry_name(*e); ++e) out.push_back(*e);
    }
    out.push_back(T{});
    return out;
}

}  // namespace

int log_transport_debug(Transport* tr, const char* format) {
    if (!tr->core_loop()->s.debug) return 0;
    Ref r = Ref::steal(PyObject_CallMethod(tr->state()->logger, "debug", "sO", format, tr->object()));
    return r ? 0 : -1;
}

int Transport::pause_reading() {
    if (closing || paused) return 0;
    paused = true;
    return log_transport_debug(this, "%r pauses reading");
}

// The fd stays registered while paused, but an edge that arrived meanwhile
// was dropped; so resuming always tries one read, which costs a single
// EAGAIN when nothing is waiting.
int Transport::resume_reading() {
    if (closing || !paused) return 0;
    paused = false;
    read_unconfirmed = true;
    if (schedule(kReadable) < 0) return -1;
    return log_transport_debug(this, "%r resumes reading");
}

namespace {

PyObject* is_reading_method(PyObject* t, PyObject*) { return PyBool_FromLong(transport_of(t)->is_reading()); }

PyObject* pause_reading_method(PyObject* t, PyObject*) {
    if (transport_of(t)->pause_reading() < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* resume_reading_method(PyObject* t, PyObject*) {
    if (transport_of(t)->resume_reading() < 0) return nullptr;
    Py_RETURN_NONE;
}

}  // namespace

const PyMethodDef transport_reading_methods[] = {
    method_noargs<is_reading_method>("is_reading", "Return True if the transport is receiving."),
    method_noargs<pause_reading_method>("pause_reading", "Stop passing received data to the protocol until resumed."),
    method_noargs<resume_reading_method>("resume_reading", "Resume receiving."),
    kMethodsEnd,
};

// get_extra_info is not here: it is asyncio's BaseTransport method, reading
// _extra, so a program that patches asyncio.BaseTransport.get_extra_info
// reaches these transports as it reaches asyncio's.
const PyMethodDef transport_close_methods[] = {
    method_noargs<close_method>("close", "Close after flushing buffered data; connection_lost(None) follows."),
    method_noargs<is_closing_method>("is_closing", "Return True once close() or abort() was called."),
    method_o<force_close_method>("_force_close", nullptr),
    kMethodsEnd,
};

// Apart: asyncio's read pipe transport, a ReadTransport, has no abort().
const PyMethodDef transport_abort_methods[] = {
    method_noargs<abort_method>("abort", "Close now, dropping buffered data; connection_lost(None) follows."),
    kMethodsEnd,
};

const PyMethodDef transport_protocol_methods[] = {
    method_o<set_protocol_method>("set_protocol", "Replace the protocol."),
    method_noargs<get_protocol_method>("get_protocol", "Return the protocol."),
    method_o<call_connection_lost_method>("_call_connection_lost", nullptr),
    kMethodsEnd,
};

const PyGetSetDef transport_getsets[] = {
    {"_loop", get_loop, nullptr, nullptr, nullptr},
    {"_sock", get_sock, nullptr, nullptr, nullptr},
    {"_sock_fd", get_sock_fd, nullptr, nullptr, nullptr},
    {"_extra", get_extra, nullptr, nullptr, nullptr},
    {"_server", get_server, nullptr, nullptr, nullptr},
    {"_context", get_context, nullptr, nullptr, nullptr},
    {"_closing", get_closing, nullptr, nullptr, nullptr},
    {"_conn_lost", get_conn_lost, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

TransportTables::TransportTables(std::initializer_list<const PyMethodDef*> method_tables,
                                 std::initializer_list<const PyGetSetDef*> getset_tables)
    : methods(join<PyMethodDef>(method_tables)), getsets(join<PyGetSetDef>(getset_tables)) {}

PyTypeObject* make_transport_type(PyObject* module, const char* name, const char* doc, PyObject* bases,
                                  size_t kind_size, const TransportTables& tables, void* repr) {
    // __weaklistoffset__ and __dictoffset__, once: the offsets are layout
    // constants, the same for every transport type and every import.
    static PyMemberDef* members = [] {
        static PyMemberDef defs[] = {
            {"__weaklistoffset__", T_PYSSIZET, layout.transport_weaklist, READONLY, nullptr},
            {"__dictoffset__", T_PYSSIZET, layout.transport_dict, READONLY, nullptr},
            {nullptr, 0, 0, 0, nullptr},
        };
        return defs;
    }();
    PyType_Slot slots[] = {
        {Py_tp_dealloc, reinterpret_cast<void*>(dealloc_transport)},
        {Py_tp_finalize, reinterpret_cast<void*>(finalize_transport)},
        {Py_tp_traverse, reinterpret_cast<void*>(traverse_transport)},
        {Py_tp_clear, reinterpret_cast<void*>(clear_transport)},
        {Py_tp_repr, repr},
        {Py_tp_methods, const_cast<PyMethodDef*>(tables.methods.data())},
        {Py_tp_getset, const_cast<PyGetSetDef*>(tables.getsets.data())},
        {Py_tp_members, members},
        {Py_tp_doc, const_cast<char*>(doc)},
        {0, nullptr},
    };
    PyType_Spec spec = {
        name,
        int(layout.transport_data + Py_ssize_t(kind_size)),
        0,
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
        slots,
    };
    return reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &spec, bases));
}

}  // namespace cxxloop::py
