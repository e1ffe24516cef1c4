#include "io/torch_checkpoint.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <string_view>
#include <unordered_set>

#include "attnviz/error.h"

namespace attnviz::io {

namespace {

uint64_t read_le(const uint8_t* p, int n) {
    uint64_t value = 0;
    for (int i = n - 1; i >= 0; --i) value = (value << 8) | p[i];
    return value;
}

}  // namespace

// ---------------------------------------------------------------------------
// Zip: end of central directory (+ zip64 record), central directory, local headers.

std::vector<ZipEntry> read_zip_directory(const uint8_t* bytes, size_t size,
                                         const std::string& file) {
    const auto fail = [&](const std::string& what) -> Error {
        return Error(file + ": not a valid zip archive: " + what);
    };
    constexpr size_t kEndRecordSize = 22;
    if (size < kEndRecordSize) throw fail("too short");
    // The end record sits in the last 64 KiB + 22 bytes (its comment is at most 65535).
    size_t end_record = std::numeric_limits<size_t>::max();
    const size_t lowest = size > 65535 + kEndRecordSize ? size - 65535 - kEndRecordSize : 0;
    for (size_t pos = size - kEndRecordSize + 1; pos-- > lowest;) {
        if (read_le(bytes + pos, 4) == 0x06054b50) {
            end_record = pos;
            break;
        }
    }
    if (end_record == std::numeric_limits<size_t>::max())
        throw fail("no end of central directory record");
    uint64_t entry_count = read_le(bytes + end_record + 10, 2);
    uint64_t directory_size = read_le(bytes + end_record + 12, 4);
    uint64_t directory_offset = read_le(bytes + end_record + 16, 4);
    // Zip64: a locator just before the end record points to the zip64 end record.
    if (end_record >= 20 && read_le(bytes + end_record - 20, 4) == 0x07064b50) {
        const uint64_t record = read_le(bytes + end_record - 20 + 8, 8);
        if (record > size - 56 || size < 56 || read_le(bytes + record, 4) != 0x06064b50)
            throw fail("bad zip64 end of central directory record");
        entry_count = read_le(bytes + record + 32, 8);
        directory_size = read_le(bytes + record + 40, 8);
        directory_offset = read_le(bytes + record + 48, 8);
    }
    if (directory_offset > size || directory_size > size - directory_offset)
        throw fail("central directory outside the file");

    std::vector<ZipEntry> entries;
    size_t pos = directory_offset;
    const size_t directory_end = directory_offset + directory_size;
    for (uint64_t i = 0; i < entry_count; ++i) {
        if (pos + 46 > directory_end || read_le(bytes + pos, 4) != 0x02014b50)
            throw fail("bad central directory entry " + std::to_string(i));
        ZipEntry entry;
        entry.method = static_cast<uint16_t>(read_le(bytes + pos + 10, 2));
        uint64_t compressed_size = read_le(bytes + pos + 20, 4);
        uint64_t uncompressed_size = read_le(bytes + pos + 24, 4);
        const size_t name_length = read_le(bytes + pos + 28, 2);
        const size_t extra_length = read_le(bytes + pos + 30, 2);
        const size_t comment_length = read_le(bytes + pos + 32, 2);
        uint64_t local_offset = read_le(bytes + pos + 42, 4);
        const size_t record_end = pos + 46 + name_length + extra_length + comment_length;
        if (record_end > directory_end) throw fail("central directory entry runs past its end");
        entry.name.assign(reinterpret_cast<const char*>(bytes + pos + 46), name_length);
        // Zip64 extra field (id 1): the 64-bit values of the fields saturated at 0xFFFFFFFF.
        const uint8_t* extra = bytes + pos + 46 + name_length;
        for (size_t at = 0; at + 4 <= extra_length;) {
            const uint64_t id = read_le(extra + at, 2);
            const size_t length = read_le(extra + at + 2, 2);
            if (at + 4 + length > extra_length) break;
            if (id == 1) {
                size_t field = at + 4;
                const auto take = [&](uint64_t& value) {
                    if (value == 0xFFFFFFFF && field + 8 <= at + 4 + length) {
                        value = read_le(extra + field, 8);
                        field += 8;
                    }
                };
                take(uncompressed_size);
                take(compressed_size);
                take(local_offset);
            }
            at += 4 + length;
        }
        if (local_offset > size || size - local_offset < 30 ||
            read_le(bytes + local_offset, 4) != 0x04034b50)
            throw fail("entry " + entry.name + " has no local header");
        const size_t data_offset = local_offset + 30 + read_le(bytes + local_offset + 26, 2) +
                                   read_le(bytes + local_offset + 28, 2);
        if (data_offset > size || compressed_size > size - data_offset)
            throw fail("entry " + entry.name + " runs past the end of the file");
        if (entry.method == 0 && compressed_size != uncompressed_size)
            throw fail("stored entry " + entry.name + " has two different sizes");
        entry.data = bytes + data_offset;
        entry.compressed_size = compressed_size;
        entry.size = uncompressed_size;
        entries.push_back(std::move(entry));
        pos = record_end;
    }
    return entries;
}

// ---------------------------------------------------------------------------
// The restricted unpickler.
//
// Everything it builds is bounded by the pickle's size, so that a small file
// cannot make it allocate much: at most one value per three bytes of pickle
// (torch.save writes one per five or more), strings are views into the pickle,
// never copies, memo indices are the next free one or one already stored (as
// Python's pickler writes them), and the stack and the marks hold at most
// kMaxStackDepth entries. A pickle is at most kMaxPickleBytes.

namespace {

struct Value;
using Ref = Value*;

enum class Kind {
    none,
    boolean,
    integer,
    floating,
    string,
    tuple,
    list,
    dict,
    global,
    big_integer,  // wider than 64 bits: text holds its little-endian bytes
    storage,
    tensor
};

struct Value {
    Kind kind = Kind::none;
    DType dtype = DType::f32;  // storage, or a global naming a storage type
    int64_t integer = 0;       // integer, boolean; storage: its element count
    // string, big_integer, storage (its key): a view into the pickle; global: "module.name"
    std::string_view text;
    // tuple, list; dict: key, value, key, value...; tensor: storage, offset, size, stride
    std::vector<Ref> items;
};

// Where a pickle comes from: data.pkl inside a zip, or one of the pickles one
// after another in a legacy file. The two differ in their persistent ids.
enum class Layout { zip, legacy };

// The globals a state dict needs. Everything else is refused by name.
constexpr std::string_view kRebuildTensor = "torch._utils._rebuild_tensor_v2";
constexpr std::string_view kRebuildParameter = "torch._utils._rebuild_parameter";
constexpr std::string_view kOrderedDict = "collections.OrderedDict";
constexpr std::pair<std::string_view, DType> kStorageTypes[] = {
    {"torch.FloatStorage", DType::f32},     {"torch.HalfStorage", DType::f16},
    {"torch.BFloat16Storage", DType::bf16}, {"torch.DoubleStorage", DType::f64},
    {"torch.LongStorage", DType::i64},      {"torch.IntStorage", DType::i32},
    {"torch.ShortStorage", DType::i16},     {"torch.CharStorage", DType::i8},
    {"torch.ByteStorage", DType::u8},       {"torch.BoolStorage", DType::boolean},
};

std::string allowed_globals() {
    std::string list = std::string(kOrderedDict) + ", " + std::string(kRebuildTensor) + ", " +
                       std::string(kRebuildParameter);
    for (const auto& [name, dtype] : kStorageTypes) list += ", " + std::string(name);
    return list;
}

// torch writes the storage keys as decimal numbers ("0", "1", ... in a zip; the
// storage's address in a legacy file): anything longer is not a torch.save key.
constexpr size_t kMaxStorageKeyBytes = 64;
// Model weights have at most 5 dimensions (a 3-D convolution's).
constexpr size_t kMaxDimensions = 8;
// The stack and the marks: a state dict's pickle nests a few levels deep.
constexpr size_t kMaxStackDepth = 1000000;

class Unpickler {
public:
    // Reads the pickle starting at bytes[start]; a legacy pickle's errors give
    // positions in the whole file. It may not run past kMaxPickleBytes.
    Unpickler(const uint8_t* bytes, size_t size, const std::string& file, Layout layout,
              size_t start = 0)
        : bytes_(bytes),
          size_(std::min(start, size) + std::min(size - std::min(start, size), kMaxPickleBytes)),
          file_end_(size),
          pos_(std::min(start, size)),
          max_values_((size_ - pos_) / 3 + 8),
          file_(file),
          layout_(layout) {}

