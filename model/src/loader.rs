//! A model ready for use: network, preprocessing and a name to show (`source.rs` decides where it comes from;
//! `from_configs` builds the embedded demo model, which has no folder).

use std::path::{Path, PathBuf};

use candle_core::DType;

use crate::config::{MaeConfig, PreprocessorConfig};
use crate::device::SelectedDevice;
use crate::error::Result;
use crate::model::MaeModel;
use crate::preprocess::Preprocessor;
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
        let preprocessor = PreprocessorConfig::from_file_or_default(&folder.join("preprocessor_config.json"), &config)?;
        Self::from_configs(config, preprocessor, store, name, device, dtype)
    }

    /// Builds from configs already read (the embedded demo model has no folder to look in).
    pub fn from_configs(
        config: MaeConfig,
        preprocessor: PreprocessorConfig,
        store: &WeightStore,
        name: String,
        device: &SelectedDevice,
        dtype: DType,
    ) -> Result<Self> {
        let model = MaeModel::from_store(config, store, &device.device, device.dtype(dtype)?)?;
        Ok(Self { model, preprocessor: Preprocessor::new(preprocessor), name, source: store.path().to_owned() })
    }
}
