// TlsTransport: see tls_transport.hpp. The methods follow sslproto.py's
// SSLProtocol, in its order, with its messages; the comments name the
// asyncio method each one stands for.
#include "tls_transport.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "handle.hpp"
#include "methods.hpp"
#include "tls_bio.hpp"

namespace cxxloop::py {

namespace {

// True if the raised exception is one of sslproto's SSLAgainErrors
// (SSLWantReadError, SSLSyscallError): try again once more data came.
bool raised_again(ModuleState* st) {
    return PyErr_ExceptionMatches(st->SSLWantReadError) || PyErr_ExceptionMatches(st->SSLSyscallError);
}

}  // namespace

TlsTransport::TlsTransport(CoreLoop* loop_, int fd_, PyObject* context_, bool schedule_in_context_,
                           const TlsLibrary* lib)
    : StreamTransport(loop_, fd_, context_, schedule_in_context_), lib_(lib) {
    high_water = 512 * 1024;
    low_water = 128 * 1024;
}

int TlsTransport::check_protocol(PyObject*) {
    // asyncio only calls the protocol once the handshake is done.
    return 0;
}

int TlsTransport::set_protocol(PyObject* protocol_) {
    // sslproto's _set_app_protocol: the application's protocol, which reads
    // into its own buffer if it is a BufferedProtocol.
    return StreamTransport::set_protocol(protocol_);
}

int TlsTransport::schedule_started(PyObject* waiter_) {
    // SSLProtocol.connection_made, which asyncio's socket transport
    // schedules: the handshake starts on the next iteration.
    waiter = waiter_ == Py_None ? nullptr : Py_NewRef(waiter_);
    Ref start = Ref::steal(PyObject_GetAttrString(object(), "_tls_start_handshake"));
    return start ? call_soon(start.get(), {}) : -1;
}

int TlsTransport::take_over(StreamTransport* old, PyObject* protocol_, PyObject* waiter_, PyObject* received) {
    extra = Py_NewRef(old->extra);
    if (received != Py_None) {
        fed = PyBytes_AS_STRING(received);
        fed_len = size_t(PyBytes_GET_SIZE(received));
        if (hold_unread() < 0) return -1;
    }
    if (set_protocol(protocol_) < 0 || schedule_started(waiter_) < 0) return -1;
    // Nothing fails from here.
    app_state = AppState::connected;
    old->pass_socket_to(this);
    queue.swap(old->queue);
    peer_closed = old->peer_closed;
    // The socket transport's marks and state are the TLS layer's socket
    // level now, as SSLProtocol becomes that transport's protocol.
    socket_high_water = old->high_water;
    socket_low_water = old->low_water;
    ssl_writing_paused = old->protocol_paused;
    // The socket's protocol is this transport now, as asyncio's start_tls
    // makes its SSLProtocol the old transport's; dropping the old one's
    // reference may run code, so it goes last.
    Py_CLEAR(old->protocol);
    return 0;
}

int TlsTransport::traverse_kind(visitproc visit, void* arg) const {
    Py_VISIT(tls_extra);
    Py_VISIT(sslobj);
    Py_VISIT(ssl_owner);
    Py_VISIT(incoming);
    Py_VISIT(outgoing);
    Py_VISIT(waiter);
    Py_VISIT(handshake_timeout);
    Py_VISIT(shutdown_timeout);
    Py_VISIT(handshake_timer);
    Py_VISIT(shutdown_timer);
    Py_VISIT(read_high_obj);
    Py_VISIT(read_low_obj);
    for (const Pending& item : backlog) Py_VISIT(item.data);
    return StreamTransport::traverse_kind(visit, arg);
}

void TlsTransport::release_ssl() {
    if (!ssl) return;
    restore_memory_bios(*lib_, std::exchange(ssl, nullptr), memory_rbio, memory_wbio);
    memory_rbio = memory_wbio = nullptr;
    held.clear();
    held_pos = 0;
    unsent.clear();
}

void TlsTransport::clear_backlog() {
    while (!backlog.empty()) {
        Pending item = backlog.front();
        backlog.pop_front();
        backlog_bytes -= item.size;
        Py_DECREF(item.data);
    }
}

void TlsTransport::clear_kind() {
    // The SSL first, while the objects that own it and its MemoryBIOs are
    // alive; nothing reads or writes records after.
    release_ssl();
    tls_state = State::unwrapped;
    clear_backlog();
    Py_CLEAR(tls_extra);
    Py_CLEAR(handshake_timer);
    Py_CLEAR(shutdown_timer);
    Py_CLEAR(waiter);
    Py_CLEAR(handshake_timeout);
    Py_CLEAR(shutdown_timeout);
    Py_CLEAR(read_high_obj);
    Py_CLEAR(read_low_obj);
    Py_CLEAR(incoming);
    Py_CLEAR(outgoing);
    Py_CLEAR(ssl_owner);
    Py_CLEAR(sslobj);
    StreamTransport::clear_kind();
}

// ---- timers and the waiter ----

int TlsTransport::arm_timer(PyObject** slot, PyObject* timeout, const char* callback) {
    Ref cb = Ref::steal(PyObject_GetAttrString(object(), callback));
    if (!cb) return -1;
    PyObject* args[] = {loop, timeout, cb.get()};
    PyObject* timer = PyObject_VectorcallMethod(state()->s_call_later, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
    if (!timer) return -1;
    Py_XSETREF(*slot, timer);
    return 0;
}

void TlsTransport::cancel_timer(PyObject** slot) {
    Ref timer = Ref::steal(std::exchange(*slot, nullptr));
    if (timer && is_handle(timer.get())) handle_cancel(timer.get());
}

// sslproto's _wakeup_waiter.
int TlsTransport::wake_waiter(PyObject* exc) {
    Ref w = Ref::steal(std::exchange(waiter, nullptr));
    if (!w) return 0;
    ModuleState* st = state();
    Ref cancelled = Ref::steal(PyObject_CallMethodNoArgs(w.get(), st->s_cancelled));
    if (!cancelled) return -1;
    if (cancelled.get() == Py_True) return 0;
    Ref r = exc ? Ref::steal(PyObject_CallMethodOneArg(w.get(), st->s_set_exception, exc))
                : Ref::steal(PyObject_CallMethodOneArg(w.get(), st->s_set_result, Py_None));
    return r ? 0 : -1;
}

// ---- errors ----

// sslproto's _fatal_error: the connection goes (the socket transport's
// _force_close), then the report: an OSError (every ssl.SSLError is one)
// only in debug mode, anything but a cancellation to the exception handler.
int TlsTransport::tls_fatal(const char* message) {
    Ref exc = Ref::steal(PyErr_GetRaisedException());
    if (sock && force_close(exc.get()) < 0) return -1;
    if (PyErr_GivenExceptionMatches(exc.get(), PyExc_OSError)) {
        if (!core_loop()->s.debug) return 0;
        ModuleState* st = state();
        // asyncio logs it from inside the except block: exc_info=True
        // finds the exception being handled, which is `exc`.
        Ref kw = Ref::steal(Py_BuildValue("{sO}", "exc_info", exc.get()));
        Ref debug = Ref::steal(PyObject_GetAttr(st->logger, st->s_debug));
        Ref args = Ref::steal(Py_BuildValue("(sOs)", "%r: %s", object(), message));
        if (!kw || !debug || !args) return -1;
        Ref r = Ref::steal(PyObject_Call(debug.get(), args.get(), kw.get()));
        return r ? 0 : -1;
    }
    if (PyErr_GivenExceptionMatches(exc.get(), state()->CancelledError)) return 0;
    return report(message, exc.get());
}

// For a raised exception inside the state machine, where sslproto has
// `except Exception`: an Exception is its fatal error; anything else
// (KeyboardInterrupt, SystemExit, any other BaseException) goes on up, to
// the socket's read handler, which reports it as the socket transport
// does, or to the caller of write(), close() and the like.
int TlsTransport::app_report(const char* message) {
    if (!PyErr_ExceptionMatches(PyExc_Exception)) return -1;
    return tls_fatal(message);
}

// The SSL failed on the data path. The ssl module's own method, called the
// same way, fails the same way (the SSL is in its failed state): what it
// raises is the exception asyncio would have seen. `arg` is the read size
// or the data.
//
// The data path does not empty the thread's OpenSSL error queue before
// each call, as the ssl module does (ERR_clear_error costs more than a
// small record's SSL_read): an error left there by other code only makes
// SSL_get_error() report SSL_ERROR_SSL for what was a "want read", never
// the other way round, and the replay, which does empty the queue first,
// then raises SSLWantReadError, taken as "try again" like any other.
int TlsTransport::replay_failure(const char* method, PyObject* arg) {
    Ref r = Ref::steal(PyObject_CallMethod(sslobj, method, "O", arg));
    if (r) {
        // Not failing any more (nothing should get here): nothing to raise.
        return 0;
    }
    return -1;
}

// ---- the handshake ----

int TlsTransport::start_handshake() {
    // sslproto's _start_handshake.
    handshake_started = true;
    if (core_loop()->s.debug) {
        Ref r = Ref::steal(PyObject_CallMethod(state()->logger, "debug", "sO", "%r starts SSL handshake", object()));
        if (!r) return -1;
        handshake_started_at = loop_now(core_loop());
        if (handshake_started_at < 0 && PyErr_Occurred()) return -1;
    }
    if (arm_timer(&handshake_timer, handshake_timeout, "_tls_check_handshake_timeout") < 0) return -1;
    // The socket may hold what an edge reported to another transport
    // (start_tls), or before the poller saw it; it is read once anyway.
    if (schedule(kReadable) < 0) return -1;
    return do_handshake();
}

int TlsTransport::check_handshake_timeout() {
    if (tls_state != State::handshaking) return 0;
    Ref text = Ref::steal(PyObject_Str(handshake_timeout));
    if (!text) return -1;
    PyErr_Format(PyExc_ConnectionAbortedError,
                 "SSL handshake is taking longer than %U seconds: aborting the connection", text.get());
    return tls_fatal("Fatal error on transport");
}

int TlsTransport::do_handshake() {
    ModuleState* st = state();
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(sslobj, st->s_do_handshake));
    if (r) return handshake_complete(nullptr);
    if (raised_again(st)) {
        PyErr_Clear();
        return process_outgoing();
    }
    if (PyErr_ExceptionMatches(st->SSLError)) {
        Ref exc = Ref::steal(PyErr_GetRaisedException());
        return handshake_complete(exc.get());
    }
    return -1;
}

// sslproto's _on_handshake_complete.
int TlsTransport::handshake_complete(PyObject* handshake_exc) {
    cancel_timer(&handshake_timer);
    ModuleState* st = state();
    Ref peercert;
    if (!handshake_exc) {
        tls_state = State::wrapped;
        peercert = Ref::steal(PyObject_CallMethodNoArgs(sslobj, st->s_getpeercert));
    } else if (PyExceptionClass_Check(handshake_exc)) {
        PyErr_SetNone(handshake_exc);  // `raise handshake_exc` with a class
    } else {
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(handshake_exc)), handshake_exc);
    }
    if (!peercert) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) return -1;
        Ref exc = Ref::steal(PyErr_GetRaisedException());
        tls_state = State::unwrapped;
        const char* message = PyErr_GivenExceptionMatches(exc.get(), st->CertificateError)
                                  ? "SSL handshake failed on verifying the certificate"
                                  : "SSL handshake failed";
        PyErr_SetRaisedException(Py_NewRef(exc.get()));
        if (tls_fatal(message) < 0) return -1;
        return wake_waiter(exc.get());
    }
    if (core_loop()->s.debug && handshake_started_at >= 0) {
        double now = loop_now(core_loop());
        if (now < 0 && PyErr_Occurred()) return -1;
        Ref r = Ref::steal(PyObject_CallMethod(st->logger, "debug", "sOd", "%r: SSL handshake took %.1f ms", object(),
                                               (now - handshake_started_at) * 1e3));
        if (!r) return -1;
    }
    Ref cipher = Ref::steal(PyObject_CallMethodNoArgs(sslobj, st->s_cipher));
    Ref compression = cipher ? Ref::steal(PyObject_CallMethodNoArgs(sslobj, st->s_compression)) : Ref();
    if (!compression) return -1;
    if (tls_extra && (PyDict_SetItem(tls_extra, st->s_peercert, peercert.get()) < 0 ||
        PyDict_SetItem(tls_extra, st->s_cipher, cipher.get()) < 0 ||
        PyDict_SetItem(tls_extra, st->s_compression, compression.get()) < 0 ||
        PyDict_SetItem(tls_extra, st->s_ssl_object, sslobj) < 0)) {
        return -1;
    }
    if (app_state == AppState::init) {
        app_state = AppState::connected;
        Ref r = Ref::steal(PyObject_CallMethodOneArg(protocol, st->s_connection_made, object()));
        if (!r) {
            if (!must_propagate()) return -1;
            // The connection is made whatever connection_made() raised: the
            // waiter learns it before the loop unwinds, as a socket
            // transport's waiter (a callback of its own) does. sslproto
            // skips it, and its create_connection() then waits forever.
            // The read is retried when the loop runs again.
            Ref exc = Ref::steal(PyErr_GetRaisedException());
            if (wake_waiter(nullptr) < 0) PyErr_WriteUnraisable(object());
            PyErr_SetRaisedException(exc.release());
            return -1;
        }
    }
    if (wake_waiter(nullptr) < 0) return -1;
    return do_read();
}

