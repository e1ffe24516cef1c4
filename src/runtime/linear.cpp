#include "runtime/linear.h"

#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>

#include "attnviz/error.h"

namespace attnviz::runtime {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

// The activation as a oneDNN post-op (algorithm, alpha, beta).
struct EltwiseOp {
    dnnl::algorithm algorithm;
    float alpha = 0, beta = 0;
};
std::optional<EltwiseOp> eltwise_for(Activation activation) {
    using A = dnnl::algorithm;
    switch (activation) {
        case Activation::none:
            return std::nullopt;
        case Activation::gelu_erf:
            return EltwiseOp{A::eltwise_gelu_erf};
        case Activation::gelu_tanh:
            return EltwiseOp{A::eltwise_gelu_tanh};
        case Activation::quick_gelu:
            return EltwiseOp{A::eltwise_swish, 1.702f};
        case Activation::relu:
            return EltwiseOp{A::eltwise_relu, 0.0f};
        case Activation::relu6:
            return EltwiseOp{A::eltwise_clip, 0.0f, 6.0f};
        case Activation::silu:
            return EltwiseOp{A::eltwise_swish, 1.0f};
        case Activation::tanh:
            return EltwiseOp{A::eltwise_tanh};
        case Activation::sigmoid:
            return EltwiseOp{A::eltwise_logistic};
    }
    return std::nullopt;
}

// The row count the weights are packed for. oneDNN's f32 brgemm picks the
// packed layout from N and K only, so other row counts reuse it (checked in run).
constexpr int kPackRows = 128;

// oneDNN's BA16a64b layout of B [K = in, N = out], the one its f32 brgemm
// matmul picks on AVX-512: blocks of 16 k x 64 n, k-blocks inside n-blocks,
// zero-padded to whole blocks. Written here because oneDNN's reorder JIT-compiles
// a kernel per shape on first use, which costs more than packing bert-base.
void pack_ba16a64b(const float* source, WeightLayout layout, int in, int out, float* packed) {
    const int k_blocks = (in + 15) / 16, n_blocks = (out + 63) / 64;
#pragma omp parallel for schedule(static)
    for (int nb = 0; nb < n_blocks; ++nb) {
        for (int kb = 0; kb < k_blocks; ++kb) {
            float* block = packed + (static_cast<size_t>(nb) * k_blocks + kb) * 16 * 64;
            for (int k_in = 0; k_in < 16; ++k_in) {
                const int k = kb * 16 + k_in;
                float* row = block + k_in * 64;
                for (int n_in = 0; n_in < 64; ++n_in) {
                    const int n = nb * 64 + n_in;
                    float value = 0.0f;
                    if (k < in && n < out)
                        value = layout == WeightLayout::out_in
                                    ? source[static_cast<size_t>(n) * in + k]
                                    : source[static_cast<size_t>(k) * out + n];
                    row[n_in] = value;
                }
            }
        }
    }
}

}  // namespace

struct Linear::Packed {
    memory::desc weights_desc;
    memory weights;  // packed [in, out] in oneDNN's blocked layout
    memory bias;     // [1, out], or empty
    bool has_bias = false;
    // Primitives per (rows, accumulate), made on first use.
    mutable std::mutex mutex;
    mutable std::map<std::pair<int, bool>, std::shared_ptr<dnnl::matmul>> primitives;
    mutable std::map<std::pair<int, bool>, memory::desc> primitive_weights;
};

namespace {

dnnl::matmul::primitive_desc make_matmul(int rows, int in, int out, bool has_bias, bool accumulate,
                                         Activation activation, const memory::desc& weights_desc) {
    const memory::desc src({rows, in}, kF32, Tag::ab);
    const memory::desc dst({rows, out}, kF32, Tag::ab);
    const memory::desc bias = has_bias ? memory::desc({1, out}, kF32, Tag::ab) : memory::desc();
    dnnl::post_ops ops;
    if (accumulate) ops.append_sum(1.0f);
    if (const auto op = eltwise_for(activation))
        ops.append_eltwise(1.0f, op->algorithm, op->alpha, op->beta);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_desc, bias, dst), attr,
                                        cpu_engine());
}

}  // namespace

Linear::Linear(const float* weight, const float* bias, int in, int out, WeightLayout layout,
               Activation activation)
    : Linear(std::vector<LinearPart>{{weight, bias, out}}, in, layout, activation) {}

