// Large buffers on transparent huge pages. A buffer of hundreds of MiB that a
// forward fills once (BERT-base's attention probabilities at 512 tokens: 144
// MiB) arrives as fresh pages from the kernel; with 4 KiB pages each costs a
// fault (about 3 us on a VM: 100 ms for those 144 MiB, on one thread), with
// 2 MiB pages 1/512 of the faults.
#pragma once

#include <cstddef>
#include <vector>

namespace attnviz::runtime {

// Asks the kernel (madvise MADV_HUGEPAGE) to back the whole 2 MiB-aligned
// pages inside [data, data + bytes) with huge pages when first touched. Only
// a hint: nothing happens when the system has them off or the range holds no
// whole huge page.
void advise_huge_pages(const void* data, size_t bytes);

// v.resize(n) on huge pages: the storage is reserved (allocated, untouched),
// advised, and only then value-initialised. v must be empty.
template <typename T>
void resize_on_huge_pages(std::vector<T>& v, size_t n) {
    v.reserve(n);
    advise_huge_pages(v.data(), n * sizeof(T));
    v.resize(n);
}

}  // namespace attnviz::runtime