    // The position just past the STOP that ended run().
    size_t end() const { return pos_; }

    Ref run() {
        while (true) {
            const size_t at = pos_;
            const uint8_t op = byte();
            switch (op) {
                case 0x80:
                    byte();
                    break;  // PROTO
                case 0x95:
                    take(8);
                    break;  // FRAME: a length hint only
                case '.':
                    return pop(at);  // STOP
                case '(':
                    if (marks_.size() >= kMaxStackDepth) fail(at, "too many MARKs");
                    marks_.push_back(stack_.size());
                    break;  // MARK
                case '}':
                    push(make(Kind::dict, at));
                    break;  // EMPTY_DICT
                case ']':
                    push(make(Kind::list, at));
                    break;  // EMPTY_LIST
                case ')':
                    push(make(Kind::tuple, at));
                    break;  // EMPTY_TUPLE
                case 'N':
                    push(make(Kind::none, at));
                    break;
                case 0x88:
                    push(integer(Kind::boolean, 1, at));
                    break;  // NEWTRUE
                case 0x89:
                    push(integer(Kind::boolean, 0, at));
                    break;  // NEWFALSE
                case 'J':
                    push(integer(Kind::integer, static_cast<int32_t>(read_le(take(4), 4)), at));
                    break;
                case 'K':
                    push(integer(Kind::integer, byte(), at));
                    break;  // BININT1
                case 'M':
                    push(integer(Kind::integer, static_cast<int64_t>(read_le(take(2), 2)), at));
                    break;
                case 0x8a:
                    push(long1(at));
                    break;  // LONG1
                case 'G':
                    push(binfloat(at));
                    break;
                case 'X':
                    push(string(read_le(take(4), 4), at));
                    break;  // BINUNICODE
                case 0x8c:
                    push(string(byte(), at));
                    break;  // SHORT_BINUNICODE
                case 0x8d:
                    push(string(read_le(take(8), 8), at));
                    break;  // BINUNICODE8
                case 'T':
                    push(string(read_le(take(4), 4), at));
                    break;  // BINSTRING
                case 'U':
                    push(string(byte(), at));
                    break;   // SHORT_BINSTRING
                case 'c': {  // GLOBAL "module\nname\n"
                    const std::string module = line();
                    push(global(module + "." + line(), at));
                    break;
                }
                case 0x93: {  // STACK_GLOBAL
                    const Ref name = pop(at);
                    const Ref module = pop(at);
                    if (name->kind != Kind::string || module->kind != Kind::string)
                        fail(at, "STACK_GLOBAL needs two strings");
                    if (module->text.size() + name->text.size() > 512)
                        fail(at, "the pickle asks for a global whose name is " +
                                     std::to_string(module->text.size() + name->text.size()) +
                                     " bytes long; refusing it (allowed: " + allowed_globals() +
                                     ")");
                    push(global(std::string(module->text) + "." + std::string(name->text), at));
                    break;
                }
                case 'q':
                    memo_put(byte(), at);
                    break;  // BINPUT
                case 'r':
                    memo_put(read_le(take(4), 4), at);
                    break;  // LONG_BINPUT
                case 0x94:
                    memo_put(memo_.size(), at);
                    break;  // MEMOIZE
                case 'h':
                    push(memo_get(byte(), at));
                    break;  // BINGET
                case 'j':
                    push(memo_get(read_le(take(4), 4), at));
                    break;  // LONG_BINGET
                case 't':
                    push(sequence(Kind::tuple, pop_mark(at), at));
                    break;
                case 0x85:
                    push(sequence(Kind::tuple, pop_n(1, at), at));
                    break;  // TUPLE1
                case 0x86:
                    push(sequence(Kind::tuple, pop_n(2, at), at));
                    break;  // TUPLE2
                case 0x87:
                    push(sequence(Kind::tuple, pop_n(3, at), at));
                    break;  // TUPLE3
                case 'l':
                    push(sequence(Kind::list, pop_mark(at), at));
                    break;   // LIST
                case 'd': {  // DICT
                    std::vector<Ref> items = pop_mark(at);
                    if (items.size() % 2) fail(at, "DICT needs key-value pairs");
                    push(sequence(Kind::dict, std::move(items), at));
                    break;
                }
                case 'a': {  // APPEND
                    const Ref item = pop(at);
                    expect(top(at), Kind::list, at, "APPEND")->items.push_back(item);
                    break;
                }
                case 'e': {  // APPENDS
                    std::vector<Ref> items = pop_mark(at);
                    Ref list = expect(top(at), Kind::list, at, "APPENDS");
                    list->items.insert(list->items.end(), items.begin(), items.end());
                    break;
                }
                case 's': {  // SETITEM
                    const Ref value = pop(at);
                    const Ref key = pop(at);
                    Ref dict = expect(top(at), Kind::dict, at, "SETITEM");
                    dict->items.push_back(key);
                    dict->items.push_back(value);
                    break;
                }
                case 'u': {  // SETITEMS
                    std::vector<Ref> items = pop_mark(at);
                    if (items.size() % 2) fail(at, "SETITEMS needs key-value pairs");
                    Ref dict = expect(top(at), Kind::dict, at, "SETITEMS");
                    dict->items.insert(dict->items.end(), items.begin(), items.end());
                    break;
                }
                case 'b': {  // BUILD: only the OrderedDict's _metadata attribute, dropped
                    pop(at);
                    expect(top(at), Kind::dict, at, "BUILD");
                    break;
                }
                case 'Q':
                    push(persistent_load(pop(at), at));
                    break;   // BINPERSID
                case 'R': {  // REDUCE
                    const Ref args = expect(pop(at), Kind::tuple, at, "REDUCE");
                    const Ref callable = expect(pop(at), Kind::global, at, "REDUCE");
                    push(reduce(callable->text, args->items, at));
                    break;
                }
                default: {
                    char hex[8];
                    std::snprintf(hex, sizeof hex, "0x%02x", op);
                    fail(at, std::string("pickle opcode ") + hex +
                                 " is not one a checkpoint of tensors needs; refusing it");
                }
            }
        }
    }

private:
    [[noreturn]] void fail(size_t at, const std::string& what) const {
        throw Error(file_ + (layout_ == Layout::zip ? ": data.pkl byte " : ": byte ") +
                    std::to_string(at) + ": " + what);
    }
    const uint8_t* take(size_t n) {
        if (n > size_ - pos_) {
            if (size_ < file_end_)
                fail(pos_, "the pickle runs past " + std::to_string(kMaxPickleBytes) +
                               " bytes, more than any state dict needs; refusing it");
            fail(pos_, "truncated pickle");
        }
        const uint8_t* p = bytes_ + pos_;
        pos_ += n;
        return p;
    }
    uint8_t byte() { return *take(1); }
    std::string line() {
        std::string text;
        while (true) {
            const char c = static_cast<char>(byte());
            if (c == '\n') return text;
            if (text.size() > 256) fail(pos_, "GLOBAL name too long");
            text += c;
        }
    }

