//! The input of one forward pass as `dump` and `heads` take it: an image (preprocessed as the model says) or a
//! `.npy` of pixel values, and a mask (a strategy with a seed, a picture, or a `.npy` of noise) at a ratio.

use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use mae_model::masking::check_ratio;
use mae_model::npy::NpyFile;
use mae_model::preprocess::load_rgb_image;
use mae_model::{LoadedModel, MaeModel, MaskSpec, SizeRule};

use crate::cli::ForwardInputArgs;
use crate::jobs::masks::MaskSource;

/// The forward pass's input, resolved for one model.
#[derive(Debug)]
pub struct ForwardInput {
    pub pixel_values: Tensor,
    pub spec: MaskSpec,
    /// The mask's name (`random`, …, a picture's file name, or `noise`), for metadata.
    pub mask_name: String,
    pub seed: Option<u64>,
    pub ratio: f64,
}

impl ForwardInputArgs {
    /// What can be checked before the model is loaded; returns the mask, read once.
    pub fn check(&self) -> Result<MaskSource> {
        if let Some(ratio) = self.mask_ratio {
            check_ratio(ratio)?;
        }
        if self.pixel_values.is_some() && self.size.size != SizeRule::Model {
            bail!(
                "--size {} is refused with --pixel-values: it sizes an --image, and an array of pixel values is run at \
                 its own size; leave --size out",
                self.size.size
            );
        }
        MaskSource::parse(&self.mask).context("--mask")
    }

    /// The pixel values and the mask for `loaded`.
    pub fn resolve(&self, loaded: &LoadedModel, mask: &MaskSource) -> Result<ForwardInput> {
        let pixel_values = match (&self.image, &self.pixel_values) {
            (Some(image), _) => {
                let picture = load_rgb_image(image)?;
                let (values, fed) = loaded.pixel_values_at(&picture, self.size.size, &Device::Cpu)?;
                if self.size.size != SizeRule::Model {
                    eprintln!("{}", fed.describe());
                }
                values
            }
            (None, Some(npy)) => read_pixel_values(npy, &loaded.model)?,
            (None, None) => bail!("give an input with --image or --pixel-values"),
        };
        let (_, _, height, width) = pixel_values.dims4()?;
        let (rows, cols) = loaded.model.grid_for(height, width)?;
        let ratio = self.mask_ratio.unwrap_or(loaded.model.config().mask_ratio);
        let patch = loaded.model.config().patch_size;
        let (spec, mask_name, seed) = match &self.noise {
            Some(npy) => (MaskSpec::Noise { noise: read_noise(npy, rows * cols)?, ratio }, "noise".to_string(), None),
            None => {
                let seed = self.seed.unwrap_or(0);
                (mask.spec(seed, ratio, (height, width), patch)?, mask.name(), Some(seed))
            }
        };
        Ok(ForwardInput { pixel_values, spec, mask_name, seed, ratio })
    }
}

/// Reads `[1, 3, H, W]` pixel values, checking the declared shape (and the memory a forward pass on it would
/// need) before the data is read.
fn read_pixel_values(path: &Path, model: &MaeModel) -> Result<Tensor> {
    let npy = NpyFile::open(path)?;
    let &[1, 3, height, width] = npy.shape() else {
        bail!("{}: pixel values must have shape [1, 3, H, W], got {:?}", path.display(), npy.shape());
    };
    model.grid_for(height, width).with_context(|| path.display().to_string())?;
    Ok(Tensor::from_vec(npy.read_f32()?, (1, 3, height, width), &Device::Cpu)?)
}

/// Reads noise of shape `[1, L]` (or `[L]`) for an input with `patches` patches.
fn read_noise(path: &Path, patches: usize) -> Result<Vec<f32>> {
    let npy = NpyFile::open(path)?;
    match npy.shape() {
        [1, n] | [n] if *n == patches => Ok(npy.read_f32()?),
        dims => bail!("{}: noise must have shape [1, {patches}] for this input, got {dims:?}", path.display()),
    }
}
