// TlsTransport: TLS over a stream socket, in C++, with the behaviour of
// asyncio's SSLProtocol + _SSLProtocolTransport pair (sslproto.py) as one
// transport.
//
// The TLS state is an ssl.SSLObject that SSLContext.wrap_bio() made over two
// ssl.MemoryBIOs, so the ssl module sets everything up as for asyncio.
// What runs per connection (the handshake, the shutdown, getpeercert and
// the other extra info) goes through that object's Python methods. What
// runs per record goes straight to its OpenSSL SSL (tls_library), over
// BIOs of the transport's own (tls_bio): the SSL reads the ciphertext
// straight from the socket's read buffer, the application's bytes are read
// out of the SSL into its buffer (or one bytes per batch), and what the SSL
// writes goes to the socket at once. An SSL error on that path is raised
// by replaying the failed call through the Python method, which raises
// what the ssl module raises.
//
// States (asyncio's SSLProtocolState): handshaking, wrapped, flushing (the
// last reads before the shutdown), shutting_down, unwrapped (done, or
// failed). The application's protocol sees connection_made once the
// handshake is done, and connection_lost only if it saw connection_made.
#pragma once

#include <deque>
#include <vector>

#include "stream_transport.hpp"
#include "tls_library.hpp"

namespace cxxloop::py {

class TlsTransport : public StreamTransport {
public:
    enum class State : uint8_t { handshaking, wrapped, flushing, shutting_down, unwrapped };
    enum class AppState : uint8_t { init, connected, eof, lost };
    static constexpr size_t kReadHighWater = 256 * 1024;  // sslproto's FLOW_CONTROL_HIGH_WATER_SSL_READ

    TlsTransport(CoreLoop* loop, int fd, PyObject* context, bool schedule_in_context, const TlsLibrary* lib);

    // ---- Transport ----
    int on_events(uint32_t events) override;
    bool has_queued_writes() const override { return !queue.empty() || !unsent.empty(); }
    // What sslproto's transport counts: the application's data not
    // encrypted yet and the ciphertext held back while the socket's
    // buffer is over its own marks; not what that buffer holds.
    size_t write_buffer_size() const override { return backlog_bytes + unsent.size(); }
    int after_send() override;
    size_t default_high_water() const override { return 512 * 1024; }
    bool over_high_water() const override;
    int after_write_limits_changed() override;
    int drop_queued_writes(PyObject* exc) override;
    int check_protocol(PyObject* protocol) override;
    int schedule_started(PyObject* waiter) override;
    int protocol_connection_lost(PyObject* exc) override;
    int set_protocol(PyObject* protocol) override;
    int traverse_kind(visitproc visit, void* arg) const override;
    void clear_kind() override;
    int on_eof() override;

    // start_tls: takes `old`'s socket over (Transport::pass_socket_to),
    // with what it had queued for the kernel; `protocol` is connected
    // already, `received` (bytes or None) what was read before the
    // upgrade. The handshake starts on the next iteration.
    int take_over(StreamTransport* old, PyObject* protocol, PyObject* waiter, PyObject* received);

    // ---- the application's side (asyncio's _SSLProtocolTransport) ----
    int app_write(PyObject* data);
    int app_writelines(PyObject* iterable);
    // Queues data for the SSL without writing it yet.
    int append_backlog(PyObject* data);
    int app_close();
    int app_abort();
    bool app_is_closing() const;
    int app_pause_reading();
    int app_resume_reading();

    // ---- the state machine (asyncio's SSLProtocol) ----
    int start_handshake();
    int check_handshake_timeout();
    int check_shutdown_timeout();
    int resume_app_reading();
    // The handshake or the shutdown is done (exc null) or failed.
    int handshake_complete(PyObject* exc);
    int shutdown_complete(PyObject* exc);

    // ---- the ciphertext, for the transport's BIOs (tls_bio.cpp) ----
    // No Python object is touched here: the ssl module calls the SSL with
    // the GIL released.

    // Up to `n` bytes of the ciphertext received, for the SSL; 0 if none.
    size_t take_ciphertext(char* out, size_t n) noexcept;
    // What the SSL writes: kept in `unsent`, or, for the application's
    // data, sent at once if nothing waits before it (and the socket's
    // buffer is under its marks).
    // False only if memory ran out.
    bool put_ciphertext(const char* data, size_t n) noexcept;
    // The ciphertext received that the SSL has not read.
    size_t ciphertext_pending() const noexcept { return fed_len + held.size() - held_pos; }

