// Binary min-heap of timers ordered by (deadline, insertion sequence).
//
// The sequence number makes timers with equal deadlines fire in the order
// they were scheduled (heapq in asyncio leaves that order unspecified).
// Cancellation is lazy: the loop drops cancelled entries when they reach the
// top, and compacts the heap when they become the majority.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace cxxloop {

template <class T>
class TimerHeap {
public:
    struct Entry {
        double when;
        uint64_t seq;
        T item;
    };

    size_t size() const noexcept { return heap_.size(); }
    bool empty() const noexcept { return heap_.empty(); }
    const Entry& top() const noexcept { return heap_.front(); }

    void push(double when, T item) {
        heap_.push_back(Entry{when, next_seq_++, std::move(item)});
        sift_up(heap_.size() - 1);
    }

    T pop() noexcept {
        T item = std::move(heap_.front().item);
        if (heap_.size() > 1) {
            heap_.front() = std::move(heap_.back());
            heap_.pop_back();
            sift_down(0);
        } else {
            heap_.pop_back();
        }
        return item;
    }

    // Takes every entry for which drop(item) is true out of the heap,
    // restores the heap property in O(n), and returns them. `drop` only
    // decides: what the caller does with the items (release them, which
    // may run code that pushes again) comes after the heap is whole. If
    // the result cannot be allocated, bad_alloc leaves the heap unchanged.
    template <class Pred>
    std::vector<Entry> extract_if(Pred drop) {
        size_t count = 0;
        for (const Entry& e : heap_) count += drop(e.item) ? 1 : 0;
        std::vector<Entry> removed;
        removed.reserve(count);
        size_t kept = 0;
        for (size_t i = 0; i < heap_.size(); ++i) {
            if (drop(heap_[i].item)) {
                removed.push_back(std::move(heap_[i]));
            } else {
                heap_[kept++] = std::move(heap_[i]);
            }
        }
        heap_.resize(kept);
        for (size_t i = kept / 2; i-- > 0;) sift_down(i);
        return removed;
    }

    // Empties the heap, giving its entries to the caller (in storage order);
    // allocates nothing.
    std::vector<Entry> take_all() noexcept {
        std::vector<Entry> entries;
        entries.swap(heap_);
        return entries;
    }

    // Read-only walk in storage order (not deadline order).
    template <class Fn>
    void for_each(Fn fn) const {
        for (const Entry& e : heap_) fn(e.item);
    }

private:
    static bool before(const Entry& a, const Entry& b) noexcept {
        return a.when < b.when || (a.when == b.when && a.seq < b.seq);
    }

    void sift_up(size_t i) noexcept {
        Entry e = std::move(heap_[i]);
        while (i > 0) {
            size_t parent = (i - 1) / 2;
            if (!before(e, heap_[parent])) break;
            heap_[i] = std::move(heap_[parent]);
            i = parent;
        }
        heap_[i] = std::move(e);
    }

    void sift_down(size_t i) noexcept {
        size_t n = heap_.size();
        Entry e = std::move(heap_[i]);
        for (;;) {
            size_t child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && before(heap_[child + 1], heap_[child])) ++child;
            if (!before(heap_[child], e)) break;
            heap_[i] = std::move(heap_[child]);
            i = child;
        }
        heap_[i] = std::move(e);
    }

    std::vector<Entry> heap_;
    uint64_t next_seq_ = 0;
};

}  // namespace cxxloop
