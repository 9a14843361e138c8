//! Turning a `--model` argument into a loaded model.

use std::path::Path;

use anyhow::Result;
use candle_core::DType;
use mae_model::{DeviceChoice, LoadedModel, select_device};

/// Loads the model `--model` names on the device `--device` names.
pub fn load_model(model: &str, device: &str) -> Result<LoadedModel> {
    let choice: DeviceChoice = device.parse()?;
    let selected = select_device(choice)?;
    Ok(LoadedModel::from_dir(Path::new(model), &selected, DType::F32)?)
}