// ---- reading ----

int TlsTransport::on_events(uint32_t events) {
    if (events & kHangup) peer_closed = true;
    if ((events & kReadable) && !closing && !read_eof && !ssl_reading_paused) {
        char* buf = read_buffer(core_loop());
        if (!buf) return -1;
        ssize_t n = read_some(buf, kReadBufferSize);
        if (n == 0) {
            if (on_eof() < 0) return -1;
        } else if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                PyErr_SetFromErrno(PyExc_OSError);
                return fatal_error(read_error_message());
            }
            // Nothing new; but a retry after a BaseException unwound the
            // loop goes on with what the SSL already holds, unless that
            // ended in the close_notify eof_received was called for (the
            // SSL may still count the alert as pending), and with a
            // shutdown that one interrupted.
            bool held = !drained() && app_state != AppState::eof;
            if ((held || close_notify_unhandled || flush_interrupted) && after_feed() < 0) return -1;
        } else {
            bool more = size_t(n) == kReadBufferSize;
            note_read(core_loop()->s.stats, n);
            if (feed(buf, size_t(n)) < 0) return -1;
            if ((more || peer_closed) && !closing && !read_eof && !ssl_reading_paused && schedule(kReadable) < 0) {
                return -1;
            }
        }
    }
    if ((events & kWritable) && !queue.empty() && sock) return flush();
    return 0;
}

