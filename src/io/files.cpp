#include "io/files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <utility>

#include "attnviz/error.h"
#include "attnviz/files.h"

namespace fs = std::filesystem;

namespace attnviz::io {

namespace {

std::string system_error_text() { return std::strerror(errno); }

// What a file that is not a regular file is, for messages.
std::string file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "of an unknown kind";
}

}  // namespace

InputFile::InputFile(const std::filesystem::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) throw Error("cannot open " + path.string() + ": " + system_error_text());
    struct stat info {};
    if (::fstat(fd_, &info) != 0) {
        const std::string reason = system_error_text();
        ::close(fd_);
        throw Error("cannot stat " + path.string() + ": " + reason);
    }
    if (!S_ISREG(info.st_mode)) {
        ::close(fd_);
        throw Error("cannot open " + path.string() + ": it is " + file_kind(info.st_mode) +
                    ", not a regular file");
    }
    size_ = static_cast<size_t>(info.st_size);
}

InputFile::~InputFile() {
    if (fd_ >= 0) ::close(fd_);
}

InputFile::InputFile(InputFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(std::exchange(other.size_, 0)) {}

InputFile& InputFile::operator=(InputFile&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        path_ = std::move(other.path_);
        fd_ = std::exchange(other.fd_, -1);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

std::string read_file(const std::filesystem::path& path) {
    const InputFile file(path);
    std::string bytes;
    bytes.reserve(file.size());
    char buffer[1 << 16];
    while (true) {
        const ssize_t n = ::read(file.descriptor(), buffer, sizeof buffer);
        if (n == 0) return bytes;
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Error("cannot read " + path.string() + ": " + system_error_text());
        }
        bytes.append(buffer, static_cast<size_t>(n));
    }
}

void write_file(const std::filesystem::path& path, std::string_view bytes) {
    write_output(path, bytes);
}

nlohmann::json read_json(const std::filesystem::path& path) {
    const std::string text = read_file(path);
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw Error("invalid JSON in " + path.string() + " at byte " + std::to_string(e.byte) +
                    ": " + e.what());
    } catch (const nlohmann::json::exception& e) {  // a number too large for a double: 1e30102
        throw Error("invalid JSON in " + path.string() + ": " + e.what());
    }
}

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
    const InputFile file(path);
    size_ = file.size();
    if (size_ > 0) {
        void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file.descriptor(), 0);
        if (mapped == MAP_FAILED)
            throw Error("cannot map " + path.string() + ": " + system_error_text());
        data_ = static_cast<const uint8_t*>(mapped);
    }
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
        path_ = std::move(other.path_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

// ---- Outputs: whole or absent (see attnviz/files.h) ----

namespace {

// Temporary files being written, for the signal handler to remove. Fixed
// storage, so that the handler reads no memory that a thread may be freeing.
constexpr int kTemporarySlots = 32;
enum SlotState : int { kFree = 0, kFilling = 1, kActive = 2 };
struct TemporarySlot {
    std::atomic<int> state{kFree};
    char path[PATH_MAX];
};
TemporarySlot temporary_slots[kTemporarySlots];

// Async-signal-safe: unlink, then the signal's default action (SA_RESETHAND
// restored it; the signal is blocked until this returns, and then kills).
extern "C" void remove_temporaries_and_raise(int signal_number) {
    const int saved_errno = errno;
    for (TemporarySlot& slot : temporary_slots)
        if (slot.state.load() == kActive) ::unlink(slot.path);
    ::raise(signal_number);
    errno = saved_errno;
}

// The handlers go in only where the default action (death) is in force: an
// ignored signal (nohup) stays ignored, and a host program's own handler stays.
void install_signal_cleanup() {
    static std::once_flag installed;
    std::call_once(installed, [] {
        for (int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGXFSZ}) {
            struct sigaction current {};
            if (::sigaction(signal_number, nullptr, &current) != 0) continue;
            if ((current.sa_flags & SA_SIGINFO) || current.sa_handler != SIG_DFL) continue;
            struct sigaction cleanup {};
            cleanup.sa_handler = remove_temporaries_and_raise;
            sigemptyset(&cleanup.sa_mask);
            cleanup.sa_flags = SA_RESETHAND;
            ::sigaction(signal_number, &cleanup, nullptr);
        }
    });
}

// A slot holding `path`, or -1 when all are taken (the file is then still
// removed on errors, but not on signals).
int register_temporary(const std::string& path) {
    if (path.size() >= PATH_MAX) return -1;
    for (int i = 0; i < kTemporarySlots; ++i) {
        int expected = kFree;
        if (temporary_slots[i].state.compare_exchange_strong(expected, kFilling)) {
            std::memcpy(temporary_slots[i].path, path.c_str(), path.size() + 1);
            temporary_slots[i].state.store(kActive);
            return i;
        }
    }
    return -1;
}

void unregister_temporary(int slot) {
    if (slot >= 0) temporary_slots[slot].state.store(kFree);
}

// A stream buffer over a file descriptor whose failed writes throw Error with
// the real reason (an ostream's own failure state would lose errno).
class DescriptorBuffer : public std::streambuf {
public:
    DescriptorBuffer(int fd, std::string name) : fd_(fd), name_(std::move(name)) {
        setp(buffer_.data(), buffer_.data() + buffer_.size());
    }
    void flush_all() {
        write_all(pbase(), static_cast<size_t>(pptr() - pbase()));
        setp(buffer_.data(), buffer_.data() + buffer_.size());
    }

protected:
    int_type overflow(int_type c) override {
        flush_all();
        if (!traits_type::eq_int_type(c, traits_type::eof())) {
            *pptr() = traits_type::to_char_type(c);
            pbump(1);
        }
        return traits_type::not_eof(c);
    }
    std::streamsize xsputn(const char* data, std::streamsize count) override {
        if (count >= static_cast<std::streamsize>(buffer_.size())) {
            flush_all();
            write_all(data, static_cast<size_t>(count));
            return count;
        }
        return std::streambuf::xsputn(data, count);
    }
    int sync() override {
        flush_all();
        return 0;
    }

private:
    void write_all(const char* data, size_t size) {
        while (size > 0) {
            const ssize_t written = ::write(fd_, data, size);
            if (written < 0 && errno == EINTR) continue;
            if (written <= 0) throw Error("cannot write " + name_ + ": " + system_error_text());
            data += written;
            size -= static_cast<size_t>(written);
        }
    }
    int fd_;
    std::string name_;
    std::array<char, 1 << 16> buffer_{};
};

// The file a path names once its symbolic links are followed, as cp follows
// them; it may not exist yet. Throws for anything but a regular file.
fs::path regular_target(const fs::path& path, const std::string& label, struct stat& info,
                        bool& exists) {
    fs::path current = path;
    for (int hops = 0; hops < 40; ++hops) {
        if (::lstat(current.c_str(), &info) != 0) {
            if (errno != ENOENT) throw Error("cannot write " + label + ": " + system_error_text());
            exists = false;
            return current;
        }
        if (S_ISLNK(info.st_mode)) {
            std::error_code error;
            const fs::path target = fs::read_symlink(current, error);
            if (error) throw Error("cannot write " + label + ": " + error.message());
            current = target.is_absolute() ? target : current.parent_path() / target;
            continue;
        }
        if (!S_ISREG(info.st_mode))
            throw Error(
                label + ": " +
                (current == path ? std::string("is ") : "points to " + current.string() + ", ") +
                file_kind(info.st_mode) +
                "; attnviz replaces only regular files (- writes to standard output)");
        exists = true;
        return current;
    }
    throw Error("cannot write " + label + ": too many levels of symbolic links");
}

std::string random_suffix() {
    static std::mutex mutex;
    static std::mt19937_64 generator{std::random_device{}()};
    std::lock_guard<std::mutex> lock(mutex);
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(generator()));
    return text;
}

}  // namespace

}  // namespace attnviz::io

