//! HF's encoder: the pre-norm layers over CLS + the visible tokens (`vit.encoder.layer.*`), then `vit.layernorm`.

use candle_core::Tensor;

use crate::config::MaeConfig;
use crate::error::Result;
use crate::layers::{LayerDims, Stack};
use crate::ops::KernelChoice;
use crate::weights::{Placement, WeightStore};

/// The encoder of a ViTMAE.
#[derive(Debug, Clone)]
pub struct Encoder {
    stack: Stack,
}

impl Encoder {
    /// `vit.encoder.layer.*` and `vit.layernorm`, every shape checked against `config`.
    pub fn load(config: &MaeConfig, store: &WeightStore, at: Placement<'_>) -> Result<Self> {
        let dims = LayerDims {
            hidden: config.hidden_size,
            heads: config.num_attention_heads,
            mlp: config.intermediate_size,
            eps: config.layer_norm_eps,
            activation: config.activation().map_err(crate::error::MaeError::InvalidInput)?,
        };
        let layers = ("vit.encoder.layer", config.num_hidden_layers);
        Ok(Self { stack: Stack::load(store, layers, "vit.layernorm", &dims, at)? })
    }

    /// Lays every weight out for `kernels` (see [`crate::MaeModel::set_kernels`]).
    pub(crate) fn set_kernels(&mut self, kernels: KernelChoice) -> Result<()> {
        self.stack.set_kernels(kernels)
    }

    /// `last_hidden_state` (`[items·n, D]`) of `items` sequences of `n` tokens stacked in `embeddings` (what
    /// [`crate::embeddings::Embeddings::forward`] gives), each attending only to itself; with every layer's
    /// attention probabilities (one `[heads, n, n]` per item) when `keep_attention`.
    pub fn forward(
        &self,
        embeddings: &Tensor,
        items: usize,
        keep_attention: bool,
        kernels: KernelChoice,
    ) -> Result<(Tensor, Vec<Vec<Tensor>>)> {
        self.stack.forward(embeddings, items, keep_attention, kernels)
    }
}