Linear::Linear(const std::vector<LinearPart>& parts, int in, WeightLayout layout,
               Activation activation)
    : in_(in), activation_(activation), packed_(std::make_unique<Packed>()) {
    for (const LinearPart& part : parts) {
        out_ += part.out;
        packed_->has_bias = packed_->has_bias || part.bias;
    }
    try {
        // The source, viewed as the matmul's B [in, out]: [out, in] row-major is
        // B transposed (tag ba); [in, out] row-major is B itself (tag ab).
        std::vector<float> joined;
        const float* source = parts.front().weight;
        if (parts.size() > 1) {
            joined.resize(static_cast<size_t>(in) * out_);
            if (layout == WeightLayout::out_in) {
                size_t at = 0;
                for (const LinearPart& part : parts) {
                    std::memcpy(joined.data() + at, part.weight,
                                sizeof(float) * static_cast<size_t>(part.out) * in);
                    at += static_cast<size_t>(part.out) * in;
                }
            } else {
                for (int row = 0; row < in; ++row) {
                    size_t column = 0;
                    for (const LinearPart& part : parts) {
                        std::memcpy(joined.data() + static_cast<size_t>(row) * out_ + column,
                                    part.weight + static_cast<size_t>(row) * part.out,
                                    sizeof(float) * part.out);
                        column += part.out;
                    }
                }
            }
            source = joined.data();
        }
        const memory::desc any({in, out_}, kF32, Tag::any);
        const auto pd = make_matmul(kPackRows, in, out_, packed_->has_bias, false, activation, any);
        packed_->weights_desc = pd.weights_desc();
        packed_->weights = memory(packed_->weights_desc, cpu_engine());
        float* packed = static_cast<float*>(packed_->weights.get_data_handle());
        if (packed_->weights_desc == memory::desc({in, out_}, kF32, Tag::BA16a64b)) {
            pack_ba16a64b(source, layout, in, out_, packed);
        } else {  // another blocking: oneDNN's own reorder
            const memory::desc source_desc({in, out_}, kF32,
                                           layout == WeightLayout::out_in ? Tag::ba : Tag::ab);
            memory source_memory(source_desc, cpu_engine(), const_cast<float*>(source));
            dnnl::stream stream(cpu_engine());
            dnnl::reorder(source_memory, packed_->weights)
                .execute(stream, source_memory, packed_->weights);
            stream.wait();
        }
        if (packed_->has_bias) {
            packed_->bias = memory(memory::desc({1, out_}, kF32, Tag::ab), cpu_engine());
            float* bias = static_cast<float*>(packed_->bias.get_data_handle());
            for (const LinearPart& part : parts) {
                if (part.bias)
                    std::memcpy(bias, part.bias, sizeof(float) * part.out);
                else
                    std::fill(bias, bias + part.out, 0.0f);
                bias += part.out;
            }
        }
    } catch (const dnnl::error& e) {
        throw Error(std::string("oneDNN could not pack a linear layer: ") + e.what());
    }
}

Linear::Linear() = default;
Linear::~Linear() = default;
Linear::Linear(Linear&&) noexcept = default;
Linear& Linear::operator=(Linear&&) noexcept = default;

void Linear::forward(const float* x, float* y, int rows) const { run(x, y, rows, false); }
void Linear::forward_add(const float* x, float* y, int rows) const { run(x, y, rows, true); }

void Linear::run(const float* x, float* y, int rows, bool accumulate) const {
    if (rows <= 0) return;
    const Activation activation = accumulate ? Activation::none : activation_;
    std::shared_ptr<dnnl::matmul> primitive;
    memory::desc wanted;
    {
        std::lock_guard lock(packed_->mutex);
        auto& slot = packed_->primitives[{rows, accumulate}];
        if (!slot) {
            const auto pd = make_matmul(rows, in_, out_, packed_->has_bias, accumulate, activation,
                                        packed_->weights_desc);
            slot = std::make_shared<dnnl::matmul>(pd);
            packed_->primitive_weights[{rows, accumulate}] = pd.weights_desc();
        }
        primitive = slot;
        wanted = packed_->primitive_weights[{rows, accumulate}];
    }
    if (wanted != packed_->weights_desc)
        throw Error("oneDNN chose another weight layout for " + std::to_string(rows) + " rows");
    dnnl::stream stream(cpu_engine());
    memory src(memory::desc({rows, in_}, kF32, Tag::ab), cpu_engine(), const_cast<float*>(x));
    memory dst(memory::desc({rows, out_}, kF32, Tag::ab), cpu_engine(), y);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, packed_->weights}, {DNNL_ARG_DST, dst}};
    if (packed_->has_bias) args[DNNL_ARG_BIAS] = packed_->bias;
    primitive->execute(stream, args);
    stream.wait();
}

void linear_reference(const float* x, const float* weight, const float* bias, float* y, int rows,
                      int in, int out, WeightLayout layout, Activation activation) {
    for (int row = 0; row < rows; ++row) {
        float* y_row = y + static_cast<size_t>(row) * out;
        for (int o = 0; o < out; ++o) {
            double sum = bias ? bias[o] : 0.0;
            for (int i = 0; i < in; ++i) {
                const float w = layout == WeightLayout::out_in
                                    ? weight[static_cast<size_t>(o) * in + i]
                                    : weight[static_cast<size_t>(i) * out + o];
                sum += static_cast<double>(x[static_cast<size_t>(row) * in + i]) * w;
            }
            y_row[o] = static_cast<float>(sum);
        }
        activate_reference(activation, y_row, static_cast<size_t>(out));
    }
}

}  // namespace attnviz::runtime