    Ref make(Kind kind, size_t at) {
        if (arena_.size() >= max_values_)
            fail(at,
                 "more than one value per three bytes of pickle (torch.save writes one per "
                 "five or more); refusing it");
        Value& value = arena_.emplace_back();
        value.kind = kind;
        return &value;
    }
    Ref integer(Kind kind, int64_t value, size_t at) {
        Ref v = make(kind, at);
        v->integer = value;
        return v;
    }
    Ref long1(size_t at) {
        const size_t n = byte();
        const uint8_t* p = take(n);
        if (n > 8) {  // only the legacy format's magic number is this wide
            Ref v = make(Kind::big_integer, at);
            v->text = std::string_view(reinterpret_cast<const char*>(p), n);
            return v;
        }
        uint64_t value = n ? read_le(p, static_cast<int>(n)) : 0;
        if (n && n < 8 && (p[n - 1] & 0x80)) value |= ~uint64_t{0} << (8 * n);  // sign-extend
        return integer(Kind::integer, static_cast<int64_t>(value), at);
    }
    Ref binfloat(size_t at) {
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian
        return integer(Kind::floating, static_cast<int64_t>(bits), at);
    }
    Ref string(uint64_t length, size_t at) {
        const uint8_t* p = take(length);
        Ref v = make(Kind::string, at);
        v->text = std::string_view(reinterpret_cast<const char*>(p), length);
        return v;
    }
    Ref sequence(Kind kind, std::vector<Ref> items, size_t at) {
        Ref v = make(kind, at);
        v->items = std::move(items);
        return v;
    }
    Ref global(const std::string& name, size_t at) {
        Ref v = make(Kind::global, at);
        for (const std::string_view allowed : {kRebuildTensor, kRebuildParameter, kOrderedDict}) {
            if (name == allowed) {
                v->text = allowed;
                return v;
            }
        }
        for (const auto& [storage, dtype] : kStorageTypes) {
            if (name == storage) {
                v->text = storage;
                v->dtype = dtype;
                return v;
            }
        }
        fail(at, "the pickle asks for global " + name +
                     ", which a checkpoint of tensors never needs; refusing it (allowed: " +
                     allowed_globals() + ")");
    }

