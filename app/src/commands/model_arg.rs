//! Turning a `--model` argument into a loaded model.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use candle_core::DType;
use indicatif::{ProgressBar, ProgressStyle};
use mae_model::{DeviceChoice, DownloadProgress, LoadOptions, LoadedModel, ModelLocation, select_device};

/// Loads the model `--model` names (hub id `owner/name[@revision]`, folder or weights file) on the device
/// `--device` names. Downloads show a progress bar on stderr (hidden when stderr is not a terminal).
pub fn load_model(model: &str, device: &str) -> Result<LoadedModel> {
    load_model_as(model, device, DType::F32)
}

/// `load_model` computing in `dtype` (`--dtype`: f16/bf16 are for GPUs; the CPU refuses them).
pub fn load_model_as(model: &str, device: &str, dtype: DType) -> Result<LoadedModel> {
    let choice: DeviceChoice = device.parse()?;
    let selected = select_device(choice)?.with_dtype(dtype)?;
    let location: ModelLocation = model.parse()?;
    let bar = DownloadBar::default();
    let report = |progress: DownloadProgress| bar.update(&progress);
    let options = LoadOptions { progress: Some(&report), cancel: None };
    let loaded = mae_model::load_model(&location, &selected, &options);
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