// sslproto's buffer_updated: the ciphertext read goes to the SSL, then on
// by state; what the SSL leaves unread (part of a record) is kept.
int TlsTransport::feed(const char* data, size_t n) {
    fed = data;
    fed_len = n;
    int rc = after_feed();
    if (hold_unread() < 0) return -1;
    return rc;
}

int TlsTransport::hold_unread() {
    if (fed_len == 0) return 0;
    try {
        if (held_pos == held.size()) {
            held.clear();
            held_pos = 0;
        }
        held.insert(held.end(), fed, fed + fed_len);
    } catch (const std::bad_alloc&) {
        fed = nullptr;
        fed_len = 0;
        PyErr_NoMemory();
        return -1;
    }
    fed = nullptr;
    fed_len = 0;
    return 0;
}

size_t TlsTransport::take_ciphertext(char* out, size_t n) noexcept {
    size_t got = 0;
    if (held_pos < held.size()) {
        got = std::min(n, held.size() - held_pos);
        std::memcpy(out, held.data() + held_pos, got);
        held_pos += got;
        if (held_pos == held.size()) {
            held.clear();
            held_pos = 0;
        }
    }
    if (got < n && fed_len > 0) {
        size_t more = std::min(n - got, fed_len);
        std::memcpy(out + got, fed, more);
        fed += more;
        fed_len -= more;
        got += more;
    }
    return got;
}