    void push(Ref value) {
        if (stack_.size() >= kMaxStackDepth) fail(pos_, "pickle stack too deep");
        stack_.push_back(value);
    }
    Ref pop(size_t at) {
        if (stack_.size() <= (marks_.empty() ? 0 : marks_.back()))
            fail(at, "pickle stack underflow");
        const Ref value = stack_.back();
        stack_.pop_back();
        return value;
    }
    Ref top(size_t at) {
        if (stack_.size() <= (marks_.empty() ? 0 : marks_.back()))
            fail(at, "pickle stack underflow");
        return stack_.back();
    }
    std::vector<Ref> pop_n(size_t n, size_t at) {
        std::vector<Ref> items(n);
        for (size_t i = n; i-- > 0;) items[i] = pop(at);
        return items;
    }
    std::vector<Ref> pop_mark(size_t at) {
        if (marks_.empty()) fail(at, "no MARK on the pickle stack");
        const size_t mark = marks_.back();
        marks_.pop_back();
        std::vector<Ref> items(stack_.begin() + static_cast<ptrdiff_t>(mark), stack_.end());
        stack_.resize(mark);
        return items;
    }
    Ref expect(Ref value, Kind kind, size_t at, const char* op) {
        if (value->kind != kind) fail(at, std::string(op) + " applied to the wrong kind of value");
        return value;
    }
    // Python's pickler stores each object under the next free index; it never skips ahead.
    void memo_put(uint64_t index, size_t at) {
        if (index > memo_.size() || index >= max_values_)
            fail(at, "memo index " + std::to_string(index) + " skips ahead of the " +
                         std::to_string(memo_.size()) + " stored so far");
        if (index == memo_.size())
            memo_.push_back(top(at));
        else
            memo_[index] = top(at);
    }
    Ref memo_get(uint64_t index, size_t at) {
        if (index >= memo_.size())
            fail(at, "memo index " + std::to_string(index) + " was never stored");
        return memo_[index];
    }

    // Zip: ('storage', storage type, key, location, numel).
    // Legacy: ('storage', storage type, key, location, numel, view metadata).
    Ref persistent_load(Ref id, size_t at) {
        const size_t length = layout_ == Layout::zip ? 5 : 6;
        if (id->kind != Kind::tuple || id->items.size() != length ||
            id->items[0]->kind != Kind::string || id->items[0]->text != "storage" ||
            id->items[1]->kind != Kind::global || id->items[2]->kind != Kind::string)
            fail(at, layout_ == Layout::zip
                         ? "persistent id is not a ('storage', type, key, location, size) tuple"
                         : "persistent id is not a ('storage', type, key, location, size, view) "
                           "tuple");
        if (id->items[1]->text.find("Storage") == std::string_view::npos)
            fail(at,
                 "persistent id names " + std::string(id->items[1]->text) + ", not a storage type");
        const std::string_view key = id->items[2]->text;
        if (key.size() > kMaxStorageKeyBytes)
            fail(at, "a storage key of " + std::to_string(key.size()) +
                         " bytes; torch.save writes short numbers");
        if (id->items[4]->kind != Kind::integer || id->items[4]->integer < 0)
            fail(at, "storage " + std::string(key) + " has no element count");
        Ref storage = make(Kind::storage, at);
        storage->dtype = id->items[1]->dtype;
        storage->text = key;
        storage->integer = id->items[4]->integer;
        // Views into another storage: written only by torch before 1.0.
        if (layout_ == Layout::legacy && id->items[5]->kind != Kind::none)
            fail(at, "storage " + std::string(key) +
                         " is a view into another storage (torch before 1.0); not supported");
        return storage;
    }

