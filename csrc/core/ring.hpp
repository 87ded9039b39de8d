// A growable FIFO ring buffer: the loop's ready queue.
//
// std::deque allocates in blocks and its iterators are slower than a power
// of two ring indexed with a mask; the ready queue is pushed and popped once
// per callback, so it is worth the few lines.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

namespace cxxloop {

template <class T>
class Ring {
public:
    Ring() = default;
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;
    ~Ring() { delete[] buf_; }

    size_t size() const noexcept { return tail_ - head_; }
    bool empty() const noexcept { return head_ == tail_; }

    void push_back(T value) {
        if (size() == cap_) grow();
        buf_[tail_++ & (cap_ - 1)] = std::move(value);
    }

    T pop_front() noexcept { return std::move(buf_[head_++ & (cap_ - 1)]); }

    void swap(Ring& other) noexcept {
        std::swap(buf_, other.buf_);
        std::swap(cap_, other.cap_);
        std::swap(head_, other.head_);
        std::swap(tail_, other.tail_);
    }

    T& operator[](size_t i) noexcept { return buf_[(head_ + i) & (cap_ - 1)]; }

private:
    // Out of line: push_back stays a few instructions on its hot path.
    [[gnu::noinline, gnu::cold]] void grow() {
        size_t cap = cap_ ? cap_ * 2 : 64;
        T* buf = new T[cap];
        size_t n = size();
        for (size_t i = 0; i < n; ++i) buf[i] = std::move((*this)[i]);
        delete[] buf_;
        buf_ = buf;
        cap_ = cap;
        head_ = 0;
        tail_ = n;
    }

    T* buf_ = nullptr;
    size_t cap_ = 0;   // always zero or a power of two
    size_t head_ = 0;  // monotonically increasing; masked on access
    size_t tail_ = 0;
};

}  // namespace cxxloop
