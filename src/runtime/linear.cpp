#include "runtime/linear.h"

#include <cpuid.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>
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

// Packed weights live in 2 MiB-aligned buffers marked for transparent huge
// pages: a bert-base forward streams 340 MB of them, and 4 KiB pages would
// cost ~80k page faults to fill and a TLB miss every few cache lines to read.
struct HugePageBuffer {
    explicit HugePageBuffer(size_t bytes) {
        constexpr size_t kHuge = size_t{2} << 20;
        size = bytes >= kHuge ? (bytes + kHuge - 1) / kHuge * kHuge : (bytes + 63) / 64 * 64;
        data = std::aligned_alloc(bytes >= kHuge ? kHuge : 64, size);
        if (!data) throw std::bad_alloc();
        if (bytes >= kHuge) madvise(data, size, MADV_HUGEPAGE);
    }
    ~HugePageBuffer() { std::free(data); }
    HugePageBuffer(const HugePageBuffer&) = delete;
    HugePageBuffer& operator=(const HugePageBuffer&) = delete;
    void* data = nullptr;
    size_t size = 0;
};

// Where element (k, n) of B [K = in, N = out] lives in the checkpoint: column n
// starts at column[n] and steps k_stride[n] floats per k. Fused parts (q/k/v)
// and both layouts reduce to this.
struct SourceColumns {
    std::vector<const float*> column;
    std::vector<size_t> k_stride;
    float at(int k, int n) const { return column[n][k * k_stride[n]]; }
};

SourceColumns source_columns(const std::vector<LinearPart>& parts, int in, WeightLayout layout) {
    SourceColumns source;
    for (const LinearPart& part : parts) {
        for (int n = 0; n < part.out; ++n) {
            if (layout == WeightLayout::out_in) {  // row n of [out, in]
                source.column.push_back(part.weight + static_cast<size_t>(n) * in);
                source.k_stride.push_back(1);
            } else {  // column n of [in, out]
                source.column.push_back(part.weight + n);
                source.k_stride.push_back(static_cast<size_t>(part.out));
            }
        }
    }
    return source;
}

// oneDNN's BA16a64b layout of B [K, N], the one its f32 brgemm matmul picks on
// AVX-512: blocks of 16 k x 64 n, k-blocks inside n-blocks, zero-padded to
// whole blocks. Written here because oneDNN's reorder JIT-compiles a kernel
// per shape on first use, which costs more than packing bert-base.
void pack_ba16a64b(const SourceColumns& source, int in, int out, float* packed) {
    const int k_blocks = (in + 15) / 16, n_blocks = (out + 63) / 64;
#pragma omp parallel for schedule(static)
    for (int nb = 0; nb < n_blocks; ++nb) {
        for (int kb = 0; kb < k_blocks; ++kb) {
            float* block = packed + (static_cast<size_t>(nb) * k_blocks + kb) * 16 * 64;
            for (int k_in = 0; k_in < 16; ++k_in) {
                const int k = kb * 16 + k_in;
                for (int n_in = 0; n_in < 64; ++n_in) {
                    const int n = nb * 64 + n_in;
                    block[k_in * 64 + n_in] = k < in && n < out ? source.at(k, n) : 0.0f;
                }
            }
        }
    }
}

// Any other layout oneDNN may choose: gather B [K, N] row-major, then its reorder.
void pack_with_reorder(const SourceColumns& source, int in, int out, memory& packed) {
    std::vector<float> plain(static_cast<size_t>(in) * out);
    for (int k = 0; k < in; ++k)
        for (int n = 0; n < out; ++n) plain[static_cast<size_t>(k) * out + n] = source.at(k, n);
    memory plain_memory(memory::desc({in, out}, kF32, Tag::ab), cpu_engine(), plain.data());
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(plain_memory, packed).execute(stream, plain_memory, packed);
    stream.wait();
}