    // A size or stride: a tuple of at most kMaxDimensions sizes.
    void check_sizes(Ref value, size_t at, const char* what) {
        if (value->kind != Kind::tuple) fail(at, std::string(what) + " is not a tuple");
        if (value->items.size() > kMaxDimensions)
            fail(at, std::string(what) + " has " + std::to_string(value->items.size()) +
                         " dimensions; model weights have at most " +
                         std::to_string(kMaxDimensions));
        for (const Ref item : value->items)
            if (item->kind != Kind::integer || item->integer < 0)
                fail(at, std::string(what) + " holds something other than a size");
    }

    Ref reduce(std::string_view callable, const std::vector<Ref>& args, size_t at) {
        if (callable == kOrderedDict) {
            if (!args.empty()) fail(at, "OrderedDict with arguments");
            return make(Kind::dict, at);
        }
        if (callable == kRebuildTensor) {
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            if (args.size() < 4 || args[0]->kind != Kind::storage ||
                args[1]->kind != Kind::integer || args[1]->integer < 0)
                fail(at, "_rebuild_tensor_v2 with unexpected arguments");
            check_sizes(args[2], at, "tensor size");
            check_sizes(args[3], at, "tensor stride");
            if (args[2]->items.size() != args[3]->items.size())
                fail(at, "tensor size and stride differ in length");
            // Tuples are never changed once built, so the tensor can point at them.
            return sequence(Kind::tensor, {args[0], args[1], args[2], args[3]}, at);
        }
        if (callable == kRebuildParameter) {  // (data, requires_grad, backward_hooks)
            if (args.empty() || args[0]->kind != Kind::tensor)
                fail(at, "_rebuild_parameter without a tensor");
            return args[0];
        }
        fail(at, "cannot call " + std::string(callable));  // storage types are only tags
    }

