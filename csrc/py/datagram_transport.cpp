// DatagramTransport: create_datagram_endpoint's transport, with asyncio's
// _SelectorDatagramTransport semantics.
//
// It is a StreamData transport (see stream_transport.hpp) whose reads and
// writes are whole datagrams. For IPv4 and IPv6 it calls recvfrom() itself,
// into the loop's scratch buffer, and builds the sender's address as the
// socket module does (reusing the last tuple while the same peer keeps
// sending); a connected socket sends with send(). Other families (AF_UNIX
// paths), and sendto() to an address, go through the socket object's own
// recvfrom / sendto, which parse and resolve addresses exactly as asyncio's
// transport sees them.
//
// Like asyncio, it handles one datagram per loop iteration and hands
// OSErrors to protocol.error_received(); an exception from the protocol's
// callbacks goes to the loop's exception handler and the transport stays
// open, as a failing callback would in asyncio.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "loop.hpp"
#include "stream_transport.hpp"

namespace cxxloop::py {
namespace {

// asyncio counts each queued datagram as its payload plus 8 bytes from
// 3.13 on, as its payload before.
constexpr size_t kHeaderSize = PY_VERSION_HEX >= 0x030D0000 ? 8 : 0;

DatagramState* dgram(PyObject* t) { return stream_data(t)->dgram.get(); }

// An OSError goes to protocol.error_received(); anything else is fatal.
// What error_received() raises goes to the caller of sendto() (`raise_to_caller`),
// else to the loop's handler.
int send_or_receive_failed(PyObject* t, const char* fatal_message, bool raise_to_caller) {
    if (!PyErr_ExceptionMatches(PyExc_OSError)) {
        return must_propagate() ? -1 : stream_fatal_error(t, fatal_message);
    }
    Ref exc = Ref::steal(PyErr_GetRaisedException());
    PyObject* protocol = stream_data(t)->protocol;
    if (!protocol) return 0;  // connection_lost has run: nobody to tell
    PyObject* args[] = {protocol, exc.get()};
    Ref r = Ref::steal(
        PyObject_VectorcallMethod(stream_state(stream_data(t))->s_error_received, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                  nullptr));
    if (r) return 0;
    if (raise_to_caller) return -1;
    return report_raised_to_loop(t, "Exception in callback DatagramTransport: protocol.error_received() failed");
}

bool would_block() {
    return PyErr_ExceptionMatches(PyExc_BlockingIOError) || PyErr_ExceptionMatches(PyExc_InterruptedError);
}

// The address recvfrom() filled in, as socket.recvfrom() returns it.
PyObject* make_address(DatagramState* s, const sockaddr_storage& sa, socklen_t len) {
    if (s->last_addr && len == s->last_len && std::memcmp(&sa, &s->last_sa, len) == 0) return Py_NewRef(s->last_addr);
    char host[INET6_ADDRSTRLEN];
    Ref addr;
    if (sa.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
        if (!inet_ntop(AF_INET, &in->sin_addr, host, sizeof host)) return PyErr_SetFromErrno(PyExc_OSError);
        addr = Ref::steal(Py_BuildValue("(si)", host, int(ntohs(in->sin_port))));
    } else if (sa.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host)) return PyErr_SetFromErrno(PyExc_OSError);
        addr = Ref::steal(Py_BuildValue("(siII)", host, int(ntohs(in6->sin6_port)), unsigned(ntohl(in6->sin6_flowinfo)),
                                        unsigned(in6->sin6_scope_id)));
    } else {
        PyErr_Format(PyExc_OSError, "unexpected address family %d", int(sa.ss_family));
        return nullptr;
    }
    if (!addr) return nullptr;
    Py_XSETREF(s->last_addr, Py_NewRef(addr.get()));
    std::memcpy(&s->last_sa, &sa, len);
    s->last_len = len;
    return addr.release();
}

