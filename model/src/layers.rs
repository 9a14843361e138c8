//! The building blocks of both stacks, one struct per HF sub-module (as candle-transformers' `vit.rs` has them):
//! `Linear`, `LayerNorm`, `Attention` (`attention.attention` + `attention.output`), `Mlp` (`intermediate` +
//! `output`) and the pre-norm `Layer` that holds them. Each loads its own weights under its HF prefix and runs its
//! own forward; which kernel computes it is `ops.rs`'s choice.

use candle_core::Tensor;

use crate::config::Activation;
use crate::error::Result;
use crate::ops::{self, KernelChoice, LinearWeight};
use crate::weights::{Placement, WeightStore};

/// `y = x·Wᵀ + b` with W (HF's `[out, in]`) in the layout its kernels read ([`LinearWeight`]).
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    weight: LinearWeight,
    bias: Tensor,
}

impl Linear {
    /// `prefix.weight` (`[outputs, inputs]`, or `shape` when it is stored with more axes, as the patch conv is)
    /// and `prefix.bias`.
    pub(crate) fn load(store: &WeightStore, prefix: &str, shape: &[usize], at: Placement<'_>) -> Result<Self> {
        Self::load_side_by_side(store, &[prefix.to_string()], shape, at)
    }

    /// Linears of the same `shape` that read the same input (q, k, v → one matmul), as one whose outputs lie side
    /// by side. The weights go straight into the layout `kernels` read: packed panels where the fused CPU kernel
    /// runs, `Wᵀ` elsewhere (see `WeightStore::packed_matrix` and `transposed_matrix`).
    fn load_side_by_side(store: &WeightStore, prefixes: &[String], shape: &[usize], at: Placement<'_>) -> Result<Self> {
        let Placement { device, dtype, kernels } = at;
        let keys: Vec<String> = prefixes.iter().map(|prefix| format!("{prefix}.weight")).collect();
        let weight = if LinearWeight::packs(device, dtype, kernels) {
            LinearWeight::packed(store.packed_matrix(&keys, shape)?)
        } else {
            LinearWeight::new(store.transposed_matrix(&keys, shape, dtype, device)?, kernels)?
        };
        let biases = prefixes
            .iter()
            .map(|prefix| store.get(&format!("{prefix}.bias"), &shape[..1], dtype, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { weight, bias: Tensor::cat(&biases, 0)? })
    }

    /// Lays the weight out for `kernels`.
    pub(crate) fn set_kernels(&mut self, kernels: KernelChoice) -> Result<()> {
        self.weight = self.weight.clone().for_kernels(kernels)?;
        Ok(())
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::linear(x, &self.weight, &self.bias)
    }

    /// `residual + self(x)`.
    fn forward_add(&self, x: &Tensor, residual: &Tensor, kernels: KernelChoice) -> Result<Tensor> {
        ops::linear_add(x, &self.weight, &self.bias, residual, kernels)
    }

    /// `activation(self(x))`; exact GELU, the ViTMAE default, fused with the bias.
    fn forward_activated(&self, x: &Tensor, activation: Activation, kernels: KernelChoice) -> Result<Tensor> {
        Ok(match activation {
            Activation::GeluErf => ops::linear_gelu(x, &self.weight, &self.bias, kernels)?,
            Activation::GeluTanh => self.forward(x)?.gelu()?,
            Activation::Relu => self.forward(x)?.relu()?,
            Activation::Silu => self.forward(x)?.silu()?,
        })
    }
}

/// LayerNorm over the last axis (see `ops::layer_norm` for how it is computed).
#[derive(Debug, Clone)]
pub(crate) struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub(crate) fn load(store: &WeightStore, prefix: &str, dim: usize, eps: f64, at: Placement<'_>) -> Result<Self> {
        let Placement { device, dtype, .. } = at;
        Ok(Self {
            weight: store.get(&format!("{prefix}.weight"), &[dim], dtype, device)?,
            bias: store.get(&format!("{prefix}.bias"), &[dim], dtype, device)?,
            eps,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, kernels: KernelChoice) -> Result<Tensor> {
        ops::layer_norm(x, &self.weight, &self.bias, self.eps, kernels)
    }
}

/// The sizes of one stack's layers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerDims {
    pub hidden: usize,
    pub heads: usize,
    pub mlp: usize,
    pub eps: f64,
    pub activation: Activation,
}

/// HF's `attention` (self-attention with q/k/v projections, then the output projection): q, k and v are loaded
/// side by side as one projection, so one matmul makes all three.
#[derive(Debug, Clone)]
struct Attention {
    qkv: Linear,
    output: Linear,
    heads: usize,
}

impl Attention {
    fn load(store: &WeightStore, prefix: &str, dims: &LayerDims, at: Placement<'_>) -> Result<Self> {
        let d = dims.hidden;
        let qkv_prefixes = ["query", "key", "value"].map(|name| format!("{prefix}.attention.{name}"));
        Ok(Self {
            qkv: Linear::load_side_by_side(store, &qkv_prefixes, &[d, d], at)?,
            output: Linear::load(store, &format!("{prefix}.output.dense"), &[d, d], at)?,
            heads: dims.heads,
        })
    }

