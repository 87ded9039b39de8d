// The transport family: what every transport the loop owns shares, as
// asyncio's _SelectorTransport is the base of its socket, datagram and
// pipe transports, and uvloop's UVBaseTransport of its handles.
//
//   Transport                      transport.cpp: registration, dispatch,
//   |                              closing, connection_lost, errors
//   +- ByteStreamTransport         byte_stream_*.cpp: reads and writes of a
//   |  |                           byte stream (sockets, pipes, ttys)
//   |  +- StreamTransport          stream_transport.cpp: TCP / Unix sockets
//   |  +- ReadPipeTransport        pipe_transport.cpp
//   |  +- WritePipeTransport       pipe_transport.cpp
//   +- DatagramTransport           datagram_transport.cpp
//
// Each class is a Python type whose base is the asyncio class it stands
// for (so isinstance(t, asyncio.Transport) holds). The C++ object lives in
// the Python object's memory, at layout.transport_data, after the slots of
// the asyncio base and the weak-reference and __dict__ slots (asyncio's
// transports take attributes); the virtual functions are the per-kind
// table of operations. Getsets named like asyncio's attributes (_loop, _sock,
// _protocol_paused, ...) shadow the unused base slots.
//
// The fd is registered once, edge-triggered for both directions. The poller
// marks events in `pending` and puts the transport itself on the loop's
// ready ring (at most once); run_once then calls dispatch(), which handles
// them where asyncio would have run the selector's reader and writer
// callbacks, in the transport's contextvars.Context.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <vector>

#include "layout.hpp"
#include "loop.hpp"

namespace cxxloop::py {

class Transport {
public:
    Transport(CoreLoop* loop, int fd, PyObject* context, bool schedule_in_context);
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;
    virtual ~Transport() = default;

    // The Python object this transport is the C++ part of.
    PyObject* object() noexcept {
        return reinterpret_cast<PyObject*>(reinterpret_cast<char*>(this) - layout.transport_data);
    }
    CoreLoop* core_loop() const noexcept { return reinterpret_cast<CoreLoop*>(loop); }
    ModuleState* state() const noexcept { return core_loop()->s.st; }

    // ---- what each kind defines ----

    // Handles the poller's `events` (and retries the kind scheduled itself).
    // Runs in the transport's context. -1 only for exceptions that must
    // unwind the loop (SystemExit, KeyboardInterrupt, a failing handler).
    virtual int on_events(uint32_t events) = 0;
    // Data queued for the kernel: close() waits for it before connection_lost.
    virtual bool has_queued_writes() const { return false; }
    // What get_write_buffer_size() reports and flow control compares.
    virtual size_t write_buffer_size() const { return 0; }
    // The high water mark set_write_buffer_limits() derives from when given
    // neither bound: asyncio's 64 KiB (512 KiB over TLS).
    virtual size_t default_high_water() const { return 64 * 1024; }
    // Whether the buffer is over the high water mark: asyncio's transports
    // pause the protocol above it, its TLS transport at it.
    virtual bool over_high_water() const { return write_buffer_size() > high_water; }
    // After set_write_buffer_limits(): asyncio's transports may pause the
    // protocol, its TLS transport may also resume it.
    virtual int after_write_limits_changed() { return maybe_pause_protocol(); }
    // force_close drops what is queued; `exc` ends a running sendfile.
    virtual int drop_queued_writes(PyObject* exc) {
        (void)exc;
        return 0;
    }
    // An exception of a fatal error that asyncio only logs in debug mode.
    virtual bool is_quiet_error(PyObject* exc) const;
    // The Python references the kind holds beyond the base's.
    virtual int traverse_kind(visitproc visit, void* arg) const {
        (void)visit;
        (void)arg;
        return 0;
    }
    virtual void clear_kind() {}
    // What start() checks of the protocol before it takes anything.
    virtual int check_protocol(PyObject* protocol);
    // What start() schedules once registered: connection_made, and the
    // waiter's result.
    virtual int schedule_started(PyObject* waiter);
    // connection_lost(exc) to the protocol, when the transport lets go of
    // its socket.
    virtual int protocol_connection_lost(PyObject* exc);

    // ---- asyncio's _SelectorTransport ----