int TlsTransport::write_records(const Py_buffer& view, size_t* written, bool send_now) {
    // sslproto sends what a write() makes as soon as it is made, so those
    // records may go to the socket as the SSL makes them. What the
    // handshake, the reads, the shutdown and a batch of backlog writes make
    // waits for process_outgoing(), which a failure or an abort in between
    // skips, as in sslproto.
    writing_records = send_now;
    int ok = lib_->SSL_write_ex(ssl, view.buf, size_t(view.len), written);
    writing_records = false;
    return ok;
}

bool TlsTransport::put_ciphertext(const char* data, size_t n) noexcept {
    // The connection is gone: nothing more is sent, as sslproto's writes
    // to a closed transport go nowhere.
    if (!sock || conn_lost) return true;
    if (writing_records && !ssl_writing_paused && queue.empty() && unsent.empty() && send_errno == 0) {
        ssize_t r = write_some(data, n);
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            send_errno = errno;
            return true;
        }
        if (r > 0) {
            note_written(core_loop()->s.stats, r);
            data += r;
            n -= size_t(r);
        }
    }
    try {
        unsent.insert(unsent.end(), data, data + n);
    } catch (const std::bad_alloc&) {
        return false;
    }
    return true;
}

int TlsTransport::after_feed() {
    int rc = 0;
    switch (tls_state) {
        case State::handshaking:
            if (handshake_started) rc = do_handshake();
            break;
        case State::wrapped: rc = do_read(); break;
        case State::flushing: rc = do_flush(); break;
        case State::shutting_down: rc = do_shutdown(); break;
        case State::unwrapped: break;
    }
    if (rc < 0 && !must_propagate() && PyErr_Occurred()) {
        // What the socket transport does with an exception out of
        // buffer_updated.
        return fatal_error("Fatal error: protocol.buffer_updated() call failed.");
    }
    return rc;
}

// sslproto's _do_read.
int TlsTransport::do_read() {
    if (tls_state != State::wrapped && tls_state != State::flushing) return 0;
    int rc = 0;
    if (close_notify_unhandled) {
        rc = peer_closed_tls();
    } else if (!app_reading_paused) {
        rc = buffered ? read_into_buffer() : read_to_bytes();
        if (rc == 0) rc = backlog.empty() ? process_outgoing() : do_write();
    }
    if (rc == 0) rc = control_ssl_reading();
    if (rc < 0) return app_report("Fatal error on SSL protocol");
    return 0;
}

// sslproto's _do_read__copied: everything the SSL has now, in one
// data_received; close_notify ends it.
int TlsTransport::read_to_bytes() {
    ModuleState* st = state();
    char* buf = plaintext_buffer(core_loop());
    if (!buf) return -1;
    Ref joined;  // when more than the scratch buffer came
    size_t have = 0;
    bool close_notify = false;
    for (;;) {
        if (have == kReadBufferSize) {
            Ref chunk = Ref::steal(PyBytes_FromStringAndSize(buf, Py_ssize_t(have)));
            if (!chunk) return -1;
            if (!joined) {
                joined = std::move(chunk);
            } else {
                PyObject* raw = joined.release();
                PyBytes_Concat(&raw, chunk.get());
                joined = Ref::steal(raw);
                if (!joined) return -1;
            }
            have = 0;
        }
        size_t got = 0;
        if (lib_->SSL_read_ex(ssl, buf + have, kReadBufferSize - have, &got) == 1) {
            have += got;
            if (drained()) break;
            continue;
        }
        int err = lib_->SSL_get_error(ssl, 0);
        if (err == kTlsErrorWantRead) break;
        if (err == kTlsErrorZeroReturn) {
            close_notify = true;
            break;
        }
        Ref size = Ref::steal(PyLong_FromSize_t(kReadBufferSize));
        if (!size) return -1;
        if (replay_failure("read", size.get()) < 0) {
            if (!raised_again(st)) return -1;
            PyErr_Clear();
        }
        break;
    }
    Ref data;
    if (joined) {
        Ref tail = Ref::steal(PyBytes_FromStringAndSize(buf, Py_ssize_t(have)));
        if (!tail) return -1;
        PyObject* raw = joined.release();
        PyBytes_Concat(&raw, tail.get());
        data = Ref::steal(raw);
        if (!data) return -1;
    } else if (have) {
        data = Ref::steal(PyBytes_FromStringAndSize(buf, Py_ssize_t(have)));
        if (!data) return -1;
    }
    if (data) {
        Ref r = Ref::steal(PyObject_CallMethodOneArg(protocol, st->s_data_received, data.get()));
        if (!r) return deliver_failed(close_notify);
    }
    return close_notify ? peer_closed_tls() : 0;
}