    // Set by _make_tls_transport.
    PyObject* tls_extra = nullptr; // sslcontext, then peercert, cipher, compression, ssl_object
    PyObject* sslobj = nullptr;    // ssl.SSLObject
    PyObject* ssl_owner = nullptr; // its _ssl._SSLSocket, which frees the SSL when it goes
    PyObject* incoming = nullptr;  // ssl.MemoryBIO: ciphertext in
    PyObject* outgoing = nullptr;  // ssl.MemoryBIO: ciphertext out
    PyObject* waiter = nullptr;    // resolved when the handshake ends
    PyObject* handshake_timeout = nullptr;  // seconds, as given
    PyObject* shutdown_timeout = nullptr;
    // The SSL, and the MemoryBIOs' BIOs it had, given back when the
    // transport is done with it; null then.
    OpaqueSsl* ssl = nullptr;
    OpaqueBio* memory_rbio = nullptr;
    OpaqueBio* memory_wbio = nullptr;

private:
    int do_handshake();
    int do_read();
    int read_into_buffer();
    int read_to_bytes();
    int do_write();
    int do_flush();
    int do_shutdown();
    int start_shutdown();
    int process_outgoing();
    // SSL_write_ex of the application's bytes; `send_now` for a single
    // write() that process_outgoing() follows at once.
    int write_records(const Py_buffer& view, size_t* written, bool send_now);
    int send_unsent();
    int control_ssl_reading();
    int call_eof_received();
    int deliver_failed(bool close_notify);
    int peer_closed_tls();
    int feed(const char* data, size_t n);
    int after_feed();
    int replay_failure(const char* method, PyObject* arg);
    int tls_fatal(const char* message);
    int abort_with(PyObject* exc);
    int wake_waiter(PyObject* exc);
    int arm_timer(PyObject** slot, PyObject* timeout, const char* callback);
    void cancel_timer(PyObject** slot);
    int app_report(const char* message);
    void clear_backlog();
    // Nothing is left to read: no ciphertext unread, nothing buffered in
    // the SSL. Another SSL_read would only "want read".
    bool drained() const { return !lib_->SSL_has_pending(ssl) && ciphertext_pending() == 0; }
    // Keeps what the SSL left unread of the bytes fed to it.
    int hold_unread();
    // The SSL's BIOs back to the MemoryBIOs': no record is read or
    // written any more.
    void release_ssl();

    const TlsLibrary* lib_;
    // The application's data not encrypted yet (before the handshake ends,
    // or while the SSL wants to read first), each with len(data), which
    // the write buffer size counts.
    struct Pending {
        PyObject* data;  // owned
        size_t size;
    };
    std::deque<Pending> backlog;
    size_t backlog_bytes = 0;
    PyObject* handshake_timer = nullptr;
    PyObject* shutdown_timer = nullptr;
    // Ciphertext received: `fed` (the read buffer, during feed()), after
    // `held[held_pos:]` (what earlier reads left unread).
    const char* fed = nullptr;
    size_t fed_len = 0;
    std::vector<char> held;
    size_t held_pos = 0;
    // What the SSL wrote that the kernel did not take at once, until
    // process_outgoing() queues it; and an error of that send.
    std::vector<char> unsent;
    int send_errno = 0;
    // The two levels of asyncio's write flow control: the socket's buffer
    // (the queue) over its marks holds the ciphertext back in `unsent`
    // (sslproto's _ssl_writing_paused), which counts towards the
    // application's marks (512 KiB / 128 KiB).
    size_t socket_high_water = 64 * 1024;
    size_t socket_low_water = 16 * 1024;
    bool ssl_writing_paused = false;
    bool writing_records = false;  // inside write_records()
    // Read flow control: the ciphertext held before the socket stops being
    // read, and the marks as given to set_read_buffer_limits (or null).
    size_t read_high = kReadHighWater;
    size_t read_low = kReadHighWater / 4;
    PyObject* read_high_obj = nullptr;
    PyObject* read_low_obj = nullptr;
    int app_writes_dropped = 0;      // writes after the connection ended
    State tls_state = State::handshaking;
    AppState app_state = AppState::init;
    bool app_reading_paused = false;
    bool ssl_reading_paused = false;
    bool tcp_eof = false;            // the peer shut its side down (asyncio's _eof_received)
    bool close_notify_unhandled = false;  // see deliver_failed()
    bool flush_interrupted = false;       // see do_flush()
    bool closed = false;             // the application called close() or abort()
    bool handshake_started = false;
    double handshake_started_at = -1;  // loop.time() in debug mode, for its log

    friend struct TlsMethods;
};



}  // namespace cxxloop::py
