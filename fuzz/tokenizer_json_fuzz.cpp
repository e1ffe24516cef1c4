// libFuzzer target: tokenizer.json loading and encoding on arbitrary bytes.
// The input up to its first NUL byte is tokenizer.json (JSON has no raw NUL);
// what follows is the text to encode, or a fixed sample when there is none.
// Any input must end in a tokenizer and encodings whose offsets stay inside
// the text, or an attnviz::Error; never a crash, a bad_alloc or a hang.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "attnviz/error.h"
#include "attnviz/tokenizer.h"

namespace {

// One folder per process: Tokenizer::from_folder is the entry point under test.
const std::filesystem::path& folder() {
    static const std::filesystem::path path = [] {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "attnviz-tokfuzz-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) std::abort();
        std::atexit([] {
            std::error_code ignored;
            std::filesystem::remove_all(folder(), ignored);
        });
        return std::filesystem::path(pattern);
    }();
    return path;
}

void check(const attnviz::Tokenizer& tokenizer, const attnviz::Encoding& encoding,
           std::string_view a, std::string_view b) {
    for (size_t i = 0; i < encoding.size(); ++i) {
        const attnviz::Offset& o = encoding.byte_offsets[i];
        const size_t limit = encoding.sequence_ids[i] == 1 ? b.size() : a.size();
        if (o.start > o.end || o.end > limit) std::abort();
    }
    tokenizer.display_tokens(encoding);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const size_t nul = input.find('\0');
    const std::string_view json = input.substr(0, nul);
    const std::string_view text = nul == std::string_view::npos
                                      ? std::string_view("Hello, world! Ünïcödé 東京 [CLS] <s>")
                                      : input.substr(nul + 1);
    {
        std::ofstream out(folder() / "tokenizer.json", std::ios::binary | std::ios::trunc);
        out.write(json.data(), std::streamsize(json.size()));
    }
    try {
        const attnviz::Tokenizer tokenizer = attnviz::Tokenizer::from_folder(folder());
        try {
            check(tokenizer, tokenizer.encode(text), text, {});
            check(tokenizer, tokenizer.encode_pair(text, "a b"), text, "a b");
            attnviz::EncodeOptions truncating;
            truncating.max_length = 8;
            truncating.truncate = true;
            check(tokenizer, tokenizer.encode_pair(text, text, truncating), text, text);
        } catch (const attnviz::Error&) {
        }
    } catch (const attnviz::Error&) {
    }
    return 0;
}
