// runtime/pages.h: a vector resized on huge pages holds what resize gives
// (value-initialised, every element, writable to both ends), whatever its
// size against 2 MiB.
#include "runtime/pages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace attnviz::runtime {
namespace {

TEST(HugePages, ResizedVectorIsValueInitialisedThroughout) {
    for (const size_t n : {size_t{0}, size_t{1}, size_t{1000}, (size_t{5} << 20) / 4 + 3}) {
        std::vector<float> v;
        resize_on_huge_pages(v, n);
        ASSERT_EQ(v.size(), n);
        EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; })) << n;
        if (n) v.back() = 1.0f, v.front() = 2.0f;  // writable to both ends
    }
    std::vector<uint16_t> half;
    resize_on_huge_pages(half, size_t{3} << 20);
    EXPECT_EQ(std::count(half.begin(), half.end(), uint16_t{0}),
              static_cast<std::ptrdiff_t>(half.size()));
}

}  // namespace
}  // namespace attnviz::runtime