    // Takes the fd into the poller and the loop's fd table, taking it over
    // from add_reader/add_writer watches as asyncio's transports do. Then
    // the rest of asyncio's start: server._attach(), connection_made and
    // the waiter's result scheduled. On failure the transport owns nothing:
    // the caller still owns `sock`.
    int start(PyObject* sock, PyObject* protocol, PyObject* waiter, PyObject* extra, PyObject* server);
    // Takes the fd out of the poller and the loop's fd table.
    void unregister();
    // start_tls: `to`, a transport over the same socket, takes this one's
    // place in the poller and the fd table, and its socket and server.
    // This one is left closed, passing close() and abort() on to `to`,
    // which is the underlying connection now, as asyncio's transport
    // under a TLS one is.
    void pass_socket_to(Transport* to);
    // server._detach() for this connection, once; -1 if it raised.
    int detach_from_server();
    // Records `events` and queues the transport on the ready ring.
    int schedule(uint32_t events);
    // run_once: the events recorded since the last dispatch, in the context.
    int dispatch();

    // close(), abort() and _force_close(exc).
    int close();
    int force_close(PyObject* exc);
    // _fatal_error: report (OSErrors only in debug mode), then force_close.
    // Consumes the raised exception.
    int fatal_error(const char* message);
    // Runs protocol.connection_lost(exc) and lets go of the socket.
    int connection_lost(PyObject* exc);
    int schedule_connection_lost(PyObject* exc);
    // loop.call_soon(callback, *args) in the context asyncio's socket
    // transport would use: its own if it was given one, else the current one.
    int call_soon(PyObject* callback, std::initializer_list<PyObject*> args);
    // loop.call_soon(callback, *args) as a protocol calls it (sslproto's
    // SSLProtocol does): in a copy of the current context.
    int call_soon_current(PyObject* callback, std::initializer_list<PyObject*> args);

    // The protocol's callbacks, with asyncio's reaction to a failure: a
    // fatal error with `message`. -1 only when the loop must unwind.
    int call_protocol(PyObject* method, std::initializer_list<PyObject*> args, const char* message);
    // For an exception from a protocol callback that does not end the
    // transport: -1 if it must unwind the loop, else it goes to the loop's
    // exception handler with `message` and 0 is returned.
    int report_raised(const char* message);
    int report(const char* message, PyObject* exc);

    // Flow control: asyncio's _maybe_pause_protocol / _maybe_resume_protocol.
    int maybe_pause_protocol();
    int maybe_resume_protocol();
    // asyncio's _add_writer where a write has to wait: RuntimeError once
    // the loop is closed, as it refuses new watches then.
    int check_can_wait_for_writable();
    // Writes after connection_lost are dropped, with asyncio's warning once
    // they keep coming.
    int drop_after_lost();

    virtual int set_protocol(PyObject* protocol);

    // ---- reading, for the kinds that read from the poller's reports ----
    bool is_reading() const { return !closing && !paused; }
    int pause_reading();
    int resume_reading();

    int traverse(visitproc visit, void* arg) const;
    void clear();

