//! Where a model comes from — a hub id, a folder, one weights file, or the demo model built into the binary — and
//! loading it from there.
//!
//! Every source ends in the same place: a [`MaeConfig`] and a [`WeightStore`] under hub key names, handed to
//! [`LoadedModel::from_parts`]. PyTorch checkpoints go through [`crate::torch_checkpoint`] (no code from the file
//! runs); original facebookresearch/mae checkpoints are renamed by [`crate::original_mae`], and their architecture
//! is inferred when no `config.json` sits beside them.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::config::MaeConfig;
use crate::demo::{self, DEMO_MODEL_ARG};
use crate::device::SelectedDevice;
use crate::error::{MaeError, Result};
use crate::hub::{self, DownloadControl, HubSettings};
use crate::loader::LoadedModel;
use crate::memory;
use crate::original_mae::{self, KeyLayout};
use crate::torch_checkpoint;
use crate::weights::WeightStore;

pub use crate::hub::{CachedModel, DownloadProgress};

/// What `--model` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelLocation {
    /// A Hugging Face model id, optionally pinned to a branch, tag or commit (`owner/name@revision`).
    Hub { repo: String, revision: Option<String> },
    /// A folder with `config.json` and `model.safetensors` or `pytorch_model.bin`.
    Folder(PathBuf),
    /// One weights file (`.safetensors`, `.bin`, `.pth`), with `config.json` beside it unless it is an original
    /// MAE checkpoint.
    File(PathBuf),
    /// The small demo model compiled into the binary (`demo`); see [`crate::demo`].
    Demo,
}

const WEIGHT_EXTENSIONS: [&str; 4] = ["safetensors", "bin", "pth", "pt"];

impl FromStr for ModelLocation {
    type Err = MaeError;

    /// `demo` is the built-in demo model, even where a folder of that name exists (that one is `./demo`); then an
    /// existing path wins; otherwise `owner/name[@revision]` is a hub id; anything else is taken as a path (and fails
    /// later with "not found").
    fn from_str(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Err(MaeError::InvalidInput(
                "the model is empty; give a hub id like facebook/vit-mae-base, a folder, or demo (the built-in model)"
                    .into(),
            ));
        }
        if text == DEMO_MODEL_ARG {
            return Ok(Self::Demo);
        }
        let path = Path::new(text);
        let has_weight_extension =
            path.extension().is_some_and(|e| WEIGHT_EXTENSIONS.iter().any(|w| e.eq_ignore_ascii_case(w)));
        if path.is_dir() {
            return Ok(Self::Folder(path.to_owned()));
        }
        if path.is_file() || has_weight_extension {
            return Ok(Self::File(path.to_owned()));
        }
        let looks_like_path = text.starts_with(['.', '/', '~']) || text.contains('\\');
        let (repo, revision) = match text.split_once('@') {
            Some((repo, revision)) => (repo, Some(revision)),
            None => (text, None),
        };
        if looks_like_path || hub::split_repo_id(repo).is_err() {
            return Ok(Self::Folder(path.to_owned()));
        }
        if let Some(revision) = revision {
            hub::check_revision(revision).map_err(MaeError::InvalidInput)?;
        }
        Ok(Self::Hub { repo: repo.to_string(), revision: revision.map(str::to_string) })
    }
}

impl fmt::Display for ModelLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hub { repo, revision: Some(revision) } => write!(f, "{repo}@{revision}"),
            Self::Hub { repo, revision: None } => write!(f, "{repo}"),
            Self::Folder(path) | Self::File(path) => write!(f, "{}", path.display()),
            Self::Demo => f.write_str(DEMO_MODEL_ARG),
        }
    }
}

/// How a load reports download progress and learns that it should stop.
#[derive(Default)]
pub struct LoadOptions<'a> {
    /// Called from the loading thread as bytes arrive (only when something is downloaded).
    pub progress: Option<&'a (dyn Fn(DownloadProgress) + Sync)>,
    /// Set it to abandon a download; the load then fails with "download cancelled" and the cache keeps only
    /// complete files.
    pub cancel: Option<Arc<AtomicBool>>,
    /// A model that stays in memory beside this one (the window's other slot): the pair must fit in the memory
    /// budget together, or the load is refused before the weights become tensors.
    pub alongside: Option<Alongside>,
}

