//! The primitive ops of a transformer layer — `linear` (plain, with GELU, with a residual add), `layer_norm`,
//! `attention` — each choosing its implementation for the tensor's device and dtype in one place.
//!
//! On the CPU in f32 the fused kernels of `cpu_kernels.rs` run (one pass per row, parallel on candle's pool); on
//! CUDA (with the `cuda` feature) those of `cuda_kernels.rs` (f32/f16/bf16: one launch per LayerNorm, per
//! attention and per matmul epilogue); everywhere else, or when [`KernelChoice::Candle`] asks for it, candle's
//! composed ops do. `model.rs` never looks at the device.

use std::sync::Arc;

use candle_core::{D, DType, Device, IndexOp, Tensor};

use crate::cpu_kernels::{AttentionOp, LayerNormOp, PackedLinearOp};
use crate::cpu_matmul::PackedWeight;
use crate::error::{MaeError, Result};

/// Which implementation of the layer ops a model uses where it has a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelChoice {
    /// The fused kernels for the device and dtype where there are some (CPU f32; CUDA f32/f16/bf16), candle's ops
    /// elsewhere.
    #[default]
    Fused,
    /// candle's composed ops everywhere: the reference the fused kernels are checked and timed against.
    Candle,
}

impl KernelChoice {
    pub const ALL: [KernelChoice; 2] = [KernelChoice::Fused, KernelChoice::Candle];

    pub fn name(self) -> &'static str {
        match self {
            Self::Fused => "fused",
            Self::Candle => "candle",
        }
    }
}

/// The instruction set the CPU kernels run on: `avx512`, `avx2` (forced with `MAE_CPU_KERNEL=avx2`, or on CPUs
/// without AVX-512) or `portable`.
pub fn cpu_instruction_set() -> &'static str {
    crate::cpu_matmul::simd().name()
}

/// Which implementation an op uses for a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernels {
    /// `cpu_kernels.rs`: f32 on the CPU.
    FusedCpu,
    /// `cuda_kernels.rs`: f32, f16 and bf16 on CUDA.
    #[cfg(feature = "cuda")]
    FusedCuda,
    /// candle's composed ops (other devices and dtypes, and `KernelChoice::Candle`).
    Candle,
}

fn kernels_for(x: &Tensor, choice: KernelChoice) -> Kernels {
    if choice == KernelChoice::Candle {
        return Kernels::Candle;
    }
    match (x.device(), x.dtype()) {
        (Device::Cpu, DType::F32) => Kernels::FusedCpu,
        #[cfg(feature = "cuda")]
        (Device::Cuda(_), DType::F32 | DType::F16 | DType::BF16) => Kernels::FusedCuda,
        _ => Kernels::Candle,
    }
}

/// A linear layer's weight `W` (HF's `[out, in]`) in the layout its kernels read, made once at load (or when
/// [`crate::MaeModel::set_kernels`] changes the kernels): one copy, never two.
#[derive(Debug, Clone)]
pub struct LinearWeight {
    layout: WeightLayout,
}

#[derive(Debug, Clone)]
enum WeightLayout {
    /// `Wᵀ: [in, out]` as a tensor on the model's device: candle's matmul and the CUDA kernels read this.
    Transposed(Tensor),
    /// Panels for the CPU kernel (`cpu_matmul.rs`); shared by clones of a model.
    Packed(Arc<PackedWeight>),
}

impl LinearWeight {
    /// From `Wᵀ: [in, out]`, laid out for `choice` on the tensor's device and dtype.
    pub fn new(weight_t: Tensor, choice: KernelChoice) -> Result<Self> {
        Self { layout: WeightLayout::Transposed(weight_t) }.for_kernels(choice)
    }

    pub(crate) fn packed(weight: PackedWeight) -> Self {
        Self { layout: WeightLayout::Packed(Arc::new(weight)) }
    }

    /// Whether the fused CPU kernel (packed layout) runs on `device`/`dtype` under `choice`.
    pub(crate) fn packs(device: &Device, dtype: DType, choice: KernelChoice) -> bool {
        choice == KernelChoice::Fused && device.is_cpu() && dtype == DType::F32
    }

    /// The same weight in the layout `choice` reads (itself when it already is).
    pub fn for_kernels(self, choice: KernelChoice) -> Result<Self> {
        Ok(match self.layout {
            WeightLayout::Transposed(weight_t) if Self::packs(weight_t.device(), weight_t.dtype(), choice) => {
                let (inputs, outputs) = weight_t.dims2()?;
                let values = weight_t.flatten_all()?.to_vec1::<f32>()?;
                Self::packed(PackedWeight::from_transposed(&values, inputs, outputs))
            }
            WeightLayout::Packed(packed) if !Self::packs(&Device::Cpu, DType::F32, choice) => {
                let weight_t =
                    Tensor::from_vec(packed.to_transposed(), (packed.inputs(), packed.outputs()), &Device::Cpu)?;
                Self { layout: WeightLayout::Transposed(weight_t) }
            }
            layout => Self { layout },
        })
    }
}

