// Reading files: whole files, read-only memory maps, and JSON documents, with
// errors that name the file. Writing goes through attnviz/files.h's
// OutputFile, whole or not at all; write_file is its shorthand. Every reader
// opens through InputFile, so only
// regular files are read: a FIFO, device or directory in place of a model file
// is an Error saying what it is, never a hang.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace attnviz::io {

// An open regular file, read-only. Opening never blocks (O_NONBLOCK: a FIFO
// without a writer would wait forever), and anything but a regular file is an
// Error: "cannot open PATH: it is a FIFO, not a regular file". Movable, not copyable.
class InputFile {
public:
    explicit InputFile(const std::filesystem::path& path);
    ~InputFile();
    InputFile(InputFile&& other) noexcept;
    InputFile& operator=(InputFile&& other) noexcept;
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    int descriptor() const { return fd_; }
    size_t size() const { return size_; }  // as fstat saw it at open
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    int fd_ = -1;
    size_t size_ = 0;
};

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, std::string_view bytes);

// Throws Error naming the file and the parse position.
nlohmann::json read_json(const std::filesystem::path& path);

// A read-only, private memory map of a whole file. Movable, not copyable.
class MappedFile {
public:
    explicit MappedFile(const std::filesystem::path& path);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace attnviz::io