/// A loaded model named by what the user sees, with the memory it holds ([`memory::model_bytes`]).
#[derive(Clone, Debug)]
pub struct Alongside {
    pub name: String,
    pub bytes: u64,
}

/// Refuses a model that does not fit in the memory budget beside `options.alongside`, naming both sizes.
fn check_alongside(config: &MaeConfig, name: &str, device: &SelectedDevice, options: &LoadOptions) -> Result<()> {
    let Some(other) = &options.alongside else { return Ok(()) };
    let mine = memory::model_bytes(config, device.compute_dtype.size_in_bytes() as u64);
    let what = format!(
        "{name} (about {}) beside {} (about {})",
        memory::format_bytes(mine),
        other.name,
        memory::format_bytes(other.bytes)
    );
    memory::check_fits(&what, mine.saturating_add(other.bytes))
        .map_err(|problem| MaeError::InvalidInput(format!("{problem}: close the other model first")))
}

/// Loads a model from wherever `location` points, with hub settings from the environment (as Python resolves them).
pub fn load_model(location: &ModelLocation, device: &SelectedDevice, options: &LoadOptions) -> Result<LoadedModel> {
    load_model_with_settings(location, device, options, &HubSettings::from_env())
}

/// [`load_model`] with explicit hub settings (cache folder, token, offline), e.g. for tests.
pub fn load_model_with_settings(
    location: &ModelLocation,
    device: &SelectedDevice,
    options: &LoadOptions,
    settings: &HubSettings,
) -> Result<LoadedModel> {
    match location {
        ModelLocation::Demo => demo::load_demo(device),
        ModelLocation::Folder(dir) => load_folder(dir, device, options),
        ModelLocation::File(file) => {
            if !file.is_file() {
                return Err(MaeError::weights(file, "weights file not found"));
            }
            let (config, store) = open_weights(file, &file.with_file_name(hub::CONFIG_FILE))?;
            check_alongside(&config, &file_name(file), device, options)?;
            let folder = file.parent().unwrap_or(Path::new("."));
            LoadedModel::from_parts(config, &store, folder, file_name(file), device, device.compute_dtype)
        }
        ModelLocation::Hub { repo, revision } => {
            let control = DownloadControl { progress: options.progress, cancel: options.cancel.clone() };
            let files = hub::fetch(repo, revision.as_deref(), settings, &control)?;
            let name = location.to_string();
            open_weights(&files.weights, &files.config)
                .and_then(|(config, store)| {
                    check_alongside(&config, &name, device, options)?;
                    LoadedModel::from_parts(config, &store, &files.snapshot, name, device, device.compute_dtype)
                })
                .map_err(|error| damaged_cache_hint(error, &files.weights))
        }
    }
}

fn load_folder(dir: &Path, device: &SelectedDevice, options: &LoadOptions) -> Result<LoadedModel> {
    if !dir.is_dir() {
        return Err(MaeError::config(
            dir,
            "not found: neither a model folder, a weights file, a Hugging Face model id (owner/name), nor demo (the \
             built-in model)",
        ));
    }
    let weights =
        hub::WEIGHT_FILES.iter().map(|f| dir.join(f)).find(|p| p.is_file()).ok_or_else(|| {
            MaeError::weights(dir, format!("the folder has neither {}", hub::WEIGHT_FILES.join(" nor ")))
        })?;
    let (config, store) = open_weights(&weights, &dir.join(hub::CONFIG_FILE))?;
    check_alongside(&config, &file_name(dir), device, options)?;
    LoadedModel::from_parts(config, &store, dir, file_name(dir), device, device.compute_dtype)
}

