//! Everything one forward pass produces, in HF's shapes, plus host-side views for rendering.

use candle_core::Tensor;

use crate::error::Result;
use crate::masking::Masking;
use crate::patches::{self, PatchGrid};

/// The result of `MaeModel::forward` for one image. Tensors are f32 and carry a leading batch axis of 1, as
/// HF returns them. `pixel_values` and `reconstruction` are made on the host and stay there (CPU tensors); the
/// logits, `last_hidden_state` and the attentions are on the model's device.
#[derive(Debug, Clone)]
pub struct MaeOutput {
    /// Patch grid (rows, columns) of this input.
    pub grid: (usize, usize),
    pub patch_size: usize,
    /// Whether the model predicts per-patch-normalized pixels (see `display_predictions`).
    pub norm_pix_loss: bool,
    /// The normalized input `[1, 3, H, W]` as the model saw it (rounded to its compute dtype).
    pub pixel_values: Tensor,
    /// Noise, mask, ids_restore and ids_keep.
    pub masking: Masking,
    /// `[1, L, p·p·3]` predictions for every patch, spatial order.
    pub logits: Tensor,
    /// Encoder output after `vit.layernorm`: `[1, 1 + len_keep, D]`, CLS first, visible tokens in shuffled order.
    pub last_hidden_state: Tensor,
    /// Per-patch mean squared error against the (possibly normalized) target, length L, spatial order.
    pub patch_loss: Vec<f32>,
    /// Mean of `patch_loss` over masked patches; `None` when nothing is masked.
    pub loss: Option<f32>,
    /// `unpatchify(logits)`: `[1, 3, H, W]` in the model's output space (normalized pixels, or per-patch
    /// normalized pixels for `norm_pix_loss` models).
    pub reconstruction: Tensor,
    /// `[1, heads, 1 + len_keep, 1 + len_keep]` per encoder layer (empty unless requested); token order is CLS
    /// then `masking.ids_keep`.
    pub encoder_attentions: Vec<Tensor>,
    /// `[1, heads, 1 + L, 1 + L]` per decoder layer (empty unless requested); CLS then patches in spatial order.
    pub decoder_attentions: Vec<Tensor>,
}

impl MaeOutput {
    pub fn num_patches(&self) -> usize {
        self.grid.0 * self.grid.1
    }

    /// (height, width) of the input in pixels.
    pub fn image_size(&self) -> (usize, usize) {
        (self.grid.0 * self.patch_size, self.grid.1 * self.patch_size)
    }

    /// Mean loss over the visible patches (how well the model copies what it saw); `None` when all are masked.
    pub fn visible_loss(&self) -> Option<f32> {
        let visible: Vec<f32> = self.masking.mask.iter().map(|m| 1.0 - m).collect();
        patches::masked_mean(&self.patch_loss, &visible)
    }

    /// Predictions in normalized pixel space, ready to de-normalize for display: the logits themselves, or for
    /// `norm_pix_loss` models the logits scaled back with each *target* patch's mean and std. The latter uses
    /// statistics of the masked patches themselves, so a picture made from it leaks information the model never
    /// saw and must be labelled as such. Returns `[1, 3, H, W]`.
    pub fn display_predictions(&self) -> Result<Tensor> {
        if !self.norm_pix_loss {
            return Ok(self.reconstruction.clone());
        }
        let geometry = PatchGrid::of(&self.pixel_values, self.patch_size)?;
        let pixels: Vec<f32> = self.pixel_values.flatten_all()?.to_vec1()?;
        let mut predictions: Vec<f32> = self.logits.flatten_all()?.to_vec1()?;
        let statistics = patches::patch_statistics(&geometry.patchify(&pixels), geometry.patch_dim());
        for (row, (mean, std)) in predictions.chunks_exact_mut(geometry.patch_dim()).zip(statistics) {
            row.iter_mut().for_each(|v| *v = *v * std + mean);
        }
        patches::image_tensor(geometry.unpatchify(&predictions), &geometry, self.pixel_values.device())
    }

    /// Attention probabilities of one layer as host rows: `[heads][query][key]` flattened, with its sizes.
    pub fn attention_host(attention: &Tensor) -> Result<(usize, usize, Vec<f32>)> {
        let (_, heads, tokens, _) = attention.dims4()?;
        Ok((heads, tokens, attention.flatten_all()?.to_vec1()?))
    }
}
