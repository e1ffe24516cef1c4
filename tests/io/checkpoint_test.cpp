// Checkpoint files: safetensors headers checked before any tensor is used,
// PyTorch checkpoints (zip and legacy) read by the restricted unpickler, and errors that
// name the file and the tensor (or the refused global).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attnviz/error.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "io/tensors.h"
#include "io/torch_checkpoint.h"

namespace fs = std::filesystem;
using namespace attnviz;

namespace {

const fs::path kModels = fs::path(ATTNVIZ_TEST_DATA) / "model";

// An 8-byte little-endian header length, the header, then `data_size` zero bytes.
std::string safetensors_bytes(const std::string& header, size_t data_size,
                              uint64_t claimed_length = UINT64_MAX) {
    const uint64_t length = claimed_length == UINT64_MAX ? header.size() : claimed_length;
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((length >> (8 * i)) & 0xff);
    return bytes + header + std::string(data_size, '\0');
}

std::string error_of(const std::string& bytes) {
    try {
        io::parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                              "weights.safetensors");
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

std::string torch_error(const fs::path& file) {
    try {
        io::TensorSet::open_torch_checkpoint(file);
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

#define EXPECT_CONTAINS(text, part) \
    EXPECT_NE(std::string(text).find(part), std::string::npos) << "message: " << (text)

}  // namespace

TEST(Safetensors, ReadsTensorsInPlace) {
    const std::string bytes = safetensors_bytes(
        R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
        R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}})",
        22);
    const auto tensors = io::parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()),
                                               bytes.size(), "x.safetensors");
    ASSERT_EQ(tensors.size(), 2u);
    EXPECT_EQ(tensors[0].name, "a");
    EXPECT_EQ(tensors[0].shape, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(tensors[0].data, reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size() - 22);
    EXPECT_EQ(tensors[1].dtype, io::DType::bf16);
    EXPECT_EQ(tensors[1].n_bytes, 6u);
}

