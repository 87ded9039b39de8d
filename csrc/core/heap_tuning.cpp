#include "heap_tuning.hpp"

#include <cstdlib>

namespace cxxloop {

void raise_heap_trim_threshold() noexcept {
#if defined(__GLIBC__)
    // Freeing an mmapped block of this size sets the mmap threshold to it
    // and the trim threshold to twice it. 1 MiB covers the few 100 KiB
    // blocks in flight per message; 256 KiB was measured not to.
    static const bool raised = [] {
        constexpr size_t kBlock = 1024 * 1024;
        void* block = std::malloc(kBlock);
        // Keeps the compiler from eliding the malloc/free pair.
        asm volatile("" : : "r"(block) : "memory");
        std::free(block);
        return true;
    }();
    (void)raised;
#endif
}

}  // namespace cxxloop
