#include "io/tensors.h"

#include "attnviz/error.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"

namespace attnviz::io {

namespace fs = std::filesystem;

size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::f64:
        case DType::i64:
            return 8;
        case DType::f32:
        case DType::i32:
            return 4;
        case DType::f16:
        case DType::bf16:
        case DType::i16:
            return 2;
        case DType::i8:
        case DType::u8:
        case DType::boolean:
            return 1;
    }
    return 1;
}

std::string_view dtype_name(DType dtype) {
    switch (dtype) {
        case DType::f64:
            return "F64";
        case DType::f32:
            return "F32";
        case DType::f16:
            return "F16";
        case DType::bf16:
            return "BF16";
        case DType::i64:
            return "I64";
        case DType::i32:
            return "I32";
        case DType::i16:
            return "I16";
        case DType::i8:
            return "I8";
        case DType::u8:
            return "U8";
        case DType::boolean:
            return "BOOL";
    }
    return "?";
}

size_t TensorView::numel() const {
    size_t n = 1;
    for (int64_t dim : shape) n *= static_cast<size_t>(dim);
    return n;
}

void TensorView::read(const ByteConsumer& consume) const {
    if (deflated)
        inflate_entry(deflated, deflated_size, n_bytes, file + ": tensor " + name, consume);
    else
        consume(data, n_bytes);
}

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string text = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) text += ", ";
        text += std::to_string(shape[i]);
    }
    return text + "]";
}

void TensorSet::add(TensorView tensor) {
    const auto [it, inserted] = index_.emplace(tensor.name, tensors_.size());
    if (!inserted)
        throw Error("tensor " + tensor.name + " appears twice: in " + tensors_[it->second].file +
                    " and " + tensor.file);
    tensors_.push_back(std::move(tensor));
}

void TensorSet::merge(TensorSet&& other) {
    for (auto& owned : other.owned_) owned_.push_back(std::move(owned));
    for (auto& tensor : other.tensors_) add(std::move(tensor));
    description_ += description_.empty() ? other.description_ : ", " + other.description_;
}

const TensorView* TensorSet::find(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

TensorSet TensorSet::open_safetensors(const fs::path& file) {
    auto mapped = std::make_shared<const MappedFile>(file);
    TensorSet set;
    for (auto& tensor : parse_safetensors(mapped->data(), mapped->size(), file.string()))
        set.add(std::move(tensor));
    set.owned_.push_back(std::move(mapped));
    set.description_ = file.string();
    return set;
}

namespace {

// model.safetensors.index.json: {"weight_map": {tensor name: shard file name}}.
// Returns the shard files in first-mention order, each checked to stay in `folder`.
std::vector<fs::path> shard_files(const fs::path& index_file) {
    const nlohmann::json index = read_json(index_file);
    const auto weight_map = index.find("weight_map");
    if (weight_map == index.end() || !weight_map->is_object())
        throw Error(index_file.string() + ": no \"weight_map\" object");
    std::vector<fs::path> shards;
    for (const auto& [tensor, shard] : weight_map->items()) {
        if (!shard.is_string())
            throw Error(index_file.string() + ": weight_map[\"" + tensor +
                        "\"] is not a file name");
        const std::string name = shard.get<std::string>();
        if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
            throw Error(index_file.string() + ": weight_map[\"" + tensor + "\"] names \"" + name +
                        "\", which is not a file in the same folder");
        const fs::path path = index_file.parent_path() / name;
        if (std::find(shards.begin(), shards.end(), path) == shards.end()) shards.push_back(path);
    }
    if (shards.empty()) throw Error(index_file.string() + ": weight_map is empty");
    return shards;
}

}  // namespace

TensorSet TensorSet::open_safetensors_index(const fs::path& index_file) {
    TensorSet set;
    for (const fs::path& shard : shard_files(index_file)) set.merge(open_safetensors(shard));
    // Every tensor the index promises must be in the shard it names.
    const nlohmann::json index = read_json(index_file);
    for (const auto& [tensor, shard] : index["weight_map"].items()) {
        const TensorView* found = set.find(tensor);
        if (!found)
            throw Error(index_file.string() + " lists tensor " + tensor + " in " +
                        shard.get<std::string>() + ", which does not contain it");
    }
    return set;
}

TensorSet TensorSet::open_torch_checkpoint(const fs::path& file) {
    auto mapped = std::make_shared<const MappedFile>(file);
    TensorSet set;
    for (auto& tensor : read_torch_checkpoint(mapped->data(), mapped->size(), file.string()))
        set.add(std::move(tensor));
    set.owned_.push_back(std::move(mapped));
    set.description_ = file.string();
    return set;
}

TensorSet TensorSet::open_folder(const fs::path& folder) {
    if (fs::exists(folder / "model.safetensors"))
        return open_safetensors(folder / "model.safetensors");
    if (fs::exists(folder / "model.safetensors.index.json"))
        return open_safetensors_index(folder / "model.safetensors.index.json");
    if (fs::exists(folder / "pytorch_model.bin"))
        return open_torch_checkpoint(folder / "pytorch_model.bin");
    if (fs::exists(folder / "pytorch_model.bin.index.json")) {
        TensorSet set;
        for (const fs::path& shard : shard_files(folder / "pytorch_model.bin.index.json"))
            set.merge(open_torch_checkpoint(shard));
        return set;
    }
    throw Error(folder.string() +
                ": no weights (looked for model.safetensors, model.safetensors.index.json, "
                "pytorch_model.bin, pytorch_model.bin.index.json)");
}

}  // namespace attnviz::io
