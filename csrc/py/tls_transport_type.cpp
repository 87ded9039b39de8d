// TlsTransport's Python type, asyncio's _SSLProtocolTransport API, and
// loop._make_tls_transport, which takes an SSLObject that wrap_bio() made
// and checks it can drive that object's SSL directly.
#include <cstddef>

#include "methods.hpp"
#include "tls_bio.hpp"
#include "tls_transport.hpp"

namespace cxxloop::py {

struct TlsMethods {
    static TlsTransport* of(PyObject* t) { return kind_of<TlsTransport>(t); }

    static PyObject* none_or_null(int rc) { return rc < 0 ? nullptr : Py_NewRef(Py_None); }

    static PyObject* write(PyObject* t, PyObject* data) { return none_or_null(of(t)->app_write(data)); }
    static PyObject* writelines(PyObject* t, PyObject* data) { return none_or_null(of(t)->app_writelines(data)); }
    static PyObject* close(PyObject* t, PyObject*) { return none_or_null(of(t)->app_close()); }
    static PyObject* abort(PyObject* t, PyObject*) { return none_or_null(of(t)->app_abort()); }
    // _SSLProtocolTransport._force_close(exc).
    static PyObject* force_close(PyObject* t, PyObject* exc) {
        TlsTransport* tr = of(t);
        tr->closed = true;
        return none_or_null(tr->abort_with(exc));
    }
    // asyncio's hook for its tests: data into the backlog, to be
    // encrypted by the next read or write, as a slow socket leaves it.
    static PyObject* append_write_backlog(PyObject* t, PyObject* data) {
        return none_or_null(of(t)->append_backlog(data));
    }
    static PyObject* is_closing(PyObject* t, PyObject*) { return PyBool_FromLong(of(t)->app_is_closing()); }
    static PyObject* is_reading(PyObject* t, PyObject*) { return PyBool_FromLong(!of(t)->app_reading_paused); }
    static PyObject* pause_reading(PyObject* t, PyObject*) { return none_or_null(of(t)->app_pause_reading()); }
    static PyObject* resume_reading(PyObject* t, PyObject*) { return none_or_null(of(t)->app_resume_reading()); }
    static PyObject* write_eof(PyObject*, PyObject*) {
        PyErr_SetNone(PyExc_NotImplementedError);
        return nullptr;
    }
    static PyObject* can_write_eof(PyObject*, PyObject*) { Py_RETURN_FALSE; }

