// DatagramTransport: create_datagram_endpoint's transport, with asyncio's
// _SelectorDatagramTransport semantics.
//
// For IPv4 and IPv6 it calls recvfrom() itself, into the loop's scratch
// buffer, and builds the sender's address as the socket module does
// (reusing the last tuple while the same peer keeps sending); a connected
// socket sends with send(). Other families (AF_UNIX paths), and sendto()
// to an address, go through the socket object's own recvfrom / sendto,
// which parse and resolve addresses exactly as asyncio's transport sees
// them.
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

#include "datagram_queue.hpp"
#include "methods.hpp"
#include "transport.hpp"

namespace cxxloop::py {
namespace {

bool would_block() {
    return PyErr_ExceptionMatches(PyExc_BlockingIOError) || PyErr_ExceptionMatches(PyExc_InterruptedError);
}

class DatagramTransport : public Transport {
public:
    DatagramTransport(CoreLoop* loop, int fd, PyObject* context, int family_, bool connected_)
        : Transport(loop, fd, context, false), family(family_), connected(connected_) {}

    int on_events(uint32_t events) override {
        if ((events & kReadable) && !closing && !paused && read_ready() < 0) return -1;
        if ((events & kWritable) && !queue.empty() && sock) return write_ready();
        return 0;
    }
    bool has_queued_writes() const override { return !queue.empty(); }
    size_t write_buffer_size() const override { return queue.bytes(); }
    int drop_queued_writes(PyObject*) override {
        queue.clear();
        return 0;
    }
    int traverse_kind(visitproc visit, void* arg) const override {
        Py_VISIT(address);
        Py_VISIT(last_addr);
        return queue.traverse(visit, arg);
    }
    void clear_kind() override {
        queue.clear();
        Py_CLEAR(address);
        Py_CLEAR(last_addr);
    }

    int read_ready();
    int write_ready();
    int send_to(PyObject* data, PyObject* addr);