TEST(Safetensors, BadHeadersNameTheFileAndTensor) {
    const std::string tensor = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
    // Too short for the length field; length past the end of the file.
    EXPECT_CONTAINS(error_of("abc"), "too short");
    const std::string past = error_of(safetensors_bytes(tensor, 16, 1 << 20));
    EXPECT_CONTAINS(past, "weights.safetensors");
    EXPECT_CONTAINS(past, "header length 1048576 runs past the end of the file");
    // Not JSON, not an object.
    EXPECT_CONTAINS(error_of(safetensors_bytes("{\"w\": [", 0)), "invalid JSON header");
    EXPECT_CONTAINS(error_of(safetensors_bytes("[1]", 0)), "not a JSON object");
    // Offsets out of range, reversed, or disagreeing with dtype x shape.
    const std::string outside = error_of(safetensors_bytes(tensor, 8));
    EXPECT_CONTAINS(outside, "tensor w");
    EXPECT_CONTAINS(outside, "outside the data section");
    EXPECT_CONTAINS(error_of(safetensors_bytes(
                        R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", 16)),
                    "outside the data section");
    const std::string wrong_size = error_of(
        safetensors_bytes(R"({"w":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}})", 16));
    EXPECT_CONTAINS(wrong_size, "tensor w has 16 bytes of data but F16 [4] needs 8");
    // Overlapping tensors.
    const std::string overlap =
        error_of(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                   R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                                   16));
    EXPECT_CONTAINS(overlap, "overlaps");
    EXPECT_CONTAINS(overlap, "tensor b");
    // Unknown dtype, negative or huge shapes, missing fields.
    EXPECT_CONTAINS(
        error_of(safetensors_bytes(R"({"w":{"dtype":"F8","shape":[4],"data_offsets":[0,4]}})", 4)),
        "unsupported dtype \"F8\"");
    EXPECT_CONTAINS(error_of(safetensors_bytes(
                        R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", 16)),
                    "not a size");
    EXPECT_CONTAINS(
        error_of(safetensors_bytes(
            R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", 16)),
        "overflows");
    EXPECT_CONTAINS(error_of(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4]}})", 16)),
                    "needs \"dtype\", \"shape\" and two \"data_offsets\"");
}

TEST(Safetensors, ShardedIndexMustMatchItsShards) {
    const fs::path folder =
        fs::temp_directory_path() / ("attnviz_checkpoint_test_sharded_" + std::to_string(getpid()));
    fs::remove_all(folder);
    fs::create_directories(folder);
    for (const auto& entry : fs::directory_iterator(kModels / "tiny-sharded"))
        fs::copy(entry.path(), folder / entry.path().filename());
    // The folder as written by the reference opens, with every tensor.
    EXPECT_EQ(io::TensorSet::open_folder(folder).tensors().size(),
              io::TensorSet::open_folder(kModels / "tiny-safetensors").tensors().size());
    // An index that points outside the folder, or promises a tensor a shard lacks.
    io::write_file(
        folder / "model.safetensors.index.json",
        R"({"weight_map": {"pooler.dense.bias": "../model-00001-of-00003.safetensors"}})");
    try {
        io::TensorSet::open_folder(folder);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_CONTAINS(e.what(), "not a file in the same folder");
    }
    io::write_file(folder / "model.safetensors.index.json",
                   R"({"weight_map": {"no.such.tensor": "model-00001-of-00003.safetensors"}})");
    try {
        io::TensorSet::open_folder(folder);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_CONTAINS(e.what(), "lists tensor no.such.tensor");
    }
    fs::remove_all(folder);
}

TEST(TorchCheckpoint, ReadsTorchSaveOutputWithoutCopying) {
    const io::TensorSet bin = io::TensorSet::open_folder(kModels / "tiny-bin");
    const io::TensorSet safetensors = io::TensorSet::open_folder(kModels / "tiny-safetensors");
    ASSERT_EQ(bin.tensors().size(), safetensors.tensors().size());
    for (const io::TensorView& tensor : safetensors.tensors()) {
        const io::TensorView* other = bin.find(tensor.name);
        ASSERT_NE(other, nullptr) << tensor.name;
        EXPECT_EQ(other->shape, tensor.shape);
        ASSERT_EQ(other->n_bytes, tensor.n_bytes);
        EXPECT_EQ(std::memcmp(other->data, tensor.data, tensor.n_bytes), 0) << tensor.name;
    }
    // A hand-written pickle (tools/reference/make_bad_checkpoints.py) that torch.load accepts.
    const io::TensorSet good =
        io::TensorSet::open_torch_checkpoint(kModels / "bad/good_storage.bin");
    ASSERT_NE(good.find("w"), nullptr);
    float values[4];
    std::memcpy(values, good.find("w")->data, sizeof values);
    EXPECT_EQ(values[3], 1.0f);
    // A deflated entry is inflated only when read, chunk by chunk.
    const io::TensorSet deflated =
        io::TensorSet::open_torch_checkpoint(kModels / "bad/good_deflated.bin");
    const io::TensorView* w = deflated.find("w");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->data, nullptr);
    ASSERT_NE(w->deflated, nullptr);
    std::string inflated;
    w->read([&](const uint8_t* bytes, size_t count) {
        inflated.append(reinterpret_cast<const char*>(bytes), count);
    });
    ASSERT_EQ(inflated.size(), sizeof values);
    std::memcpy(values, inflated.data(), sizeof values);
    for (float value : values) EXPECT_EQ(value, 1.0f);
}

TEST(TorchCheckpoint, RefusesEveryOtherGlobalWithoutRunningIt) {
    fs::remove("/tmp/attnviz-pwned");
    const std::string system = torch_error(kModels / "bad/os_system.bin");
    EXPECT_CONTAINS(system, "os_system.bin");
    EXPECT_CONTAINS(system, "asks for global posix.system");  // os.system pickles as posix.system
    EXPECT_CONTAINS(system, "torch._utils._rebuild_tensor_v2");  // the allowed list
    EXPECT_FALSE(fs::exists("/tmp/attnviz-pwned"));
    EXPECT_CONTAINS(torch_error(kModels / "bad/builtins_eval.bin"),
                    "asks for global builtins.eval");
}

TEST(TorchCheckpoint, MissingOrShortStoragesAndBrokenZips) {
    const std::string missing = torch_error(kModels / "bad/missing_storage.bin");
    EXPECT_CONTAINS(missing, "tensor w needs storage data/0, which is not in the archive");
    const std::string short_storage = torch_error(kModels / "bad/short_storage.bin");
    EXPECT_CONTAINS(short_storage, "tensor w [4] at element 0 runs past the end of its storage");
    // Truncated archives: every prefix of a real checkpoint fails cleanly.
    const std::string bytes = io::read_file(kModels / "tiny-bin/pytorch_model.bin");
    for (size_t size : {size_t{0}, size_t{10}, bytes.size() / 2, bytes.size() - 1}) {
        EXPECT_THROW(
            io::read_torch_zip(reinterpret_cast<const uint8_t*>(bytes.data()), size, "cut.bin"),
            Error)
            << size;
    }
}

// Legacy torch.save files (before torch 1.6, or _use_new_zipfile_serialization=False).

TEST(TorchLegacyCheckpoint, ReadsTorchSaveOutputInPlace) {
    // The same weights as the zip fixtures, saved by torch.save in the legacy format
    // (tools/reference/make_fixtures), byte for byte in fp32 and fp16.
    for (const auto& [legacy, zip] : {std::pair{"tiny-bin-legacy", "tiny-bin"},
                                      std::pair{"tiny-bin-legacy-fp16", "tiny-bin-fp16"}}) {
        SCOPED_TRACE(legacy);
        const std::string bytes = io::read_file(kModels / legacy / "pytorch_model.bin");
        const auto* begin = reinterpret_cast<const uint8_t*>(bytes.data());
        ASSERT_EQ(begin[0], 0x80);  // a pickle, not a zip
        const std::vector<io::TensorView> tensors =
            io::read_torch_checkpoint(begin, bytes.size(), "legacy.bin");
        const io::TensorSet reference = io::TensorSet::open_folder(kModels / zip);
        ASSERT_EQ(tensors.size(), reference.tensors().size());
        for (const io::TensorView& tensor : tensors) {
            const io::TensorView* other = reference.find(tensor.name);
            ASSERT_NE(other, nullptr) << tensor.name;
            EXPECT_EQ(tensor.dtype, other->dtype) << tensor.name;
            EXPECT_EQ(tensor.shape, other->shape) << tensor.name;
            ASSERT_EQ(tensor.n_bytes, other->n_bytes) << tensor.name;
            EXPECT_EQ(std::memcmp(tensor.data, other->data, tensor.n_bytes), 0) << tensor.name;
            EXPECT_GE(tensor.data, begin);
            EXPECT_LE(tensor.data + tensor.n_bytes, begin + bytes.size());
        }
    }
    // A hand-written file (tools/reference/make_bad_checkpoints.py) that torch.load accepts.
    const io::TensorSet good =
        io::TensorSet::open_torch_checkpoint(kModels / "bad/legacy_good.bin");
    ASSERT_NE(good.find("w"), nullptr);
    EXPECT_EQ(good.find("w")->shape, (std::vector<int64_t>{4}));
    float values[4];
    std::memcpy(values, good.find("w")->data, sizeof values);
    for (float value : values) EXPECT_EQ(value, 1.0f);
}

TEST(TorchLegacyCheckpoint, RefusesEveryOtherGlobalWithoutRunningIt) {
    fs::remove("/tmp/attnviz-pwned");
    const std::string system = torch_error(kModels / "bad/legacy_os_system.bin");
    EXPECT_CONTAINS(system, "legacy_os_system.bin: byte ");
    EXPECT_CONTAINS(system, "asks for global posix.system");
    EXPECT_CONTAINS(system, "torch._utils._rebuild_tensor_v2");  // the allowed list
    EXPECT_FALSE(fs::exists("/tmp/attnviz-pwned"));
    // The header pickles go through the same unpickler.
    const std::string eval = torch_error(kModels / "bad/legacy_sys_info_eval.bin");
    EXPECT_CONTAINS(eval, "legacy_sys_info_eval.bin: byte 21: ");
    EXPECT_CONTAINS(eval, "asks for global builtins.eval");
}

TEST(TorchLegacyCheckpoint, SizesPastTheEndOfTheFileAreRefusedBeforeUse) {
    // 2^62 floats claimed by the pickle and by the storage's count, with 16 bytes left.
    EXPECT_CONTAINS(torch_error(kModels / "bad/legacy_huge_storage.bin"),
                    "legacy_huge_storage.bin: storage 0 at byte 322 claims 4611686018427387904 "
                    "F32 elements, more than the 16 bytes left in the file");
    EXPECT_CONTAINS(torch_error(kModels / "bad/legacy_numel_mismatch.bin"),
                    "legacy_numel_mismatch.bin: storage 0 at byte 322 holds 4 elements, but the "
                    "pickle says 4611686018427387904");
    EXPECT_CONTAINS(torch_error(kModels / "bad/legacy_many_storages.bin"),
                    "legacy_many_storages.bin: lists 1000 storages, but only 24 bytes follow");
    // torch.load would hand out this storage uninitialized.
    EXPECT_CONTAINS(torch_error(kModels / "bad/legacy_unlisted_storage.bin"),
                    "legacy_unlisted_storage.bin: tensor w needs storage 0, which the file does "
                    "not list");
    EXPECT_CONTAINS(torch_error(kModels / "bad/legacy_bad_magic.bin"),
                    "legacy_bad_magic.bin: not a PyTorch checkpoint (neither a zip archive nor a "
                    "legacy torch.save file");
}

TEST(TorchLegacyCheckpoint, EveryTruncationIsAOneLineErrorNamingTheFile) {
    const std::string bytes = io::read_file(kModels / "tiny-bin-legacy/pytorch_model.bin");
    // Every cut through the pickles (they end at byte 5184), then every 397th through the
    // storages, whose checks take no parsing.
    std::vector<size_t> sizes;
    for (size_t size = 0; size < bytes.size(); size += size < 6144 ? 1 : 397) sizes.push_back(size);
    sizes.push_back(bytes.size() - 1);
    for (size_t size : sizes) {
        // An exact-size copy, so that a sanitizer build catches any read past the end.
        const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(size));
        try {
            io::read_torch_checkpoint(cut.data(), cut.size(), "cut.bin");
            ADD_FAILURE() << "no error at " << size << " bytes";
        } catch (const Error& e) {
            const std::string message = e.what();
            ASSERT_EQ(message.rfind("cut.bin: ", 0), 0u) << size << ": " << message;
            ASSERT_EQ(message.find('\n'), std::string::npos) << size << ": " << message;
        }
    }
}

TEST(TorchCheckpoint, PickleOpcodesOutsideTheSubsetAreRefused) {
    // INST (b'i') builds an arbitrary class instance: never needed, always refused.
    const std::string pickle = "\x80\x02(ios\nsystem\nS'ls'\n.";
    try {
        io::unpickle_state_dict(reinterpret_cast<const uint8_t*>(pickle.data()), pickle.size(),
                                "x.bin");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_CONTAINS(e.what(), "x.bin: data.pkl byte 3: pickle opcode 0x69");
    }
}

TEST(TensorSet, FolderWithoutWeightsSaysWhatItLookedFor) {
    try {
        io::TensorSet::open_folder(fs::path(ATTNVIZ_TEST_DATA));
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_CONTAINS(e.what(),
                        "model.safetensors, model.safetensors.index.json, pytorch_model.bin");
    }
}