// sslproto's _do_read__buffered: straight into the protocol's buffer.
int TlsTransport::read_into_buffer() {
    ModuleState* st = state();
    Ref hint = Ref::steal(PyLong_FromSize_t(ciphertext_pending()));
    if (!hint) return -1;
    Ref buf = Ref::steal(PyObject_CallMethodOneArg(protocol, st->s_get_buffer, hint.get()));
    if (!buf) return -1;
    Py_ssize_t wants = PyObject_Length(buf.get());
    if (wants < 0) return -1;
    Py_buffer view;
    if (PyObject_GetBuffer(buf.get(), &view, PyBUF_WRITABLE) < 0) {
        // What sslobj.read(n, buf) raises for such a buffer is the error.
        PyErr_Clear();
        Ref r = Ref::steal(PyObject_CallMethod(sslobj, "read", "nO", wants, buf.get()));
        if (r) PyErr_SetString(PyExc_TypeError, "get_buffer() returned a read-only buffer");
        return -1;
    }
    size_t capacity = size_t(view.len), offset = 0;
    // sslproto reads with sslobj.read(len(buf), buf), and takes the 0 an
    // empty buffer gives for the peer's close_notify.
    bool close_notify = capacity == 0, full = false;
    int rc = 0;
    while (offset < capacity) {
        size_t got = 0;
        if (lib_->SSL_read_ex(ssl, static_cast<char*>(view.buf) + offset, capacity - offset, &got) == 1) {
            offset += got;
            full = offset == capacity;
            if (drained()) break;
            continue;
        }
        int err = lib_->SSL_get_error(ssl, 0);
        if (err == kTlsErrorZeroReturn) {
            close_notify = true;
        } else if (err != kTlsErrorWantRead) {
            Ref size = Ref::steal(PyLong_FromSize_t(capacity - offset));
            if (!size || replay_failure("read", size.get()) < 0) {
                if (!size || !raised_again(st)) rc = -1;
                if (rc == 0) PyErr_Clear();
            }
        }
        break;
    }
    PyBuffer_Release(&view);
    if (rc < 0) return -1;
    if (full) {
        // The buffer is full: more may wait in the SSL for the next read.
        Ref again = Ref::steal(PyObject_GetAttrString(object(), "_tls_do_read"));
        if (!again || call_soon_current(again.get(), {}) < 0) return -1;
    }
    if (offset > 0) {
        Ref nbytes = Ref::steal(PyLong_FromSize_t(offset));
        Ref r = nbytes ? Ref::steal(PyObject_CallMethodOneArg(protocol, st->s_buffer_updated, nbytes.get())) : Ref();
        if (!r) return deliver_failed(close_notify);
    }
    return close_notify ? peer_closed_tls() : 0;
}

// The application's callback raised while the SSL had also read the
// peer's close_notify: a BaseException unwinds the loop, and the
// close_notify, which the SSL will not report again, is taken up when the
// transport reads next.
int TlsTransport::deliver_failed(bool close_notify) {
    if (close_notify && !PyErr_ExceptionMatches(PyExc_Exception)) close_notify_unhandled = true;
    return -1;
}

// The peer's close_notify: eof_received, then the shutdown.
int TlsTransport::peer_closed_tls() {
    close_notify_unhandled = false;
    if (call_eof_received() < 0) return -1;
    return start_shutdown();
}

// sslproto's _call_eof_received.
int TlsTransport::call_eof_received() {
    if (app_state != AppState::connected) return 0;
    app_state = AppState::eof;
    ModuleState* st = state();
    Ref keep_open = Ref::steal(PyObject_CallMethodNoArgs(protocol, st->s_eof_received));
    int truth = keep_open ? PyObject_IsTrue(keep_open.get()) : -1;
    // sslproto catches every BaseException here but the two that unwind.
    if (truth < 0) return must_propagate() ? -1 : tls_fatal("Error calling eof_received()");
    if (truth) {
        Ref r = Ref::steal(PyObject_CallMethod(st->logger, "warning", "s",
                                               "returning true from eof_received() has no effect when using ssl"));
        if (!r) return -1;
    }
    return 0;
}

