//! HF's `vit.embeddings`: the patch conv on the visible patches only, their position embeddings, HF's shuffled
//! order, and the CLS token in front.

use candle_core::{DType, Device, Tensor};

use crate::config::MaeConfig;
use crate::error::Result;
use crate::interpolate::bicubic_resize;
use crate::layers::Linear;
use crate::masking::Masking;
use crate::ops::KernelChoice;
use crate::patches::PatchGrid;
use crate::weights::{Placement, WeightStore};

/// The encoder's input side of a ViTMAE.
#[derive(Debug, Clone)]
pub struct Embeddings {
    /// The patch conv as a matmul: `[C·p·p, D]` (the transposed conv kernel), applied to visible patches only.
    patch_embed: Linear,
    /// `cls_token + position_embeddings[0]` (`[1, D]`): the first token, the same for every input size.
    cls_with_position: Tensor,
    /// `[1 + L, D]` host copy of the stored table, for interpolation to other grids.
    position_embeddings: Vec<f32>,
    hidden: usize,
    /// The configured grid's side (the stored table is side × side).
    side: usize,
    dtype: DType,
    device: Device,
}

impl Embeddings {
    /// `vit.embeddings.*`, every shape checked against `config`.
    pub fn load(config: &MaeConfig, store: &WeightStore, at: Placement<'_>) -> Result<Self> {
        let Placement { device, dtype, .. } = at;
        let (d, p, c, l) = (config.hidden_size, config.patch_size, config.num_channels, config.num_patches());
        let host = |key: &str, shape: &[usize]| -> Result<Vec<f32>> {
            Ok(store.get(key, shape, DType::F32, &Device::Cpu)?.flatten_all()?.to_vec1()?)
        };
        let position_embeddings = host("vit.embeddings.position_embeddings", &[1, l + 1, d])?;
        // In f32 on the host, then one rounding to the compute dtype.
        let cls_with_position: Vec<f32> = host("vit.embeddings.cls_token", &[1, 1, d])?
            .iter()
            .zip(&position_embeddings[..d])
            .map(|(cls, position)| cls + position)
            .collect();
        // The conv kernel `[D, C, p, p]` is a `[D, C·p·p]` matrix over each patch's (c, i, j) values.
        let patch_embed = Linear::load(store, "vit.embeddings.patch_embeddings.projection", &[d, c, p, p], at)?;
        Ok(Self {
            patch_embed,
            cls_with_position: upload(cls_with_position, (1, d), dtype, device)?,
            position_embeddings,
            hidden: d,
            side: config.grid_size(),
            dtype,
            device: device.clone(),
        })
    }

    /// The position rows of the patches (`[L, D]`, CLS row left out) for a grid of `rows`×`cols` patches, on the
    /// device: the stored table, or its 2-D bicubic interpolation as HF's `interpolate_pos_encoding` computes it
    /// (skipped, as HF skips it, only for a square grid of the configured size).
    pub fn position_table(&self, (rows, cols): (usize, usize)) -> Result<Tensor> {
        let (d, side) = (self.hidden, self.side);
        let patch_rows = &self.position_embeddings[d..];
        let table = if rows == side && cols == side {
            patch_rows.to_vec()
        } else {
            bicubic_resize(patch_rows, side, side, d, rows, cols)
        };
        upload(table, (rows * cols, d), self.dtype, &self.device)
    }

    /// Lays the patch projection out for `kernels` (see [`crate::MaeModel::set_kernels`]).
    pub(crate) fn set_kernels(&mut self, kernels: KernelChoice) -> Result<()> {
        self.patch_embed.set_kernels(kernels)
    }

    /// The encoder's input for items that keep the same number of patches: per item, CLS then its visible patches
    /// in HF's shuffled order (`ids_keep`), each embedded and given its position row from `positions`
    /// ([`Embeddings::position_table`] of the grid); stacked item after item, `[items·(1 + len_keep), D]`.
    /// `pixels` are each item's `[C, H, W]` values on the host. Masked patches cost nothing; with every patch
    /// masked an item is CLS alone (and no empty tensor reaches a GPU kernel).
    pub fn forward(
        &self,
        pixels: &[&[f32]],
        maskings: &[&Masking],
        geometry: &PatchGrid,
        positions: &Tensor,
    ) -> Result<Tensor> {
        let count = maskings.len();
        let len_keep = maskings.first().map_or(0, |masking| masking.len_keep());
        if len_keep == 0 {
            return Ok(Tensor::cat(&vec![&self.cls_with_position; count], 0)?);
        }
        let mut rows = Vec::with_capacity(count * len_keep * geometry.patch_dim());
        let mut ids_keep = Vec::with_capacity(count * len_keep);
        for (pixels, masking) in pixels.iter().zip(maskings) {
            rows.extend(geometry.conv_rows(pixels, &masking.ids_keep));
            ids_keep.extend_from_slice(&masking.ids_keep);
        }
        let kept_patches = upload(rows, (count * len_keep, geometry.patch_dim()), self.dtype, &self.device)?;
        let ids_keep = index_tensor(&ids_keep, &self.device)?;
        let visible = self.patch_embed.forward(&kept_patches)?.add(&positions.index_select(&ids_keep, 0)?)?;
        let mut sequences = Vec::with_capacity(2 * count);
        for item in 0..count {
            sequences.push(self.cls_with_position.clone());
            sequences.push(visible.narrow(0, item * len_keep, len_keep)?);
        }
        Ok(Tensor::cat(&sequences, 0)?)
    }
}

/// Host values to a tensor on `device` in `dtype`, converted on the host (half the bytes cross for f16/bf16).
pub(crate) fn upload(values: Vec<f32>, shape: (usize, usize), dtype: DType, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(values, shape, &Device::Cpu)?.to_dtype(dtype)?.to_device(device)?)
}

/// Patch indices as a `u32` tensor on `device`, for `index_select`.
pub(crate) fn index_tensor(indices: &[usize], device: &Device) -> Result<Tensor> {
    let values: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
    Ok(Tensor::from_vec(values, indices.len(), device)?)
}
