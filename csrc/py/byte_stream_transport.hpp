// ByteStreamTransport: the reading and writing of a byte stream, shared by
// the socket transport and the two pipe transports (a pipe, a FIFO, a
// socketpair and a tty are byte streams too; only what happens at their
// ends differs).
//
// Reads (byte_stream_read.cpp): one read per readiness event into the
// loop's scratch buffer, then an exact-size bytes for data_received, or
// straight into a BufferedProtocol's get_buffer(). Writes
// (byte_stream_write.cpp): the system call at once when nothing is queued,
// otherwise queued (by reference when immutable) and flushed with one
// sendmsg (writev on a pipe) when the fd reports writable.
#pragma once

#include <sys/uio.h>

#include "transport.hpp"
#include "write_queue.hpp"

namespace cxxloop::py {

class ByteStreamTransport : public Transport {
public:
    using Transport::Transport;

    // ---- what each kind defines ----

    // The end of the stream was read.
    virtual int on_eof() = 0;
    virtual const char* read_error_message() const = 0;
    virtual const char* write_error_message() const = 0;
    // True if a short read does not mean the kernel has nothing left: a
    // tty in canonical mode returns a line per read, a SOCK_SEQPACKET or
    // SOCK_DGRAM socket a message.
    virtual bool reads_are_messages() const { return false; }
    // A pipe being closed takes no more data, unlike a socket, whose close()
    // still sends what is written before the last flush.
    virtual bool closing_drops_writes() const { return false; }
    // asyncio's writelines joins the items first (b"".join) rather than
    // taking each as a memoryview, which shows in its TypeError.
    virtual bool writelines_joins() const { return true; }
    // write() and writelines() are refused while this is not null: the
    // RuntimeError's message, a format taking the method's name.
    virtual const char* write_refused() const;
    // What follows the last queued byte.
    virtual int after_flush() { return write_done(); }
    // After a flush sent some of the queue: asyncio's _maybe_resume_protocol.
    virtual int after_send() { return maybe_resume_protocol(); }
    // data_received() raised an Exception (the exception is set): asyncio's
    // socket transport makes it a fatal error.
    virtual int data_received_failed();
    // The system calls, retried on EINTR; -1 with errno set.
    virtual ssize_t read_some(void* buf, size_t len);
    virtual ssize_t write_some(const void* buf, size_t len);
    virtual ssize_t write_iov(iovec* iov, int n);

    // ---- reading ----
    int read_ready();

    // ---- writing ----
    int write_data(PyObject* data);
    int write_lines(PyObject* iterable);
    // Flushes the queue; the fd reported writable (or writelines queued).
    int flush();
    // What follows the last queued byte: connection_lost if closing.
    virtual int write_done();
    // A failed write: the queue is dropped, and asyncio's fatal error.
    int write_failed();

    // ---- Transport ----
    bool has_queued_writes() const override { return !queue.empty(); }
    size_t write_buffer_size() const override { return queue.bytes(); }
    int drop_queued_writes(PyObject* exc) override;
    int set_protocol(PyObject* protocol) override;
    int traverse_kind(visitproc visit, void* arg) const override { return queue.traverse(visit, arg); }
    void clear_kind() override { queue.clear(); }

    WriteQueue queue;
    bool buffered = false;     // protocol is a BufferedProtocol (and the kind reads into it)
    bool read_eof = false;     // eof_received() asked to stay open: never read again
    bool peer_closed = false;  // kHangup seen: keep reading until EOF or an error
    bool eof = false;          // write_eof() called
    bool large_reads = false;  // the last read was large (see read_to_bytes)
    // A socket.socket subclass: read and written through its own recv,
    // recv_into, send and sendmsg, as asyncio's transports call them, so
    // that what the subclass changes takes effect.
    bool socket_methods = false;

protected:
    // Whether set_protocol() may pick get_buffer()/buffer_updated(); asyncio's
    // pipes always call data_received().
    virtual bool supports_buffered_protocol() const { return true; }

private:
    int read_into_protocol(bool* more);
    int read_to_bytes(bool* more);
    int read_large(bool* more);
    int recv_to_bytes(bool* more);
    int deliver(PyObject* data);
    int after_read(ssize_t n, size_t asked, bool* more);
    int after_failed_call();
    static constexpr ssize_t kFailed = -1;
    ssize_t send_now(PyObject* data, const Py_buffer& view);
    ssize_t sent_by(Ref result);
};

// Methods of the read side (is_reading, pause_reading, resume_reading),
// the write side (write, writelines), and write_eof / can_write_eof for
// kinds whose write_eof shuts the write side down.
extern const PyMethodDef byte_stream_write_methods[];

}  // namespace cxxloop::py