// sslproto's _control_ssl_reading: too much ciphertext waiting for a
// paused application stops the socket's reading.
int TlsTransport::control_ssl_reading() {
    size_t size = ciphertext_pending();
    if (size >= read_high && !ssl_reading_paused) {
        ssl_reading_paused = true;
    } else if (size <= read_low && ssl_reading_paused) {
        ssl_reading_paused = false;
        return schedule(kReadable);
    }
    return 0;
}

// The socket transport's eof_received, then SSLProtocol.eof_received: a
// TCP EOF without close_notify ends the connection cleanly, as asyncio's.
int TlsTransport::on_eof() {
    tcp_eof = true;
    if (core_loop()->s.debug) {
        // Logged by the socket transport, then by SSLProtocol, as asyncio's
        // pair of objects each logs it.
        for (int i = 0; i < 2; ++i) {
            Ref r = Ref::steal(PyObject_CallMethod(state()->logger, "debug", "sO", "%r received EOF", object()));
            if (!r) return -1;
        }
    }
    bool keep_open = false;
    int rc = 0;
    switch (tls_state) {
        case State::handshaking: rc = handshake_complete(PyExc_ConnectionResetError); break;
        case State::wrapped:
            tls_state = State::flushing;
            if (app_reading_paused) {
                keep_open = true;
            } else {
                rc = do_flush();
            }
            break;
        case State::flushing:
            rc = do_write();
            if (rc == 0) {
                tls_state = State::shutting_down;
                rc = do_shutdown();
            }
            break;
        case State::shutting_down: rc = do_shutdown(); break;
        case State::unwrapped: break;
    }
    if (rc < 0) {
        if (must_propagate()) return -1;
        Ref exc = Ref::steal(PyErr_GetRaisedException());
        if (close() < 0) return -1;
        PyErr_SetRaisedException(exc.release());
        return fatal_error("Fatal error: protocol.eof_received() call failed.");
    }
    if (keep_open) {
        read_eof = true;  // the socket stays open for writing
        return 0;
    }
    return close();
}

int TlsTransport::app_pause_reading() {
    app_reading_paused = true;
    return 0;
}

int TlsTransport::app_resume_reading() {
    if (!app_reading_paused) return 0;
    app_reading_paused = false;
    Ref resume = Ref::steal(PyObject_GetAttrString(object(), "_tls_resume_reading"));
    return resume ? call_soon_current(resume.get(), {}) : -1;
}

// The callback app_resume_reading schedules.
int TlsTransport::resume_app_reading() {
    switch (tls_state) {
        case State::wrapped: return do_read();
        case State::flushing: return do_flush();
        case State::shutting_down: return do_shutdown();
        default: return 0;
    }
}

// ---- writing ----

int TlsTransport::app_write(PyObject* data) {
    if (!is_bytes_like(data)) {
        Ref name = Ref::steal(PyType_GetName(Py_TYPE(data)));  // type(data).__name__
        if (name) PyErr_Format(PyExc_TypeError, "data: expecting a bytes-like instance, got %U", name.get());
        return -1;
    }
    int nonempty = PyObject_IsTrue(data);
    if (nonempty <= 0) return nonempty;
    if (tls_state == State::wrapped && backlog.empty()) {
        // The common case, without the backlog: encrypt now, send now.
        Py_buffer view;
        if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) == 0) {
            size_t written = 0;
            int ok = write_records(view, &written, true);
            PyBuffer_Release(&view);
            int err = ok == 1 ? kTlsErrorNone : lib_->SSL_get_error(ssl, 0);
            if (err == kTlsErrorNone) return process_outgoing() < 0 ? app_report("Fatal error on SSL protocol") : 0;
            if (err != kTlsErrorWantRead && err != kTlsErrorWantWrite) {
                if (replay_failure("write", data) < 0 && !raised_again(state())) {
                    return app_report("Fatal error on SSL protocol");
                }
                PyErr_Clear();
                return process_outgoing() < 0 ? app_report("Fatal error on SSL protocol") : 0;
            }
            // The SSL wants to read first (a renegotiation): the data waits.
        } else {
            PyErr_Clear();  // the backlog's write fails as asyncio's does
        }
    }
    Ref items = Ref::steal(PyTuple_Pack(1, data));
    return items ? app_writelines(items.get()) : -1;
}

// sslproto's _write_appdata.
int TlsTransport::app_writelines(PyObject* iterable) {
    if (tls_state == State::flushing || tls_state == State::shutting_down || tls_state == State::unwrapped) {
        if (app_writes_dropped >= 5) {
            Ref r = Ref::steal(PyObject_CallMethod(state()->logger, "warning", "s", "SSL connection is closed"));
            if (!r) return -1;
        }
        app_writes_dropped++;
        return 0;
    }
    Ref it = Ref::steal(PyObject_GetIter(iterable));
    if (!it) return -1;
    while (Ref item = Ref::steal(PyIter_Next(it.get()))) {
        if (append_backlog(item.get()) < 0) return -1;
    }
    if (PyErr_Occurred()) return -1;
    if (tls_state == State::wrapped && do_write() < 0) return app_report("Fatal error on SSL protocol");
    return 0;
}

