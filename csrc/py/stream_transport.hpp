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
#pragma once

#include <sys/types.h>

#include "globals.hpp"
#include "write_queue.hpp"

namespace cxxloop::py {

struct CoreLoop;

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

struct StreamData {
    PyObject* loop;          // the CoreLoop; kept until dealloc
    PyObject* sock;          // socket.socket; null once connection_lost ran
    PyObject* protocol;      // null once connection_lost ran
    PyObject* server;        // asyncio Server or null
    PyObject* extra;         // dict behind get_extra_info
    PyObject* weakreflist;
    WriteQueue queue;
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
};

inline StreamData* stream_data(PyObject* t) noexcept {
    return reinterpret_cast<StreamData*>(reinterpret_cast<char*>(t) + g.stream_data_offset);
}

inline CoreLoop* stream_loop(StreamData* d) noexcept { return reinterpret_cast<CoreLoop*>(d->loop); }

// sock.fileno(), checked to be a valid fd; -1 with an exception set.
int sock_fileno(PyObject* sock);

// loop._make_socket_transport: a transport owning the connected socket
// `sock` from now on; waiter, extra and server may be Py_None.
PyObject* stream_transport_new(CoreLoop* loop, PyObject* sock, PyObject* protocol, PyObject* waiter, PyObject* extra,
                               PyObject* server);

// Handles the recorded events; called from run_once. -1 only for
// exceptions that must unwind the loop (SystemExit, KeyboardInterrupt, a
// failing exception handler).
int stream_run_io(PyObject* t);

// --- shared between the stream_*.cpp files ---

// asyncio's _fatal_error: report (OSErrors only in debug mode), then
// force-close with exc. Consumes the raised exception.
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

// Read side (stream_read.cpp).
int stream_read_ready(PyObject* t);
bool stream_is_reading(StreamData* d);
int stream_pause_reading(PyObject* t);
int stream_resume_reading(PyObject* t);
extern PyMethodDef stream_read_methods[];

// Write side (stream_write.cpp).
int stream_write_ready(PyObject* t);
// What follows the last queued byte: connection_lost if closing, the
// deferred shutdown(SHUT_WR) if write_eof() was called.
int stream_write_done(PyObject* t);
extern PyMethodDef stream_write_methods[];
extern PyGetSetDef stream_write_getsets[];

// Servers (stream_accept.cpp): loop._start_accepting, and the type.
extern PyMethodDef loop_accept_methods[];
int init_acceptor_type(PyObject* module);

// sendfile (stream_sendfile.cpp).
inline bool stream_sendfile_active(const StreamData* d) noexcept { return d->sendfile.waiter != nullptr; }
// Sends file data while the socket takes it; ends the job at the end.
int stream_sendfile_ready(PyObject* t);
// Ends a running job with `exc` (the transport is being torn down).
int stream_sendfile_abort(PyObject* t, PyObject* exc);
extern PyMethodDef stream_sendfile_methods[];

int init_stream_transport_type(PyObject* module);

}  // namespace cxxloop::py
