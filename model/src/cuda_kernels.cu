// Fused kernels for one ViTMAE layer on CUDA, in f32, f16 and bf16 (built to PTX by model/build.rs with the `cuda`
// feature; launched from cuda_kernels.rs).
//
// Why: composed from candle's ops, a layer is ~35 launches (LayerNorm alone is nine); at batch 1 the GPU waits on
// launches, not on arithmetic. Here a layer is LayerNorm, the q/k/v matmul (+ bias), attention, and three
// matmuls each followed by one epilogue (bias, bias + GELU, bias + residual).
//
// Written for obvious correctness first: one block per row (LayerNorm) or per (query, head) (attention), every
// reduction in f32 with a fixed order, every index checked against its bound. Inputs are read as T and converted
// to f32; each output is rounded to T once.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

namespace {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}

// Sum of `value` over the block (blockDim.x a multiple of 32, at most 1024). Every thread gets the same total,
// summed in the same order. `scratch` holds 32 floats; the leading barrier lets callers reuse it back to back.
__device__ float block_sum(float value, float* scratch) {
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = value;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < warps; ++w) total += scratch[w];
    return total;
}

__device__ float block_max(float value, float* scratch) {
    for (int offset = 16; offset > 0; offset >>= 1) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = value;
    __syncthreads();
    float result = -INFINITY;
    for (int w = 0; w < warps; ++w) result = fmaxf(result, scratch[w]);
    return result;
}

// LayerNorm over rows of `width`: two-pass mean and biased variance in f32 (as torch), then
// (x − mean) / sqrt(var + eps) · weight + bias. One block per row; dynamic shared memory: (width + 32) floats.
template <typename T>
__device__ void layer_norm(const T* x, const T* weight, const T* bias, T* out, int rows, int width, float eps) {
    extern __shared__ float shared[];
    float* values = shared;
    float* scratch = shared + width;
    const int row = blockIdx.x;
    if (row >= rows) return;  // uniform per block: no thread of it reaches a barrier
    const T* in_row = x + (size_t)row * width;
    T* out_row = out + (size_t)row * width;

    float sum = 0.0f;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        const float v = to_float(in_row[i]);
        values[i] = v;
        sum += v;
    }
    const float mean = block_sum(sum, scratch) / (float)width;
    float squares = 0.0f;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        const float centered = values[i] - mean;
        squares += centered * centered;
    }
    const float variance = block_sum(squares, scratch) / (float)width;
    const float inverse_std = 1.0f / sqrtf(variance + eps);
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        out_row[i] = from_float<T>((values[i] - mean) * inverse_std * to_float(weight[i]) + to_float(bias[i]));
    }
}

// out = gelu_erf(x + bias) for x: [rows, width] (a matmul's output), bias: [width]. Exact GELU, HF's "gelu".
template <typename T>
__device__ void bias_gelu(const T* x, const T* bias, T* out, size_t count, int width) {
    const size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
        const float v = to_float(x[i]) + to_float(bias[i % width]);
        out[i] = from_float<T>(0.5f * v * (1.0f + erff(v * 0.70710678118654752440f)));
    }
}

// out = residual + (x + bias): the output projections' bias and the residual connection, in the order the
// composed ops add them (so f32 rounds identically).
template <typename T>
__device__ void bias_residual(const T* x, const T* bias, const T* residual, T* out, size_t count, int width) {
    const size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
        const float projected = to_float(x[i]) + to_float(bias[i % width]);
        out[i] = from_float<T>(to_float(residual[i]) + projected);
    }
}