/// `x` as `[rows, in]` (a rank-3 `[b, n, in]` flattened), and the dims the result takes back.
fn as_rows(x: &Tensor, outputs: usize) -> Result<(Tensor, Vec<usize>)> {
    let mut dims = x.dims().to_vec();
    let inputs = dims.pop().unwrap_or(1);
    let rows = dims.iter().product::<usize>();
    dims.push(outputs);
    Ok((x.reshape((rows, inputs))?.contiguous()?, dims))
}

/// `x·Wᵀ + b` on the packed CPU kernel, with GELU or a residual fused into the pass.
fn packed_linear(
    x: &Tensor,
    weight: &PackedWeight,
    bias: &Tensor,
    gelu: bool,
    residual: Option<&Tensor>,
) -> Result<Tensor> {
    let (rows, dims) = as_rows(x, weight.outputs())?;
    let op = PackedLinearOp { weight, gelu };
    let y = match residual {
        Some(residual) => rows.apply_op3_no_bwd(bias, &residual.reshape(((), weight.outputs()))?.contiguous()?, &op)?,
        None => rows.apply_op2_no_bwd(bias, &op)?,
    };
    Ok(y.reshape(dims)?)
}

/// `x·Wᵀ + b` for `x: [n, in]` (or `[b, n, in]`) and `bias: [out]`.
pub fn linear(x: &Tensor, weight: &LinearWeight, bias: &Tensor) -> Result<Tensor> {
    match &weight.layout {
        WeightLayout::Packed(packed) => packed_linear(x, packed, bias, false, None),
        WeightLayout::Transposed(weight_t) => Ok(x.broadcast_matmul(weight_t)?.broadcast_add(bias)?),
    }
}

/// `gelu_erf(x·Wᵀ + b)` (HF's exact `"gelu"` after `intermediate.dense`); arguments as [`linear`].
pub fn linear_gelu(x: &Tensor, weight: &LinearWeight, bias: &Tensor, choice: KernelChoice) -> Result<Tensor> {
    match (&weight.layout, kernels_for(x, choice)) {
        (WeightLayout::Packed(packed), _) => packed_linear(x, packed, bias, true, None),
        #[cfg(feature = "cuda")]
        (WeightLayout::Transposed(weight_t), Kernels::FusedCuda) if x.rank() == 2 => {
            Ok(x.matmul(weight_t)?.apply_op2_no_bwd(bias, &crate::cuda_kernels::BiasGeluOp)?)
        }
        (WeightLayout::Transposed(weight_t), _) => Ok(x.broadcast_matmul(weight_t)?.broadcast_add(bias)?.gelu_erf()?),
    }
}

/// `residual + (x·Wᵀ + b)`: an output projection and the residual connection after it; arguments as [`linear`],
/// `residual` shaped as the result.
pub fn linear_add(
    x: &Tensor,
    weight: &LinearWeight,
    bias: &Tensor,
    residual: &Tensor,
    choice: KernelChoice,
) -> Result<Tensor> {
    match (&weight.layout, kernels_for(x, choice)) {
        (WeightLayout::Packed(packed), _) => packed_linear(x, packed, bias, false, Some(residual)),
        #[cfg(feature = "cuda")]
        (WeightLayout::Transposed(weight_t), Kernels::FusedCuda) if x.rank() == 2 => Ok(x
            .matmul(weight_t)?
            .apply_op3_no_bwd(bias, &residual.contiguous()?, &crate::cuda_kernels::BiasResidualOp)?),
        (WeightLayout::Transposed(_), _) => Ok((residual + linear(x, weight, bias)?)?),
    }
}

/// LayerNorm over the last axis with two-pass statistics in f32, as torch computes it (candle's fused kernel uses
/// E[x²]−E[x]², which loses precision on the large-mean rows of a ViT residual stream; parity is 1e-4 relative).
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64, choice: KernelChoice) -> Result<Tensor> {
    match kernels_for(x, choice) {
        Kernels::FusedCpu => Ok(x.contiguous()?.apply_op3_no_bwd(weight, bias, &LayerNormOp { eps: eps as f32 })?),
        #[cfg(feature = "cuda")]
        Kernels::FusedCuda if crate::cuda_kernels::layer_norm_fits(x.dims().last().copied().unwrap_or(0)) => {
            let op = crate::cuda_kernels::LayerNormOp { eps: eps as f32 };
            Ok(x.contiguous()?.apply_op3_no_bwd(weight, bias, &op)?)
        }
        _ => {
            let input_dtype = x.dtype();
            let x = x.to_dtype(DType::F32)?;
            let centered = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
            let variance = centered.sqr()?.mean_keepdim(D::Minus1)?;
            let normed = centered.broadcast_div(&(variance + eps)?.sqrt()?)?.to_dtype(input_dtype)?;
            Ok(normed.broadcast_mul(weight)?.broadcast_add(bias)?)
        }
    }
}