    // sslproto's _get_extra_info: the TLS details, then the socket's while
    // it is there.
    static PyObject* get_extra_info(PyObject* t, PyObject* args, PyObject* kwargs) {
        static const char* kwlist[] = {"name", "default", nullptr};
        PyObject *name, *dflt = Py_None;
        if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:get_extra_info", const_cast<char**>(kwlist), &name,
                                         &dflt)) {
            return nullptr;
        }
        TlsTransport* tr = of(t);
        if (tr->tls_extra) {
            PyObject* v = PyDict_GetItemWithError(tr->tls_extra, name);
            if (v) return Py_NewRef(v);
            if (PyErr_Occurred()) return nullptr;
        }
        if (!tr->sock || !tr->extra) return Py_NewRef(dflt);
        PyObject* v = PyDict_GetItemWithError(tr->extra, name);
        if (v) return Py_NewRef(v);
        return PyErr_Occurred() ? nullptr : Py_NewRef(dflt);
    }

    // sslproto's read flow control: how much ciphertext may wait for a
    // paused application before the socket stops being read.
    static PyObject* set_read_buffer_limits(PyObject* t, PyObject* args, PyObject* kwargs) {
        static const char* kwlist[] = {"high", "low", nullptr};
        PyObject *high = Py_None, *low = Py_None;
        if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:set_read_buffer_limits", const_cast<char**>(kwlist),
                                         &high, &low)) {
            return nullptr;
        }
        TlsTransport* tr = of(t);
        if (set_water_marks(high, low, TlsTransport::kReadHighWater, &tr->read_high_obj, &tr->read_low_obj,
                            &tr->read_high, &tr->read_low) < 0) {
            return nullptr;
        }
        return none_or_null(tr->control_ssl_reading());
    }
    static PyObject* get_read_buffer_limits(PyObject* t, PyObject*) {
        TlsTransport* tr = of(t);
        Ref low = Ref::steal(water_mark(tr->read_low_obj, tr->read_low));
        Ref high = Ref::steal(water_mark(tr->read_high_obj, tr->read_high));
        return low && high ? PyTuple_Pack(2, low.get(), high.get()) : nullptr;
    }
    static PyObject* get_read_buffer_size(PyObject* t, PyObject*) {
        TlsTransport* tr = of(t);
        return PyLong_FromSize_t(tr->ciphertext_pending());
    }

    // The callbacks the transport schedules on the loop.
    static PyObject* start_handshake(PyObject* t, PyObject*) {
        TlsTransport* tr = of(t);
        if (tr->tls_state != TlsTransport::State::handshaking || tr->handshake_started) Py_RETURN_NONE;
        return none_or_null(tr->start_handshake());
    }
    static PyObject* check_handshake_timeout(PyObject* t, PyObject*) {
        return none_or_null(of(t)->check_handshake_timeout());
    }
    static PyObject* check_shutdown_timeout(PyObject* t, PyObject*) {
        return none_or_null(of(t)->check_shutdown_timeout());
    }
    static PyObject* resume(PyObject* t, PyObject*) { return none_or_null(of(t)->resume_app_reading()); }
    static PyObject* do_read(PyObject* t, PyObject*) { return none_or_null(of(t)->do_read()); }
    // The socket's close, once the TLS shutdown is done.
    static PyObject* close_socket(PyObject* t, PyObject*) { return none_or_null(of(t)->StreamTransport::close()); }

    static PyObject* get_closed(PyObject* t, void*) { return PyBool_FromLong(of(t)->closed); }
    static PyObject* get_sslobj(PyObject* t, void*) {
        PyObject* o = of(t)->sslobj;
        return Py_NewRef(o ? o : Py_None);
    }

    // sslproto keeps the context as _SSLProtocolTransport._ssl_protocol._sslcontext;
    // code that looks for it on the transport (aiohttp does) finds it here.
    static PyObject* get_sslcontext(PyObject* t, void*) {
        TlsTransport* tr = of(t);
        PyObject* v = tr->tls_extra ? PyDict_GetItemWithError(tr->tls_extra, tr->state()->s_sslcontext) : nullptr;
        if (v) return Py_NewRef(v);
        return PyErr_Occurred() ? nullptr : Py_NewRef(Py_None);
    }

    static PyObject* repr(PyObject* t) {
        TlsTransport* tr = of(t);
        const char* state = !tr->sock ? " closed" : tr->closed ? " closing" : "";
        return PyUnicode_FromFormat("<%s%s fd=%d>", Py_TYPE(t)->tp_name, state, tr->fd);
    }
};