// Multi-head attention on the fused projection qkv: [tokens, 3·width] (q | k | v, heads side by side, width =
// heads · head_dim), as HF's eager attention: p = softmax(q·kᵀ · scale) in f32, rounded to T, context = p·v.
// One block per (query, head). `out` holds, when keep_probabilities, p as [heads, tokens, tokens] first, then the
// context [tokens, width] (heads concatenated, as HF reshapes it).
// Dynamic shared memory: head_dim + tokens + max(blockDim, head_dim) + 32 floats.
template <typename T>
__device__ void attention(const T* qkv, T* out, int tokens, int heads, int head_dim, float scale,
                          int keep_probabilities) {
    extern __shared__ float shared[];
    const int query = blockIdx.x, head = blockIdx.y;
    if (query >= tokens || head >= heads) return;  // uniform per block
    const int width = heads * head_dim;
    const size_t row = 3 * (size_t)width;
    // Context partial sums: `slices` threads per output column, each over every slices-th key.
    const int slices = head_dim <= (int)blockDim.x ? (int)blockDim.x / head_dim : 1;
    float* q = shared;
    float* p = q + head_dim;
    float* partial = p + tokens;
    float* scratch = partial + slices * head_dim;

    const T* q_row = qkv + (size_t)query * row + (size_t)head * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) q[d] = to_float(q_row[d]);
    __syncthreads();

    float local_max = -INFINITY;
    for (int j = threadIdx.x; j < tokens; j += blockDim.x) {
        const T* k_row = qkv + (size_t)j * row + width + (size_t)head * head_dim;
        float score = 0.0f;
        for (int d = 0; d < head_dim; ++d) score += q[d] * to_float(k_row[d]);
        score *= scale;
        p[j] = score;
        local_max = fmaxf(local_max, score);
    }
    const float max_score = block_max(local_max, scratch);
    float local_sum = 0.0f;
    for (int j = threadIdx.x; j < tokens; j += blockDim.x) {
        const float e = expf(p[j] - max_score);
        p[j] = e;
        local_sum += e;
    }
    const float inverse_sum = 1.0f / block_sum(local_sum, scratch);
    T* probabilities = out + ((size_t)head * tokens + query) * tokens;
    for (int j = threadIdx.x; j < tokens; j += blockDim.x) {
        const T rounded = from_float<T>(p[j] * inverse_sum);
        if (keep_probabilities) probabilities[j] = rounded;
        p[j] = to_float(rounded);
    }
    __syncthreads();

    for (int pair = threadIdx.x; pair < slices * head_dim; pair += blockDim.x) {
        const int d = pair % head_dim, slice = pair / head_dim;
        const T* v_column = qkv + 2 * (size_t)width + (size_t)head * head_dim + d;
        float acc = 0.0f;
        for (int j = slice; j < tokens; j += slices) acc += p[j] * to_float(v_column[(size_t)j * row]);
        partial[slice * head_dim + d] = acc;
    }
    __syncthreads();
    T* context = out + (keep_probabilities ? (size_t)heads * tokens * tokens : 0) + (size_t)query * width +
                 (size_t)head * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (int slice = 0; slice < slices; ++slice) acc += partial[slice * head_dim + d];
        context[d] = from_float<T>(acc);
    }
}

}  // namespace

#define MAE_KERNELS(T, SUFFIX)                                                                                  \
    extern "C" __global__ void __launch_bounds__(1024)                                                          \
        mae_layer_norm_##SUFFIX(const T* x, const T* weight, const T* bias, T* out, int rows, int width,        \
                                float eps) {                                                                    \
        layer_norm<T>(x, weight, bias, out, rows, width, eps);                                                  \
    }                                                                                                           \
    extern "C" __global__ void mae_bias_gelu_##SUFFIX(const T* x, const T* bias, T* out, unsigned long long count, \
                                                      int width) {                                              \
        bias_gelu<T>(x, bias, out, (size_t)count, width);                                                       \
    }                                                                                                           \
    extern "C" __global__ void mae_bias_residual_##SUFFIX(const T* x, const T* bias, const T* residual, T* out,  \
                                                          unsigned long long count, int width) {                \
        bias_residual<T>(x, bias, residual, out, (size_t)count, width);                                         \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(1024)                                                          \
        mae_attention_##SUFFIX(const T* qkv, T* out, int tokens, int heads, int head_dim, float scale,          \
                               int keep_probabilities) {                                                        \
        attention<T>(qkv, out, tokens, heads, head_dim, scale, keep_probabilities);                             \
    }

MAE_KERNELS(float, f32)
MAE_KERNELS(__half, f16)
MAE_KERNELS(__nv_bfloat16, bf16)