namespace attnviz {

bool is_standard_output(const fs::path& path) { return path == "-" || path == "/dev/stdout"; }

struct OutputFile::Impl {
    std::string label;  // "-o out.html", for messages
    bool standard_output = false;
    fs::path target;     // after symbolic links
    fs::path temporary;  // beside it
    int fd = -1;
    int slot = -1;
    bool committed = false;
    std::unique_ptr<io::DescriptorBuffer> buffer;
    std::unique_ptr<std::ostream> stream;

    void discard() noexcept {
        if (fd >= 0 && !standard_output) ::close(fd);
        fd = -1;
        if (!temporary.empty()) ::unlink(temporary.c_str());
        io::unregister_temporary(slot);
        slot = -1;
    }
};

OutputFile::OutputFile(const fs::path& path, std::string flag) : impl_(std::make_unique<Impl>()) {
    Impl& out = *impl_;
    out.label = flag.empty() ? path.string() : flag + " " + path.string();
    if (path.empty()) throw Error(out.label + ": no file name given");
    if (is_standard_output(path)) {
        out.standard_output = true;
        out.fd = STDOUT_FILENO;
        std::cout.flush();  // what was printed before comes first
        std::fflush(stdout);
        out.buffer = std::make_unique<io::DescriptorBuffer>(out.fd, "to standard output");
    } else {
        struct stat info {};
        bool exists = false;
        out.target = io::regular_target(path, out.label, info, exists);
        const fs::path folder =
            out.target.parent_path().empty() ? fs::path(".") : out.target.parent_path();
        // Short enough for NAME_MAX whatever the target's name; hidden, and
        // named after the target, so that a stray one says whose it was.
        const std::string stem = out.target.filename().string().substr(0, 64);
        io::install_signal_cleanup();
        for (int attempt = 0; out.fd < 0; ++attempt) {
            out.temporary = folder / ("." + stem + ".attnviz-" + std::to_string(::getpid()) + "-" +
                                      io::random_suffix() + ".tmp");
            // The slot is taken before the file exists, so that no signal finds
            // a file it does not know.
            out.slot = io::register_temporary(out.temporary.string());
            // 0666 less the umask, as for any new file; an old file's mode is kept.
            out.fd = ::open(out.temporary.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
            if (out.fd >= 0) break;
            const int reason = errno;
            io::unregister_temporary(out.slot);
            out.slot = -1;
            if (reason != EEXIST || attempt == 16) {
                out.temporary.clear();
                throw Error("cannot write " + out.label + ": cannot create a file in " +
                            folder.string() + ": " + std::strerror(reason));
            }
        }
        if (exists && ::fchmod(out.fd, info.st_mode & 07777) != 0) {
            const std::string reason = io::system_error_text();
            out.discard();
            throw Error("cannot write " + out.label + ": " + reason);
        }
        out.buffer = std::make_unique<io::DescriptorBuffer>(out.fd, out.label);
    }
    out.stream = std::make_unique<std::ostream>(out.buffer.get());
    out.stream->exceptions(std::ios::badbit);
}

OutputFile::~OutputFile() {
    if (!impl_->committed) impl_->discard();
}

std::ostream& OutputFile::stream() { return *impl_->stream; }

void OutputFile::commit() {
    Impl& out = *impl_;
    if (out.committed) return;
    try {
        out.buffer->flush_all();
    } catch (...) {
        out.discard();
        throw;
    }
    if (out.standard_output) {
        out.committed = true;
        return;
    }
    auto fail = [&out](const std::string& what) {
        const std::string reason = io::system_error_text();
        out.discard();
        throw Error("cannot write " + out.label + ": " + what + reason);
    };
    if (::fsync(out.fd) != 0) fail("");
    const int fd = std::exchange(out.fd, -1);
    if (::close(fd) != 0) fail("");
    // Checked again: the target may have become a directory or a device since.
    struct stat info {};
    if (::lstat(out.target.c_str(), &info) == 0 && !S_ISREG(info.st_mode)) {
        out.discard();
        throw Error(out.label + ": " + out.target.string() + " is now " +
                    io::file_kind(info.st_mode) + "; attnviz replaces only regular files");
    }
    if (::rename(out.temporary.c_str(), out.target.c_str()) != 0) fail("");
    out.committed = true;
    io::unregister_temporary(std::exchange(out.slot, -1));
    // The rename itself is made durable by syncing the folder; a file system
    // that cannot sync folders has still renamed atomically.
    const fs::path folder =
        out.target.parent_path().empty() ? fs::path(".") : out.target.parent_path();
    const int folder_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (folder_fd >= 0) {
        ::fsync(folder_fd);
        ::close(folder_fd);
    }
}

void write_output(const fs::path& path, std::string_view bytes, const std::string& flag) {
    OutputFile out(path, flag);
    out.stream().write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.commit();
}

// ---- Text ----

size_t valid_utf8_prefix(std::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte < 0x80) {
            ++i;
            continue;
        }
        size_t length = 0;
        char32_t point = 0;
        char32_t minimum = 0;
        if ((byte & 0xE0) == 0xC0) {
            length = 2, point = byte & 0x1F, minimum = 0x80;
        } else if ((byte & 0xF0) == 0xE0) {
            length = 3, point = byte & 0x0F, minimum = 0x800;
        } else if ((byte & 0xF8) == 0xF0) {
            length = 4, point = byte & 0x07, minimum = 0x10000;
        } else {
            return i;
        }
        if (i + length > text.size()) return i;
        for (size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xC0) != 0x80) return i;
            point = (point << 6) | (next & 0x3F);
        }
        // Overlong forms, UTF-16 surrogates and points past U+10FFFF are not UTF-8.
        if (point < minimum || point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF)) return i;
        i += length;
    }
    return i;
}

