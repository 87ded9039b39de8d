// The datagrams a DatagramTransport could not send yet, each with its
// address (datagram_transport.cpp).
#pragma once

#include <cstddef>
#include <deque>

#include "pyref.hpp"

namespace cxxloop::py {

struct Datagram {
    PyObject* data;  // bytes, owned
    PyObject* addr;  // owned; Py_None to send on a connected socket
};

class DatagramQueue {
public:
    DatagramQueue() = default;
    DatagramQueue(const DatagramQueue&) = delete;
    DatagramQueue& operator=(const DatagramQueue&) = delete;
    ~DatagramQueue() { clear(); }

    bool empty() const noexcept { return queue_.empty(); }
    // asyncio's _buffer_size: each datagram's payload plus `header` bytes.
    size_t bytes() const noexcept { return bytes_; }

    // Takes over both references; -1 with MemoryError, having released them.
    int push_back(Datagram dg, size_t header) {
        try {
            queue_.push_back(dg);
        } catch (const std::bad_alloc&) {
            Py_DECREF(dg.data);
            Py_DECREF(dg.addr);
            PyErr_NoMemory();
            return -1;
        }
        bytes_ += size_t(PyBytes_GET_SIZE(dg.data)) + header;
        return 0;
    }

    // Gives the front datagram's references to the caller.
    Datagram pop_front(size_t header) noexcept {
        Datagram dg = queue_.front();
        queue_.pop_front();
        bytes_ -= size_t(PyBytes_GET_SIZE(dg.data)) + header;
        return dg;
    }

    // Puts back what pop_front() gave (the socket would block).
    int push_front(Datagram dg, size_t header) {
        try {
            queue_.push_front(dg);
        } catch (const std::bad_alloc&) {
            Py_DECREF(dg.data);
            Py_DECREF(dg.addr);
            PyErr_NoMemory();
            return -1;
        }
        bytes_ += size_t(PyBytes_GET_SIZE(dg.data)) + header;
        return 0;
    }

    // Drops the queue, each datagram out of it before its references go:
    // an address's release can run code (a tuple of user objects) that
    // sends on this transport again.
    void clear() noexcept {
        while (!queue_.empty()) {
            Datagram dg = pop_front(0);
            Py_DECREF(dg.data);
            Py_DECREF(dg.addr);
        }
        bytes_ = 0;
    }

    int traverse(visitproc visit, void* arg) const {
        for (const Datagram& dg : queue_) Py_VISIT(dg.addr);
        return 0;
    }

private:
    std::deque<Datagram> queue_;
    size_t bytes_ = 0;
};

}  // namespace cxxloop::py