    const uint8_t* bytes_;
    size_t size_;      // where this pickle must end: the file's end or kMaxPickleBytes past start
    size_t file_end_;  // the end of the bytes, to tell a long pickle from a truncated one
    size_t pos_;
    size_t max_values_;
    const std::string& file_;
    Layout layout_;
    std::deque<Value> arena_;  // owns every value; memo refs may form cycles
    std::vector<Ref> stack_;
    std::vector<size_t> marks_;
    std::vector<Ref> memo_;
};

std::vector<int64_t> sizes_of(Ref tuple) {
    std::vector<int64_t> sizes;
    sizes.reserve(tuple->items.size());
    for (const Ref item : tuple->items) sizes.push_back(item->integer);
    return sizes;
}

// torch.save spends about 100 bytes of pickle per state dict entry (its name,
// the storage's persistent id, the size and stride); fewer than this on average
// is a pickle built to make many entries out of little.
constexpr size_t kMinEntryBytes = 32;

// The {name: tensor} dict at a pickle's root (a dict or an OrderedDict), whose
// `pickle_size` bytes run from `pickle_start`.
std::vector<PickledTensor> state_dict_tensors(Ref root, size_t pickle_size, const std::string& file,
                                              const std::string& pickle_name) {
    if (root->kind != Kind::dict)
        throw Error(file + ": " + pickle_name + " does not hold a state dict");
    const size_t entries = root->items.size() / 2;
    if (entries > pickle_size / kMinEntryBytes + 1)
        throw Error(file + ": " + pickle_name + " has " + std::to_string(entries) +
                    " state dict entries in " + std::to_string(pickle_size) +
                    " bytes, fewer than " + std::to_string(kMinEntryBytes) +
                    " bytes each (torch.save writes about 100); refusing it");
    std::vector<PickledTensor> tensors;
    tensors.reserve(entries);
    std::unordered_set<std::string_view> names;
    for (size_t i = 0; i + 1 < root->items.size(); i += 2) {
        const Ref key = root->items[i];
        const Ref value = root->items[i + 1];
        if (key->kind != Kind::string) throw Error(file + ": a state dict key is not a string");
        if (!names.insert(key->text).second)
            throw Error(file + ": state dict entry " + std::string(key->text) + " appears twice");
        if (value->kind != Kind::tensor)
            throw Error(file + ": state dict entry " + std::string(key->text) + " is not a tensor");
        const Ref storage = value->items[0];
        PickledTensor tensor;
        tensor.name = key->text;
        tensor.storage_key = storage->text;
        tensor.dtype = storage->dtype;
        tensor.storage_numel = storage->integer;
        tensor.storage_offset = value->items[1]->integer;
        tensor.shape = sizes_of(value->items[2]);
        tensor.stride = sizes_of(value->items[3]);
        tensors.push_back(std::move(tensor));
    }
    return tensors;
}

// The tensor a pickle describes, without its bytes: checked contiguous (HF
// checkpoints save nothing else), its byte count computed without overflow.
TensorView describe_tensor(PickledTensor&& pickled, const std::string& file) {
    const size_t element = dtype_size(pickled.dtype);
    int64_t expected_stride = 1;
    size_t numel = 1;
    for (size_t d = pickled.shape.size(); d-- > 0;) {
        if (pickled.shape[d] != 1 && pickled.stride[d] != expected_stride)
            throw Error(file + ": tensor " + pickled.name + " is not contiguous (stride " +
                        shape_string(pickled.stride) + " for shape " + shape_string(pickled.shape) +
                        ")");
        if (pickled.shape[d] != 0 &&
            numel > std::numeric_limits<size_t>::max() / 16 / static_cast<size_t>(pickled.shape[d]))
            throw Error(file + ": tensor " + pickled.name + " is too large");
        numel *= static_cast<size_t>(pickled.shape[d]);
        expected_stride *= pickled.shape[d];
    }
    TensorView view;
    view.name = std::move(pickled.name);
    view.dtype = pickled.dtype;
    view.shape = std::move(pickled.shape);
    view.n_bytes = numel * element;
    view.file = file;
    return view;
}

// The tensor as a view into its storage (`storage_size` bytes), which it must lie inside.
TensorView view_in_storage(PickledTensor&& pickled, const uint8_t* storage, size_t storage_size,
                           const std::string& file) {
    const size_t element = dtype_size(pickled.dtype);
    const int64_t offset = pickled.storage_offset;
    TensorView view = describe_tensor(std::move(pickled), file);
    const size_t storage_elements = storage_size / element;
    if (static_cast<uint64_t>(offset) > storage_elements ||
        view.n_bytes / element > storage_elements - static_cast<size_t>(offset))
        throw Error(file + ": tensor " + view.name + " " + shape_string(view.shape) +
                    " at element " + std::to_string(offset) +
                    " runs past the end of its storage (" + std::to_string(storage_elements) +
                    " elements)");
    view.data = storage + static_cast<size_t>(offset) * element;
    return view;
}

// Deflate expands at most 1032:1: a larger claimed size is a lie, not an allocation to try.
void check_deflate_ratio(const ZipEntry& entry, const std::string& file) {
    if (entry.size / 1032 > entry.compressed_size)
        throw Error(file + ": entry " + entry.name + " claims " + std::to_string(entry.size) +
                    " bytes from " + std::to_string(entry.compressed_size) + " compressed");
}

// The tensor as a deflated zip entry, inflated only when read (TensorView::read),
// straight into the reader's buffer. Before anything is inflated the entry's
// declared size must be exactly the tensor's bytes and the storage's size in
// the pickle: a tensor is its whole storage (torch.save never deflates; a
// re-zipped checkpoint keeps torch's one storage per tensor).
TensorView deflated_view(PickledTensor&& pickled, const ZipEntry& entry, const std::string& file) {
    const size_t element = dtype_size(pickled.dtype);
    const int64_t offset = pickled.storage_offset;
    const int64_t storage_numel = pickled.storage_numel;
    TensorView view = describe_tensor(std::move(pickled), file);
    if (offset != 0 || view.n_bytes != entry.size ||
        static_cast<uint64_t>(storage_numel) != entry.size / element || entry.size % element)
        throw Error(file + ": tensor " + view.name + " " + std::string(dtype_name(view.dtype)) +
                    " " + shape_string(view.shape) + " at element " + std::to_string(offset) +
                    " of a " + std::to_string(storage_numel) +
                    "-element storage is not the whole of " + entry.name +
                    ", which is deflated and declares " + std::to_string(entry.size) +
                    " bytes; attnviz inflates a deflated storage only as one whole tensor");
    check_deflate_ratio(entry, file);
    view.deflated = entry.data;
    view.deflated_size = entry.compressed_size;
    return view;
}

// torch.serialization's MAGIC_NUMBER, 0x1950a86a20f9469cfc6c, as LONG1 stores it.
constexpr std::string_view kLegacyMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
constexpr int64_t kLegacyProtocolVersion = 1001;

// A zip entry's bytes in memory: viewed in place when stored, inflated into
// `buffer` when deflated. The caller checks its size first.
const uint8_t* entry_bytes(const ZipEntry& entry, std::vector<uint8_t>& buffer,
                           const std::string& file) {
    if (entry.method == 0) return entry.data;
    if (entry.method != 8)
        throw Error(file + ": entry " + entry.name + " uses zip compression method " +
                    std::to_string(entry.method));
    check_deflate_ratio(entry, file);
    buffer.clear();
    buffer.reserve(entry.size);
    inflate_entry(entry.data, entry.compressed_size, entry.size, file + ": entry " + entry.name,
                  [&](const uint8_t* bytes, size_t count) {
                      buffer.insert(buffer.end(), bytes, bytes + count);
                  });
    return buffer.data();
}

}  // namespace

void inflate_entry(const uint8_t* compressed, size_t compressed_size, size_t size,
                   const std::string& what, const ByteConsumer& consume) {
    z_stream stream{};
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) throw Error(what + ": zlib cannot start");
    struct End {
        z_stream& stream;
        ~End() { inflateEnd(&stream); }
    } end{stream};
    size_t fed = 0;
    bool ended = false;
    // Inflates up to `count` bytes into `out`; fewer only where the stream ends.
    const auto fill = [&](uint8_t* out, size_t count) {
        stream.next_out = out;
        stream.avail_out = static_cast<uInt>(count);
        while (stream.avail_out > 0 && !ended) {
            if (stream.avail_in == 0 && fed < compressed_size) {
                const size_t piece = std::min<size_t>(compressed_size - fed, size_t{1} << 30);
                stream.next_in = const_cast<Bytef*>(compressed + fed);
                stream.avail_in = static_cast<uInt>(piece);
                fed += piece;
            }
            const int result = inflate(&stream, Z_NO_FLUSH);
            if (result == Z_STREAM_END)
                ended = true;
            else if (result == Z_BUF_ERROR && stream.avail_in == 0)  // no progress, no input
                throw Error(what + " is cut short: its deflate stream does not end");
            else if (result != Z_OK)
                throw Error(what + " is not valid deflate data" +
                            (stream.msg ? std::string(" (") + stream.msg + ")" : ""));
        }
        return count - stream.avail_out;
    };
    constexpr size_t kChunk = size_t{1} << 16;  // a multiple of every element size
    std::vector<uint8_t> chunk(std::min(kChunk, std::max<size_t>(size, 1)));
    size_t produced = 0;
    while (produced < size) {
        const size_t want = std::min(chunk.size(), size - produced);
        const size_t got = fill(chunk.data(), want);
        if (got < want)
            throw Error(what + " inflates to " + std::to_string(produced + got) +
                        " bytes, not the " + std::to_string(size) + " its header declares");
        consume(chunk.data(), got);
        produced += got;
    }
    uint8_t extra;
    if (fill(&extra, 1) != 0)
        throw Error(what + " inflates to more than the " + std::to_string(size) +
                    " bytes its header declares");
}

