// StreamTransport: the TCP / Unix stream socket transport.
//
// A C type whose Python base is asyncio.transports._FlowControlMixin (so
// isinstance(t, asyncio.Transport) holds and BaseEventLoop's sendfile
// fallback accepts it); its state lives in a StreamData placed after the
// base's slots, as handle.hpp does for handles. Getsets named like the
// selector transport's attributes (_loop, _sock, _protocol_paused, ...)
// shadow the unused base slots.
//
// The fd is registered once, edge-triggered for both directions. The poller
// marks events in `pending` and queues the transport itself on the loop's
// ready ring (at most once); run_once then calls stream_run_io, which reads
// and flushes in the position asyncio would have run the selector's reader
// and writer callbacks.
//
// The code is split by concern: stream_transport.cpp holds the type, its
// construction and the close / connection_lost paths; stream_read.cpp and
// stream_write.cpp the two directions; stream_sendfile.cpp loop.sendfile();
// stream_accept.cpp the accept loop of servers.
//
// The pipe transports of connect_read_pipe / connect_write_pipe
// (pipe_transport.cpp) are two more types over the same StreamData: a pipe
// is a byte stream too, and only what happens at its ends differs, which
// `kind` selects. So is the datagram transport (datagram_transport.cpp):
// its registration, closing, flow control and connection_lost are a
// stream's; it reads and writes whole datagrams, queued in `dgram`.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "datagram_queue.hpp"
#include "layout.hpp"
#include "loop.hpp"
#include "write_queue.hpp"

