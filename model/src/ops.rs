//! The primitive ops of a transformer layer — `linear`, `layer_norm`, `attention`, `gelu_erf` — each choosing
//! its implementation for the tensor's device and dtype in one place.
//!
//! On the CPU in f32 the fused kernels of `cpu_kernels.rs` run (one pass per row, parallel on candle's pool);
//! everywhere else candle's composed ops do. A kernel for another device (a CUDA kernel, say) gets a new
//! [`Kernels`] variant and one match arm per op here; `model.rs` never looks at the device.

use candle_core::{D, DType, Device, IndexOp, Tensor};

use crate::cpu_kernels::{AttentionOp, GeluErfOp, LayerNormOp, LinearOp};
use crate::error::Result;

/// Which implementation an op uses for a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernels {
    /// `cpu_kernels.rs`: f32 on the CPU.
    FusedCpu,
    /// candle's composed ops (GPUs, and any dtype the fused kernels do not cover).
    Candle,
}

fn kernels_for(x: &Tensor) -> Kernels {
    match (x.device(), x.dtype()) {
        (Device::Cpu, DType::F32) => Kernels::FusedCpu,
        _ => Kernels::Candle,
    }
}

/// `x·Wᵀ + b` for `x: [n, in]`, with `weight_t = Wᵀ: [in, out]` (HF's `[out, in]` weight, transposed once at
/// load) and `bias: [out]`.
pub fn linear(x: &Tensor, weight_t: &Tensor, bias: &Tensor) -> Result<Tensor> {
    match kernels_for(x) {
        Kernels::FusedCpu if x.rank() == 2 => Ok(x.contiguous()?.apply_op3_no_bwd(weight_t, bias, &LinearOp)?),
        _ => Ok(x.matmul(weight_t)?.broadcast_add(bias)?),
    }
}

/// LayerNorm over the last axis with two-pass statistics in f32, as torch computes it (candle's fused kernel uses
/// E[x²]−E[x]², which loses precision on the large-mean rows of a ViT residual stream; parity is 1e-4 relative).
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    match kernels_for(x) {
        Kernels::FusedCpu => Ok(x.contiguous()?.apply_op3_no_bwd(weight, bias, &LayerNormOp { eps: eps as f32 })?),
        Kernels::Candle => {
            let input_dtype = x.dtype();
            let x = x.to_dtype(DType::F32)?;
            let centered = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
            let variance = centered.sqr()?.mean_keepdim(D::Minus1)?;
            let normed = centered.broadcast_div(&(variance + eps)?.sqrt()?)?.to_dtype(input_dtype)?;
            Ok(normed.broadcast_mul(weight)?.broadcast_add(bias)?)
        }
    }
}

/// Exact (erf-based) GELU, HF's `"gelu"`.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    match kernels_for(x) {
        Kernels::FusedCpu => Ok(x.contiguous()?.apply_op1_no_bwd(&GeluErfOp)?),
        Kernels::Candle => Ok(x.gelu_erf()?),
    }
}

/// Multi-head attention on the fused projection `qkv: [n, 3·D]` (q | k | v, heads side by side in each), as HF's
/// eager attention computes it: per head `softmax(q·kᵀ · head_dim^-0.5)` in f32, then `·v`. Returns the context
/// `[n, D]` (heads concatenated) and, when `keep_probabilities`, the probabilities `[heads, n, n]`.
pub fn attention(qkv: &Tensor, heads: usize, keep_probabilities: bool) -> Result<(Tensor, Option<Tensor>)> {
    let (tokens, fused) = qkv.dims2()?;
    let width = fused / 3;
    let head_dim = width / heads;
    let scale = (head_dim as f64).powf(-0.5);
    match kernels_for(qkv) {
        Kernels::FusedCpu => {
            // The kernel needs the probabilities as scratch anyway, so keeping them costs nothing.
            let both = qkv.contiguous()?.apply_op1_no_bwd(&AttentionOp { heads, scale: scale as f32 })?;
            let probabilities_len = heads * tokens * tokens;
            let context = both.narrow(0, probabilities_len, tokens * width)?.reshape((tokens, width))?;
            let probabilities = keep_probabilities
                .then(|| both.narrow(0, 0, probabilities_len)?.reshape((heads, tokens, tokens)))
                .transpose()?;
            Ok((context, probabilities))
        }
        Kernels::Candle => {
            // [n, 3·D] → [3, heads, n, head_dim]: one copy gives contiguous q, k and v.
            let qkv = qkv.reshape((tokens, 3, heads, head_dim))?.permute((1, 2, 0, 3))?.contiguous()?;
            let (query, key, value) = (qkv.i(0)?, qkv.i(1)?, qkv.i(2)?);
            let scores = (query.matmul(&key.t()?)? * scale)?.to_dtype(DType::F32)?;
            let probabilities = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = probabilities.to_dtype(value.dtype())?.matmul(&value)?;
            let context = context.transpose(0, 1)?.reshape((tokens, width))?;
            Ok((context, keep_probabilities.then_some(probabilities)))
        }
    }
}
