//! What every panel shares: the model and where its load stands, the open image, the mask controls, the result
//! on screen, messages, and the worker that computes it all. Panels read it and ask through it; the session
//! consumes the worker responses that concern everyone (model loads, forward results) and hands the rest on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use candle_core::DType;
use eframe::egui;
use mae_model::hub::HubSettings;
use mae_model::{DeviceChoice, MaskSpec, Masking, ModelLocation};
use serde::{Deserialize, Serialize};

use super::files::{FileTasks, ImageOrigin};
use super::first_run::{Fetch, FetchEvent};
use super::panels::{PanelCommand, PanelId};
use crate::render::attention::Query;
use crate::render::panels::MaskedStyle;
use crate::worker::{
    ForwardRequest, ForwardResult, ImageInput, LoadProgress, LoadRequest, ModelInfo, Request, Response, ViewOptions,
    Worker, WorkerConfig, WorkerStats,
};

/// Recent files kept in File → Open Recent.
pub const MAX_RECENT_FILES: usize = 8;

/// How the masked patches are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaskMode {
    /// HF's random masking: `torch.manual_seed(seed); torch.rand(1, L)` at the mask ratio.
    #[default]
    Random,
    /// Exactly the patches the user painted.
    Painted,
}

/// The session's settings, remembered between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionSettings {
    pub mask_ratio: f64,
    pub seed: u64,
    pub mask_mode: MaskMode,
    /// The token whose attention the Attention and Heads panels show: CLS or a clicked patch.
    pub query: Query,
    pub masked_style: MaskedStyle,
    /// Draw patches with nearest-neighbour filtering (crisp edges) rather than smoothed.
    pub nearest_filtering: bool,
    pub dark_theme: bool,
    /// The control panel on the left.
    pub show_controls: bool,
    pub recent_files: Vec<PathBuf>,
    /// The model last loaded successfully (used when `--model` is not given).
    pub model: Option<String>,
    pub device: String,
    pub dtype: String,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            mask_ratio: 0.75,
            seed: 2,
            mask_mode: MaskMode::Random,
            query: Query::Cls,
            masked_style: MaskedStyle::MeanGrey,
            nearest_filtering: true,
            dark_theme: true,
            show_controls: true,
            recent_files: Vec::new(),
            model: None,
            device: DeviceChoice::Auto.name().into(),
            dtype: "f32".into(),
        }
    }
}

impl SessionSettings {
    /// Puts `path` first in the recent files, without duplicates, keeping at most `MAX_RECENT_FILES`.
    pub fn remember_file(&mut self, path: PathBuf) {
        self.recent_files.retain(|known| *known != path);
        self.recent_files.insert(0, path);
        self.recent_files.truncate(MAX_RECENT_FILES);
    }

    /// Values read from an older or hand-edited settings file may be out of range: bring them back.
    pub fn sanitized(mut self) -> Self {
        if !(self.mask_ratio.is_finite() && (0.0..=1.0).contains(&self.mask_ratio)) {
            self.mask_ratio = Self::default().mask_ratio;
        }
        if self.device.parse::<DeviceChoice>().is_err() {
            self.device = Self::default().device;
        }
        if mae_model::parse_dtype(&self.dtype).is_err() {
            self.dtype = Self::default().dtype;
        }
        self.recent_files.truncate(MAX_RECENT_FILES);
        self
    }
}

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

/// A message shown in the banner above the tiles until dismissed or replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub is_error: bool,
}

/// What a forward request asks for, compared frame to frame to decide whether to send a new one.
#[derive(Debug, Clone, PartialEq)]
struct SentForward {
    model_generation: u64,
    image_id: u64,
    mask: MaskSpec,
    view: ViewOptions,
}