    // ---- state ----
    PyObject* loop = nullptr;      // the CoreLoop; kept until dealloc
    PyObject* sock = nullptr;      // the socket or pipe object; null once connection_lost ran
    PyObject* protocol = nullptr;  // null once connection_lost ran
    PyObject* server = nullptr;    // asyncio Server or null
    // The transport the server was told about, when the socket came from
    // it (start_tls) rather than with this one; null otherwise.
    PyObject* attached_as = nullptr;
    // The transport this one passed its socket to (start_tls), or null.
    PyObject* successor = nullptr;
    PyObject* extra = nullptr;     // dict behind get_extra_info
    // The contextvars.Context the I/O callbacks run in. Callbacks asyncio
    // schedules with call_soon (connection_made, connection_lost) run in it
    // too when it was given (`schedule_in_context`, as asyncio's own 3.15
    // transports do), else in a copy of the context current when they are
    // scheduled, as asyncio's earlier transports do.
    PyObject* context = nullptr;
    size_t high_water = 64 * 1024;
    size_t low_water = 16 * 1024;
    // set_write_buffer_limits' values as given (asyncio keeps floats and
    // big ints as they are); null means the defaults above.
    PyObject* high_water_obj = nullptr;
    PyObject* low_water_obj = nullptr;
    int fd;
    int conn_lost = 0;           // asyncio's _conn_lost: >0 once connection_lost is scheduled
    uint32_t pending = 0;        // poller events not handled yet (Interest mask)
    bool registered = false;     // in the poller and the loop's fd table
    bool closing = false;
    bool queued = false;         // on the loop's ready ring
    bool protocol_paused = false;
    bool paused = false;         // pause_reading()
    // The next read is a retry that no readiness report asked for (after a
    // BaseException unwound the loop, or resume_reading()): a kind whose
    // read calls into the protocol before the syscall checks that there is
    // something to read first, as asyncio calls get_buffer() only when the
    // selector reports the fd readable.
    bool read_unconfirmed = false;
    bool schedule_in_context;
};

// The C++ part of a transport object.
inline Transport* transport_of(PyObject* t) noexcept {
    return std::launder(reinterpret_cast<Transport*>(reinterpret_cast<char*>(t) + layout.transport_data));
}

// The C++ part of a transport object known to be of kind K (each Python
// type's methods belong to exactly one kind).
template <class K>
K* kind_of(PyObject* t) noexcept {
    return static_cast<K*>(transport_of(t));
}

// True if a raised exception is one asyncio lets unwind the loop.
bool must_propagate();

// What write() and sendto() accept, as asyncio's transports check it.
inline bool is_bytes_like(PyObject* data) {
    return PyBytes_Check(data) || PyByteArray_Check(data) || PyMemoryView_Check(data);
}

// sock.fileno(), checked to be a valid fd; -1 with an exception set.
int sock_fileno(ModuleState* st, PyObject* sock);
// extra['socket'], 'sockname' and 'peername' (unless given), as asyncio's
// socket transports fill them.
int fill_socket_extra(ModuleState* st, PyObject* extra, PyObject* sock);

// The `context=` a _make_*_transport hook was given: Py_None for none.
// Checks it is a contextvars.Context. Returns -1 with TypeError.
int check_context_arg(PyObject* context);

// A new transport object of `type`, whose C++ part is a K built from
// `args`; the caller then calls start(). Null with an exception set.
template <class K, class... Args>
PyObject* new_transport(PyTypeObject* type, Args&&... args) {
    PyObject* t = PyType_GenericAlloc(type, 0);
    if (!t) return nullptr;
    try {
        new (reinterpret_cast<char*>(t) + layout.transport_data) K(std::forward<Args>(args)...);
    } catch (const std::bad_alloc&) {
        // The C++ part does not exist: free the memory without the
        // transport's deallocator, which would destroy it.
        PyTypeObject* tp = Py_TYPE(t);
        PyObject_GC_UnTrack(t);
        tp->tp_free(t);
        Py_DECREF(tp);
        return PyErr_NoMemory();
    }
    return t;
}

// The method and getset tables of one transport type, each the
// concatenation of several null-terminated tables. The type keeps pointers
// into them, so each lives as long as the process (a function-local static
// of the type's init function).
struct TransportTables {
    TransportTables(std::initializer_list<const PyMethodDef*> method_tables,
                    std::initializer_list<const PyGetSetDef*> getset_tables);
    std::vector<PyMethodDef> methods;
    std::vector<PyGetSetDef> getsets;
};

// Creates a transport type whose C++ part is `kind_size` bytes; `bases`
// is its Python base class or a tuple of them; `repr` its tp_repr slot.
PyTypeObject* make_transport_type(PyObject* module, const char* name, const char* doc, PyObject* bases,
                                  size_t kind_size, const TransportTables& tables, void* repr);

// What every transport type has: close, is_closing, _force_close (a TLS
// transport has its own), get/set_protocol, _call_connection_lost; _loop,
// _sock, _extra, _server, ...; and abort, which all but a read pipe have.
extern const PyMethodDef transport_close_methods[];
extern const PyMethodDef transport_abort_methods[];
extern const PyMethodDef transport_protocol_methods[];
// is_reading, pause_reading, resume_reading.
extern const PyMethodDef transport_reading_methods[];
// asyncio's debug-mode line about the transport: format takes its repr.
int log_transport_debug(Transport* tr, const char* format);
extern const PyGetSetDef transport_getsets[];
// asyncio's flow-control defaults (_FlowControlMixin._set_write_buffer_limits,
// sslproto's add_flowcontrol_defaults): a missing mark derives from the
// other (default_high if neither is given), with Python's arithmetic, so
// floats and big ints are kept as given in *high_obj / *low_obj; checked
// with asyncio's ValueError. The byte counts compared with go to *high_value
// and *low_value. -1 with an exception set, nothing changed.
int set_water_marks(PyObject* high, PyObject* low, size_t default_high, PyObject** high_obj, PyObject** low_obj,
                    size_t* high_value, size_t* low_value);
// A mark as get_*_buffer_limits() returns it: the object given, or the count.
PyObject* water_mark(PyObject* given, size_t value);
// Flow control: get_write_buffer_size, get/set_write_buffer_limits, and
// _protocol_paused, _high_water, _low_water (transport_flow.cpp).
extern const PyMethodDef flow_control_methods[];
extern const PyGetSetDef flow_control_getsets[];

}  // namespace cxxloop::py