// What a matmul does after the product: y += (accumulate), then the fused
// activation.
dnnl::primitive_attr post_ops_attr(bool accumulate, Activation activation) {
    dnnl::post_ops ops;
    if (accumulate) ops.append_sum(1.0f);
    if (const auto op = eltwise_for(activation))
        ops.append_eltwise(1.0f, op->algorithm, op->alpha, op->beta);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    return attr;
}

dnnl::matmul::primitive_desc make_matmul(int rows, int in, int out, bool has_bias, bool accumulate,
                                         Activation activation, const memory::desc& weights_desc,
                                         memory::data_type src_type = kF32) {
    const memory::desc src({rows, in}, src_type, Tag::ab);
    const memory::desc dst({rows, out}, kF32, Tag::ab);
    const memory::desc bias = has_bias ? memory::desc({1, out}, kF32, Tag::ab) : memory::desc();
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_desc, bias, dst),
                                        post_ops_attr(accumulate, activation), cpu_engine());
}

}  // namespace

struct Linear::Packed {
    std::vector<LinearPart> parts;  // the checkpoint's weights, until packed
    WeightLayout layout = WeightLayout::out_in;
    std::function<void()> on_packed;
    bool has_bias = false;

    std::mutex mutex;  // guards everything below
    int uses = 0;      // the first runs on the checkpoint's weights; the second packs
    bool packed = false;
    memory::desc weights_desc;
    std::unique_ptr<HugePageBuffer> buffer;
    memory weights;  // packed B [in, out] in oneDNN's blocked layout, in buffer
    memory bias;     // [1, out], or empty
    // Primitives per (rows, accumulate), made on first use.
    std::map<std::pair<int, bool>, std::shared_ptr<dnnl::matmul>> primitives;

    // Precision::bf16: the weights rounded to bfloat16, packed on first bf16 use.
    bool packed_bf16 = false;
    memory::desc weights_bf16_desc;
    std::unique_ptr<HugePageBuffer> buffer_bf16;
    memory weights_bf16;
    std::map<std::pair<int, bool>, std::shared_ptr<dnnl::matmul>> primitives_bf16;
};