pub struct Session {
    pub settings: SessionSettings,
    worker: Worker,
    next_id: u64,
    pub model: ModelState,
    pub loading: Option<Loading>,
    /// The model argument being loaded or last loaded, and the device and dtype.
    pub model_arg: String,
    /// The control panel's model field as typed.
    pub model_field: String,
    pub device: DeviceChoice,
    pub dtype: DType,
    /// Bumped when a new model is in use, so requests for the old one are not mistaken for current ones.
    pub model_generation: u64,
    /// Models the Hugging Face cache holds (listed when no model could be loaded).
    pub cached_models: Option<Vec<mae_model::CachedModel>>,
    pub image: Option<ImageInput>,
    pub image_origin: Option<ImageOrigin>,
    /// A small copy of a newly opened picture (image id, picture), shown until the model's result arrives.
    pub preview: Option<(u64, egui::ColorImage)>,
    /// Why the image named on the command line could not be opened.
    pub startup_image_error: Option<String>,
    /// The last forward request sent: what it asked for and its id.
    sent: Option<(SentForward, u64)>,
    /// The result on screen.
    pub result: Option<ForwardResult>,
    pub last_forward_error: Option<String>,
    /// Painted mode: true = masked, per spatial patch.
    pub painted_mask: Vec<bool>,
    /// Value of the paint stroke in progress (true = masking), so a drag paints instead of flickering.
    pub paint_stroke: Option<bool>,
    pub notice: Option<Notice>,
    pub files: FileTasks,
    /// Textures created (not updated) by all panels: stays at one per picture however many results arrive.
    pub texture_creations: std::cell::Cell<usize>,
    /// Requests between panels, delivered after the frame.
    commands: Vec<PanelCommand>,
    /// Panels to bring to the front after the frame.
    shows: Vec<PanelId>,
    /// The default model downloading in the background while the demo stands in for it (first run).
    pub fetch: Option<Fetch>,
    /// The Hugging Face cache and network settings models are loaded with.
    hub: HubSettings,
    /// Set on the first frame; the worker's wake-up call reads it.
    repaint_target: Arc<OnceLock<egui::Context>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("model", &self.model)
            .field("settings", &self.settings)
            .field("result", &self.result.as_ref().map(|result| result.id))
            .field("sent", &self.sent.as_ref().map(|(_, id)| id))
            .field("notice", &self.notice)
            .finish_non_exhaustive()
    }
}

/// What the session did with a worker response.
pub enum Handled {
    /// Consumed.
    Done,
    /// A new model is in use: the panels must hear of it.
    ModelLoaded(ModelInfo),
    /// Not the session's: the panels may want it.
    ForPanels(Response),
}

impl Session {
    /// Starts the worker; `worker.notify` is called (besides waking the window) after every response.
    pub fn new(settings: SessionSettings, hub: HubSettings, worker: WorkerConfig) -> Self {
        let repaint_target: Arc<OnceLock<egui::Context>> = Arc::new(OnceLock::new());
        let target = repaint_target.clone();
        let outer_notify = worker.notify.clone();
        let worker = Worker::spawn(WorkerConfig {
            notify: Arc::new(move || {
                if let Some(ctx) = target.get() {
                    ctx.request_repaint();
                }
                outer_notify();
            }),
            ..worker
        });
        let settings = settings.sanitized();
        Self {
            device: settings.device.parse().unwrap_or_default(),
            dtype: mae_model::parse_dtype(&settings.dtype).unwrap_or(DType::F32),
            model_arg: settings.model.clone().unwrap_or_default(),
            model_field: settings.model.clone().unwrap_or_default(),
            settings,
            worker,
            next_id: 1,
            model: ModelState::Loading,
            loading: None,
            model_generation: 0,
            cached_models: None,
            image: None,
            image_origin: None,
            preview: None,
            startup_image_error: None,
            sent: None,
            result: None,
            last_forward_error: None,
            painted_mask: Vec::new(),
            paint_stroke: None,
            notice: None,
            files: FileTasks::default(),
            texture_creations: std::cell::Cell::new(0),
            commands: Vec::new(),
            shows: Vec::new(),
            fetch: None,
            hub,
            repaint_target,
        }
    }

    /// Remembers the window's context so the worker and file threads can wake it.
    pub fn attach(&self, ctx: &egui::Context) {
        let _ = self.repaint_target.set(ctx.clone());
    }

    pub fn repaint_context(&self) -> Option<egui::Context> {
        self.repaint_target.get().cloned()
    }