std::vector<PickledTensor> unpickle_state_dict(const uint8_t* bytes, size_t size,
                                               const std::string& file) {
    if (size > kMaxPickleBytes)
        throw Error(file + ": data.pkl is " + std::to_string(size) +
                    " bytes, more than any state dict needs (at most " +
                    std::to_string(kMaxPickleBytes) + "); refusing it");
    Unpickler unpickler(bytes, size, file, Layout::zip);
    return state_dict_tensors(unpickler.run(), size, file, "data.pkl");
}

std::vector<TensorView> read_torch_zip(const uint8_t* bytes, size_t size, const std::string& file) {
    const std::vector<ZipEntry> entries = read_zip_directory(bytes, size, file);
    // Entries are "<archive>/data.pkl" and "<archive>/data/<key>"; the archive
    // folder's name varies with the file name torch.save was given. Nothing is
    // inflated here but data.pkl and byteorder: storages wait for TensorView::read.
    std::map<std::string_view, const ZipEntry*, std::less<>> by_name;  // the name after the folder
    for (const ZipEntry& entry : entries) {
        const size_t slash = entry.name.find('/');
        if (slash != std::string::npos)
            by_name[std::string_view(entry.name).substr(slash + 1)] = &entry;
    }
    const auto pickle = by_name.find("data.pkl");
    if (pickle == by_name.end())
        throw Error(file + ": no data.pkl in the archive; not a PyTorch checkpoint");
    std::vector<uint8_t> buffer;
    if (const auto order = by_name.find("byteorder"); order != by_name.end()) {
        const ZipEntry& entry = *order->second;
        constexpr std::string_view kLittle = "little";
        if (entry.size != kLittle.size() ||
            std::string_view(reinterpret_cast<const char*>(entry_bytes(entry, buffer, file)),
                             entry.size) != kLittle)
            throw Error(file + ": big-endian checkpoints are not supported");
    }
    const ZipEntry& pickle_entry = *pickle->second;
    if (pickle_entry.size > kMaxPickleBytes)
        throw Error(file + ": data.pkl is " + std::to_string(pickle_entry.size) +
                    " bytes, more than any state dict needs (at most " +
                    std::to_string(kMaxPickleBytes) + "); refusing it");
    const uint8_t* pickle_bytes = entry_bytes(pickle_entry, buffer, file);

    std::vector<TensorView> views;
    for (PickledTensor& pickled : unpickle_state_dict(pickle_bytes, pickle_entry.size, file)) {
        const auto found = by_name.find("data/" + pickled.storage_key);
        if (found == by_name.end())
            throw Error(file + ": tensor " + pickled.name + " needs storage data/" +
                        pickled.storage_key + ", which is not in the archive");
        const ZipEntry& storage = *found->second;
        if (storage.method == 0)
            views.push_back(view_in_storage(std::move(pickled), storage.data, storage.size, file));
        else if (storage.method == 8)
            views.push_back(deflated_view(std::move(pickled), storage, file));
        else
            throw Error(file + ": entry " + storage.name + " uses zip compression method " +
                        std::to_string(storage.method));
    }
    return views;
}

// ---------------------------------------------------------------------------
// Legacy files (torch.serialization's _legacy_save): pickles one after another
// (magic number, protocol version, system info, the state dict, its storage
// keys), then each storage as an 8-byte element count and its raw bytes.

