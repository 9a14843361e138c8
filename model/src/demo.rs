//! The demo model compiled into the binary (`--model demo`): a small ViTMAE trained on public-domain / CC0 photos
//! by `tools/train_demo_model.py` (provenance in `assets/LICENSES.md`), so the app shows real reconstructions with
//! no download, no network and an empty Hugging Face cache.

use std::path::Path;

use crate::config::{CheckedJson, MaeConfig, PreprocessorConfig};
use crate::device::SelectedDevice;
use crate::error::{MaeError, Result};
use crate::loader::LoadedModel;
use crate::weights::WeightStore;

/// What `--model` says to pick it. A folder of that name is reached as `./demo`.
pub const DEMO_MODEL_ARG: &str = "demo";
/// Its name in titles, status lines and the model picker.
pub const DEMO_MODEL_NAME: &str = "demo (built in)";

/// Where the embedded files were compiled from; errors name these paths.
const ASSET_DIR: &str = "assets/demo-model";
const CONFIG_JSON: &str = include_str!("../../assets/demo-model/config.json");
const PREPROCESSOR_JSON: &str = include_str!("../../assets/demo-model/preprocessor_config.json");
/// Read in place: tensors are copied out one at a time as the model is built, never the whole file at once.
static WEIGHTS: &[u8] = include_bytes!("../../assets/demo-model/model.safetensors");

/// Builds the embedded demo model on `device`. Touches neither the file system nor the network.
pub fn load_demo(device: &SelectedDevice) -> Result<LoadedModel> {
    let dir = Path::new(ASSET_DIR);
    let config =
        MaeConfig::from_json(CONFIG_JSON).map_err(|problem| MaeError::config(dir.join("config.json"), problem))?;
    let preprocessor = PreprocessorConfig::from_json(PREPROCESSOR_JSON)
        .map_err(|problem| MaeError::config(dir.join("preprocessor_config.json"), problem))?;
    let store = WeightStore::from_static_safetensors(&dir.join("model.safetensors"), WEIGHTS)?;
    let sources = (dir.join("config.json"), dir.join("preprocessor_config.json"));
    let name = DEMO_MODEL_NAME.to_string();
    LoadedModel::from_configs(
        config,
        preprocessor,
        &store,
        name,
        device,
        device.compute_dtype,
        (&sources.0, &sources.1),
    )
}