// One recvfrom. Returns 1 with *data and *addr set, 0 if nothing is
// waiting, -1 with an exception set.
int receive(PyObject* t, Ref* data, Ref* addr) {
    StreamData* d = stream_data(t);
    DatagramState* s = d->dgram.get();
    if (s->family != AF_INET && s->family != AF_INET6) {
        Ref size = Ref::steal(PyLong_FromSize_t(kReadBufferSize));
        if (!size) return -1;
        PyObject* args[] = {d->sock, size.get()};
        Ref pair =
            Ref::steal(PyObject_VectorcallMethod(stream_state(d)->s_recvfrom, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                                 nullptr));
        if (!pair) {
            if (!would_block()) return -1;
            PyErr_Clear();
            return 0;
        }
        if (!PyTuple_Check(pair.get()) || PyTuple_GET_SIZE(pair.get()) != 2) {
            PyErr_SetString(PyExc_TypeError, "socket.recvfrom() did not return (data, address)");
            return -1;
        }
        *data = Ref::borrow(PyTuple_GET_ITEM(pair.get(), 0));
        *addr = Ref::borrow(PyTuple_GET_ITEM(pair.get(), 1));
        return 1;
    }
    char* buf = read_buffer(stream_loop(d));
    if (!buf) return -1;
    sockaddr_storage sa;
    socklen_t len;
    ssize_t n;
    do {
        len = sizeof sa;
        n = recvfrom(d->fd, buf, kReadBufferSize, 0, reinterpret_cast<sockaddr*>(&sa), &len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    *data = Ref::steal(PyBytes_FromStringAndSize(buf, n));
    if (!*data) return -1;
    *addr = Ref::steal(make_address(s, sa, len));
    return *addr ? 1 : -1;
}

// One datagram out now. Returns 1 if sent, 0 if the socket would block,
// -1 with an exception set.
int send_datagram(StreamData* d, PyObject* data, PyObject* addr) {
    if (d->dgram->connected) {
        Py_buffer view;
        if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return -1;
        ssize_t n;
        do {
            n = send(d->fd, view.buf, size_t(view.len), 0);
        } while (n < 0 && errno == EINTR);
        PyBuffer_Release(&view);
        if (n >= 0) return 1;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    PyObject* args[] = {d->sock, data, addr};
    Ref r = Ref::steal(
        PyObject_VectorcallMethod(stream_state(d)->s_sendto, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    if (r) return 1;
    if (!would_block()) return -1;
    PyErr_Clear();
    return 0;
}

int enqueue(PyObject* t, PyObject* data, PyObject* addr) {
    DatagramState* s = dgram(t);
    // What is queued must not change: a bytes copy of mutable data.
    Ref copy = Ref::steal(PyBytes_CheckExact(data) ? Py_NewRef(data) : PyBytes_FromObject(data));
    if (!copy) return -1;
    size_t size = size_t(PyBytes_GET_SIZE(copy.get()));
    try {
        s->queue.push_back(Datagram{copy.get(), Py_NewRef(addr)});
    } catch (const std::bad_alloc&) {
        Py_DECREF(addr);
        PyErr_NoMemory();
        return -1;
    }
    copy.release();
    s->bytes += size + kHeaderSize;
    return stream_maybe_pause_protocol(t);
}

// transport.sendto(data, addr=None)
PyObject* sendto(PyObject* t, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"data", "addr", nullptr};
    PyObject *data, *addr = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:sendto", const_cast<char**>(kwlist), &data, &addr)) {
        return nullptr;
    }
    if (!is_bytes_like(data)) {
        PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%.200s'",
                     Py_TYPE(data)->tp_name);
        return nullptr;
    }
#if PY_VERSION_HEX < 0x030D0000
    // Before 3.13 asyncio sends nothing for empty data; since, an empty datagram.
    Py_ssize_t len = PyObject_Length(data);
    if (len < 0) return nullptr;
    if (len == 0) Py_RETURN_NONE;
#endif
    StreamData* d = stream_data(t);
    DatagramState* s = d->dgram.get();
    if (s->address) {
        int same = addr == Py_None ? 1 : PyObject_RichCompareBool(addr, s->address, Py_EQ);
        if (same < 0) return nullptr;
        if (!same) {
            Ref text = Ref::steal(PyObject_Str(s->address));
            if (text) PyErr_Format(PyExc_ValueError, "Invalid address: must be None or %U", text.get());
            return nullptr;
        }
        addr = s->address;
    }
    // After the connection is lost there is no socket to send on.
    if (d->conn_lost && (s->address || !d->sock)) {
        if (stream_drop_after_lost(d) < 0) return nullptr;
        Py_RETURN_NONE;
    }
    if (s->queue.empty()) {
        int rc = send_datagram(d, data, addr);
        if (rc > 0) Py_RETURN_NONE;
        if (rc < 0) {
            if (send_or_receive_failed(t, "Fatal write error on datagram transport", true) < 0) return nullptr;
            Py_RETURN_NONE;
        }
        // The rest waits for the socket to take more.
    }
    if (enqueue(t, data, addr) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* get_address(PyObject* t, void*) {
    DatagramState* s = dgram(t);
    return Py_NewRef(s && s->address ? s->address : Py_None);
}

PyObject* get_buffer_size(PyObject* t, void*) { return PyLong_FromSize_t(write_buffer_size(stream_data(t))); }

// loop._make_datagram_transport(sock, protocol, address=None, waiter=None, extra=None)
PyObject* make_datagram_transport(PyObject* op, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"sock", "protocol", "address", "waiter", "extra", nullptr};
    PyObject *sock, *protocol, *address = Py_None, *waiter = Py_None, *extra = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|OOO:_make_datagram_transport", const_cast<char**>(kwlist),
                                     &sock, &protocol, &address, &waiter, &extra)) {
        return nullptr;
    }
    CoreLoop* loop = reinterpret_cast<CoreLoop*>(op);
    if (check_closed(loop) < 0) return nullptr;
    ModuleState* st = loop->s.st;
    int fd = sock_fileno(st, sock);
    if (fd < 0) return nullptr;
    Ref family_obj = Ref::steal(PyObject_GetAttr(sock, st->s_family));
    long family = family_obj ? PyLong_AsLong(family_obj.get()) : -1;
    if (family == -1 && PyErr_Occurred()) return nullptr;
    Ref extra_dict = Ref::steal(extra == Py_None ? PyDict_New() : Py_NewRef(extra));
    if (!extra_dict || stream_fill_extra(st, extra_dict.get(), sock) < 0) return nullptr;
    Ref peer = Ref::steal(PyMapping_GetItemString(extra_dict.get(), "peername"));
    int connected = peer ? PyObject_IsTrue(peer.get()) : -1;
    if (connected < 0) return nullptr;
    Ref t = Ref::steal(stream_transport_start(loop, loop->s.st->datagram_type, TransportKind::datagram, fd, sock, protocol,
                                              waiter, extra_dict.get(), Py_None));
    if (!t) return nullptr;
    DatagramState* s = dgram(t.get());
    s->family = int(family);
    s->connected = connected;
    // asyncio tests `if self._address:`, so a false address means none.
    int has_address = PyObject_IsTrue(address);
    if (has_address < 0) return nullptr;
    if (has_address) s->address = Py_NewRef(address);
    return t.release();
}

PyMethodDef datagram_methods[] = {
    {"sendto", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(sendto)), METH_VARARGS | METH_KEYWORDS,
     "sendto(data, addr=None): send one datagram; it is queued while the socket is full."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef datagram_getsets[] = {
    {"_address", get_address, nullptr, nullptr, nullptr},
    {"_buffer_size", get_buffer_size, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

int datagram_read_ready(PyObject* t) {
    StreamData* d = stream_data(t);
    if (d->conn_lost) return 0;
    Ref data, addr;
    int rc = receive(t, &data, &addr);
    if (rc == 0) return 0;
    // An edge-triggered fd does not report what is still queued: read again
    // next iteration, one datagram per iteration as asyncio does.
    if (stream_schedule(t, kReadable) < 0) return -1;
    if (rc < 0) return send_or_receive_failed(t, "Fatal read error on datagram transport", false);
    PyObject* args[] = {d->protocol, data.get(), addr.get()};
    Ref r = Ref::steal(
        PyObject_VectorcallMethod(stream_state(d)->s_datagram_received, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                  nullptr));
    if (r) return 0;
    return report_raised_to_loop(t, "Exception in callback DatagramTransport: protocol.datagram_received() failed");
}

int datagram_write_ready(PyObject* t) {
    StreamData* d = stream_data(t);
    DatagramState* s = d->dgram.get();
    while (!s->queue.empty()) {
        Datagram front = s->queue.front();
        s->queue.pop_front();
        Ref data = Ref::steal(front.data), addr = Ref::steal(front.addr);
        size_t size = size_t(PyBytes_GET_SIZE(data.get())) + kHeaderSize;
        s->bytes -= size;
        int rc = send_datagram(d, data.get(), addr.get());
        if (rc == 0) {  // try again when the socket takes more
            s->queue.push_front(Datagram{data.release(), addr.release()});
            s->bytes += size;
            break;
        }
        if (rc < 0) {
            // The datagram is dropped; what follows it waits for the next
            // iteration, since the socket stays writable without an edge.
            if (send_or_receive_failed(t, "Fatal write error on datagram transport", false) < 0) return -1;
            return d->conn_lost || s->queue.empty() ? 0 : stream_schedule(t, kWritable);
        }
    }
    if (stream_maybe_resume_protocol(t) < 0) return -1;  // may queue more
    if (s->queue.empty() && d->closing) return stream_connection_lost(t, Py_None);
    return 0;
}

PyMethodDef loop_datagram_methods[] = {
    {"_make_datagram_transport",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(make_datagram_transport)),
     METH_VARARGS | METH_KEYWORDS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

int init_datagram_transport_type(PyObject* module, ModuleState* st) {
    static const TransportTables tables({stream_core_methods, stream_flow_methods, datagram_methods},
                                        {stream_core_getsets, stream_write_getsets, datagram_getsets});
    // asyncio's is a _SelectorTransport, so a Transport as well.
    Ref bases = Ref::steal(PyTuple_Pack(2, st->FlowControlMixin, st->DatagramTransportBase));
    if (!bases) return -1;
    st->datagram_type = make_transport_type(module, "cxxloop._core.DatagramTransport",
                                                "A UDP, UDP-Lite or Unix datagram socket transport.", bases.get(),
                                                tables);
    if (!st->datagram_type) return -1;
    return PyModule_AddObjectRef(module, "DatagramTransport", reinterpret_cast<PyObject*>(st->datagram_type));
}

}  // namespace cxxloop::py