    pub fn worker_stats(&self) -> &Arc<WorkerStats> {
        self.worker.stats()
    }

    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends a request to the worker and returns its id (the id inside `make`'s request).
    pub fn request(&mut self, make: impl FnOnce(u64) -> Request) -> u64 {
        let id = self.next_id();
        self.worker.send(make(id));
        id
    }

    /// Sends a request that makes the worker panic (Help → "Test crash recovery" and tests).
    pub fn crash_worker(&mut self) {
        self.worker.send(Request::Crash);
    }

    /// A request to another panel, delivered after this frame.
    pub fn command(&mut self, command: PanelCommand) {
        self.commands.push(command);
    }

    /// Brings a panel's tile to the front (opening it if closed) after this frame.
    pub fn show_panel(&mut self, panel: PanelId) {
        self.shows.push(panel);
    }

    pub fn take_commands(&mut self) -> (Vec<PanelCommand>, Vec<PanelId>) {
        (std::mem::take(&mut self.commands), std::mem::take(&mut self.shows))
    }

    /// Loads the model the user chose; the current one stays in use until the new one is ready. A model that
    /// cannot even be named (`ModelLocation` refuses it) is an error at once. A first-run download in the
    /// background is abandoned: the user's choice is never replaced.
    pub fn load_model(&mut self, model: String, device: DeviceChoice, dtype: DType) {
        if let Some(fetch) = self.fetch.take() {
            fetch.cancel();
        }
        let hub = self.hub.clone();
        self.request_load(model, device, dtype, true, hub);
    }

    /// Starts with the built-in demo while `hub_id` downloads in the background (first run, online), and switches
    /// to it once it is in the cache.
    pub fn start_with_demo_while_fetching(&mut self, hub_id: String) {
        let (device, dtype, hub) = (self.device, self.dtype, self.hub.clone());
        self.request_load(super::first_run::demo(), device, dtype, false, hub.clone());
        let target = self.repaint_target.clone();
        self.fetch = Some(Fetch::start(hub_id, hub, move || {
            if let Some(ctx) = target.get() {
                ctx.request_repaint();
            }
        }));
    }

    /// Starts with the built-in demo because `why` (first run, offline).
    pub fn start_with_demo(&mut self, why: String) {
        let (device, dtype, hub) = (self.device, self.dtype, self.hub.clone());
        self.request_load(super::first_run::demo(), device, dtype, false, hub);
        self.show_info(why);
    }

    fn request_load(&mut self, model: String, device: DeviceChoice, dtype: DType, remember: bool, hub: HubSettings) {
        let location: ModelLocation = match model.parse() {
            Ok(location) => location,
            Err(error) => {
                self.show_error(format!("{error}"));
                return;
            }
        };
        if let Some(loading) = &self.loading {
            // The newer choice wins: stop the download of the old one.
            loading.cancel.store(true, Ordering::Relaxed);
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let load = LoadRequest { location, device, dtype, cancel: cancel.clone(), hub };
        let id = self.request(|id| Request::LoadModel { id, load });
        let progress = LoadProgress::Reading;
        self.loading = Some(Loading { id, model: model.clone(), remember, progress, since: Instant::now(), cancel });
        if !matches!(self.model, ModelState::Ready(_)) {
            self.model = ModelState::Loading;
        }
        self.model_field = model.clone();
        self.model_arg = model;
        self.device = device;
        self.dtype = dtype;
    }

    /// Takes in what the background download reported: on success the session switches to the downloaded model
    /// (image, ratio, seed and mask stay as they are); on failure the demo stays and a line says why.
    pub fn poll_fetch(&mut self) {
        let Some(fetch) = self.fetch.as_mut() else { return };
        let mut finished = None;
        while let Ok(event) = fetch.events.try_recv() {
            match event {
                FetchEvent::Progress(progress) => fetch.progress = Some(progress),
                other => finished = Some(other),
            }
        }
        let Some(event) = finished else { return };
        let hub_id = fetch.hub_id.clone();
        self.fetch = None;
        match event {
            FetchEvent::Done => {
                // The files are in the cache: load them from there, with no second round trip to the hub.
                let (device, dtype) = (self.device, self.dtype);
                let cached = HubSettings { offline: true, ..self.hub.clone() };
                self.request_load(hub_id, device, dtype, true, cached);
            }
            FetchEvent::Failed(error) => self.show_info(format!(
                "Showing the small built-in demo model: {hub_id} could not be downloaded ({error}). Load it from the \
                 model field when you are online."
            )),
            FetchEvent::Progress(_) => {}
        }
    }

    /// Abandons the model download in progress (the load then fails and says so), or the background one.
    pub fn cancel_model_load(&mut self) {
        if let Some(loading) = &self.loading {
            loading.cancel.store(true, Ordering::Relaxed);
        }
        if let Some(fetch) = &self.fetch {
            fetch.cancel();
        }
    }

    pub fn set_image(&mut self, origin: ImageOrigin, rgb: Arc<image::RgbImage>, preview: egui::ColorImage) {
        let id = self.next_id();
        self.preview = Some((id, preview));
        let name = origin.display_name();
        if let ImageOrigin::File(path) = &origin {
            self.settings.remember_file(path.clone());
        }
        self.image = Some(ImageInput { id, rgb, name });
        self.image_origin = Some(origin);
    }

    pub fn model_info(&self) -> Option<&ModelInfo> {
        match &self.model {
            ModelState::Ready(info) => Some(info),
            _ => None,
        }
    }

    pub fn grid(&self) -> Option<(usize, usize)> {
        self.model_info().map(|info| info.grid)
    }

    /// Whether the result on screen was computed for the image now open.
    pub fn result_is_current(&self) -> bool {
        self.result.as_ref().map(|result| result.image_id) == self.image.as_ref().map(|image| image.id)
    }

    /// The mask the controls describe.
    pub fn mask_spec(&self) -> Option<MaskSpec> {
        match self.settings.mask_mode {
            MaskMode::Random => Some(MaskSpec::Seed { seed: self.settings.seed, ratio: self.settings.mask_ratio }),
            MaskMode::Painted => {
                let (rows, cols) = self.grid()?;
                if self.painted_mask.len() != rows * cols {
                    return None;
                }
                let visible = (0..self.painted_mask.len()).filter(|&patch| !self.painted_mask[patch]).collect();
                Some(MaskSpec::Keep { visible })
            }
        }
    }

    pub fn set_mask_mode(&mut self, mode: MaskMode) {
        if mode == MaskMode::Painted {
            self.ensure_painted_mask();
        }
        self.settings.mask_mode = mode;
    }

    /// Makes `painted_mask` match the model's grid, starting from the mask on screen when there is one.
    pub fn ensure_painted_mask(&mut self) {
        let Some((rows, cols)) = self.grid() else { return };
        if self.painted_mask.len() == rows * cols {
            return;
        }
        self.painted_mask = match &self.result {
            Some(result) if result.mask.len() == rows * cols => result.mask.iter().map(|&m| m > 0.5).collect(),
            _ => self.random_mask(rows * cols),
        };
    }

    /// Painted mode: start again from the random mask of the current seed and ratio.
    pub fn reset_painted_to_random(&mut self) {
        if let Some((rows, cols)) = self.grid() {
            self.painted_mask = self.random_mask(rows * cols);
        }
    }

    fn random_mask(&self, patches: usize) -> Vec<bool> {
        let spec = MaskSpec::Seed { seed: self.settings.seed, ratio: self.settings.mask_ratio };
        match Masking::new(&spec, patches) {
            Ok(masking) => masking.mask.iter().map(|&m| m > 0.5).collect(),
            Err(_) => vec![true; patches],
        }
    }

    /// Flips one patch of the painted mask (switching to painted mode).
    pub fn toggle_patch(&mut self, patch: usize) {
        self.set_mask_mode(MaskMode::Painted);
        if let Some(masked) = self.painted_mask.get_mut(patch) {
            *masked = !*masked;
        }
    }

    pub fn nudge_ratio(&mut self, delta: f64) {
        let ratio = ((self.settings.mask_ratio + delta) * 1000.0).round() / 1000.0;
        self.settings.mask_ratio = ratio.clamp(0.0, 1.0);
    }

    pub fn new_random_seed(&mut self) {
        // Seeds people can read and type again; the time is a fine source of variety here.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let mut next = u64::from(nanos) % 100_000;
        if next == self.settings.seed {
            next = (next + 1) % 100_000;
        }
        self.settings.seed = next;
    }

    pub fn show_error(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice { text: text.into(), is_error: true });
    }

    pub fn show_info(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice { text: text.into(), is_error: false });
    }

