//! Rearrangements between images `[1, C, H, W]` and per-patch rows, in HF's two layouts.

use candle_core::{D, Tensor};

use crate::error::Result;

/// HF's `patchify` for one image: `[1, C, H, W]` → `[L, p·p·C]`, row-major patches, each patch's values ordered
/// `(row·p + col)·C + channel` (the layout of the logits and the loss target).
pub fn patchify(pixel_values: &Tensor, p: usize) -> Result<Tensor> {
    let (_, c, height, width) = pixel_values.dims4()?;
    let (rows, cols) = (height / p, width / p);
    Ok(pixel_values.reshape((c, rows, p, cols, p))?.permute((1, 3, 2, 4, 0))?.reshape((rows * cols, p * p * c))?)
}

/// The patch-embedding conv's view of the image: `[L, C·p·p]` with each patch ordered `(channel, row, col)`,
/// so that `patches · convᵀ` equals the strided convolution.
pub fn to_conv_patches(pixel_values: &Tensor, p: usize) -> Result<Tensor> {
    let (_, c, height, width) = pixel_values.dims4()?;
    let (rows, cols) = (height / p, width / p);
    Ok(pixel_values.reshape((c, rows, p, cols, p))?.permute((1, 3, 0, 2, 4))?.reshape((rows * cols, c * p * p))?)
}

/// Inverse of `patchify`: `[L, p·p·C]` on a `(rows, cols)` grid → `[C, rows·p, cols·p]`.
pub fn unpatchify(patches: &Tensor, (rows, cols): (usize, usize), p: usize) -> Result<Tensor> {
    let c = patches.dim(1)? / (p * p);
    Ok(patches.reshape((rows, cols, p, p, c))?.permute((4, 0, 2, 1, 3))?.reshape((c, rows * p, cols * p))?)
}

/// The `norm_pix_loss` target: each patch row standardized with its mean and unbiased variance (+1e-6), as HF
/// does. Returns `(normalized, mean [L, 1], std [L, 1])`.
pub fn normalize_per_patch(patches: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    let n = patches.dim(D::Minus1)?;
    let mean = patches.mean_keepdim(D::Minus1)?;
    let centered = patches.broadcast_sub(&mean)?;
    let unbiased_variance = (centered.sqr()?.sum_keepdim(D::Minus1)? / (n.saturating_sub(1).max(1)) as f64)?;
    let std = (unbiased_variance + 1e-6)?.sqrt()?;
    Ok((centered.broadcast_div(&std)?, mean, std))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn patchify_layout_and_inverse() {
        let (c, h, w, p) = (3, 4, 6, 2);
        let values: Vec<f32> = (0..c * h * w).map(|v| v as f32).collect();
        let image = Tensor::from_vec(values, (1, c, h, w), &Device::Cpu).unwrap();
        let rows = patchify(&image, p).unwrap();
        assert_eq!(rows.dims(), &[6, 12]);
        // Patch 4 = grid row 1, col 1; in-patch (row 1, col 0), channel 2 → pixel (y=3, x=2).
        let value: f32 = rows.get(4).unwrap().get(p * c + 2).unwrap().to_scalar().unwrap();
        assert_eq!(value, (2 * h * w + 3 * w + 2) as f32);
        let back = unpatchify(&rows, (2, 3), p).unwrap().unsqueeze(0).unwrap();
        let diff: f32 = (back - &image).unwrap().abs().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert_eq!(diff, 0.0);
        let conv = to_conv_patches(&image, p).unwrap();
        // Conv order: channel 2, in-patch row 1, col 0 of patch 4 → same pixel.
        let value: f32 = conv.get(4).unwrap().get(2 * p * p + p).unwrap().to_scalar().unwrap();
        assert_eq!(value, (2 * h * w + 3 * w + 2) as f32);
    }
}