int TlsTransport::append_backlog(PyObject* data) {
    Py_ssize_t n = PyObject_Length(data);  // sslproto counts len(data)
    if (n < 0) return -1;
    // What is sent is what was written: a buffer that may still change is
    // copied while it waits. One the SSL cannot take (not contiguous) waits
    // as it is, and fails as asyncio's does when the SSL is given it.
    Ref kept;
    Py_buffer view;
    if (PyBytes_Check(data)) {
        kept = Ref::borrow(data);
    } else if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) == 0) {
        kept = Ref::steal(PyBytes_FromStringAndSize(static_cast<const char*>(view.buf), view.len));
        PyBuffer_Release(&view);
        if (!kept) return -1;
    } else {
        if (!PyErr_ExceptionMatches(PyExc_BufferError) && !PyErr_ExceptionMatches(PyExc_TypeError)) return -1;
        PyErr_Clear();
        kept = Ref::borrow(data);
    }
    try {
        backlog.push_back(Pending{kept.get(), size_t(n)});
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
        return -1;
    }
    kept.release();
    backlog_bytes += size_t(n);
    return 0;
}

// sslproto's _do_write: the backlog through the SSL, then out.
int TlsTransport::do_write() {
    ModuleState* st = state();
    while (!backlog.empty()) {
        PyObject* data = backlog.front().data;
        Py_buffer view;
        if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
            PyErr_Clear();
            return replay_failure("write", data) < 0 ? -1 : process_outgoing();
        }
        size_t written = 0;
        int ok = write_records(view, &written, false);
        PyBuffer_Release(&view);
        if (ok != 1) {
            int err = lib_->SSL_get_error(ssl, 0);
            if (err == kTlsErrorWantRead || err == kTlsErrorWantWrite) break;
            if (replay_failure("write", data) < 0) {
                if (!raised_again(st)) return -1;
                PyErr_Clear();
            }
            break;
        }
        Pending done = backlog.front();
        backlog.pop_front();
        backlog_bytes -= done.size;
        Py_DECREF(done.data);
    }
    return process_outgoing();
}

// sslproto's _process_outgoing: what the SSL wrote went to the socket as it
// was written (put_ciphertext); what the kernel did not take goes to the
// socket's queue, unless that is over its marks; a failed send is the
// transport's write error. Then sslproto's _control_app_writing.
int TlsTransport::process_outgoing() {
    if (send_errno) {
        unsent.clear();
        errno = std::exchange(send_errno, 0);
        PyErr_SetFromErrno(PyExc_OSError);
        return write_failed();
    }
    if (!ssl_writing_paused && !unsent.empty() && send_unsent() < 0) return -1;
    if (maybe_pause_protocol() < 0) return -1;
    return maybe_resume_protocol();
}

// The socket transport's write() of `unsent`: sent now if nothing is
// queued, the rest queued; over the queue's high mark, the TLS layer's
// writing pauses (the socket transport's pause_writing to SSLProtocol).
int TlsTransport::send_unsent() {
    size_t sent = 0;
    if (queue.empty() && sock && !conn_lost) {
        ssize_t r = write_some(unsent.data(), unsent.size());
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            unsent.clear();
            PyErr_SetFromErrno(PyExc_OSError);
            return write_failed();
        }
        sent = r < 0 ? 0 : size_t(r);
        note_written(core_loop()->s.stats, r);
    }
    if (sent < unsent.size()) {
        Ref rest = Ref::steal(PyBytes_FromStringAndSize(unsent.data() + sent, Py_ssize_t(unsent.size() - sent)));
        if (!rest) return -1;
        Py_buffer view;
        if (PyObject_GetBuffer(rest.get(), &view, PyBUF_SIMPLE) < 0 || queue.push(&view, 0) < 0) return -1;
    }
    unsent.clear();
    if (queue.bytes() > socket_high_water) ssl_writing_paused = true;
    return 0;
}

// The socket's queue drained some: at its low mark, SSLProtocol's
// resume_writing, which sends what was held back.
int TlsTransport::after_send() {
    if (!ssl_writing_paused || queue.bytes() > socket_low_water) return 0;
    ssl_writing_paused = false;
    return process_outgoing();
}

bool TlsTransport::over_high_water() const { return write_buffer_size() >= high_water; }

int TlsTransport::after_write_limits_changed() {
    if (maybe_pause_protocol() < 0) return -1;
    return maybe_resume_protocol();
}

int TlsTransport::drop_queued_writes(PyObject* exc) {
    unsent.clear();
    send_errno = 0;
    return StreamTransport::drop_queued_writes(exc);
}

// ---- closing ----