    /// Sends the forward request that describes what should be on screen, unless it was already sent.
    pub fn send_forward_if_changed(&mut self, view: ViewOptions) {
        let (Some(image), Some(mask)) = (self.image.clone(), self.mask_spec()) else { return };
        if self.model_info().is_none() {
            return;
        }
        let key = SentForward { model_generation: self.model_generation, image_id: image.id, mask: mask.clone(), view };
        if self.sent.as_ref().is_some_and(|(sent, _)| *sent == key) {
            return;
        }
        let view = key.view.clone();
        let id = self.request(|id| Request::Forward(Box::new(ForwardRequest { id, image, mask, view })));
        self.sent = Some((key, id));
    }

    /// The id of the newest forward request sent, if any.
    pub fn last_sent_id(&self) -> Option<u64> {
        self.sent.as_ref().map(|(_, id)| *id)
    }

    /// Whether the picture on screen answers the newest request.
    pub fn is_up_to_date(&self) -> bool {
        match (&self.result, self.last_sent_id()) {
            (Some(result), Some(sent)) => result.id == sent,
            _ => false,
        }
    }

    /// A response that has arrived from the worker, if any.
    pub fn next_response(&mut self) -> Option<Response> {
        self.worker.try_recv()
    }

    /// Takes in a worker response: model loads and forward results are the session's; the rest goes on to the
    /// panels.
    pub fn handle(&mut self, response: Response) -> Handled {
        let loading_id = self.loading.as_ref().map(|loading| loading.id);
        match response {
            Response::ModelLoading { id, progress } if Some(id) == loading_id => {
                if let Some(loading) = self.loading.as_mut() {
                    loading.progress = progress;
                }
                Handled::Done
            }
            Response::ModelLoaded { id, info } if Some(id) == loading_id => {
                if self.loading.take().is_some_and(|loading| loading.remember) {
                    self.settings.model = Some(self.model_arg.clone());
                }
                let grid_changed = self.grid() != Some(info.grid);
                self.model_generation += 1;
                self.settings.device = self.device.name().into();
                self.settings.dtype = mae_model::dtype_name(self.dtype).into();
                self.model = ModelState::Ready((*info).clone());
                self.cached_models = None;
                if grid_changed {
                    self.painted_mask.clear();
                    self.settings.query = Query::Cls;
                    if self.settings.mask_mode == MaskMode::Painted {
                        self.ensure_painted_mask();
                    }
                }
                Handled::ModelLoaded(*info)
            }
            Response::Failed { id, error } if Some(id) == loading_id => {
                self.loading = None;
                match &self.model {
                    // A model is in use: say the new one failed and keep going with the old one.
                    ModelState::Ready(info) => {
                        let name = info.name.clone();
                        self.show_error(format!("{error} (still using {name})"));
                    }
                    _ => {
                        // Offer what the cache holds instead (a directory listing: quick).
                        self.cached_models = Some(mae_model::cached_models());
                        self.model = ModelState::Failed(error);
                    }
                }
                Handled::Done
            }
            // Answers to loads that were replaced by a newer choice.
            Response::ModelLoading { .. } | Response::ModelLoaded { .. } => Handled::Done,
            Response::Forward(result) => {
                // Results can only be older than what is shown if the worker answered out of order; never step
                // backwards. Newer ones are shown even if a still newer request is pending, so dragging keeps the
                // picture at most one forward pass behind.
                if self.result.as_ref().is_none_or(|shown| shown.id < result.id) {
                    if let Some(error) = &result.overlay_error {
                        self.show_error(error.clone());
                    }
                    self.last_forward_error = None;
                    self.result = Some(*result);
                }
                Handled::Done
            }
            Response::Failed { id, error } if Some(id) == self.last_sent_id() => {
                self.show_error(format!("the model could not run: {error}"));
                self.last_forward_error = Some(error);
                Handled::Done
            }
            Response::Restarted { message } => {
                self.show_error(message.clone());
                // Whatever was in flight is lost: ask again.
                self.sent = None;
                Handled::ForPanels(Response::Restarted { message })
            }
            other => Handled::ForPanels(other),
        }
    }
}
