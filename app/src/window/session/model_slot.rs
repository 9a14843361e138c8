//! The model slot: the model in use or where its load stands, what the user typed and chose to load it with, the
//! first-run download, and the Hugging Face settings every load uses.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::DType;
use mae_model::hub::HubSettings;
use mae_model::{CachedModel, DeviceChoice};

use super::settings::SessionSettings;
use crate::window::first_run::Fetch;
use crate::worker::{LoadProgress, ModelInfo};

/// Where the model stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    /// The first model is being loaded.
    Loading,
    Ready(ModelInfo),
    /// Loading failed and no model is usable; the window says so and offers a way out.
    Failed(String),
}

/// A model load in flight.
#[derive(Debug, Clone)]
pub struct Loading {
    pub id: u64,
    /// What is being loaded, as the user named it.
    pub model: String,
    /// Whether the next run starts with it: not for the demo standing in for a model still downloading.
    remember: bool,
    pub progress: LoadProgress,
    pub since: Instant,
    cancel: Arc<AtomicBool>,
}

pub struct ModelSlot {
    pub state: ModelState,
    pub loading: Option<Loading>,
    /// The model being loaded or last loaded, as the user named it.
    pub arg: String,
    /// The control panel's model field as typed.
    pub field: String,
    /// The device and dtype the next load uses (the controls change them).
    pub device: DeviceChoice,
    pub dtype: DType,
    /// Bumped when a new model is in use, so requests for the old one are not mistaken for current ones.
    pub generation: u64,
    /// Models the Hugging Face cache holds (listed when no model could be loaded).
    pub cached_models: Option<Vec<CachedModel>>,
    /// The default model downloading in the background while the demo stands in for it (first run).
    pub fetch: Option<Fetch>,
    /// The Hugging Face cache and network settings models are loaded with.
    hub: HubSettings,
}

impl ModelSlot {
    /// Nothing loaded yet; the device, dtype and model field as the settings remember them.
    pub fn new(settings: &SessionSettings, hub: HubSettings) -> Self {
        let remembered = settings.model.clone().unwrap_or_default();
        Self {
            state: ModelState::Loading,
            loading: None,
            arg: remembered.clone(),
            field: remembered,
            device: settings.device.parse().unwrap_or_default(),
            dtype: mae_model::parse_dtype(&settings.dtype).unwrap_or(DType::F32),
            generation: 0,
            cached_models: None,
            fetch: None,
            hub,
        }
    }

    /// An empty slot for a model compared with `first`, loading on its device and dtype with its hub settings.
    pub fn beside(first: &ModelSlot) -> Self {
        Self {
            state: ModelState::Loading,
            loading: None,
            arg: String::new(),
            field: String::new(),
            device: first.device,
            dtype: first.dtype,
            generation: 0,
            cached_models: None,
            fetch: None,
            hub: first.hub.clone(),
        }
    }

    /// Two models change places in the list (their loads, device choices and downloads stay with the places).
    pub fn swap_models(&mut self, other: &mut ModelSlot) {
        std::mem::swap(&mut self.state, &mut other.state);
        std::mem::swap(&mut self.arg, &mut other.arg);
        self.field = self.arg.clone();
        other.field = other.arg.clone();
        self.generation += 1;
        other.generation += 1;
    }

    pub fn info(&self) -> Option<&ModelInfo> {
        match &self.state {
            ModelState::Ready(info) => Some(info),
            _ => None,
        }
    }

    pub fn grid(&self) -> Option<(usize, usize)> {
        self.info().map(|info| info.grid)
    }

    pub fn hub(&self) -> &HubSettings {
        &self.hub
    }

    /// The models in the Hugging Face cache this slot loads from (its hub settings', not the environment's), listed
    /// once and kept until a model loads.
    pub fn cached_models(&mut self) -> &[CachedModel] {
        let cache_dir = self.hub.cache_dir.clone();
        self.cached_models.get_or_insert_with(|| mae_model::hub::cached_models_in(&cache_dir))
    }

    /// Records a load just sent as request `id` (the newer choice wins: the download of an older one stops).
    pub fn started_loading(&mut self, id: u64, model: String, remember: bool, cancel: Arc<AtomicBool>) {
        if let Some(loading) = &self.loading {
            loading.cancel.store(true, Ordering::Relaxed);
        }
        let progress = LoadProgress::Reading;
        self.loading = Some(Loading { id, model: model.clone(), remember, progress, since: Instant::now(), cancel });
        if !matches!(self.state, ModelState::Ready(_)) {
            self.state = ModelState::Loading;
        }
        self.field = model.clone();
        self.arg = model;
    }

    /// The load in flight finished with `info`: the model is in use. Returns whether the next run should start
    /// with it.
    pub fn loaded(&mut self, info: ModelInfo) -> bool {
        let remember = self.loading.take().is_some_and(|loading| loading.remember);
        self.generation += 1;
        self.state = ModelState::Ready(info);
        self.cached_models = None;
        remember
    }

    /// Abandons the model download in progress (the load then fails and says so), or the background one.
    pub fn cancel_load(&self) {
        if let Some(loading) = &self.loading {
            loading.cancel.store(true, Ordering::Relaxed);
        }
        if let Some(fetch) = &self.fetch {
            fetch.cancel();
        }
    }

    /// Whether a load is in flight, or failed with no model to fall back on (the model banner shows then).
    pub fn in_trouble(&self) -> bool {
        self.loading.is_some() && !matches!(self.state, ModelState::Ready(_))
            || matches!(self.state, ModelState::Failed(_))
    }
}