std::vector<TensorView> read_torch_legacy(const uint8_t* bytes, size_t size,
                                          const std::string& file) {
    const auto at_byte = [&](size_t pos) { return " at byte " + std::to_string(pos); };
    size_t pos = 0;
    {  // Anything that does not open with the magic number is not a torch.save file at all.
        Unpickler magic(bytes, size, file, Layout::legacy);
        Ref number = nullptr;
        try {
            number = magic.run();
        } catch (const Error&) {
        }
        if (!number || number->kind != Kind::big_integer || number->text != kLegacyMagic)
            throw Error(file +
                        ": not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save "
                        "file with its magic number)");
        pos = magic.end();
    }
    {
        Unpickler version(bytes, size, file, Layout::legacy, pos);
        const Ref number = version.run();
        if (number->kind != Kind::integer || number->integer != kLegacyProtocolVersion)
            throw Error(file + ": legacy torch.save protocol version" + at_byte(pos) + " is not " +
                        std::to_string(kLegacyProtocolVersion));
        pos = version.end();
    }
    {  // {"protocol_version": ..., "little_endian": ..., "type_sizes": {...}}
        Unpickler system(bytes, size, file, Layout::legacy, pos);
        const Ref info = system.run();
        if (info->kind != Kind::dict)
            throw Error(file + ": the system info" + at_byte(pos) + " is not a dict");
        for (size_t i = 0; i + 1 < info->items.size(); i += 2) {
            const Ref key = info->items[i];
            const Ref value = info->items[i + 1];
            if (key->kind == Kind::string && key->text == "little_endian" &&
                !(value->kind == Kind::boolean && value->integer))
                throw Error(file + ": big-endian checkpoints are not supported");
        }
        pos = system.end();
    }
    Unpickler state_dict(bytes, size, file, Layout::legacy, pos);
    const Ref root = state_dict.run();
    std::vector<PickledTensor> tensors =
        state_dict_tensors(root, state_dict.end() - pos, file, "the pickle" + at_byte(pos));
    pos = state_dict.end();
    Unpickler key_list(bytes, size, file, Layout::legacy, pos);
    const Ref keys = key_list.run();
    if (keys->kind != Kind::list)
        throw Error(file + ": the storage key list" + at_byte(pos) + " is not a list");
    pos = key_list.end();
    // Each storage takes at least its 8-byte element count.
    if (keys->items.size() > (size - pos) / 8)
        throw Error(file + ": lists " + std::to_string(keys->items.size()) +
                    " storages, but only " + std::to_string(size - pos) +
                    " bytes follow; the file is truncated");

    // What the pickle says of each storage, and where its bytes are.
    struct Storage {
        DType dtype;
        int64_t numel;
        const uint8_t* data = nullptr;
        size_t n_bytes = 0;
    };
    std::map<std::string, Storage, std::less<>> storages;
    for (const PickledTensor& tensor : tensors) {
        const auto [found, inserted] =
            storages.emplace(tensor.storage_key, Storage{tensor.dtype, tensor.storage_numel});
        if (!inserted &&
            (found->second.dtype != tensor.dtype || found->second.numel != tensor.storage_numel))
            throw Error(file + ": tensor " + tensor.name + " sees storage " + tensor.storage_key +
                        " as " + std::to_string(tensor.storage_numel) + " " +
                        std::string(dtype_name(tensor.dtype)) + " elements, another tensor as " +
                        std::to_string(found->second.numel) + " " +
                        std::string(dtype_name(found->second.dtype)));
    }
    for (const Ref key : keys->items) {
        if (key->kind != Kind::string) throw Error(file + ": a storage key is not a string");
        const auto found = storages.find(key->text);
        if (found == storages.end())
            throw Error(file + ": storage " + std::string(key->text) + at_byte(pos) +
                        " is used by no tensor of the state dict");
        Storage& storage = found->second;
        if (storage.data)
            throw Error(file + ": storage " + std::string(key->text) + " is listed twice");
        if (size - pos < 8)
            throw Error(file + ": storage " + std::string(key->text) + at_byte(pos) +
                        " is missing; the file is truncated");
        const uint64_t count = read_le(bytes + pos, 8);
        pos += 8;
        const size_t element = dtype_size(storage.dtype);
        if (count > (size - pos) / element)
            throw Error(file + ": storage " + std::string(key->text) + at_byte(pos - 8) +
                        " claims " + std::to_string(count) + " " +
                        std::string(dtype_name(storage.dtype)) + " elements, more than the " +
                        std::to_string(size - pos) + " bytes left in the file");
        if (count != static_cast<uint64_t>(storage.numel))
            throw Error(file + ": storage " + std::string(key->text) + at_byte(pos - 8) +
                        " holds " + std::to_string(count) + " elements, but the pickle says " +
                        std::to_string(storage.numel));
        storage.data = bytes + pos;
        storage.n_bytes = count * element;
        pos += storage.n_bytes;
    }

    std::vector<TensorView> views;
    for (PickledTensor& pickled : tensors) {
        const Storage& storage = storages.at(pickled.storage_key);
        if (!storage.data)
            throw Error(file + ": tensor " + pickled.name + " needs storage " +
                        pickled.storage_key + ", which the file does not list");
        views.push_back(view_in_storage(std::move(pickled), storage.data, storage.n_bytes, file));
    }
    return views;
}

std::vector<TensorView> read_torch_checkpoint(const uint8_t* bytes, size_t size,
                                              const std::string& file) {
    // A legacy file opens with the magic number's pickle (PROTO); a zip with its first local
    // header. Anything else goes to the zip reader, which says what it lacks.
    if (size > 0 && bytes[0] == 0x80) return read_torch_legacy(bytes, size, file);
    return read_torch_zip(bytes, size, file);
}

}  // namespace attnviz::io
