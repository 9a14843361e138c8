//! HF's `decoder`: the encoder's tokens embedded to the decoder's width, mask tokens appended, unshuffled back to
//! spatial order, position embeddings added, the pre-norm layers, `decoder_norm`, and `decoder_pred` to pixels.

use candle_core::{DType, Device, Tensor};

use crate::config::MaeConfig;
use crate::embeddings::upload;
use crate::error::{MaeError, Result};
use crate::interpolate::bicubic_resize;
use crate::layers::{LayerDims, Linear, Stack};
use crate::ops::KernelChoice;
use crate::weights::{Placement, WeightStore};

/// The decoder of a ViTMAE.
#[derive(Debug, Clone)]
pub struct Decoder {
    embed: Linear,
    /// `[1, Dd]`.
    mask_token: Tensor,
    /// `[1 + L, Dd]` host copy of the stored table, for interpolation to other grids.
    position_embeddings: Vec<f32>,
    stack: Stack,
    pred: Linear,
    hidden: usize,
    configured_patches: usize,
    dtype: DType,
    device: Device,
}

impl Decoder {
    /// `decoder.*`, every shape checked against `config`.
    pub fn load(config: &MaeConfig, store: &WeightStore, at: Placement<'_>) -> Result<Self> {
        let Placement { device, dtype, .. } = at;
        let (d, dd, l) = (config.hidden_size, config.decoder_hidden_size, config.num_patches());
        let dims = LayerDims {
            hidden: dd,
            heads: config.decoder_num_attention_heads,
            mlp: config.decoder_intermediate_size,
            eps: config.layer_norm_eps,
            activation: config.activation().map_err(MaeError::InvalidInput)?,
        };
        let layers = ("decoder.decoder_layers", config.decoder_num_hidden_layers);
        let position_embeddings: Vec<f32> = store
            .get("decoder.decoder_pos_embed", &[1, l + 1, dd], DType::F32, &Device::Cpu)?
            .flatten_all()?
            .to_vec1()?;
        Ok(Self {
            embed: Linear::load(store, "decoder.decoder_embed", &[dd, d], at)?,
            mask_token: store.get("decoder.mask_token", &[1, 1, dd], dtype, device)?.reshape((1, dd))?,
            position_embeddings,
            stack: Stack::load(store, layers, "decoder.decoder_norm", &dims, at)?,
            pred: Linear::load(store, "decoder.decoder_pred", &[config.patch_dim(), dd], at)?,
            hidden: dd,
            configured_patches: l,
            dtype,
            device: device.clone(),
        })
    }

    /// The position table (`[1 + L, Dd]`, CLS row first) for `patches` patches, on the device: the stored one, or
    /// HF's quirk for other sizes, a 1-D bicubic along the flattened patch sequence (not 2-D).
    pub fn position_table(&self, patches: usize) -> Result<Tensor> {
        let dd = self.hidden;
        let table = if patches == self.configured_patches {
            self.position_embeddings.clone()
        } else {
            let mut table = self.position_embeddings[..dd].to_vec();
            table.extend(bicubic_resize(&self.position_embeddings[dd..], 1, self.configured_patches, dd, 1, patches));
            table
        };
        upload(table, (patches + 1, dd), self.dtype, &self.device)
    }

    /// Lays every weight out for `kernels` (see [`crate::MaeModel::set_kernels`]).
    pub(crate) fn set_kernels(&mut self, kernels: KernelChoice) -> Result<()> {
        self.embed.set_kernels(kernels)?;
        self.stack.set_kernels(kernels)?;
        self.pred.set_kernels(kernels)
    }

    /// The logits (`[L, p·p·C]`, CLS row dropped, spatial order) of each item of `last_hidden_state`
    /// (`[items·(1 + len_keep), D]`, items stacked as the encoder gives them), given each item's `ids_restore`
    /// (`[L]` u32 on the device) and `positions` ([`Decoder::position_table`] of the grid); with every layer's
    /// attention probabilities (one `[heads, 1 + L, 1 + L]` per item) when `keep_attention`.
    pub fn forward(
        &self,
        last_hidden_state: &Tensor,
        ids_restore: &[Tensor],
        positions: &Tensor,
        keep_attention: bool,
        kernels: KernelChoice,
    ) -> Result<(Vec<Tensor>, Vec<Vec<Tensor>>)> {
        let count = ids_restore.len();
        let (rows, _) = last_hidden_state.dims2()?;
        let (table_rows, _) = positions.dims2()?;
        if count == 0 || rows % count != 0 {
            return Err(MaeError::InvalidInput(format!("{rows} encoder rows cannot be split into {count} items")));
        }
        let (len_keep, num_patches) = (rows / count - 1, table_rows - 1);
        let embedded = self.embed.forward(last_hidden_state)?;
        // Visible tokens, then mask tokens, unshuffled back to spatial order, CLS in front.
        let num_masked = num_patches.checked_sub(len_keep).ok_or_else(|| {
            MaeError::InvalidInput(format!("{len_keep} visible tokens but only {num_patches} patches"))
        })?;
        let mask_tokens =
            (num_masked > 0).then(|| self.mask_token.broadcast_as((num_masked, self.hidden))).transpose()?;
        let mut sequences = Vec::with_capacity(count);
        for (item, ids_restore) in ids_restore.iter().enumerate() {
            let item_tokens = embedded.narrow(0, item * (1 + len_keep), 1 + len_keep)?;
            let visible_tokens = item_tokens.narrow(0, 1, len_keep)?;
            let tokens_in_shuffled_order = match &mask_tokens {
                None => visible_tokens,
                Some(mask_tokens) => Tensor::cat(&[&visible_tokens, mask_tokens], 0)?,
            };
            let spatial_tokens = tokens_in_shuffled_order.index_select(ids_restore, 0)?;
            sequences.push(Tensor::cat(&[&item_tokens.narrow(0, 0, 1)?, &spatial_tokens], 0)?.add(positions)?);
        }
        let (hidden, attentions) = self.stack.forward(&Tensor::cat(&sequences, 0)?, count, keep_attention, kernels)?;
        let predictions = self.pred.forward(&hidden)?;
        let logits = (0..count)
            .map(|item| Ok(predictions.narrow(0, item * (1 + num_patches) + 1, num_patches)?))
            .collect::<Result<Vec<_>>>()?;
        Ok((logits, attentions))
    }
}
