#include "runtime/pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace attnviz::runtime {

void advise_huge_pages(const void* data, size_t bytes) {
    constexpr uintptr_t kHuge = uintptr_t{2} << 20;
    const auto begin = reinterpret_cast<uintptr_t>(data);
    const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1),
                    last = (begin + bytes) & ~(kHuge - 1);
    if (data && last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
}

}  // namespace attnviz::runtime