namespace {

thread_local Precision current_precision = Precision::fp32;

// Round to nearest even, as torch's .to(torch.bfloat16) does.
inline uint16_t to_bf16(float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return static_cast<uint16_t>((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}

}  // namespace

bool cpu_has_native_bf16() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool amx_bf16 = edx & (1u << 22);
    const unsigned max_subleaf = eax;
    if (amx_bf16) return true;
    if (max_subleaf < 1 || !__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return false;
    return eax & (1u << 5);  // AVX512_BF16
}

PrecisionScope::PrecisionScope(Precision precision) : previous_(current_precision) {
    current_precision = precision;
}
PrecisionScope::~PrecisionScope() { current_precision = previous_; }

Linear::Linear(const float* weight, const float* bias, int in, int out, WeightLayout layout,
               Activation activation, std::function<void()> on_packed)
    : Linear(std::vector<LinearPart>{{weight, bias, out}}, in, layout, activation,
             std::move(on_packed)) {}

Linear::Linear(const std::vector<LinearPart>& parts, int in, WeightLayout layout,
               Activation activation, std::function<void()> on_packed)
    : in_(in), activation_(activation), packed_(std::make_unique<Packed>()) {
    for (const LinearPart& part : parts) {
        if (!part.weight || part.out <= 0) throw Error("Linear: a part without weights");
        out_ += part.out;
        packed_->has_bias = packed_->has_bias || part.bias;
    }
    packed_->parts = parts;
    packed_->layout = layout;
    packed_->on_packed = std::move(on_packed);
}

Linear::Linear() = default;
Linear::~Linear() = default;
Linear::Linear(Linear&&) noexcept = default;
Linear& Linear::operator=(Linear&&) noexcept = default;

// Packing happens on the second use, not at load: opening a model stays a
// memory map, a single trace (the CLI's) never pays for the copy, and repeated
// traces pay for it once, in their second forward.
void Linear::pack_locked() const {
    Packed& p = *packed_;
    const memory::desc any({in_, out_}, kF32, Tag::any);
    p.weights_desc =
        make_matmul(kPackRows, in_, out_, p.has_bias, false, activation_, any).weights_desc();
    p.buffer = std::make_unique<HugePageBuffer>(p.weights_desc.get_size());
    p.weights = memory(p.weights_desc, cpu_engine(), p.buffer->data);
    const SourceColumns source = source_columns(p.parts, in_, p.layout);
    if (p.weights_desc == memory::desc({in_, out_}, kF32, Tag::BA16a64b))
        pack_ba16a64b(source, in_, out_, static_cast<float*>(p.buffer->data));
    else
        pack_with_reorder(source, in_, out_, p.weights);
    build_bias_locked();
    p.packed = true;
    // The mapped pages may go; the pointers stay valid (a bf16 packing would map them again).
    if (p.on_packed) p.on_packed();
}

// The parts' biases side by side (zeros for a part without one), fp32 for both precisions.
void Linear::build_bias_locked() const {
    Packed& p = *packed_;
    if (!p.has_bias || p.bias) return;
    p.bias = memory(memory::desc({1, out_}, kF32, Tag::ab), cpu_engine());
    float* bias = static_cast<float*>(p.bias.get_data_handle());
    for (const LinearPart& part : p.parts) {
        if (part.bias)
            std::memcpy(bias, part.bias, sizeof(float) * part.out);
        else
            std::fill(bias, bias + part.out, 0.0f);
        bias += part.out;
    }
}

void Linear::pack_bf16_locked() const {
    Packed& p = *packed_;
    const memory::desc any({in_, out_}, memory::data_type::bf16, Tag::any);
    p.weights_bf16_desc = make_matmul(kPackRows, in_, out_, p.has_bias, false, activation_, any,
                                      memory::data_type::bf16)
                              .weights_desc();
    p.buffer_bf16 = std::make_unique<HugePageBuffer>(p.weights_bf16_desc.get_size());
    p.weights_bf16 = memory(p.weights_bf16_desc, cpu_engine(), p.buffer_bf16->data);
    pack_with_reorder(source_columns(p.parts, in_, p.layout), in_, out_, p.weights_bf16);
    p.packed_bf16 = true;
    if (p.on_packed) p.on_packed();
}

void Linear::run_bf16(const float* x, float* y, int rows, bool accumulate) const {
    const Activation activation = accumulate ? Activation::none : activation_;
    std::shared_ptr<dnnl::matmul> primitive;
    try {
        std::lock_guard lock(packed_->mutex);
        build_bias_locked();
        if (!packed_->packed_bf16) pack_bf16_locked();
        auto& slot = packed_->primitives_bf16[{rows, accumulate}];
        if (!slot)
            slot = std::make_shared<dnnl::matmul>(
                make_matmul(rows, in_, out_, packed_->has_bias, accumulate, activation,
                            packed_->weights_bf16_desc, memory::data_type::bf16));
        primitive = slot;
    } catch (const dnnl::error& e) {
        throw Error(std::string("oneDNN bf16 matmul (needs AVX-512 BF16 or AMX): ") + e.what());
    }
    thread_local std::vector<uint16_t> x_bf16;
    x_bf16.resize(static_cast<size_t>(rows) * in_);
    for (size_t i = 0; i < x_bf16.size(); ++i) x_bf16[i] = to_bf16(x[i]);
    dnnl::stream stream(cpu_engine());
    memory src(memory::desc({rows, in_}, memory::data_type::bf16, Tag::ab), cpu_engine(),
               x_bf16.data());
    memory dst(memory::desc({rows, out_}, kF32, Tag::ab), cpu_engine(), y);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, packed_->weights_bf16}, {DNNL_ARG_DST, dst}};
    if (packed_->has_bias) args[DNNL_ARG_BIAS] = packed_->bias;
    primitive->execute(stream, args);
    stream.wait();
}

void Linear::forward(const float* x, float* y, int rows) const { run(x, y, rows, false); }
void Linear::forward_add(const float* x, float* y, int rows) const { run(x, y, rows, true); }

