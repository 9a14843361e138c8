//! Rearrangements between images `[1, C, H, W]` and per-patch rows, in HF's two layouts.
//!
//! These run on host vectors with plain loops: as tensor permutes, the HF layout's innermost axis is the channel
//! (stride H·W), which candle copies element by element through a 5-D index, slower than the model's attention.
//! The arrays involved are one image in size, so a round trip from a GPU costs nothing noticeable either.

use candle_core::{Device, Tensor};

use crate::error::Result;

/// One image's geometry in patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchGrid {
    pub channels: usize,
    pub rows: usize,
    pub cols: usize,
    pub patch: usize,
}

impl PatchGrid {
    /// The grid of a `[1, C, H, W]` tensor cut into `patch`×`patch` patches (H and W must be multiples).
    pub fn of(pixel_values: &Tensor, patch: usize) -> Result<Self> {
        let (_, channels, height, width) = pixel_values.dims4()?;
        Ok(Self { channels, rows: height / patch, cols: width / patch, patch })
    }

    pub fn height(&self) -> usize {
        self.rows * self.patch
    }

    pub fn width(&self) -> usize {
        self.cols * self.patch
    }

    pub fn num_patches(&self) -> usize {
        self.rows * self.cols
    }

    /// Values per patch, p·p·C.
    pub fn patch_dim(&self) -> usize {
        self.patch * self.patch * self.channels
    }

    /// Index into a CHW buffer of pixel (row `i`, column `j`) of patch `index`, channel `c`.
    fn pixel(&self, index: usize, i: usize, j: usize, c: usize) -> usize {
        let (y, x) = ((index / self.cols) * self.patch + i, (index % self.cols) * self.patch + j);
        (c * self.height() + y) * self.width() + x
    }

    /// HF's `patchify`: CHW → `[L, p·p·C]`, row-major patches, each ordered `(row·p + col)·C + channel` (the
    /// layout of the logits and the loss target).
    pub fn patchify(&self, chw: &[f32]) -> Vec<f32> {
        let mut rows = Vec::with_capacity(self.num_patches() * self.patch_dim());
        for index in 0..self.num_patches() {
            for i in 0..self.patch {
                for j in 0..self.patch {
                    rows.extend((0..self.channels).map(|c| chw[self.pixel(index, i, j, c)]));
                }
            }
        }
        rows
    }

    /// Inverse of `patchify`: `[L, p·p·C]` → CHW.
    pub fn unpatchify(&self, rows: &[f32]) -> Vec<f32> {
        let mut chw = vec![0f32; self.channels * self.height() * self.width()];
        let mut values = rows.iter();
        for index in 0..self.num_patches() {
            for i in 0..self.patch {
                for j in 0..self.patch {
                    for c in 0..self.channels {
                        chw[self.pixel(index, i, j, c)] = *values.next().unwrap_or(&0.0);
                    }
                }
            }
        }
        chw
    }

    /// The patch-embedding conv's view of the listed patches: `[patches.len(), C·p·p]`, each ordered
    /// `(channel, row, col)`, so that `rows · convᵀ` equals the strided convolution at those patches.
    pub fn conv_rows(&self, chw: &[f32], patches: &[usize]) -> Vec<f32> {
        let mut rows = Vec::with_capacity(patches.len() * self.patch_dim());
        for &index in patches {
            for c in 0..self.channels {
                for i in 0..self.patch {
                    let start = self.pixel(index, i, 0, c);
                    rows.extend_from_slice(&chw[start..start + self.patch]);
                }
            }
        }
        rows
    }
}

/// Per-patch statistics of the `norm_pix_loss` target: mean and `sqrt(unbiased variance + 1e-6)`, as HF computes
/// them (accumulated in f64 here).
pub fn patch_statistics(rows: &[f32], patch_dim: usize) -> Vec<(f32, f32)> {
    rows.chunks_exact(patch_dim)
        .map(|row| {
            let n = row.len() as f64;
            let mean = row.iter().map(|v| *v as f64).sum::<f64>() / n;
            let variance = row.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            (mean as f32, (variance + 1e-6).sqrt() as f32)
        })
        .collect()
}

/// Standardizes each patch row in place with `patch_statistics` (HF's `norm_pix_loss` target).
pub fn normalize_rows(rows: &mut [f32], patch_dim: usize) {
    let statistics = patch_statistics(rows, patch_dim);
    for (row, (mean, std)) in rows.chunks_exact_mut(patch_dim).zip(statistics) {
        row.iter_mut().for_each(|v| *v = (*v - mean) / std);
    }
}

/// Mean squared error of each patch row.
pub fn patch_mse(predictions: &[f32], targets: &[f32], patch_dim: usize) -> Vec<f32> {
    predictions
        .chunks_exact(patch_dim)
        .zip(targets.chunks_exact(patch_dim))
        .map(|(p, t)| {
            let sum: f64 = p.iter().zip(t).map(|(a, b)| ((*a - *b) as f64).powi(2)).sum();
            (sum / patch_dim as f64) as f32
        })
        .collect()
}

/// `sum(loss·mask) / sum(mask)`, or `None` when nothing is masked (HF returns NaN there).
pub fn masked_mean(patch_loss: &[f32], mask: &[f32]) -> Option<f32> {
    let masked: f32 = mask.iter().sum();
    (masked > 0.0).then(|| patch_loss.iter().zip(mask).map(|(l, m)| l * m).sum::<f32>() / masked)
}

/// A host CHW vector as a `[1, C, H, W]` tensor on `device`.
pub fn image_tensor(chw: Vec<f32>, grid: &PatchGrid, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(chw, (1, grid.channels, grid.height(), grid.width()), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patchify_layout_and_inverse() {
        let grid = PatchGrid { channels: 3, rows: 2, cols: 3, patch: 2 };
        let (h, w) = (grid.height(), grid.width());
        let chw: Vec<f32> = (0..3 * h * w).map(|v| v as f32).collect();
        let rows = grid.patchify(&chw);
        assert_eq!(rows.len(), 6 * 12);
        // Patch 4 = grid row 1, col 1; in-patch (row 1, col 0), channel 2 → pixel (y=3, x=2).
        let pixel = (2 * h * w + 3 * w + 2) as f32;
        assert_eq!(rows[4 * 12 + 2 * 3 + 2], pixel);
        assert_eq!(grid.unpatchify(&rows), chw);
        // Conv order: channel 2, in-patch row 1, col 0 of patch 4 → the same pixel.
        let conv = grid.conv_rows(&chw, &[5, 4]);
        assert_eq!(conv[12 + 2 * 4 + 2], pixel);
    }

    #[test]
    fn normalized_rows_have_zero_mean_and_unit_unbiased_variance() {
        let mut rows = vec![1.0f32, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 10.0];
        normalize_rows(&mut rows, 4);
        let mean: f32 = rows[..4].iter().sum::<f32>() / 4.0;
        let variance: f32 = rows[..4].iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 3.0;
        assert!(mean.abs() < 1e-6 && (variance - 1.0).abs() < 1e-5, "{mean} {variance}");
        assert!(rows[4..].iter().all(|v| *v == 0.0), "a flat patch stays 0 thanks to the 1e-6");
        assert_eq!(patch_mse(&[1.0, 3.0], &[0.0, 0.0], 2), vec![5.0]);
    }
}