namespace {

const PyMethodDef tls_methods[] = {
    method_o<TlsMethods::write>("write", "Encrypt and send bytes-like data."),
    method_o<TlsMethods::writelines>("writelines", "Encrypt and send an iterable of bytes-like objects."),
    method_noargs<TlsMethods::write_eof>("write_eof", "Not supported over TLS: raises NotImplementedError."),
    method_noargs<TlsMethods::can_write_eof>("can_write_eof", "Return False: TLS has no half-close."),
    method_noargs<TlsMethods::close>("close", "Send close_notify after the buffered data; connection_lost(None) follows."),
    method_noargs<TlsMethods::abort>("abort", "Close now, dropping buffered data."),
    method_o<TlsMethods::force_close>("_force_close", nullptr),
    method_o<TlsMethods::append_write_backlog>("_test__append_write_backlog", nullptr),
    method_noargs<TlsMethods::is_closing>("is_closing", "Return True once close() or abort() was called."),
    method_noargs<TlsMethods::is_reading>("is_reading", "Return True unless reading is paused."),
    method_noargs<TlsMethods::pause_reading>("pause_reading", "Stop passing received data to the protocol."),
    method_noargs<TlsMethods::resume_reading>("resume_reading", "Resume passing received data to the protocol."),
    method_varargs_kw<TlsMethods::get_extra_info>("get_extra_info", "get_extra_info(name, default=None)"),
    method_varargs_kw<TlsMethods::set_read_buffer_limits>("set_read_buffer_limits",
                                                          "set_read_buffer_limits(high=None, low=None)"),
    method_noargs<TlsMethods::get_read_buffer_limits>("get_read_buffer_limits", "Return (low, high) read limits."),
    method_noargs<TlsMethods::get_read_buffer_size>("get_read_buffer_size", "Return the ciphertext waiting."),
    method_noargs<TlsMethods::start_handshake>("_tls_start_handshake", nullptr),
    method_noargs<TlsMethods::check_handshake_timeout>("_tls_check_handshake_timeout", nullptr),
    method_noargs<TlsMethods::check_shutdown_timeout>("_tls_check_shutdown_timeout", nullptr),
    method_noargs<TlsMethods::resume>("_tls_resume_reading", nullptr),
    method_noargs<TlsMethods::do_read>("_tls_do_read", nullptr),
    method_noargs<TlsMethods::close_socket>("_tls_close_socket", nullptr),
    kMethodsEnd,
};

const PyGetSetDef tls_getsets[] = {
    {"_closed", TlsMethods::get_closed, nullptr, nullptr, nullptr},
    {"_ssl_object", TlsMethods::get_sslobj, nullptr, nullptr, nullptr},
    {"_sslcontext", TlsMethods::get_sslcontext, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// The SSL behind an ssl.SSLObject: its _sslobj is an _ssl._SSLSocket,
// whose first fields (after the object header) are the weak reference to
// its socket and then the SSL*. That layout is the same in every CPython
// 3.11 to 3.15; it is trusted only if the SSL found points back at that
// very object (the ssl module keeps it as the SSL's app data), and the
// SSL's BIOs are the two MemoryBIOs' (whose BIO* follows their header).
struct SslSocketPrefix {
    PyObject_HEAD
    PyObject* socket;
    OpaqueSsl* ssl;
};
struct MemoryBioPrefix {
    PyObject_HEAD
    OpaqueBio* bio;
};

// What find_ssl found: the SSL, the object that owns it, and the SSL's
// BIOs, the MemoryBIOs'.
struct FoundSsl {
    OpaqueSsl* ssl = nullptr;
    Ref owner;
    OpaqueBio* rbio = nullptr;
    OpaqueBio* wbio = nullptr;
};

// True (with `found` set) if the SSL of `sslobj` can be driven here.
bool find_ssl(ModuleState* st, const TlsLibrary* lib, PyObject* sslobj, PyObject* incoming, PyObject* outgoing,
              FoundSsl* found) {
    if (Py_TYPE(sslobj) != reinterpret_cast<PyTypeObject*>(st->SSLObject)) return false;
    for (PyObject* bio : {incoming, outgoing}) {
        if (Py_TYPE(bio) != reinterpret_cast<PyTypeObject*>(st->MemoryBIO) ||
            Py_TYPE(bio)->tp_basicsize < Py_ssize_t(sizeof(MemoryBioPrefix))) {
            return false;
        }
    }
    Ref inner = Ref::steal(PyObject_GetAttr(sslobj, st->s_sslobj));
    if (!inner) {
        PyErr_Clear();
        return false;
    }
    PyTypeObject* tp = Py_TYPE(inner.get());
    if (tp != reinterpret_cast<PyTypeObject*>(st->SSLSocketType) ||
        tp->tp_basicsize < Py_ssize_t(sizeof(SslSocketPrefix))) {
        return false;
    }
    OpaqueSsl* candidate = reinterpret_cast<SslSocketPrefix*>(inner.get())->ssl;
    if (!candidate || lib->SSL_get_ex_data(candidate, 0) != inner.get()) return false;
    OpaqueBio* in = reinterpret_cast<MemoryBioPrefix*>(incoming)->bio;
    OpaqueBio* out = reinterpret_cast<MemoryBioPrefix*>(outgoing)->bio;
    if (!in || !out || in == out || lib->SSL_get_rbio(candidate) != in || lib->SSL_get_wbio(candidate) != out) {
        return false;
    }
    found->ssl = candidate;
    found->owner = std::move(inner);
    found->rbio = in;
    found->wbio = out;
    return true;
}

// What both ways to a TLS transport are given.
struct TlsArgs {
    PyObject *protocol, *sslobj, *incoming, *outgoing, *sslcontext, *waiter, *handshake_timeout, *shutdown_timeout;
};

// A TLS transport over `fd` for the SSL find_ssl found, not started: the
// SSL now reads and writes through the transport's BIOs.
PyObject* new_tls_transport(CoreLoop* loop, int fd, PyObject* context, bool schedule_in_context,
                            const TlsLibrary* lib, const TlsArgs& a, FoundSsl& found) {
    ModuleState* st = loop->s.st;
    Ref tls_extra = Ref::steal(PyDict_New());
    if (!tls_extra || PyDict_SetItem(tls_extra.get(), st->s_sslcontext, a.sslcontext) < 0) return nullptr;
    Ref t = Ref::steal(new_transport<TlsTransport>(st->tls_transport_type, loop, fd, context, schedule_in_context, lib));
    if (!t) return nullptr;
    TlsTransport* tr = kind_of<TlsTransport>(t.get());
    if (!attach_transport_bios(*lib, found.ssl, tr)) return PyErr_NoMemory();
    tr->ssl = found.ssl;
    tr->ssl_owner = found.owner.release();
    tr->memory_rbio = found.rbio;
    tr->memory_wbio = found.wbio;
    lib->keep_buffers(tr->ssl);
    tr->tls_extra = tls_extra.release();
    tr->sslobj = Py_NewRef(a.sslobj);
    tr->incoming = Py_NewRef(a.incoming);
    tr->outgoing = Py_NewRef(a.outgoing);
    tr->handshake_timeout = Py_NewRef(a.handshake_timeout);
    tr->shutdown_timeout = Py_NewRef(a.shutdown_timeout);
    return t.release();
}

// loop._make_tls_transport(sock, protocol, sslobj, incoming, outgoing,
// sslcontext, waiter, extra, server, handshake_timeout, shutdown_timeout,
// context): the TLS transport, or None if the SSL cannot be driven here
// (the caller then uses asyncio's sslproto, and the socket is untouched).
PyObject* make_tls_transport(PyObject* op, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 12) {
        PyErr_Format(PyExc_TypeError, "_make_tls_transport() takes 12 arguments (%zd given)", nargs);
        return nullptr;
    }
    PyObject *sock = args[0], *extra = args[7], *server = args[8], *context = args[11];
    TlsArgs a{args[1], args[2], args[3], args[4], args[5], args[6], args[9], args[10]};
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(op);
    if (check_closed(loop) < 0 || check_context_arg(context) < 0) return nullptr;
    ModuleState* st = loop->s.st;
    const TlsLibrary* lib = TlsLibrary::get();
    FoundSsl found;
    if (!lib || Py_TYPE(sock) != reinterpret_cast<PyTypeObject*>(st->socket_type) ||
        !find_ssl(st, lib, a.sslobj, a.incoming, a.outgoing, &found)) {
        Py_RETURN_NONE;
    }
    int fd = sock_fileno(st, sock);
    if (fd < 0) return nullptr;
    Ref extra_dict = Ref::steal(extra == Py_None ? PyDict_New() : Py_NewRef(extra));
    if (!extra_dict || fill_socket_extra(st, extra_dict.get(), sock) < 0) return nullptr;
    Ref r = Ref::steal(PyObject_CallOneArg(st->set_nodelay, sock));
    if (!r) return nullptr;
    Ref own_context = Ref::steal(context == Py_None ? PyContext_CopyCurrent() : Py_NewRef(context));
    if (!own_context) return nullptr;
    Ref t = Ref::steal(new_tls_transport(loop, fd, own_context.get(), context != Py_None, lib, a, found));
    if (!t || kind_of<TlsTransport>(t.get())->start(sock, a.protocol, a.waiter, extra_dict.get(), server) < 0) {
        return nullptr;
    }
    return t.release();
}

// loop._tls_take_over(transport, protocol, sslobj, incoming, outgoing,
// sslcontext, waiter, handshake_timeout, shutdown_timeout, received):
// start_tls over one of the loop's socket transports, whose socket the TLS
// transport takes over, `received` (bytes or None) being what was read from
// it before and is the start of the handshake; None (the transport
// untouched) where it cannot, and asyncio's start_tls runs instead.
PyObject* tls_take_over(PyObject* op, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 10) {
        PyErr_Format(PyExc_TypeError, "_tls_take_over() takes 10 arguments (%zd given)", nargs);
        return nullptr;
    }
    PyObject *transport = args[0], *received = args[9];
    if (received != Py_None && !PyBytes_Check(received)) {
        PyErr_Format(PyExc_TypeError, "received must be bytes or None, not %.200s", Py_TYPE(received)->tp_name);
        return nullptr;
    }
    TlsArgs a{args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8]};
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(op);
    if (check_closed(loop) < 0) return nullptr;
    ModuleState* st = loop->s.st;
    const TlsLibrary* lib = TlsLibrary::get();
    if (!lib || Py_TYPE(transport) != st->stream_transport_type) Py_RETURN_NONE;
    StreamTransport* old = kind_of<StreamTransport>(transport);
    // A connection in a plain, open state, whose socket the transport
    // reads and writes itself.
    if (old->core_loop() != loop || !old->sock || !old->registered || old->closing || old->conn_lost ||
        old->socket_methods || old->sendfile_active() || old->eof || old->read_eof ||
        Py_TYPE(old->sock) != reinterpret_cast<PyTypeObject*>(st->socket_type)) {
        Py_RETURN_NONE;
    }
    FoundSsl found;
    if (!find_ssl(st, lib, a.sslobj, a.incoming, a.outgoing, &found)) Py_RETURN_NONE;
    // asyncio's start_tls resumes reading with call_soon: unless the old
    // transport was given a context (3.15), the reads run in a copy of the
    // one current here.
    Ref context = Ref::steal(old->schedule_in_context ? Py_NewRef(old->context) : PyContext_CopyCurrent());
    if (!context) return nullptr;
    Ref t = Ref::steal(new_tls_transport(loop, old->fd, context.get(), old->schedule_in_context, lib, a, found));
    if (!t || kind_of<TlsTransport>(t.get())->take_over(old, a.protocol, a.waiter, received) < 0) return nullptr;
    return t.release();
}

