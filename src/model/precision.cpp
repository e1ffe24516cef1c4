// The default precision (include/attnviz/model.h): bf16 only where it pays
// and the CPU runs it natively.
#include "attnviz/model.h"
#include "io/tensors.h"
#include "runtime/linear.h"

namespace attnviz {

bool cpu_has_native_bf16() { return runtime::cpu_has_native_bf16(); }

Precision default_precision(uint64_t parameters) {
    return parameters > kBf16DefaultParameters && cpu_has_native_bf16() ? Precision::bf16
                                                                        : Precision::fp32;
}

std::optional<uint64_t> checkpoint_parameters(const std::filesystem::path& folder) {
    io::TensorSet tensors;
    try {
        tensors = io::TensorSet::open_folder(folder);
    } catch (const Error&) {
        return std::nullopt;  // no weights (info fetches config and tokenizer only)
    }
    uint64_t count = 0;
    for (const io::TensorView& tensor : tensors.tensors()) count += tensor.numel();
    return count;
}

}  // namespace attnviz
