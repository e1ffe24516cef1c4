#include "io/files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "attnviz/error.h"

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
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot create " + path.string() + ": " + system_error_text());
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) throw Error("cannot write " + path.string() + ": " + system_error_text());
}

nlohmann::json read_json(const std::filesystem::path& path) {
    const std::string text = read_file(path);
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw Error("invalid JSON in " + path.string() + " at byte " + std::to_string(e.byte) +
                    ": " + e.what());
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

}  // namespace attnviz::io
