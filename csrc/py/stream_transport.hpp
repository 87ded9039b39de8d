// StreamTransport: the TCP / Unix stream socket transport, asyncio's
// _SelectorSocketTransport. A ByteStreamTransport whose write_eof() shuts
// the socket's write side down, and which sends files natively
// (loop.sendfile, stream_sendfile.cpp).
#pragma once

#include "byte_stream_transport.hpp"

namespace cxxloop::py {

// A loop.sendfile() in progress: the kernel copies from the file to the
// socket, zero-copy, whenever the socket is writable.
struct SendfileJob {
    PyObject* waiter = nullptr;  // the future the caller awaits; null when none runs
    int file_fd = -1;
    off_t offset = 0;             // the next byte of the file to send
    size_t count = 0;             // bytes asked for; 0 means up to the end of the file
    size_t blocksize = 0;         // bytes per sendfile() call when count is 0
    size_t sent = 0;
    bool resume_reading = false;  // reading was on when the job began
};

class StreamTransport : public ByteStreamTransport {
public:
    using ByteStreamTransport::ByteStreamTransport;

    int on_events(uint32_t events) override;
    int on_eof() override;
    const char* read_error_message() const override { return "Fatal read error on socket transport"; }
    const char* write_error_message() const override { return "Fatal write error on socket transport"; }
    bool writelines_joins() const override { return state()->socket_writelines_joins; }
    const char* write_refused() const override;
    // sendmsg / send with MSG_NOSIGNAL: a peer that went away must surface
    // as EPIPE even where SIGPIPE is not ignored.
    ssize_t write_some(const void* buf, size_t len) override;
    ssize_t write_iov(iovec* iov, int n) override;
    int after_flush() override;
    bool has_queued_writes() const override { return !queue.empty() || sendfile_active(); }
    int drop_queued_writes(PyObject* exc) override;
    int traverse_kind(visitproc visit, void* arg) const override;
    void clear_kind() override;

    // write_eof(): shut down the write side once the queue is empty.
    int write_eof();
    // After the last queued byte, the deferred shutdown of write_eof().
    int write_done() override;

    // sendfile (stream_sendfile.cpp).
    bool sendfile_active() const noexcept { return sendfile.waiter != nullptr; }
    // Sends file data while the socket takes it; ends the job at the end.
    int sendfile_ready();
    // Ends a running job with `exc` (the transport is being torn down).
    int sendfile_abort(PyObject* exc);
    int sendfile_finish(PyObject* exc);
    int sendfile_fail(int err);

    SendfileJob sendfile;
};

// loop._make_socket_transport: a transport owning the connected socket
// `sock` from now on. waiter, extra and server may be Py_None; `context`
// is the context its callbacks run in (see Transport::context), Py_None
// for a copy of the current one.
PyObject* stream_transport_new(CoreLoop* loop, PyObject* sock, PyObject* protocol, PyObject* waiter, PyObject* extra,
                               PyObject* server, PyObject* context);

extern const PyMethodDef stream_sendfile_methods[];

}  // namespace cxxloop::py
