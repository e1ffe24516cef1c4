// libFuzzer target: config.json reading on arbitrary bytes, as far as the
// model's shapes: the common and the architecture's config, the key table, the
// size checks, then the network built against a checkpoint with no tensors,
// which must stop at its first weight. Any input must end in an attnviz::Error
// (or a JSON parse failure); never a crash, an overflow or a large allocation.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "attnviz/error.h"
#include "io/tensors.h"
#include "model/network.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    nlohmann::json json = nlohmann::json::parse(data, data + size, nullptr, false);
    if (json.is_discarded()) return 0;
    try {
        const attnviz::model::ConfigReader reader(std::move(json), "config.json");
        attnviz::ModelConfig config;
        const attnviz::model::Architecture& architecture =
            attnviz::model::read_architecture_config(reader, config);
        const attnviz::io::TensorSet no_tensors;
        architecture.load(attnviz::model::LoadContext{config, reader, no_tensors});
    } catch (const attnviz::Error&) {
    }
    return 0;
}