/// Opens a weights file and the config that goes with it, renaming original-MAE tensors to hub names.
fn open_weights(weights: &Path, config_path: &Path) -> Result<(MaeConfig, WeightStore)> {
    let is_safetensors = weights.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
    if is_safetensors {
        let store = WeightStore::open_safetensors(weights)?;
        return Ok((MaeConfig::from_file(config_path)?, store));
    }
    let tensors = torch_checkpoint::read_pytorch_checkpoint(weights)?;
    match original_mae::detect_layout(tensors.keys()) {
        Some(KeyLayout::Hub) => {
            let config = MaeConfig::from_file(config_path)?;
            Ok((config, WeightStore::from_tensors(weights, tensors)))
        }
        Some(KeyLayout::OriginalMae) => {
            let config = if config_path.exists() {
                MaeConfig::from_file(config_path)?
            } else {
                let shapes: HashMap<String, Vec<usize>> =
                    tensors.iter().map(|(name, t)| (name.clone(), t.dims().to_vec())).collect();
                original_mae::infer_original_config(&shapes)
                    .map_err(|problem| MaeError::weights(weights, format!("no config.json beside it and {problem}")))?
            };
            let renamed = original_mae::to_hub_layout(weights, tensors)?;
            Ok((config, WeightStore::from_tensors(weights, renamed).with_file_names(original_mae::original_name)))
        }
        None => Err(MaeError::weights(
            weights,
            "holds tensors, but neither with Hugging Face ViTMAE names (vit.*, decoder.*) nor with \
             facebookresearch/mae names (blocks.*, decoder_blocks.*)",
        )),
    }
}

/// A cached file that fails to load was most likely damaged on disk; say how to get a fresh copy (we never delete
/// anything in the shared cache ourselves).
fn damaged_cache_hint(error: MaeError, cached: &Path) -> MaeError {
    match error {
        MaeError::Weights { path, problem } => {
            let blob = cached.canonicalize().unwrap_or_else(|_| cached.to_owned());
            MaeError::Weights {
                path,
                problem: format!(
                    "{problem} — this file is in the Hugging Face cache; if it is damaged, delete {} and load again \
                     to download it afresh",
                    blob.display()
                ),
            }
        }
        other => other,
    }
}

fn file_name(path: &Path) -> String {
    path.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_revisions_and_paths_are_told_apart() {
        assert_eq!(
            "facebook/vit-mae-base".parse::<ModelLocation>().unwrap(),
            ModelLocation::Hub { repo: "facebook/vit-mae-base".into(), revision: None }
        );
        assert_eq!(
            "facebook/vit-mae-large@refs/pr/3".parse::<ModelLocation>().unwrap(),
            ModelLocation::Hub { repo: "facebook/vit-mae-large".into(), revision: Some("refs/pr/3".into()) }
        );
        assert_eq!("./nothing/here".parse::<ModelLocation>().unwrap(), ModelLocation::Folder("./nothing/here".into()));
        assert_eq!("missing/mae.pth".parse::<ModelLocation>().unwrap(), ModelLocation::File("missing/mae.pth".into()));
        assert_eq!("a/b/c".parse::<ModelLocation>().unwrap(), ModelLocation::Folder("a/b/c".into()));
        let dir = tempfile::tempdir().unwrap();
        let location: ModelLocation = dir.path().to_str().unwrap().parse().unwrap();
        assert_eq!(location, ModelLocation::Folder(dir.path().to_owned()));
        assert!("facebook/vit-mae-base@../x".parse::<ModelLocation>().is_err());
        assert!("".parse::<ModelLocation>().is_err());
        assert_eq!(ModelLocation::Hub { repo: "a/b".into(), revision: Some("v1".into()) }.to_string(), "a/b@v1");
    }

    #[test]
    fn demo_names_the_built_in_model_and_a_folder_called_demo_stays_reachable() {
        assert_eq!("demo".parse::<ModelLocation>().unwrap(), ModelLocation::Demo);
        assert_eq!(ModelLocation::Demo.to_string(), "demo", "the name must parse back to the same model");
        assert_eq!("./demo".parse::<ModelLocation>().unwrap(), ModelLocation::Folder("./demo".into()));
        assert_ne!("Demo".parse::<ModelLocation>().unwrap(), ModelLocation::Demo, "only the exact word");
        assert_ne!("demo/model".parse::<ModelLocation>().unwrap(), ModelLocation::Demo);
    }
}
