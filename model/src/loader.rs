//! A model ready for use: network, preprocessing and a name to show (`source.rs` decides where it comes from;
//! `from_configs` builds the embedded demo model, which has no folder).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use image::RgbImage;

use crate::config::{MaeConfig, PreprocessorConfig};
use crate::device::SelectedDevice;
use crate::error::{MaeError, Result};
use crate::hub::{CONFIG_FILE, PREPROCESSOR_FILE};
use crate::model::{MaeModel, check_forward_fits};
use crate::preprocess::Preprocessor;
use crate::size::{InputSize, SizeRule};
use crate::weights::WeightStore;

/// A loaded model with the preprocessing that belongs to it.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    pub model: MaeModel,
    pub preprocessor: Preprocessor,
    /// What to call it in titles and status lines (folder name, hub id, or "demo (built in)").
    pub name: String,
    /// The folder or file it came from (for the embedded demo model: the asset it was compiled from).
    pub source: PathBuf,
}

impl LoadedModel {
    /// Builds from an already-opened weight store; `preprocessor_config.json` is looked for in `folder`.
    pub fn from_parts(
        config: MaeConfig,
        store: &WeightStore,
        folder: &Path,
        name: String,
        device: &SelectedDevice,
        dtype: DType,
    ) -> Result<Self> {
        let config_file = folder.join(CONFIG_FILE);
        let config_source = if config_file.is_file() { config_file } else { store.path().to_owned() };
        let preprocessor_file = folder.join(PREPROCESSOR_FILE);
        let preprocessor = PreprocessorConfig::from_file_or_default(&preprocessor_file, &config)?;
        Self::from_configs(config, preprocessor, store, name, device, dtype, (&config_source, &preprocessor_file))
    }

    /// Builds from configs already read (the embedded demo model has no folder to look in); `sources` name the
    /// config and preprocessor config in errors.
    pub fn from_configs(
        config: MaeConfig,
        preprocessor: PreprocessorConfig,
        store: &WeightStore,
        name: String,
        device: &SelectedDevice,
        dtype: DType,
        (config_source, preprocessor_source): (&Path, &Path),
    ) -> Result<Self> {
        // Sizes the files declare are checked against memory before any weight is read: a forged grid would
        // otherwise abort the process at its first forward pass.
        let side = config.grid_size();
        check_forward_fits(&config, (side, side)).map_err(|problem| {
            MaeError::config(
                config_source,
                format!("image_size {} with patch_size {}: {problem}", config.image_size, config.patch_size),
            )
        })?;
        if preprocessor.do_resize {
            let (height, width) = preprocessor.target_size();
            let p = config.patch_size;
            check_forward_fits(&config, (height / p, width / p)).map_err(|problem| {
                MaeError::config(preprocessor_source, format!("size {height}×{width}: {problem}"))
            })?;
        }
        let model = MaeModel::from_store(config, store, &device.device, device.dtype(dtype)?, device.kernels)?;
        Ok(Self { model, preprocessor: Preprocessor::new(preprocessor), name, source: store.path().to_owned() })
    }

    /// The picture as this model takes it at `size`, with the size it was fed at. The model's own size is its
    /// preprocessor's as it stands (byte for byte what it always was); any other size is checked against the patch
    /// size and the memory budget before anything is allocated, then resized as `ViTImageProcessor` with that size.
    pub fn pixel_values_at(&self, image: &RgbImage, size: SizeRule, device: &Device) -> Result<(Tensor, InputSize)> {
        if size == SizeRule::Model {
            let values = self.preprocessor.pixel_values(image, device)?;
            let (_, _, height, width) = values.dims4()?;
            return Ok((values, InputSize { width, height, note: None }));
        }
        let model_size = self.preprocessor.config.target_size();
        let fed = size.check(image.dimensions(), self.model.config(), model_size, &self.name)?;
        let values = self.preprocessor.with_size(fed.height, fed.width).pixel_values(image, device)?;
        Ok((values, fed))
    }
}