/// Multi-head attention over `items` token sequences stacked in `qkv` (`[items·n, 3·D]`, item after item): each
/// item attends only to its own `n` tokens, so a batch gives exactly its items' single forwards; the projections
/// around it are where a batch gains (one gemm over every item's rows). Returns the context `[items·n, D]` and,
/// when `keep_probabilities`, one `[heads, n, n]` per item.
pub fn batched_attention(
    qkv: &Tensor,
    items: usize,
    heads: usize,
    keep_probabilities: bool,
    choice: KernelChoice,
) -> Result<(Tensor, Vec<Tensor>)> {
    let (rows, _) = qkv.dims2()?;
    if items == 0 || rows % items != 0 {
        return Err(MaeError::InvalidInput(format!("{rows} token rows cannot be split into {items} items")));
    }
    let tokens = rows / items;
    if kernels_for(qkv, choice) == Kernels::FusedCpu {
        // One kernel call for every head of every item (one parallel loop).
        let (_, fused) = qkv.dims2()?;
        let (width, scale) = (fused / 3, ((fused / 3 / heads) as f64).powf(-0.5) as f32);
        let op = AttentionOp { items, heads, scale, keep_probabilities };
        let both = qkv.contiguous()?.apply_op1_no_bwd(&op)?;
        let probabilities_len = if keep_probabilities { items * heads * tokens * tokens } else { 0 };
        let context = both.narrow(0, probabilities_len, rows * width)?.reshape((rows, width))?;
        let probabilities = if keep_probabilities {
            let all = both.narrow(0, 0, probabilities_len)?.reshape((items, heads, tokens, tokens))?;
            (0..items).map(|item| all.get(item)).collect::<candle_core::Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        return Ok((context, probabilities));
    }
    let mut contexts = Vec::with_capacity(items);
    let mut probabilities = Vec::new();
    for item in 0..items {
        let (context, kept) = attention(&qkv.narrow(0, item * tokens, tokens)?, heads, keep_probabilities, choice)?;
        contexts.push(context);
        probabilities.extend(kept);
    }
    Ok((Tensor::cat(&contexts, 0)?, probabilities))
}

/// Multi-head attention on the fused projection `qkv: [n, 3·D]` (q | k | v, heads side by side in each), as HF's
/// eager attention computes it: per head `softmax(q·kᵀ · head_dim^-0.5)` in f32, cast to the compute dtype, then
/// `·v`. Returns the context `[n, D]` (heads concatenated) and, when `keep_probabilities`, the probabilities
/// `[heads, n, n]` (f32 from candle's ops; the compute dtype on CUDA's fused path, as HF returns them). The fused CPU
/// kernel takes a whole batch at once ([`batched_attention`]).
fn attention(
    qkv: &Tensor,
    heads: usize,
    keep_probabilities: bool,
    choice: KernelChoice,
) -> Result<(Tensor, Option<Tensor>)> {
    let (tokens, fused) = qkv.dims2()?;
    let width = fused / 3;
    let head_dim = width / heads;
    let scale = (head_dim as f64).powf(-0.5);
    match kernels_for(qkv, choice) {
        #[cfg(feature = "cuda")]
        Kernels::FusedCuda if crate::cuda_kernels::attention_fits(tokens, head_dim) => {
            let op = crate::cuda_kernels::AttentionOp { heads, scale: scale as f32, keep_probabilities };
            let both = qkv.contiguous()?.apply_op1_no_bwd(&op)?;
            Ok(split_attention_output(&both, heads, tokens, width, keep_probabilities)?)
        }
        _ => {
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

/// Views into the fused CUDA attention kernel's one output buffer: the probabilities `[heads, n, n]` when it holds
/// them, then the context `[n, D]`.
#[cfg(feature = "cuda")]
fn split_attention_output(
    both: &Tensor,
    heads: usize,
    tokens: usize,
    width: usize,
    holds_probabilities: bool,
) -> candle_core::Result<(Tensor, Option<Tensor>)> {
    let probabilities_len = if holds_probabilities { heads * tokens * tokens } else { 0 };
    let context = both.narrow(0, probabilities_len, tokens * width)?.reshape((tokens, width))?;
    let probabilities = holds_probabilities
        .then(|| both.narrow(0, 0, probabilities_len)?.reshape((heads, tokens, tokens)))
        .transpose()?;
    Ok((context, probabilities))
}