    /// `residual + attention(x)` for `items` sequences stacked in `x`, and each item's probabilities when kept.
    fn forward_add(
        &self,
        x: &Tensor,
        residual: &Tensor,
        items: usize,
        keep_attention: bool,
        kernels: KernelChoice,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let qkv = self.qkv.forward(x)?;
        let (context, probabilities) = ops::batched_attention(&qkv, items, self.heads, keep_attention, kernels)?;
        Ok((self.output.forward_add(&context, residual, kernels)?, probabilities))
    }
}

/// HF's `intermediate` + `output`: `fc2(activation(fc1(x)))`, with the residual added in fc2's pass.
#[derive(Debug, Clone)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl Mlp {
    fn load(store: &WeightStore, prefix: &str, dims: &LayerDims, at: Placement<'_>) -> Result<Self> {
        let (d, mlp) = (dims.hidden, dims.mlp);
        Ok(Self {
            fc1: Linear::load(store, &format!("{prefix}.intermediate.dense"), &[mlp, d], at)?,
            fc2: Linear::load(store, &format!("{prefix}.output.dense"), &[d, mlp], at)?,
            activation: dims.activation,
        })
    }

    fn forward_add(&self, x: &Tensor, residual: &Tensor, kernels: KernelChoice) -> Result<Tensor> {
        let activated = self.fc1.forward_activated(x, self.activation, kernels)?;
        self.fc2.forward_add(&activated, residual, kernels)
    }
}

/// One pre-norm transformer layer (the same in encoder and decoder): `h += attn(LN(h)); h += mlp(LN(h))`.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    norm_before: LayerNorm,
    attention: Attention,
    norm_after: LayerNorm,
    mlp: Mlp,
}

impl Layer {
    pub(crate) fn load(store: &WeightStore, prefix: &str, dims: &LayerDims, at: Placement<'_>) -> Result<Self> {
        let norm = |name: &str| LayerNorm::load(store, &format!("{prefix}.{name}"), dims.hidden, dims.eps, at);
        Ok(Self {
            norm_before: norm("layernorm_before")?,
            attention: Attention::load(store, &format!("{prefix}.attention"), dims, at)?,
            norm_after: norm("layernorm_after")?,
            mlp: Mlp::load(store, prefix, dims, at)?,
        })
    }

    /// Lays every weight out for `kernels`.
    pub(crate) fn set_kernels(&mut self, kernels: KernelChoice) -> Result<()> {
        for linear in [&mut self.attention.qkv, &mut self.attention.output, &mut self.mlp.fc1, &mut self.mlp.fc2] {
            linear.set_kernels(kernels)?;
        }
        Ok(())
    }

    /// The layer over `hidden: [items·n, D]` (`items` sequences of `n` tokens stacked, each attending only to
    /// itself); returns one item's attention probabilities `[heads, n, n]` per item when asked.
    pub(crate) fn forward(
        &self,
        hidden: &Tensor,
        items: usize,
        keep_attention: bool,
        kernels: KernelChoice,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let normed = self.norm_before.forward(hidden, kernels)?;
        let (hidden, probabilities) = self.attention.forward_add(&normed, hidden, items, keep_attention, kernels)?;
        let hidden = self.mlp.forward_add(&self.norm_after.forward(&hidden, kernels)?, &hidden, kernels)?;
        Ok((hidden, probabilities))
    }
}

/// A stack of layers with its final LayerNorm: HF's encoder (`vit.encoder.layer.*` + `vit.layernorm`) and the
/// decoder's layers (`decoder.decoder_layers.*` + `decoder.decoder_norm`) are both this.
#[derive(Debug, Clone)]
pub(crate) struct Stack {
    layers: Vec<Layer>,
    norm: LayerNorm,
}

impl Stack {
    /// `count` layers under `layer_prefix.{i}` (loaded in parallel: reading and laying out a base model's
    /// 448 MB is most of its start), then the norm at `norm_prefix`.
    pub(crate) fn load(
        store: &WeightStore,
        (layer_prefix, count): (&str, usize),
        norm_prefix: &str,
        dims: &LayerDims,
        at: Placement<'_>,
    ) -> Result<Self> {
        use rayon::prelude::*;
        let layers = (0..count)
            .into_par_iter()
            .map(|i| Layer::load(store, &format!("{layer_prefix}.{i}"), dims, at))
            .collect::<Result<_>>()?;
        let norm = LayerNorm::load(store, norm_prefix, dims.hidden, dims.eps, at)?;
        Ok(Self { layers, norm })
    }

    /// Lays every weight out for `kernels`.
    pub(crate) fn set_kernels(&mut self, kernels: KernelChoice) -> Result<()> {
        self.layers.iter_mut().try_for_each(|layer| layer.set_kernels(kernels))
    }

    /// Every layer, then the norm; with every layer's probabilities (one `[heads, n, n]` per item) when kept.
    pub(crate) fn forward(
        &self,
        hidden: &Tensor,
        items: usize,
        keep_attention: bool,
        kernels: KernelChoice,
    ) -> Result<(Tensor, Vec<Vec<Tensor>>)> {
        let mut hidden = hidden.clone();
        let mut attentions = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (next, probabilities) = layer.forward(&hidden, items, keep_attention, kernels)?;
            hidden = next;
            attentions.push(probabilities);
        }
        Ok((self.norm.forward(&hidden, kernels)?, attentions))
    }
}