std::string printable(std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        const size_t valid = valid_utf8_prefix(text.substr(i, 4));
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte >= 0x80 && valid == 0) {  // not UTF-8
            out += "\\x";
            out += hex[byte >> 4];
            out += hex[byte & 15];
            ++i;
            continue;
        }
        if (byte < 0x20 || byte == 0x7F) {
            if (byte == '\n') {
                out += "\\n";
            } else if (byte == '\t') {
                out += "\\t";
            } else if (byte == '\r') {
                out += "\\r";
            } else {
                out += "\\x";
                out += hex[byte >> 4];
                out += hex[byte & 15];
            }
            ++i;
            continue;
        }
        if (byte == 0xC2 && i + 1 < text.size() &&
            static_cast<unsigned char>(text[i + 1]) < 0xA0) {  // C1: U+0080 to U+009F
            const auto low = static_cast<unsigned char>(text[i + 1]);
            out += "\\u00";
            out += hex[low >> 4];
            out += hex[low & 15];
            i += 2;
            continue;
        }
        const size_t length = byte < 0x80 ? 1 : byte < 0xE0 ? 2 : byte < 0xF0 ? 3 : 4;
        out.append(text.substr(i, length));
        i += length;
    }
    return out;
}

std::string read_text_file(const fs::path& path, const std::string& flag) {
    const bool standard_input = path == "-";
    const std::string name = standard_input ? "standard input" : path.string();
    std::string text;
    if (standard_input) {
        char buffer[1 << 16];
        for (;;) {
            const ssize_t got = ::read(STDIN_FILENO, buffer, sizeof buffer);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0)
                throw Error(flag + ": cannot read standard input: " + io::system_error_text());
            if (got == 0) break;
            text.append(buffer, static_cast<size_t>(got));
        }
    } else {
        std::error_code error;
        if (fs::is_directory(path, error)) throw Error(flag + " " + name + ": is a directory");
        std::ifstream in(path, std::ios::binary);
        if (!in) throw Error(flag + ": cannot open " + name + ": " + io::system_error_text());
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        if (in.bad()) throw Error(flag + ": cannot read " + name + ": " + io::system_error_text());
    }
    const size_t valid = valid_utf8_prefix(text);
    if (valid != text.size()) {
        const auto byte = static_cast<unsigned char>(text[valid]);
        static const char hex[] = "0123456789abcdef";
        throw Error(flag + " " + name + ": not valid UTF-8 (byte 0x" + hex[byte >> 4] +
                    hex[byte & 15] + " at offset " + std::to_string(valid) + ")");
    }
    return text;
}

}  // namespace attnviz
