//! The input of one forward pass as `dump` and `heads` take it: an image (preprocessed as the model says) or a
//! `.npy` of pixel values, and a mask from a seed or a `.npy` of noise at a ratio.

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use candle_core::{DType, Device, Tensor};
use mae_model::masking::check_ratio;
use mae_model::preprocess::load_rgb_image;
use mae_model::{LoadedModel, MaskSpec};

use crate::cli::ForwardInputArgs;

impl ForwardInputArgs {
    /// What can be checked before the model is loaded.
    pub fn check(&self) -> Result<()> {
        if let Some(ratio) = self.mask_ratio {
            check_ratio(ratio)?;
        }
        Ok(())
    }

    /// The pixel values and the mask for `loaded`.
    pub fn resolve(&self, loaded: &LoadedModel) -> Result<(Tensor, MaskSpec)> {
        let pixel_values = match (&self.image, &self.pixel_values) {
            (Some(image), _) => loaded.preprocessor.pixel_values(&load_rgb_image(image)?, &Device::Cpu)?,
            (None, Some(npy)) => read_pixel_values(npy)?,
            (None, None) => bail!("give an input with --image or --pixel-values"),
        };
        let (_, _, height, width) = pixel_values.dims4()?;
        let (rows, cols) = loaded.model.grid_for(height, width)?;
        let ratio = self.mask_ratio.unwrap_or(loaded.model.config().mask_ratio);
        let spec = match &self.noise {
            Some(npy) => MaskSpec::Noise { noise: read_noise(npy, rows * cols)?, ratio },
            None => MaskSpec::Seed { seed: self.seed.unwrap_or(0), ratio },
        };
        Ok((pixel_values, spec))
    }
}

fn read_npy(path: &Path) -> Result<Tensor> {
    if !path.is_file() {
        bail!("{}: file not found", path.display());
    }
    let tensor = Tensor::read_npy(path).map_err(|e| anyhow!("{}: not a readable .npy array ({e})", path.display()))?;
    tensor.to_dtype(DType::F32).map_err(|e| anyhow!("{}: cannot convert to float32 ({e})", path.display()))
}

/// Reads `[1, 3, H, W]` pixel values.
pub fn read_pixel_values(path: &Path) -> Result<Tensor> {
    let tensor = read_npy(path)?;
    match tensor.dims() {
        [1, 3, h, w] if *h > 0 && *w > 0 => Ok(tensor),
        dims => bail!("{}: pixel values must have shape [1, 3, H, W], got {dims:?}", path.display()),
    }
}

/// Reads noise of shape `[1, L]` (or `[L]`) for an input with `patches` patches.
pub fn read_noise(path: &Path, patches: usize) -> Result<Vec<f32>> {
    let tensor = read_npy(path)?;
    match tensor.dims() {
        [1, n] | [n] if *n == patches => Ok(tensor.flatten_all()?.to_vec1()?),
        dims => bail!("{}: noise must have shape [1, {patches}] for this input, got {dims:?}", path.display()),
    }
}
