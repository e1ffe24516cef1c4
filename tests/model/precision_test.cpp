// The default precision: bf16 only for models over 1e9 parameters on a CPU
// with native bf16; the parameter count from the checkpoint's headers.
#include <gtest/gtest.h>

#include <filesystem>

#include "attnviz/model.h"

namespace fs = std::filesystem;
using namespace attnviz;

TEST(Precision, Bf16ByDefaultOnlyAboveOneBillionParametersWithNativeBf16) {
    EXPECT_EQ(default_precision(110'000'000), Precision::fp32);             // BERT-base
    EXPECT_EQ(default_precision(kBf16DefaultParameters), Precision::fp32);  // "over" 1e9
    const Precision large = cpu_has_native_bf16() ? Precision::bf16 : Precision::fp32;
    EXPECT_EQ(default_precision(kBf16DefaultParameters + 1), large);
    EXPECT_EQ(default_precision(7'000'000'000), large);
}

// tiny-bf16 (2 layers, hidden 32, intermediate 64, vocab 100, 64 positions,
// 2 token types, with pooler), counted by hand: embeddings 100*32 + 64*32 +
// 2*32 + LayerNorm 2*32 = 5376; per layer q/k/v 3*(32*32+32) + output 32*32+32
// + LayerNorm 64 + intermediate 64*32+64 + output 32*64+32 + LayerNorm 64 =
// 8544; pooler 32*32+32 = 1056. 5376 + 2*8544 + 1056 = 23520.
TEST(Precision, CheckpointParametersCountEveryTensorFromTheHeaders) {
    const fs::path data = fs::path(ATTNVIZ_TEST_DATA) / "model";
    EXPECT_EQ(checkpoint_parameters(data / "tiny-bf16"), 23520u);
    EXPECT_EQ(checkpoint_parameters(data / "bad"), std::nullopt);  // no weights file
}
