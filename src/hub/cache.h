// The Hugging Face cache on disk, as huggingface_hub lays it out:
//   <cache>/models--org--name/blobs/<etag>                  file contents
//   <cache>/models--org--name/snapshots/<commit>/<file>     -> ../../blobs/<etag>
//   <cache>/models--org--name/refs/<revision>               the commit, no newline
//   <cache>/.locks/models--org--name/<etag>.lock            flock()ed while writing
// Nothing here touches the network.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace attnviz::hub {

std::filesystem::path repo_folder(const std::filesystem::path& cache, const std::string& repo);

// A git commit id as the hub gives it: 40 lowercase hex digits. The hub's
// answers and the cache's refs are both checked with it, since a commit
// becomes a folder name (snapshots/<commit>).
bool is_commit_id(const std::string& revision);

// A revision that is already a commit id is used as it is; otherwise
// refs/<revision>, which must hold a commit id (an Error names the ref otherwise).
std::optional<std::string> cached_commit(const std::filesystem::path& repo_dir,
                                         const std::string& revision);

// What a snapshot folder lacks to be a usable model (config.json, a tokenizer,
// and with_weights, the weights and every shard an index names); empty when nothing.
std::vector<std::string> missing_model_files(const std::filesystem::path& folder,
                                             bool with_weights);

// The files to fetch from a repo's file list: config.json, every tokenizer
// file present, and with_weights, one form of the weights: model.safetensors,
// else its index, else pytorch_model.bin, else its index (the shards an index
// names are added after it is read).
std::vector<std::string> wanted_files(const std::vector<std::string>& repo_files,
                                      bool with_weights);

// The names wanted_files picks from: config, tokenizer files, then the weights
// in order of preference (for servers that cannot list a repo's files).
extern const std::vector<std::string> kTokenizerFiles;
extern const std::vector<std::string> kWeightFiles;

// The shard file names an index (model.safetensors.index.json) maps weights to.
std::vector<std::string> index_shards(const std::filesystem::path& index_file);

// snapshots/<commit>/<file> -> ../../blobs/<etag>, replacing any older link.
void link_snapshot_file(const std::filesystem::path& repo_dir, const std::string& commit,
                        const std::string& file, const std::string& etag);

// refs/<revision> := commit, written atomically.
void write_ref(const std::filesystem::path& repo_dir, const std::string& revision,
               const std::string& commit);

// An exclusive flock() on .locks/<repo folder>/<etag>.lock, the lock file
// huggingface_hub takes, so that attnviz and Python never write one blob at once.
class BlobLock {
public:
    BlobLock(const std::filesystem::path& cache, const std::string& repo, const std::string& etag);
    ~BlobLock();
    BlobLock(const BlobLock&) = delete;
    BlobLock& operator=(const BlobLock&) = delete;

private:
    int fd_ = -1;
};

// Lowercase hex SHA-256 of a file's contents.
std::string file_sha256(const std::filesystem::path& file);

}  // namespace attnviz::hub
