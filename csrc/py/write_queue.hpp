// The outgoing data of a stream transport that the kernel did not take yet.
//
// Each chunk holds a buffer export (Py_buffer) of the object the user wrote,
// so immutable data (bytes, memoryviews of bytes) is queued by reference
// and its memory cannot move or be released while queued; anything else is
// copied into a new bytes first, because the caller may change it as soon
// as write() returns.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <deque>
#include <utility>

#include "pyref.hpp"

namespace cxxloop::py {

class WriteQueue {
public:
    WriteQueue() = default;
    WriteQueue(const WriteQueue&) = delete;
    WriteQueue& operator=(const WriteQueue&) = delete;
    ~WriteQueue() { clear(); }

    bool empty() const noexcept { return chunks_.empty(); }
    void swap(WriteQueue& other) noexcept {
        chunks_.swap(other.chunks_);
        std::swap(bytes_, other.bytes_);
    }
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

    // Drops `n` sent bytes from the front. Each chunk leaves the queue
    // before its export is released: releasing one can run code (a
    // buffer's __release_buffer__, a __del__) that writes to the
    // transport again.
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
            Py_buffer done = c.view;
            chunks_.pop_front();
            PyBuffer_Release(&done);
        }
    }

    // Releases every export, each chunk out of the queue first (as in
    // consume); it allocates nothing, so it can run from tp_clear.
    void clear() noexcept {
        while (!chunks_.empty()) {
            Chunk done = chunks_.front();
            chunks_.pop_front();
            bytes_ -= size_t(done.view.len) - done.offset;
            PyBuffer_Release(&done.view);
        }
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