namespace cxxloop::py {

// A loop.sendfile() in progress (stream_sendfile.cpp): the kernel copies
// from the file to the socket, zero-copy, whenever the socket is writable.
struct SendfileJob {
    PyObject* waiter = nullptr;  // the future the caller awaits; null when none runs
    int file_fd = -1;
    off_t offset = 0;            // the next byte of the file to send
    size_t count = 0;            // bytes asked for; 0 means up to the end of the file
    size_t blocksize = 0;        // bytes per sendfile() call when count is 0
    size_t sent = 0;
    bool resume_reading = false; // reading was on when the job began
};

enum class TransportKind : uint8_t {
    socket,      // StreamTransport
    read_pipe,   // ReadPipeTransport: reads only; EOF always ends it
    write_pipe,  // WritePipeTransport: writes only; readable means the reader left
    datagram,    // DatagramTransport: recvfrom / sendto, one datagram at a time
};

struct StreamData {
    PyObject* loop;          // the CoreLoop; kept until dealloc
    PyObject* sock;          // socket.socket, or a pipe's file object; null once connection_lost ran
    PyObject* protocol;      // null once connection_lost ran
    PyObject* server;        // asyncio Server or null
    PyObject* extra;         // dict behind get_extra_info
    PyObject* weakreflist;
    PyObject* dict;          // instance attributes, as asyncio's transports have
    WriteQueue queue;
    std::unique_ptr<DatagramState> dgram;  // only for TransportKind::datagram
    SendfileJob sendfile;
    Py_ssize_t high_water;
    Py_ssize_t low_water;
    int fd;
    int conn_lost;          // asyncio's _conn_lost: >0 once connection_lost is scheduled
    uint32_t pending;       // poller events not handled yet (Interest mask)
    bool registered;        // in the poller and the loop's fd table
    bool buffered;          // protocol is a BufferedProtocol
    bool closing;
    bool paused;            // pause_reading()
    bool read_eof;          // eof_received() asked to stay open: never read again
    bool peer_closed;       // kHangup seen: keep reading until EOF or an error
    bool eof;               // write_eof() called
    bool protocol_paused;   // pause_writing() called, resume_writing() not yet
    bool queued;            // on the loop's ready ring
    bool peer_watch;        // write pipe: readable means the reader is gone
    bool large_reads;       // the last read was large (see read_to_bytes)
    TransportKind kind;
};

inline StreamData* stream_data(PyObject* t) noexcept {
    return reinterpret_cast<StreamData*>(reinterpret_cast<char*>(t) + layout.transport_data);
}

inline CoreLoop* stream_loop(StreamData* d) noexcept { return reinterpret_cast<CoreLoop*>(d->loop); }
// The module state, through the transport's loop.
inline ModuleState* stream_state(StreamData* d) noexcept { return stream_loop(d)->s.st; }

inline bool is_pipe(const StreamData* d) noexcept {
    return d->kind == TransportKind::read_pipe || d->kind == TransportKind::write_pipe;
}

// What get_write_buffer_size() reports and flow control compares with the
// water marks.
inline size_t write_buffer_size(const StreamData* d) noexcept {
    return d->dgram ? d->dgram->bytes : d->queue.bytes();
}

// Data queued for the kernel: close() waits for it before connection_lost.
inline bool has_queued_writes(const StreamData* d) noexcept {
    return !d->queue.empty() || d->sendfile.waiter != nullptr || (d->dgram && !d->dgram->queue.empty());
}

// sock.fileno(), checked to be a valid fd; -1 with an exception set.
int sock_fileno(ModuleState* st, PyObject* sock);

// loop._make_socket_transport: a transport owning the connected socket
// `sock` from now on; waiter, extra and server may be Py_None.
PyObject* stream_transport_new(CoreLoop* loop, PyObject* sock, PyObject* protocol, PyObject* waiter, PyObject* extra,
                               PyObject* server);

// Handles the recorded events; called from run_once. -1 only for
// exceptions that must unwind the loop (SystemExit, KeyboardInterrupt, a
// failing exception handler).
int stream_run_io(PyObject* t);

// --- shared between the stream_*.cpp, pipe_transport.cpp and datagram_transport.cpp files ---

// A new transport of `type` for `fd`, registered in the poller; `sock` is
// the object it owns from now on (a socket, or a pipe's file object) and
// closes in connection_lost. Then asyncio's start: server._attach(), and
// connection_made and the waiter's result are scheduled. waiter and server
// may be Py_None; extra is a dict.
PyObject* stream_transport_start(CoreLoop* loop, PyTypeObject* type, TransportKind kind, int fd, PyObject* sock,
                                 PyObject* protocol, PyObject* waiter, PyObject* extra, PyObject* server);
// Takes the fd out of the poller and the loop's fd table. The caller holds a
// reference to t: the table's is released here.
void stream_unregister(PyObject* t);
// extra['socket'], 'sockname' and 'peername' (unless given), as asyncio's
// socket transports fill them.
int stream_fill_extra(ModuleState* st, PyObject* extra, PyObject* sock);
// loop.call_soon(callback, *args) from C.
int stream_call_soon(PyObject* t, PyObject* callback, PyObject* const* args, size_t nargs);
// call_soon(self._call_connection_lost, exc).
int stream_schedule_connection_lost(PyObject* t, PyObject* exc);

// asyncio's _fatal_error: report (an OSError only in debug mode, unless a
// read pipe's other than EIO), then force-close with exc. Consumes the
// raised exception.
int stream_fatal_error(PyObject* t, const char* message);
// asyncio's _force_close(exc); exc may be Py_None.
int stream_force_close(PyObject* t, PyObject* exc);
// asyncio's close().
int stream_close(PyObject* t);
// Runs protocol.connection_lost(exc) and releases the socket.
int stream_connection_lost(PyObject* t, PyObject* exc);
// Records `events` (poller events, or a read to retry) and puts the
// transport on the loop's ready ring unless it is already there.
int stream_schedule(PyObject* t, uint32_t events);
// True if a raised exception is one asyncio lets unwind the loop.
bool must_propagate();
// Calls loop.call_exception_handler with message/exception/transport/protocol.
int report_to_loop(PyObject* t, const char* message, PyObject* exc);
// For a raised exception from a protocol callback that does not end the
// transport: -1 if it must unwind the loop, else it goes to the loop's
// exception handler and 0 is returned.
int report_raised_to_loop(PyObject* t, const char* message);
// What write() and sendto() accept, as asyncio's transports check it.
inline bool is_bytes_like(PyObject* data) {
    return PyBytes_Check(data) || PyByteArray_Check(data) || PyMemoryView_Check(data);
}

// Read side (stream_read.cpp).
int stream_read_ready(PyObject* t);
bool stream_is_reading(StreamData* d);
int stream_pause_reading(PyObject* t);
int stream_resume_reading(PyObject* t);
extern PyMethodDef stream_read_methods[];

// Write side (stream_write.cpp).
int stream_write_ready(PyObject* t);
// asyncio's _maybe_pause_protocol / _maybe_resume_protocol.
int stream_maybe_pause_protocol(PyObject* t);
int stream_maybe_resume_protocol(PyObject* t);
// Data written after the connection was lost is dropped, with asyncio's
// warning once it keeps happening.
int stream_drop_after_lost(StreamData* d);
// What follows the last queued byte: connection_lost if closing, the
// deferred shutdown(SHUT_WR) if write_eof() was called.
int stream_write_done(PyObject* t);
extern PyMethodDef stream_write_methods[];
// get_write_buffer_size and the water marks, which datagrams share.
extern PyMethodDef stream_flow_methods[];
extern PyGetSetDef stream_write_getsets[];

// Servers (stream_accept.cpp): loop._start_accepting, and the type.
extern PyMethodDef loop_accept_methods[];
int init_acceptor_type(PyObject* module, ModuleState* st);

// sendfile (stream_sendfile.cpp).
inline bool stream_sendfile_active(const StreamData* d) noexcept { return d->sendfile.waiter != nullptr; }
// Sends file data while the socket takes it; ends the job at the end.
int stream_sendfile_ready(PyObject* t);
// Ends a running job with `exc` (the transport is being torn down).
int stream_sendfile_abort(PyObject* t, PyObject* exc);
extern PyMethodDef stream_sendfile_methods[];

// The method and getset tables of one transport type, each the
// concatenation of several null-terminated tables. The type keeps pointers
// into them, so each lives as long as the process (a function-local static
// of the type's init function).
struct TransportTables {
    TransportTables(std::initializer_list<PyMethodDef*> method_tables,
                    std::initializer_list<PyGetSetDef*> getset_tables);
    std::vector<PyMethodDef> methods;
    std::vector<PyGetSetDef> getsets;
};

// Creates a transport type over StreamData; `bases` is its Python base
// class or a tuple of them.
PyTypeObject* make_transport_type(PyObject* module, const char* name, const char* doc, PyObject* bases,
                                  const TransportTables& tables);
extern PyMethodDef stream_core_methods[];
extern PyGetSetDef stream_core_getsets[];

int init_stream_transport_type(PyObject* module, ModuleState* st);

// Pipes (pipe_transport.cpp).
// The end of a read pipe: eof_received(), then connection_lost(None).
int pipe_read_eof(PyObject* t);
// A write pipe's reader went away: connection_lost, with BrokenPipeError
// if data was still queued.
int pipe_peer_closed(PyObject* t);
// asyncio's repr of a pipe transport.
PyObject* pipe_repr(PyObject* t);
extern PyMethodDef loop_pipe_methods[];
int init_pipe_transport_types(PyObject* module, ModuleState* st);

// Datagrams (datagram_transport.cpp).
int datagram_read_ready(PyObject* t);
int datagram_write_ready(PyObject* t);
extern PyMethodDef loop_datagram_methods[];
int init_datagram_transport_type(PyObject* module, ModuleState* st);

}  // namespace cxxloop::py
