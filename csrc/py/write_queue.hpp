// The outgoing data of a stream transport that the kernel did not take yet.
//
// Each chunk holds a buffer export (Py_buffer) of the object the user wrote,
// so immutable data (bytes, read-only memoryviews) is queued by reference
// and its memory cannot move or be released while queued; a mutable buffer
// is copied into a new bytes first, because the caller may reuse it as soon
// as write() returns.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <deque>

#include "pyref.hpp"

namespace cxxloop::py {

class WriteQueue {
public:
    WriteQueue() = default;
    WriteQueue(const WriteQueue&) = delete;
    WriteQueue& operator=(const WriteQueue&) = delete;
    ~WriteQueue() { clear(); }

    bool empty() const noexcept { return chunks_.empty(); }
    size_t bytes() const noexcept { return bytes_; }

    // Queues view->buf[offset:]; takes over the export in *view (which the
    // caller must not release). Returns -1 with MemoryError set.
    int push(Py_buffer* view, size_t offset) {
        try {
            chunks_.push_back(Chunk{*view, offset});
        } catch (const std::bad_alloc&) {
            PyBuffer_Release(view);
            PyErr_NoMemory();
            return -1;
        }
        bytes_ += size_t(view->len) - offset;
        return 0;
    }

    // Fills at most `cap` iovecs from the front; returns how many.
    int fill(iovec* iov, int cap) const noexcept {
        int n = 0;
        for (auto it = chunks_.begin(); it != chunks_.end() && n < cap; ++it, ++n) {
            iov[n].iov_base = static_cast<char*>(it->view.buf) + it->offset;
            iov[n].iov_len = size_t(it->view.len) - it->offset;
        }
        return n;
    }

    // Drops `n` sent bytes from the front.
    void consume(size_t n) noexcept {
        bytes_ -= n;
        while (n) {
            Chunk& c = chunks_.front();
            size_t left = size_t(c.view.len) - c.offset;
            if (n < left) {
                c.offset += n;
                return;
            }
            n -= left;
            PyBuffer_Release(&c.view);
            chunks_.pop_front();
        }
    }

    // Releases every export. Moves the chunks out first: releasing one can
    // run arbitrary code that writes to the transport again.
    void clear() noexcept {
        std::deque<Chunk> old;
        old.swap(chunks_);
        bytes_ = 0;
        for (Chunk& c : old) PyBuffer_Release(&c.view);
    }

    int traverse(visitproc visit, void* arg) const {
        for (const Chunk& c : chunks_) Py_VISIT(c.view.obj);
        return 0;
    }

private:
    struct Chunk {
        Py_buffer view;  // owns a reference to view.obj
        size_t offset;   // bytes of view already sent
    };
    std::deque<Chunk> chunks_;
    size_t bytes_ = 0;
};

}  // namespace cxxloop::py