void Linear::run(const float* x, float* y, int rows, bool accumulate) const {
    if (rows <= 0) return;
    if (!packed_) throw Error("Linear: used before being given weights");
    if (current_precision == Precision::bf16) return run_bf16(x, y, rows, accumulate);
    const Activation activation = accumulate ? Activation::none : activation_;
    std::shared_ptr<dnnl::matmul> primitive;
    try {
        std::unique_lock lock(packed_->mutex);
        if (!packed_->packed && packed_->uses++ == 0) {
            // First use: multiply by the checkpoint's weights where they lie.
            const std::vector<LinearPart> parts = packed_->parts;
            lock.unlock();
            run_unpacked(parts, x, y, rows, accumulate);
            return;
        }
        if (!packed_->packed) pack_locked();
        auto& slot = packed_->primitives[{rows, accumulate}];
        if (!slot) {
            const auto pd = make_matmul(rows, in_, out_, packed_->has_bias, accumulate, activation,
                                        packed_->weights_desc);
            if (pd.weights_desc() != packed_->weights_desc)
                throw Error("oneDNN chose another weight layout for " + std::to_string(rows) +
                            " rows");
            slot = std::make_shared<dnnl::matmul>(pd);
        }
        primitive = slot;
    } catch (const dnnl::error& e) {
        throw Error(std::string("oneDNN matmul: ") + e.what());
    }
    dnnl::stream stream(cpu_engine());
    memory src(memory::desc({rows, in_}, kF32, Tag::ab), cpu_engine(), const_cast<float*>(x));
    memory dst(memory::desc({rows, out_}, kF32, Tag::ab), cpu_engine(), y);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, packed_->weights}, {DNNL_ARG_DST, dst}};
    if (packed_->has_bias) args[DNNL_ARG_BIAS] = packed_->bias;
    primitive->execute(stream, args);
    stream.wait();
}

// oneDNN matmul straight on the checkpoint's weights (B as the transposed
// [out, in] or plain [in, out] matrix), one per part, each writing its columns
// of y. oneDNN copies panels of B as it goes: slower than the packed path at
// few rows, but nothing to allocate or copy up front.
void Linear::run_unpacked(const std::vector<LinearPart>& parts, const float* x, float* y, int rows,
                          bool accumulate) const {
    const Activation activation = accumulate ? Activation::none : activation_;
    const WeightLayout layout = packed_->layout;
    dnnl::stream stream(cpu_engine());
    int column = 0;
    for (const LinearPart& part : parts) {
        const memory::desc weights_desc({in_, part.out}, kF32,
                                        layout == WeightLayout::out_in ? Tag::ba : Tag::ab);
        const memory::desc src_desc({rows, in_}, kF32, Tag::ab);
        const memory::desc dst_desc({rows, part.out}, kF32, memory::dims{out_, 1});
        const memory::desc bias_desc =
            part.bias ? memory::desc({1, part.out}, kF32, Tag::ab) : memory::desc();
        const dnnl::primitive_attr attr = post_ops_attr(accumulate, activation);
        try {
            const dnnl::matmul::primitive_desc pd(
                dnnl::matmul::desc(src_desc, weights_desc, bias_desc, dst_desc), attr,
                cpu_engine());
            std::unordered_map<int, memory> args = {
                {DNNL_ARG_SRC, memory(src_desc, cpu_engine(), const_cast<float*>(x))},
                {DNNL_ARG_WEIGHTS,
                 memory(weights_desc, cpu_engine(), const_cast<float*>(part.weight))},
                {DNNL_ARG_DST, memory(dst_desc, cpu_engine(), y + column)}};
            if (part.bias)
                args[DNNL_ARG_BIAS] =
                    memory(bias_desc, cpu_engine(), const_cast<float*>(part.bias));
            dnnl::matmul(pd).execute(stream, args);
            stream.wait();
        } catch (const dnnl::error& e) {
            throw Error(std::string("oneDNN matmul: ") + e.what());
        }
        column += part.out;
    }
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
