//! Turning a `--model` argument into a loaded model.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use mae_model::{DownloadProgress, LoadOptions, LoadedModel, ModelLocation, SelectedDevice, select_device};

use crate::cli::{EngineArgs, ModelArgs};

/// Loads the model `--model` names (hub id `owner/name[@revision]`, folder, weights file or `demo`) on the device,
/// in the dtype and with the kernels the engine options name. Downloads show a progress bar on stderr (hidden when
/// stderr is not a terminal).
pub fn load_model(model: &ModelArgs, engine: &EngineArgs) -> Result<LoadedModel> {
    load_model_on(&model.location, &selected_device(engine)?)
}

/// The device, dtype and kernels the engine options name (`auto` resolved), for commands that record them.
pub fn selected_device(engine: &EngineArgs) -> Result<SelectedDevice> {
    Ok(select_device(engine.device)?.with_dtype(engine.dtype.dtype())?.with_kernels(engine.kernels))
}

/// Loads the models of a `--models` list, one after another, each once.
pub fn load_models(models: &[String], engine: &EngineArgs) -> Result<Vec<LoadedModel>> {
    let selected = selected_device(engine)?;
    models.iter().map(|model| load_model_on(model, &selected).map_err(|error| naming(error, model))).collect()
}

/// `error` with the model it is about named in front, unless it names it already (a folder that is not found
/// says its path itself: "/x: /x: not found" said it twice).
pub fn naming(error: anyhow::Error, model: &str) -> anyhow::Error {
    if format!("{error:#}").contains(model) { error } else { error.context(model.to_string()) }
}

/// The hub commit a loaded model's weights came from: the snapshot folder of the Hugging Face cache they lie in
/// (`…/snapshots/<commit>/model.safetensors`); `None` for local folders, files and the built-in model.
pub fn hub_revision(loaded: &LoadedModel) -> Option<String> {
    snapshot_commit(&loaded.source)
}

/// The 40-hex-digit folder after `snapshots` in a path of the Hugging Face cache.
fn snapshot_commit(path: &std::path::Path) -> Option<String> {
    let mut components = path.components().map(|c| c.as_os_str().to_string_lossy().into_owned());
    components.find(|name| name == "snapshots")?;
    components.next().filter(|commit| commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Loads `location` on `selected` (its device, dtype and kernels).
pub fn load_model_on(location: &str, selected: &SelectedDevice) -> Result<LoadedModel> {
    let location: ModelLocation = location.parse()?;
    let bar = DownloadBar::default();
    let report = |progress: DownloadProgress| bar.update(&progress);
    let options = LoadOptions { progress: Some(&report), cancel: None, alongside: None };
    let loaded = mae_model::load_model(&location, selected, &options);
    bar.finish();
    Ok(loaded?)
}

/// One indicatif bar per downloaded file, created when its first bytes arrive (cached files show nothing).
#[derive(Default)]
struct DownloadBar {
    current: Mutex<Option<(String, ProgressBar)>>,
}

impl DownloadBar {
    fn update(&self, progress: &DownloadProgress) {
        let Ok(mut current) = self.current.lock() else { return };
        if current.as_ref().is_none_or(|(file, _)| *file != progress.file) {
            if let Some((_, previous)) = current.take() {
                previous.finish();
            }
            let bar = ProgressBar::new(progress.total.unwrap_or(0));
            let template = if progress.total.is_some() {
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
            } else {
                "{msg} {bytes} {bytes_per_sec}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(format!("downloading {}", progress.file));
            bar.enable_steady_tick(Duration::from_millis(250));
            *current = Some((progress.file.clone(), bar));
        }
        if let Some((_, bar)) = current.as_ref() {
            if let Some(total) = progress.total {
                bar.set_length(total);
            }
            bar.set_position(progress.downloaded);
        }
    }

    fn finish(&self) {
        if let Ok(mut current) = self.current.lock()
            && let Some((_, bar)) = current.take()
        {
            bar.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn snapshot_commits() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let cached = format!("/c/hub/models--facebook--vit-mae-base/snapshots/{commit}/model.safetensors");
        assert_eq!(snapshot_commit(Path::new(&cached)).as_deref(), Some(commit));
        assert_eq!(snapshot_commit(Path::new("/models/snapshots/mine/model.safetensors")), None);
        assert_eq!(snapshot_commit(Path::new("/models/tiny/model.safetensors")), None);
    }
}
