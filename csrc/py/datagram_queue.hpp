// What a datagram transport holds beyond a stream's (datagram_transport.cpp):
// the datagrams the kernel did not take yet, each with its address, and
// the peer address it last received from.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <deque>

#include "pyref.hpp"

namespace cxxloop::py {

struct Datagram {
    PyObject* data;  // bytes, owned
    PyObject* addr;  // owned; Py_None to send on a connected socket
};

struct DatagramState {
    DatagramState() = default;
    DatagramState(const DatagramState&) = delete;
    DatagramState& operator=(const DatagramState&) = delete;
    ~DatagramState() {
        clear();
        Py_CLEAR(address);
        Py_CLEAR(last_addr);
    }

    // Drops the queue. Moves it out first: a bytes' release cannot run
    // code, but an address's can (a tuple of user objects).
    void clear() noexcept {
        std::deque<Datagram> old;
        old.swap(queue);
        bytes = 0;
        for (Datagram& dg : old) {
            Py_DECREF(dg.data);
            Py_DECREF(dg.addr);
        }
    }

    int traverse(visitproc visit, void* arg) const {
        Py_VISIT(address);
        Py_VISIT(last_addr);
        for (const Datagram& dg : queue) Py_VISIT(dg.addr);
        return 0;
    }

    std::deque<Datagram> queue;
    size_t bytes = 0;              // asyncio's _buffer_size
    PyObject* address = nullptr;   // remote_addr of create_datagram_endpoint, or null
    // The address object of the last datagram received and its sockaddr:
    // a peer that keeps sending gets the same tuple instead of a new one.
    PyObject* last_addr = nullptr;
    sockaddr_storage last_sa{};
    socklen_t last_len = 0;
    int family = 0;
    bool connected = false;        // extra['peername'] was set: send() ignores addr
};

}  // namespace cxxloop::py
