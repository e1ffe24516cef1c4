// Hostile checkpoints (issue 12): pickles and zip archives built to make a
// small file take a lot of memory, and safetensors headers the format forbids.
// Each must end in an Error naming the file before anything large is
// allocated, or, where nothing is wrong with what attnviz reads, in the right tensors.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "attnviz/error.h"
#include "io/checkpoint_builder.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "io/tensors.h"
#include "io/torch_checkpoint.h"

namespace fs = std::filesystem;
using namespace attnviz;
using namespace std::string_literals;
using attnviz::test::deflate_raw;
using attnviz::test::little_endian;
using attnviz::test::make_zip;
using attnviz::test::pickle_string;
using attnviz::test::state_dict_pickle;

namespace {

#define EXPECT_CONTAINS(text, part) \
    EXPECT_NE(std::string(text).find(part), std::string::npos) << "message: " << (text)

std::string unpickle_error(const std::string& pickle) {
    try {
        io::unpickle_state_dict(reinterpret_cast<const uint8_t*>(pickle.data()), pickle.size(),
                                "x.bin");
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

std::vector<io::TensorView> read_zip(const std::string& bytes) {
    return io::read_torch_zip(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                              "bomb.bin");
}

std::string zip_error(const std::string& bytes) {
    try {
        read_zip(bytes);
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

// The bytes a tensor reads to, or the Error it throws (and how many bytes came first).
struct Read {
    std::string bytes;
    std::string error;
};
Read read_tensor(const io::TensorView& tensor) {
    Read read;
    try {
        tensor.read([&](const uint8_t* bytes, size_t count) {
            read.bytes.append(reinterpret_cast<const char*>(bytes), count);
        });
    } catch (const Error& e) {
        read.error = e.what();
    }
    return read;
}

// One float tensor "w" [4] in storage "0", as torch.save spells it (without the memo).
const std::string kTensor = "ctorch._utils\n_rebuild_tensor_v2\n((" + pickle_string("storage") +
                            "ctorch\nFloatStorage\n" + pickle_string("0") + pickle_string("cpu") +
                            "K\x04tQK" + std::string(1, '\0') + "K\x04\x85K\x01\x85\x89" +
                            "ccollections\nOrderedDict\n)RtR";
const std::string kProtocol("\x80\x02", 2);

std::string four_ones() {
    std::string bytes;
    const float one = 1.0f;
    for (int i = 0; i < 4; ++i) bytes.append(reinterpret_cast<const char*>(&one), 4);
    return bytes;
}

}  // namespace

// --- the unpickler: everything it builds is bounded by the pickle's size ---

TEST(TorchPickleBounds, MemoIndexMustBeTheNextFreeOneOrAStoredOne) {
    // Before: any index up to size + 1,000,000 was accepted and the memo grew to
    // it, so 3,000 LONG_BINPUTs in 15 KB asked for 24 GB.
    EXPECT_CONTAINS(unpickle_error(kProtocol + "]r" + little_endian(1000000, 4) + "."),
                    "x.bin: data.pkl byte 3: memo index 1000000 skips ahead of the 0 stored");
    EXPECT_CONTAINS(unpickle_error(kProtocol + "]q\x00q\x01q\x03."s),
                    "data.pkl byte 7: memo index 3 skips ahead of the 2 stored so far");
    // The next free index, or one already stored (Python's pickler writes only these).
    const std::string reput = kProtocol + "}q\x00q\x00\x94h\x01."s;
    EXPECT_TRUE(io::unpickle_state_dict(reinterpret_cast<const uint8_t*>(reput.data()),
                                        reput.size(), "x.bin")
                    .empty());
}

TEST(TorchPickleBounds, AtMostOneValuePerThreeBytes) {
    // A list of Nones, appended one by one: two bytes per value (before: a 10 MB
    // pickle of these took 1.2 GB). torch.save writes a value per five bytes or more.
    std::string appends = kProtocol + "]";
    for (int i = 0; i < 1500; ++i) appends += "Na";
    EXPECT_CONTAINS(unpickle_error(appends + "."),
                    "x.bin: data.pkl byte 2019: more than one value per three bytes of pickle");
    // Empty lists pushed and never consumed: one byte each.
    EXPECT_CONTAINS(unpickle_error(kProtocol + std::string(3000, ']') + "."),
                    "more than one value per three bytes of pickle");
}

TEST(TorchPickleBounds, PicklesOverTheLimitAreRefusedUnread) {
    // data.pkl: by its size, before a byte of it is parsed.
    const std::string big(io::kMaxPickleBytes + 1, 'N');
    EXPECT_CONTAINS(unpickle_error(big),
                    "x.bin: data.pkl is 8388609 bytes, more than any state "
                    "dict needs (at most 8388608); refusing it");
    // A legacy file's pickles have no size: the unpickler stops at the limit.
    // PROTO opcodes build nothing, so only the limit can stop these.
    std::string legacy = kProtocol + "\x8a\x0a" +
                         std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10) + "." +
                         kProtocol + "M\xe9\x03." + kProtocol + "}.";
    const size_t state_dict_start = legacy.size();
    for (size_t i = 0; i < io::kMaxPickleBytes / 2 + 16; ++i) legacy += kProtocol;
    try {
        io::read_torch_legacy(reinterpret_cast<const uint8_t*>(legacy.data()), legacy.size(),
                              "legacy.bin");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "legacy.bin: byte " + std::to_string(state_dict_start + io::kMaxPickleBytes) +
                      ": the pickle runs past 8388608 bytes, more than any "
                      "state dict needs; refusing it");
    }
}

TEST(TorchPickleBounds, StateDictEntriesNeedTheirBytes) {
    // One tensor under 400 names, 9 bytes each: every name would cost a tensor
    // view (hundreds of bytes) for 9 bytes of file.
    std::string many = kProtocol + "}(" + pickle_string("w0") + kTensor + "\x94";
    for (int i = 1; i < 400; ++i) {  // SHORT_BINUNICODE "w<i>", BINGET 0
        const std::string number = std::to_string(i);
        many += '\x8c';
        many += static_cast<char>(number.size() + 1);
        many += 'w';
        many += number;
        many += "h"s + '\0';
    }
    many += "u.";
    EXPECT_CONTAINS(unpickle_error(many), "x.bin: data.pkl has 400 state dict entries in " +
                                              std::to_string(many.size()) +
                                              " bytes, fewer than 32 bytes each");
    // A tensor under two names (tied weights) is fine.
    const std::string tied = kProtocol + "}(" + pickle_string("embeddings.weight") + kTensor +
                             "\x94" + pickle_string("lm_head.weight") + "h" + std::string(1, '\0') +
                             "u.";
    const auto tensors = io::unpickle_state_dict(reinterpret_cast<const uint8_t*>(tied.data()),
                                                 tied.size(), "x.bin");
    ASSERT_EQ(tensors.size(), 2u);
    EXPECT_EQ(tensors[1].name, "lm_head.weight");
    EXPECT_EQ(tensors[1].shape, (std::vector<int64_t>{4}));
}

TEST(TorchPickleBounds, DuplicateNamesLongSizesAndLongKeysAreRefused) {
    EXPECT_CONTAINS(unpickle_error(kProtocol + "}(" + pickle_string("w") + kTensor + "\x94" +
                                   pickle_string("w") + "h" + std::string(1, '\0') + "u."),
                    "x.bin: state dict entry w appears twice");
    std::string nine_dims = kTensor;
    const std::string one_dim = "K\x04\x85K\x01\x85";
    std::string nine = "(";
    for (int i = 0; i < 9; ++i) nine += "K\x01";
    nine += "t";
    nine_dims.replace(nine_dims.find(one_dim), one_dim.size(), nine + nine);
    EXPECT_CONTAINS(unpickle_error(kProtocol + "}(" + pickle_string("w") + nine_dims + "u."),
                    "tensor size has 9 dimensions; model weights have at most 8");
    std::string long_key = kTensor;
    const std::string key = pickle_string("0");
    long_key.replace(long_key.find(key), key.size(), pickle_string(std::string(65, '7')));
    EXPECT_CONTAINS(unpickle_error(kProtocol + "}(" + pickle_string("w") + long_key + "u."),
                    "a storage key of 65 bytes; torch.save writes short numbers");
}

// --- zip archives: only what a tensor names is inflated, and only when read ---

TEST(TorchZipBombs, EntriesNoTensorNamesAreNeverInflated) {
    // A deflated entry nothing refers to, claiming 1000 MiB from 1 MiB of
    // garbage. Before: it was inflated (1000 MiB allocated) before the pickle
    // was even read, and its garbage failed the whole checkpoint.
    std::string garbage(1 << 20, '\0');
    uint32_t state = 12345;
    for (char& c : garbage) c = static_cast<char>((state = state * 1103515245 + 12345) >> 24);
    const std::string zip = make_zip({{"archive/data.pkl", state_dict_pickle({{"w", "0", {4}}})},
                                      {"archive/data/0", four_ones()},
                                      {"archive/data/99", garbage, true, uint32_t{1000} << 20}});
    const std::vector<io::TensorView> tensors = read_zip(zip);
    ASSERT_EQ(tensors.size(), 1u);
    EXPECT_EQ(read_tensor(tensors[0]).bytes, four_ones());
}

TEST(TorchZipBombs, DeclaredSizeMustBeTheTensorsBytesBeforeAnythingIsInflated) {
    // 16 bytes of tensor, 3e9 declared: refused without inflating.
    const std::string lie =
        make_zip({{"archive/data.pkl", state_dict_pickle({{"w", "0", {4}}})},
                  {"archive/data/0", deflate_raw(four_ones()), true, 3000000000u}});
    EXPECT_CONTAINS(zip_error(lie),
                    "bomb.bin: tensor w F32 [4] at element 0 of a 4-element storage is not the "
                    "whole of archive/data/0, which is deflated and declares 3000000000 bytes");
    // A view into part of a deflated storage: refused the same way.
    const std::string part =
        make_zip({{"archive/data.pkl", state_dict_pickle({{"w", "0", {2}, 4}})},
                  {"archive/data/0", deflate_raw(four_ones()), true, 16}});
    EXPECT_CONTAINS(zip_error(part),
                    "tensor w F32 [2] at element 0 of a 4-element storage is "
                    "not the whole of archive/data/0");
    // A tensor whose shape agrees with a 3 GB claim opens without inflating
    // anything (config.json's shapes decide whether it is ever read), and
    // reading it stops at the first bad byte, having allocated one chunk.
    std::string garbage(3000000000u / 1032 + 1, '\xff');
    const std::string bomb =
        make_zip({{"archive/data.pkl", state_dict_pickle({{"w", "0", {750000000}}})},
                  {"archive/data/0", garbage, true, 3000000000u}});
    const std::vector<io::TensorView> tensors = read_zip(bomb);
    ASSERT_EQ(tensors.size(), 1u);
    EXPECT_EQ(tensors[0].n_bytes, 3000000000u);
    const Read read = read_tensor(tensors[0]);
    EXPECT_CONTAINS(read.error, "bomb.bin: tensor w is not valid deflate data");
    EXPECT_TRUE(read.bytes.empty());
}

TEST(TorchZipBombs, DeflatedStorageInflatesToExactlyItsDeclaredSize) {
    const auto zip_with = [](const std::string& storage) {
        return make_zip({{"archive/data.pkl", state_dict_pickle({{"w", "0", {4}}})},
                         {"archive/data/0", deflate_raw(storage), true, 16}});
    };
    const std::string exact = zip_with(four_ones());
    std::vector<io::TensorView> tensors = read_zip(exact);
    ASSERT_EQ(tensors.size(), 1u);
    EXPECT_EQ(tensors[0].data, nullptr);  // nothing inflated yet
    EXPECT_EQ(read_tensor(tensors[0]).bytes, four_ones());

    const std::string longer = zip_with(four_ones() + four_ones());
    tensors = read_zip(longer);
    EXPECT_CONTAINS(read_tensor(tensors[0]).error,
                    "bomb.bin: tensor w inflates to more than the 16 bytes its header declares");
    const std::string shorter = zip_with(four_ones().substr(0, 8));
    tensors = read_zip(shorter);
    EXPECT_CONTAINS(read_tensor(tensors[0]).error,
                    "bomb.bin: tensor w inflates to 8 bytes, not the 16 its header declares");
}

TEST(TorchZipBombs, DeflatedPickleOverTheLimitIsRefusedUninflated) {
    const std::string zip = make_zip({{"archive/data.pkl", std::string(16, '\xff'), true, 9u << 20},
                                      {"archive/data/0", four_ones()}});
    EXPECT_CONTAINS(zip_error(zip),
                    "bomb.bin: data.pkl is 9437184 bytes, more than any state "
                    "dict needs (at most 8388608); refusing it");
}

// --- safetensors ---

TEST(Safetensors, DuplicateTensorNamesAreRefused) {
    // The format forbids them; a JSON object would silently keep the last one.
    const std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                               R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
    const std::string bytes = little_endian(header.size(), 8) + header + std::string(8, '\0');
    try {
        io::parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                              "model.safetensors");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "model.safetensors: tensor w appears twice in the header");
    }
}