// Why the TLS transport cannot be used in this process, or None.
PyObject* tls_unavailable(PyObject*, PyObject*) {
    if (TlsLibrary::get()) Py_RETURN_NONE;
    return PyUnicode_FromString(TlsLibrary::unavailable_reason());
}

}  // namespace

const PyMethodDef loop_tls_methods[] = {
    method_fastcall<make_tls_transport>("_make_tls_transport", nullptr),
    method_fastcall<tls_take_over>("_tls_take_over", nullptr),
    method_noargs<tls_unavailable>("_tls_unavailable", nullptr),
    kMethodsEnd,
};

int init_tls_transport_type(PyObject* module, ModuleState* st) {
    static const TransportTables tables({tls_methods, transport_protocol_methods, flow_control_methods},
                                        {transport_getsets, flow_control_getsets, tls_getsets});
    // Named for asyncio's ssl= API, as its _SSLProtocolTransport is: code
    // tells a TLS transport by "ssl" in its class name.
    st->tls_transport_type = make_transport_type(module, "cxxloop._core.SSLTransport",
                                                 "TLS over a TCP or Unix stream socket.", st->FlowControlMixin,
                                                 sizeof(TlsTransport), tables, slot<TlsMethods::repr>());
    if (!st->tls_transport_type) return -1;
    PyObject* type = reinterpret_cast<PyObject*>(st->tls_transport_type);
    // asyncio's _SSLProtocolTransport: start_tls may wrap it (TLS in TLS);
    // loop.sendfile reads and writes.
    if (PyObject_SetAttrString(type, "_start_tls_compatible", Py_True) < 0 ||
        PyObject_SetAttrString(type, "_sendfile_compatible", st->sendfile_fallback) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "SSLTransport", type);
}

}  // namespace cxxloop::py
