//! The input of one forward pass as `dump` and `heads` take it: an image (preprocessed as the model says) or a
//! `.npy` of pixel values, and a mask from a seed or a `.npy` of noise at a ratio.

use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use mae_model::masking::check_ratio;
use mae_model::npy::NpyFile;
use mae_model::preprocess::load_rgb_image;
use mae_model::{LoadedModel, MaeModel, MaskSpec};

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
            (None, Some(npy)) => read_pixel_values(npy, &loaded.model)?,
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

/// Reads `[1, 3, H, W]` pixel values, checking the declared shape (and the memory a forward pass on it would
/// need) before the data is read.
pub fn read_pixel_values(path: &Path, model: &MaeModel) -> Result<Tensor> {
    let npy = NpyFile::open(path)?;
    let &[1, 3, height, width] = npy.shape() else {
        bail!("{}: pixel values must have shape [1, 3, H, W], got {:?}", path.display(), npy.shape());
    };
    model.grid_for(height, width).with_context(|| path.display().to_string())?;
    Ok(Tensor::from_vec(npy.read_f32()?, (1, 3, height, width), &Device::Cpu)?)
}

/// Reads noise of shape `[1, L]` (or `[L]`) for an input with `patches` patches.
pub fn read_noise(path: &Path, patches: usize) -> Result<Vec<f32>> {
    let npy = NpyFile::open(path)?;
    match npy.shape() {
        [1, n] | [n] if *n == patches => Ok(npy.read_f32()?),
        dims => bail!("{}: noise must have shape [1, {patches}] for this input, got {dims:?}", path.display()),
    }
}