// sslproto's _start_shutdown.
int TlsTransport::start_shutdown() {
    if (tls_state == State::flushing || tls_state == State::shutting_down || tls_state == State::unwrapped) return 0;
    closed = true;
    if (tls_state == State::handshaking) return abort_with(Py_None);
    tls_state = State::flushing;
    if (arm_timer(&shutdown_timer, shutdown_timeout, "_tls_check_shutdown_timeout") < 0) return -1;
    return do_flush();
}

int TlsTransport::check_shutdown_timeout() {
    if (tls_state != State::flushing && tls_state != State::shutting_down) return 0;
    Ref exc = Ref::steal(PyObject_CallFunction(PyExc_TimeoutError, "s", "SSL shutdown timed out"));
    return exc ? force_close(exc.get()) : -1;
}

// sslproto's _do_flush.
int TlsTransport::do_flush() {
    if (do_read() < 0) {
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) {
            // A BaseException out of the protocol's last reads (close()
            // calls them) leaves the shutdown half done; it goes on when
            // the loop runs again. sslproto stays flushing until its
            // shutdown timeout aborts the connection.
            flush_interrupted = true;
            Ref exc = Ref::steal(PyErr_GetRaisedException());
            if (schedule(kReadable) < 0) PyErr_WriteUnraisable(object());
            PyErr_SetRaisedException(exc.release());
        }
        return -1;
    }
    flush_interrupted = false;
    tls_state = State::shutting_down;
    return do_shutdown();
}

// sslproto's _do_shutdown: close_notify, unless the peer's TCP EOF came.
int TlsTransport::do_shutdown() {
    ModuleState* st = state();
    if (!tcp_eof) {
        Ref r = Ref::steal(PyObject_CallMethodNoArgs(sslobj, st->s_unwrap));
        if (!r) {
            if (raised_again(st)) {
                PyErr_Clear();
                return process_outgoing();
            }
            if (!PyErr_ExceptionMatches(st->SSLError)) return -1;
            Ref exc = Ref::steal(PyErr_GetRaisedException());
            return shutdown_complete(exc.get());
        }
    }
    if (process_outgoing() < 0 || call_eof_received() < 0) return -1;
    return shutdown_complete(nullptr);
}

// sslproto's _on_shutdown_complete.
int TlsTransport::shutdown_complete(PyObject* exc) {
    if (exc) {
        cancel_timer(&shutdown_timer);
        PyErr_SetRaisedException(Py_NewRef(exc));
        return tls_fatal("Fatal error on transport");
    }
    if (state()->tls_shutdown_timeout_until_lost) {
        // 3.14: the socket's close() flushes first, which a peer that does
        // not read can delay for ever; the timeout stays until
        // connection_lost (or starts, if the peer began the shutdown).
        if (!shutdown_timer && arm_timer(&shutdown_timer, shutdown_timeout, "_tls_check_shutdown_timeout") < 0) {
            return -1;
        }
    } else {
        cancel_timer(&shutdown_timer);
    }
    Ref close_socket = Ref::steal(PyObject_GetAttrString(object(), "_tls_close_socket"));
    return close_socket ? call_soon_current(close_socket.get(), {}) : -1;
}

// sslproto's _abort.
int TlsTransport::abort_with(PyObject* exc) {
    tls_state = State::unwrapped;
    return sock ? force_close(exc) : 0;
}

int TlsTransport::app_close() {
    if (closed) {
        // asyncio's TLS transport lets go of its TLS state on a second
        // close() (the first may come from the shutdown itself): what
        // get_extra_info held goes with it.
        Py_CLEAR(tls_extra);
        return 0;
    }
    closed = true;
    return start_shutdown();
}

int TlsTransport::app_abort() {
    closed = true;
    return abort_with(Py_None);
}

bool TlsTransport::app_is_closing() const {
    return closed || (state()->tls_is_closing_follows_socket && sock && closing);
}

// SSLProtocol.connection_lost, called as the socket goes.
int TlsTransport::protocol_connection_lost(PyObject* exc) {
    clear_backlog();
    unsent.clear();
    closed = true;
    int rc = 0;
    if (tls_state != State::handshaking && (app_state == AppState::connected || app_state == AppState::eof)) {
        app_state = AppState::lost;
        Ref lost = Ref::steal(PyObject_GetAttr(protocol, state()->s_connection_lost));
        rc = lost ? call_soon_current(lost.get(), {exc}) : -1;
    }
    tls_state = State::unwrapped;
    if (rc == 0) rc = wake_waiter(exc == Py_None ? nullptr : exc);
    cancel_timer(&shutdown_timer);
    cancel_timer(&handshake_timer);
    // No record is read or written any more: the SSL goes (get_extra_info
    // still has the SSLObject), as asyncio's SSLProtocol goes with its
    // transport.
    release_ssl();
    Py_CLEAR(incoming);
    Py_CLEAR(outgoing);
    Py_CLEAR(ssl_owner);
    Py_CLEAR(sslobj);
    return rc;
}

}  // namespace cxxloop::py