    DatagramQueue queue;
    PyObject* address = nullptr;   // remote_addr of create_datagram_endpoint, or null
    // The address object of the last datagram received and its sockaddr:
    // a peer that keeps sending gets the same tuple instead of a new one.
    PyObject* last_addr = nullptr;
    sockaddr_storage last_sa{};
    socklen_t last_len = 0;
    int family;
    bool connected;  // extra['peername'] was set: send() ignores addr

private:
    int failed(const char* fatal_message, bool raise_to_caller);
    PyObject* make_address(const sockaddr_storage& sa, socklen_t len);
    int receive(Ref* data, Ref* addr);
    int send_one(PyObject* data, PyObject* addr);
    size_t header() const { return state()->datagram_header_size; }
};

// An OSError goes to protocol.error_received(); anything else is fatal.
// What error_received() raises goes to the caller of sendto()
// (`raise_to_caller`), else to the loop's handler.
int DatagramTransport::failed(const char* fatal_message, bool raise_to_caller) {
    if (!PyErr_ExceptionMatches(PyExc_OSError)) return must_propagate() ? -1 : fatal_error(fatal_message);
    Ref exc = Ref::steal(PyErr_GetRaisedException());
    if (!protocol) return 0;  // connection_lost has run: nobody to tell
    PyObject* args[] = {protocol, exc.get()};
    Ref r = Ref::steal(
        PyObject_VectorcallMethod(state()->s_error_received, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    if (r) return 0;
    if (raise_to_caller) return -1;
    return report_raised("Exception in callback DatagramTransport: protocol.error_received() failed");
}

// The address recvfrom() filled in, as socket.recvfrom() returns it.
PyObject* DatagramTransport::make_address(const sockaddr_storage& sa, socklen_t len) {
    if (last_addr && len == last_len && std::memcmp(&sa, &last_sa, len) == 0) return Py_NewRef(last_addr);
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
    Py_XSETREF(last_addr, Py_NewRef(addr.get()));
    std::memcpy(&last_sa, &sa, len);
    last_len = len;
    return addr.release();
}

// One recvfrom. Returns 1 with *data and *addr set, 0 if nothing is
// waiting, -1 with an exception set.
int DatagramTransport::receive(Ref* data, Ref* addr) {
    if (family != AF_INET && family != AF_INET6) {
        Ref size = Ref::steal(PyLong_FromSize_t(kReadBufferSize));
        if (!size) return -1;
        PyObject* args[] = {sock, size.get()};
        Ref pair =
            Ref::steal(PyObject_VectorcallMethod(state()->s_recvfrom, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
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
        Py_ssize_t n = PyObject_Size(data->get());
        if (n < 0) PyErr_Clear();  // the protocol gets it all the same
        note_read(core_loop()->s.stats, n);
        return 1;
    }
    char* buf = read_buffer(core_loop());
    if (!buf) return -1;
    sockaddr_storage sa;
    socklen_t len;
    ssize_t n;
    do {
        len = sizeof sa;
        n = recvfrom(fd, buf, kReadBufferSize, 0, reinterpret_cast<sockaddr*>(&sa), &len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    note_read(core_loop()->s.stats, n);
    *data = Ref::steal(PyBytes_FromStringAndSize(buf, n));
    if (!*data) return -1;
    *addr = Ref::steal(make_address(sa, len));
    return *addr ? 1 : -1;
}

// One datagram out now. Returns 1 if sent, 0 if the socket would block,
// -1 with an exception set.
int DatagramTransport::send_one(PyObject* data, PyObject* addr) {
    if (connected) {
        Py_buffer view;
        if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return -1;
        ssize_t n;
        do {
            n = send(fd, view.buf, size_t(view.len), 0);
        } while (n < 0 && errno == EINTR);
        PyBuffer_Release(&view);
        note_written(core_loop()->s.stats, n);
        if (n >= 0) return 1;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    PyObject* args[] = {sock, data, addr};
    Ref r = Ref::steal(PyObject_VectorcallMethod(state()->s_sendto, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    if (r) {
        Py_ssize_t n = PyLong_Check(r.get()) ? PyLong_AsSsize_t(r.get()) : 0;
        if (n < 0) PyErr_Clear();  // sent all the same
        note_written(core_loop()->s.stats, n);
        return 1;
    }
    if (!would_block()) return -1;
    PyErr_Clear();
    return 0;
}

int DatagramTransport::read_ready() {
    if (conn_lost) return 0;
    Ref data, addr;
    int rc = receive(&data, &addr);
    if (rc == 0) return 0;
    // An edge-triggered fd does not report what is still queued: read again
    // next iteration, one datagram per iteration as asyncio does.
    if (schedule(kReadable) < 0) return -1;
    if (rc < 0) return failed("Fatal read error on datagram transport", false);
    PyObject* args[] = {protocol, data.get(), addr.get()};
    Ref r = Ref::steal(
        PyObject_VectorcallMethod(state()->s_datagram_received, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    if (r) return 0;
    return report_raised("Exception in callback DatagramTransport: protocol.datagram_received() failed");
}

int DatagramTransport::write_ready() {
    while (!queue.empty()) {
        Datagram front = queue.pop_front(header());
        Ref data = Ref::steal(front.data), addr = Ref::steal(front.addr);
        int rc = send_one(data.get(), addr.get());
        if (rc == 0) {  // try again when the socket takes more
            if (queue.push_front(Datagram{data.release(), addr.release()}, header()) < 0) return -1;
            break;
        }
        if (rc < 0) {
            // The datagram is dropped; what follows it waits for the next
            // iteration, since the socket stays writable without an edge.
            if (failed("Fatal write error on datagram transport", false) < 0) return -1;
            return conn_lost || queue.empty() ? 0 : schedule(kWritable);
        }
    }
    if (maybe_resume_protocol() < 0) return -1;  // may queue more
    if (queue.empty() && closing) return connection_lost(Py_None);
    return 0;
}

int DatagramTransport::send_to(PyObject* data, PyObject* addr) {
    if (!is_bytes_like(data)) {
        PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%.200s'",
                     Py_TYPE(data)->tp_name);
        return -1;
    }
    if (!state()->datagram_sends_empty) {
        // Before 3.13 asyncio sends nothing for empty data; since, an empty datagram.
        Py_ssize_t len = PyObject_Length(data);
        if (len <= 0) return len < 0 ? -1 : 0;
    }
    if (address) {
        int same = addr == Py_None ? 1 : PyObject_RichCompareBool(addr, address, Py_EQ);
        if (same < 0) return -1;
        if (!same) {
            Ref text = Ref::steal(PyObject_Str(address));
            if (text) PyErr_Format(PyExc_ValueError, "Invalid address: must be None or %U", text.get());
            return -1;
        }
        addr = address;
    }
    // After the connection is lost there is no socket to send on.
    if (conn_lost && (address || !sock)) return drop_after_lost();
    if (queue.empty()) {
        int rc = send_one(data, addr);
        if (rc > 0) return 0;
        if (rc < 0) return failed("Fatal write error on datagram transport", true);
        // The rest waits for the socket to take more, which asyncio's
        // closed loop refuses to watch.
        if (check_can_wait_for_writable() < 0) return -1;
    }
    // What is queued must not change: a bytes copy of anything else.
    PyObject* copy = PyBytes_CheckExact(data) ? Py_NewRef(data) : PyBytes_FromObject(data);
    if (!copy) return -1;
    if (queue.push_back(Datagram{copy, Py_NewRef(addr)}, header()) < 0) return -1;
    return maybe_pause_protocol();
}

DatagramTransport* datagram_of(PyObject* t) { return kind_of<DatagramTransport>(t); }

// transport.sendto(data, addr=None)
PyObject* sendto_method(PyObject* t, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"data", "addr", nullptr};
    PyObject *data, *addr = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:sendto", const_cast<char**>(kwlist), &data, &addr)) {
        return nullptr;
    }
    if (datagram_of(t)->send_to(data, addr) < 0) return nullptr;
    Py_RETURN_NONE;
}

PyObject* get_address(PyObject* t, void*) {
    PyObject* a = datagram_of(t)->address;
    return Py_NewRef(a ? a : Py_None);
}

PyObject* get_buffer_size(PyObject* t, void*) { return PyLong_FromSize_t(datagram_of(t)->write_buffer_size()); }

PyObject* repr(PyObject* t) {
    DatagramTransport* tr = datagram_of(t);
    const char* state = !tr->sock ? " closed" : tr->closing ? " closing" : "";
    const char* name = Py_TYPE(t)->tp_name;
    if (!tr->sock || tr->core_loop()->s.closed) return PyUnicode_FromFormat("<%s%s fd=%d>", name, state, tr->fd);
    return PyUnicode_FromFormat("<%s%s fd=%d read=%s write=<%s, bufsize=%zu>>", name, state, tr->fd,
                                tr->closing ? "idle" : "polling", tr->queue.empty() ? "idle" : "polling",
                                tr->write_buffer_size());
}

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
    if (!extra_dict || fill_socket_extra(st, extra_dict.get(), sock) < 0) return nullptr;
    Ref peer = Ref::steal(PyMapping_GetItemString(extra_dict.get(), "peername"));
    int connected = peer ? PyObject_IsTrue(peer.get()) : -1;
    if (connected < 0) return nullptr;
    // asyncio tests `if self._address:`, so a false address means none.
    int has_address = PyObject_IsTrue(address);
    if (has_address < 0) return nullptr;
    Ref context = Ref::steal(PyContext_CopyCurrent());
    if (!context) return nullptr;
    Ref t = Ref::steal(new_transport<DatagramTransport>(st->datagram_type, loop, fd, context.get(), int(family),
                                                         connected != 0));
    if (!t) return nullptr;
    if (has_address) datagram_of(t.get())->address = Py_NewRef(address);
    if (transport_of(t.get())->start(sock, protocol, waiter, extra_dict.get(), Py_None) < 0) return nullptr;
    return t.release();
}

const PyMethodDef datagram_methods[] = {
    method_varargs_kw<sendto_method>("sendto",
                                     "sendto(data, addr=None): send one datagram; it is queued while the socket is full."),
    kMethodsEnd,
};

const PyGetSetDef datagram_getsets[] = {
    {"_address", get_address, nullptr, nullptr, nullptr},
    {"_buffer_size", get_buffer_size, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

const PyMethodDef loop_datagram_methods[] = {
    method_varargs_kw<make_datagram_transport>(
        "_make_datagram_transport",
        "_make_datagram_transport($self, sock, protocol, address=None, waiter=None, extra=None)\n--\n\n"),
    kMethodsEnd,
};

int init_datagram_transport_type(PyObject* module, ModuleState* st) {
    static const TransportTables tables({transport_close_methods, transport_abort_methods, transport_protocol_methods,
                                         transport_reading_methods, flow_control_methods, datagram_methods},
                                        {transport_getsets, flow_control_getsets, datagram_getsets});
    // asyncio's is a _SelectorTransport, so a Transport as well.
    Ref bases = Ref::steal(PyTuple_Pack(2, st->FlowControlMixin, st->DatagramTransportBase));
    if (!bases) return -1;
    st->datagram_type = make_transport_type(module, "cxxloop._core.DatagramTransport",
                                            "A UDP, UDP-Lite or Unix datagram socket transport.", bases.get(),
                                            sizeof(DatagramTransport), tables, slot<repr>());
    if (!st->datagram_type) return -1;
    return PyModule_AddObjectRef(module, "DatagramTransport", reinterpret_cast<PyObject*>(st->datagram_type));
}

}  // namespace cxxloop::py
