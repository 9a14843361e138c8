//! The window's state and its frame loop: read worker results, handle input, draw, then send the one request
//! that describes what should be on screen if it differs from the last one sent.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use eframe::egui::{self, Key, KeyboardShortcut, Modifiers};
use mae_model::MaskSpec;

use super::files::{DialogAnswer, FileTasks, ImageOrigin, decode_sample};
use super::frame_timer::FrameTimer;
use super::settings::{MaskMode, Settings};
use super::textures::PanelTextures;
use super::{analysis, controls, export, menu, panels, screenshot, textures};
use crate::worker::{
    ForwardRequest, ForwardResult, ImageInput, ModelInfo, Request, Response, ViewOptions, Worker, WorkerConfig,
    WorkerStats,
};

pub const OPEN_SHORTCUT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);
pub const EXPORT_SHORTCUT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::E);
pub const SAVE_PANELS_SHORTCUT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::S);
/// Ratio change per ←/→ press: one patch of a 14×14 grid is ~0.005, so 0.01 moves about two patches.
pub const RATIO_NUDGE: f64 = 0.01;

/// How the window was started.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Model folder, file or hub id.
    pub model: String,
    pub device: String,
    /// Image to open instead of the sample.
    pub image: Option<PathBuf>,
    pub settings: Settings,
    pub worker: WorkerConfig,
    /// `--screenshot`: save a picture of the window once the first reconstruction is shown, then close.
    pub screenshot: Option<screenshot::ScreenshotPlan>,
}

impl AppOptions {
    /// Options for tests and embedding: the given model on the CPU, the sample image, default settings.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            device: "cpu".into(),
            image: None,
            settings: Settings::default(),
            worker: WorkerConfig::default(),
            screenshot: None,
        }
    }
}

/// Where the model stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    Loading {
        what: String,
        since: Instant,
    },
    Ready(ModelInfo),
    /// Loading failed and no model is usable; the window says so and offers to open a folder.
    Failed(String),
}

/// A message shown in the banner above the panels until dismissed or replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub is_error: bool,
}

/// The seed ensemble of the Ensemble section.
#[derive(Debug, Clone, Default)]
pub struct EnsembleState {
    pub request_id: Option<u64>,
    pub result: Option<crate::worker::EnsembleResult>,
    pub error: Option<String>,
}

/// The loss-vs-ratio curve of the Loss panel.
#[derive(Debug, Clone, Default)]
pub struct LossCurveState {
    pub request_id: Option<u64>,
    /// (image id, seed) the curve belongs to.
    pub key: Option<(u64, u64)>,
    pub progress: (usize, usize),
    pub points: Vec<(f64, Option<f32>)>,
    pub error: Option<String>,
}

pub struct MaeApp {
    pub settings: Settings,
    pub(super) worker: Worker,
    /// The model request in flight: (request id, what it is doing, when it started).
    pub loading_model: Option<(u64, String, Instant)>,
    /// How far the model download has come, when a download with a known size is running.
    pub download_fraction: Option<f32>,
    /// Set to abandon the download of the model being loaded.
    pub(super) cancel_load: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Models the Hugging Face cache holds (listed when no model could be loaded).
    pub cached_models: Option<Vec<mae_model::CachedModel>>,
    /// An image named on the command line, read on the first frame.
    pending_initial_image: Option<PathBuf>,
    /// Why the image named on the command line could not be opened.
    pub startup_image_error: Option<String>,
    /// Set on the first frame; the worker's wake-up call reads it.
    repaint_target: Arc<OnceLock<egui::Context>>,
    pub model: ModelState,
    /// The model argument being loaded or last loaded, and the device.
    pub model_arg: String,
    /// The model field of the control panel as typed.
    pub model_field: String,
    pub device_arg: String,
    /// Bumped when a new model is in use, so requests for the old one are not mistaken for current ones.
    pub model_generation: u64,
    pub image: Option<ImageInput>,
    pub image_origin: Option<ImageOrigin>,
    next_id: u64,
    /// The last forward request sent: what it asked for and its id.
    last_sent: Option<(SentKey, u64)>,
    /// The result on screen.
    pub shown: Option<ForwardResult>,
    pub last_forward_error: Option<String>,
    /// Painted mode: true = masked, per spatial patch.
    pub painted_mask: Vec<bool>,
    pub notice: Option<Notice>,
    /// A small copy of a newly opened picture, uploaded on the next frame and shown until the model's result.
    preview: Option<egui::ColorImage>,
    pub(super) textures: PanelTextures,
    pub(super) files: FileTasks,
    pub loss_curve: LossCurveState,
    pub ensemble: EnsembleState,
    /// Time of `show` (the window's own code) per frame.
    pub frame_timer: FrameTimer,
    /// Time of whole frames as eframe measures them (UI, tessellation, rendering); empty under tests.
    pub whole_frame_timer: FrameTimer,
    pub(super) screenshot: Option<screenshot::ScreenshotState>,
    /// Value of the paint stroke in progress (true = masking), so a drag paints instead of flickering.
    pub(super) paint_stroke: Option<bool>,
    pub export_dialog: export::ExportDialog,
}

impl std::fmt::Debug for MaeApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaeApp").field("model", &self.model).field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// What a forward request asks for, compared frame to frame to decide whether to send a new one.
#[derive(Debug, Clone, PartialEq)]
struct SentKey {
    model_generation: u64,
    image_id: u64,
    mask: MaskSpec,
    view: ViewOptions,
}

impl MaeApp {
    pub fn new(options: AppOptions) -> Self {
        let repaint_target: Arc<OnceLock<egui::Context>> = Arc::new(OnceLock::new());
        let target = repaint_target.clone();
        let outer_notify = options.worker.notify.clone();
        let worker_config = WorkerConfig {
            notify: Arc::new(move || {
                if let Some(ctx) = target.get() {
                    ctx.request_repaint();
                }
                outer_notify();
            }),
            ..options.worker.clone()
        };
        let worker = Worker::spawn(worker_config);
        let mut app = Self {
            settings: options.settings.sanitized(),
            worker,
            loading_model: None,
            cancel_load: None,
            download_fraction: None,
            cached_models: None,
            pending_initial_image: None,
            startup_image_error: None,
            repaint_target,
            model: ModelState::Failed(String::new()),
            model_arg: options.model.clone(),
            model_field: options.model.clone(),
            device_arg: options.device.clone(),
            model_generation: 0,
            image: None,
            image_origin: None,
            next_id: 1,
            last_sent: None,
            shown: None,
            last_forward_error: None,
            painted_mask: Vec::new(),
            notice: None,
            preview: None,
            textures: PanelTextures::default(),
            files: FileTasks::default(),
            loss_curve: LossCurveState::default(),
            ensemble: EnsembleState::default(),
            frame_timer: FrameTimer::default(),
            whole_frame_timer: FrameTimer::default(),
            screenshot: options.screenshot.map(screenshot::ScreenshotState::new),
            paint_stroke: None,
            export_dialog: export::ExportDialog::default(),
        };
        app.load_model(options.model, options.device);
        match options.image {
            // Read on a thread like any other file; the sample is shown meanwhile only if that fails.
            Some(path) => app.pending_initial_image = Some(path),
            None => {
                let (rgb, preview) = decode_sample();
                app.set_image(ImageOrigin::Sample, rgb, preview);
            }
        }
        app
    }

    /// How many GPU textures were created: one per picture name, however many results arrived.
    pub fn texture_creations(&self) -> usize {
        self.textures.created
    }

    pub fn worker_stats(&self) -> &Arc<WorkerStats> {
        self.worker.stats()
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Asks the worker to load a model; the current one stays in use until the new one is ready.
    pub fn load_model(&mut self, model: String, device: String) {
        let id = self.next_id();
        self.model = match &self.model {
            // Keep showing a ready model while the next one loads; the status line says what is happening.
            ModelState::Ready(info) => ModelState::Ready(info.clone()),
            _ => ModelState::Loading { what: format!("loading {model}…"), since: Instant::now() },
        };
        self.loading_model = Some((id, format!("loading {model}…"), Instant::now()));
        self.download_fraction = None;
        self.model_arg = model.clone();
        self.model_field = model.clone();
        self.device_arg = device.clone();
        let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
        self.cancel_load = Some(cancel.clone());
        self.worker.send(Request::LoadModel { id, model, device, cancel });
    }

    pub fn set_image(&mut self, origin: ImageOrigin, rgb: Arc<image::RgbImage>, preview: egui::ColorImage) {
        let id = self.next_id();
        self.preview = Some(preview);
        let name = origin.display_name();
        if let ImageOrigin::File(path) = &origin {
            self.settings.remember_file(path.clone());
        }
        self.image = Some(ImageInput { id, rgb, name });
        self.image_origin = Some(origin);
    }

    /// The mask the controls describe.
    pub fn mask_spec(&self) -> Option<MaskSpec> {
        match self.settings.mask_mode {
            MaskMode::Random => Some(MaskSpec::Seed { seed: self.settings.seed, ratio: self.settings.mask_ratio }),
            MaskMode::Painted => {
                let grid = self.grid()?;
                if self.painted_mask.len() != grid.0 * grid.1 {
                    return None;
                }
                let visible = (0..self.painted_mask.len()).filter(|&patch| !self.painted_mask[patch]).collect();
                Some(MaskSpec::Keep { visible })
            }
        }
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

    pub fn view_options(&self) -> ViewOptions {
        ViewOptions {
            masked_style: self.settings.masked_style,
            attention: self.settings.show_attention.then(|| self.settings.attention.clone()),
            loss: self.settings.show_loss.then(|| self.settings.loss.clone()),
        }
    }

    /// Switches between random and painted masks; painting starts from the mask on screen.
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
        self.painted_mask = match &self.shown {
            Some(shown) if shown.mask.len() == rows * cols => shown.mask.iter().map(|&m| m > 0.5).collect(),
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
        match mae_model::Masking::new(&spec, patches) {
            Ok(masking) => masking.mask.iter().map(|&m| m > 0.5).collect(),
            Err(_) => vec![true; patches],
        }
    }

    /// Uploads the pictures on screen again (after the filtering option changed).
    pub fn reupload_textures(&mut self, ctx: &egui::Context) {
        if let Some(shown) = &self.shown {
            self.textures.upload(ctx, &shown.panels, self.settings.nearest_filtering);
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
        self.settings.mask_ratio = ((self.settings.mask_ratio + delta) * 1000.0).round() / 1000.0;
        self.settings.mask_ratio = self.settings.mask_ratio.clamp(0.0, 1.0);
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

    /// One frame: everything the window does. `eframe::App::ui` and the tests both call this.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let frame_start = Instant::now();
        let ctx = ui.ctx().clone();
        let _ = self.repaint_target.set(ctx.clone());
        let theme = if self.settings.dark_theme { egui::Theme::Dark } else { egui::Theme::Light };
        if ctx.theme() != theme {
            ctx.set_theme(theme);
        }
        if let Some(path) = self.pending_initial_image.take() {
            self.files.open_path(path, &ctx);
        }

        self.receive_worker_responses(&ctx);
        self.receive_files();
        if let Some(preview) = self.preview.take() {
            self.textures.set_one(&ctx, textures::PREVIEW, &preview, false);
        }
        self.handle_input(&ctx);

        menu::menu_bar(self, ui);
        menu::status_bar(self, ui);
        controls::control_panel(self, ui);
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().auto_shrink([false; 2]).show(ui, |ui| {
                menu::notice_banner(self, ui);
                menu::model_banner(self, ui);
                panels::four_panels(self, ui);
                analysis::analysis_sections(self, ui);
            });
        });
        export::export_window(self, &ctx);

        self.send_forward_if_changed();
        screenshot::advance(self, &ctx);
        // While a model loads, the elapsed time in the status line should keep moving.
        if matches!(self.model, ModelState::Loading { .. }) || self.loading_model.is_some() {
            ctx.request_repaint_after(Duration::from_millis(250));
        }
        self.frame_timer.record(frame_start.elapsed());
    }

    fn send_forward_if_changed(&mut self) {
        let (Some(image), Some(mask)) = (self.image.clone(), self.mask_spec()) else { return };
        if self.model_info().is_none() {
            return;
        }
        let key = SentKey {
            model_generation: self.model_generation,
            image_id: image.id,
            mask: mask.clone(),
            view: self.view_options(),
        };
        if self.last_sent.as_ref().is_some_and(|(sent, _)| *sent == key) {
            return;
        }
        let id = self.next_id();
        let view = key.view.clone();
        self.worker.send(Request::Forward(Box::new(ForwardRequest { id, image, mask, view })));
        self.last_sent = Some((key, id));
    }

    /// The id of the newest forward request sent, if any.
    pub fn last_sent_id(&self) -> Option<u64> {
        self.last_sent.as_ref().map(|(_, id)| *id)
    }

    /// Whether the picture on screen answers the newest request.
    pub fn is_up_to_date(&self) -> bool {
        match (&self.shown, self.last_sent_id()) {
            (Some(shown), Some(sent)) => shown.id == sent,
            _ => false,
        }
    }

    pub fn request_loss_curve(&mut self) {
        let Some(image) = self.image.clone() else { return };
        let id = self.next_id();
        let ratios: Vec<f64> = (0..=19).map(|step| f64::from(step) * 0.05).collect();
        self.loss_curve = LossCurveState {
            request_id: Some(id),
            key: Some((image.id, self.settings.seed)),
            progress: (0, ratios.len()),
            ..LossCurveState::default()
        };
        self.worker.send(Request::LossCurve { id, image, seed: self.settings.seed, ratios });
    }

    /// Asks for a seed ensemble: the current seed and the next `ensemble_size - 1`, at the current ratio.
    pub fn request_ensemble(&mut self) {
        let Some(image) = self.image.clone() else { return };
        let id = self.next_id();
        let first = self.settings.seed;
        let seeds = (0..self.settings.ensemble_size as u64).map(|offset| first.wrapping_add(offset)).collect();
        self.ensemble.request_id = Some(id);
        self.ensemble.error = None;
        self.worker.send(Request::Ensemble {
            id,
            image,
            ratio: self.settings.mask_ratio,
            seeds,
            colormap: self.settings.ensemble_colormap,
        });
    }

    /// Sends a grid export to the worker (the Export dialog calls this once the user chose a file).
    pub fn export_grid_to(&mut self, path: PathBuf) {
        let Some(image) = self.image.clone() else {
            self.show_error("nothing to export: no image is open");
            return;
        };
        match self.export_dialog.grid_export(image, &self.settings, path) {
            Ok(export) => {
                let id = self.next_id();
                self.export_dialog.running = Some(id);
                self.export_dialog.progress = (0, export.ratios.len() * export.seeds.len());
                self.export_dialog.error = None;
                self.worker.send(Request::ExportGrid { id, export: Box::new(export) });
            }
            Err(error) => self.export_dialog.error = Some(error),
        }
    }

    fn receive_worker_responses(&mut self, ctx: &egui::Context) {
        while let Some(response) = self.worker.try_recv() {
            match response {
                Response::ModelLoading { id, message, fraction } => {
                    if let Some((loading, what, _)) = self.loading_model.as_mut()
                        && *loading == id
                    {
                        *what = message.clone();
                        self.download_fraction = fraction;
                        if let ModelState::Loading { what, .. } = &mut self.model {
                            *what = message;
                        }
                    }
                }
                Response::ModelLoaded { id, info } => {
                    if self.loading_model.as_ref().is_some_and(|(loading, _, _)| *loading == id) {
                        self.loading_model = None;
                    }
                    let grid_changed = self.grid() != Some(info.grid);
                    self.model_generation += 1;
                    self.settings.model = Some(self.model_arg.clone());
                    self.settings.device = Some(self.device_arg.clone());
                    self.model = ModelState::Ready(*info);
                    if grid_changed {
                        self.painted_mask.clear();
                        self.settings.attention.query_patch = None;
                        if self.settings.mask_mode == MaskMode::Painted {
                            self.ensure_painted_mask();
                        }
                    }
                    self.clamp_attention_choice();
                    self.cached_models = None;
                    self.loss_curve = LossCurveState::default();
                }
                Response::ModelFailed { id, error } => {
                    if self.loading_model.as_ref().is_some_and(|(loading, _, _)| *loading == id) {
                        self.loading_model = None;
                    }
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
                }
                Response::Forward(result) => {
                    // Results can only be older than what is shown if the worker answered out of order; never
                    // step backwards. Newer ones are shown even if a still newer request is pending, so dragging
                    // keeps the picture at most one forward pass behind.
                    if self.shown.as_ref().is_some_and(|shown| shown.id >= result.id) {
                        continue;
                    }
                    if let Some(error) = &result.overlay_error {
                        self.show_error(error.clone());
                    }
                    self.last_forward_error = None;
                    self.textures.upload(ctx, &result.panels, self.settings.nearest_filtering);
                    self.shown = Some(*result);
                }
                Response::ForwardFailed { id, error } => {
                    if self.last_sent_id() == Some(id) {
                        self.show_error(format!("the model could not run: {error}"));
                        self.last_forward_error = Some(error);
                    }
                }
                Response::LossCurveProgress { id, done, total } => {
                    if self.loss_curve.request_id == Some(id) {
                        self.loss_curve.progress = (done, total);
                    }
                }
                Response::LossCurve { id, points } => {
                    if self.loss_curve.request_id == Some(id) {
                        self.loss_curve.points = points;
                        self.loss_curve.request_id = None;
                    }
                }
                Response::LossCurveFailed { id, error } => {
                    if self.loss_curve.request_id == Some(id) {
                        self.loss_curve.error = Some(error);
                        self.loss_curve.request_id = None;
                    }
                }
                Response::ExportProgress { id, done, total } => {
                    if self.export_dialog.running == Some(id) {
                        self.export_dialog.progress = (done, total);
                    }
                }
                Response::Exported { id, path } => {
                    if self.export_dialog.running == Some(id) {
                        self.export_dialog.running = None;
                    }
                    self.show_info(format!("exported {}", path.display()));
                }
                Response::ExportFailed { id, error } => {
                    if self.export_dialog.running == Some(id) {
                        self.export_dialog.running = None;
                    }
                    self.export_dialog.error = Some(error.clone());
                    self.show_error(format!("could not export: {error}"));
                }
                Response::Ensemble(result) => {
                    if self.ensemble.request_id == Some(result.id) {
                        self.ensemble.request_id = None;
                        self.textures.set_one(
                            ctx,
                            textures::ENSEMBLE_MEAN,
                            &result.mean,
                            self.settings.nearest_filtering,
                        );
                        self.textures.set_one(
                            ctx,
                            textures::ENSEMBLE_STD,
                            &result.std,
                            self.settings.nearest_filtering,
                        );
                        self.ensemble.result = Some(*result);
                    }
                }
                Response::EnsembleFailed { id, error } => {
                    if self.ensemble.request_id == Some(id) {
                        self.ensemble.request_id = None;
                        self.ensemble.error = Some(error);
                    }
                }
                Response::Restarted { message } => {
                    self.show_error(message);
                    // Whatever was in flight is lost: ask again.
                    self.last_sent = None;
                    if self.loss_curve.request_id.is_some() {
                        self.loss_curve = LossCurveState::default();
                    }
                    self.ensemble.request_id = None;
                    self.export_dialog.running = None;
                }
            }
        }
    }

    /// Keeps the attention layer/head inside the loaded model's ranges.
    fn clamp_attention_choice(&mut self) {
        let Some(info) = self.model_info().cloned() else { return };
        let attention = &mut self.settings.attention;
        let (layers, heads) = if attention.decoder {
            (info.decoder_layers, info.decoder_heads)
        } else {
            (info.encoder_layers, info.encoder_heads)
        };
        attention.layer = attention.layer.min(layers.saturating_sub(1));
        if attention.head.is_some_and(|head| head >= heads) {
            attention.head = None;
        }
        if attention.query_patch.is_some_and(|patch| patch >= info.grid.0 * info.grid.1) {
            attention.query_patch = None;
        }
    }

    fn receive_files(&mut self) {
        while let Ok(loaded) = self.files.images.try_recv() {
            self.files.decoding = self.files.decoding.saturating_sub(1);
            match loaded.result {
                Ok((rgb, preview)) => {
                    self.notice = None;
                    self.set_image(loaded.origin, rgb, preview);
                }
                Err(problem) => {
                    // The picture on screen stays; only the message changes.
                    let message = format!("could not open {}: {problem}", loaded.origin.display_name());
                    self.show_error(message.clone());
                    if self.image.is_none() {
                        // The picture asked for on the command line: a screenshot run must not pass without it.
                        self.startup_image_error = Some(message);
                        let (rgb, preview) = decode_sample();
                        self.set_image(ImageOrigin::Sample, rgb, preview);
                    }
                }
            }
        }
        while let Ok(answer) = self.files.dialogs.try_recv() {
            self.files.dialog_open = false;
            match answer {
                DialogAnswer::OpenImage(path) => {
                    let ctx = self.repaint_target.get().cloned();
                    if let Some(ctx) = ctx {
                        self.files.open_path(path, &ctx);
                    }
                }
                DialogAnswer::OpenModelFolder(path) => {
                    let device = self.device_arg.clone();
                    self.load_model(path.display().to_string(), device);
                }
                DialogAnswer::SavePanels(path) => export::save_panels(self, path),
                DialogAnswer::SaveGrid(path) => self.export_grid_to(path),
                DialogAnswer::Cancelled => {}
            }
        }
        export::receive_saves(self);
    }

    fn handle_input(&mut self, ctx: &egui::Context) {
        let (dropped, pasted_images, pasted_text) = ctx.input(|input| {
            let pasted_images: Vec<_> = input
                .events
                .iter()
                .filter_map(|event| match event {
                    egui::Event::PasteImage(image) => Some(image.clone()),
                    _ => None,
                })
                .collect();
            let pasted_text: Vec<String> = input
                .events
                .iter()
                .filter_map(|event| match event {
                    egui::Event::Paste(text) => Some(text.clone()),
                    _ => None,
                })
                .collect();
            (input.raw.dropped_files.clone(), pasted_images, pasted_text)
        });
        for file in dropped {
            let path = file.path().to_path_buf();
            if path.is_dir() {
                let device = self.device_arg.clone();
                self.load_model(path.display().to_string(), device);
            } else if path.as_os_str().is_empty() {
                match file.bytes() {
                    Ok(bytes) => self.files.decode_bytes(ImageOrigin::Clipboard, bytes, ctx),
                    Err(problem) => self.show_error(format!("could not read the dropped file: {problem}")),
                }
            } else {
                self.files.open_path(path, ctx);
            }
        }
        for image in pasted_images {
            self.files.paste(&image);
        }
        // Pasting a path (copied from a file manager) opens it, when no text field has focus.
        if ctx.memory(|memory| memory.focused().is_none()) {
            for text in pasted_text {
                let path = PathBuf::from(text.trim().trim_start_matches("file://"));
                if path.is_file() {
                    self.files.open_path(path, ctx);
                }
            }
        }

        let typing = ctx.memory(|memory| memory.focused().is_some());
        ctx.input_mut(|input| {
            if input.consume_shortcut(&OPEN_SHORTCUT) {
                self.files.pick_image(ctx);
            }
            if input.consume_shortcut(&EXPORT_SHORTCUT) {
                self.export_dialog.open = true;
            }
            if input.consume_shortcut(&SAVE_PANELS_SHORTCUT) {
                self.request_save_panels(ctx);
            }
            if !typing {
                if input.consume_key(Modifiers::NONE, Key::R) {
                    self.new_random_seed();
                }
                if input.consume_key(Modifiers::NONE, Key::ArrowRight) {
                    self.nudge_ratio(RATIO_NUDGE);
                }
                if input.consume_key(Modifiers::NONE, Key::ArrowLeft) {
                    self.nudge_ratio(-RATIO_NUDGE);
                }
            }
        });
    }

    pub fn request_save_panels(&mut self, ctx: &egui::Context) {
        match &self.shown {
            Some(_) => {
                let stem = self
                    .image
                    .as_ref()
                    .map(|image| image.name.split('.').next().unwrap_or("panels").replace(' ', "_"))
                    .unwrap_or_else(|| "panels".into());
                let name = format!("{stem}-ratio{:.2}-seed{}.png", self.settings.mask_ratio, self.settings.seed);
                self.files.pick_panels_destination(ctx, name);
            }
            None => self.show_error("nothing to save yet: no reconstruction is on screen"),
        }
    }

    /// Opens an image file as File → Open does (read and decoded off the UI thread).
    pub fn open_image_file(&mut self, path: PathBuf) {
        match self.repaint_context() {
            Some(ctx) => self.files.open_path(path, &ctx),
            None => self.pending_initial_image = Some(path),
        }
    }

    pub(super) fn repaint_context(&self) -> Option<egui::Context> {
        self.repaint_target.get().cloned()
    }

    /// Abandons the model download in progress (the load then fails and says so).
    pub fn cancel_model_load(&mut self) {
        if let Some(cancel) = &self.cancel_load {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub(super) fn open_image_dialog(&mut self, ctx: &egui::Context) {
        self.files.pick_image(ctx);
    }

    pub(super) fn open_model_dialog(&mut self, ctx: &egui::Context) {
        self.files.pick_model_folder(ctx);
    }

    pub(super) fn open_recent(&mut self, path: PathBuf, ctx: &egui::Context) {
        self.files.open_path(path, ctx);
    }

    /// Sends a request that makes the worker panic (Help → "Test crash recovery" and tests).
    pub fn crash_worker(&mut self) {
        self.worker.send(Request::Crash);
    }
}

impl eframe::App for MaeApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        // eframe measures the whole previous frame: our UI code plus tessellation and rendering.
        if let Some(seconds) = frame.info().cpu_usage {
            self.whole_frame_timer.record(Duration::from_secs_f32(seconds));
        }
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.screenshot.is_none() {
            eframe::set_value(storage, eframe::APP_KEY, &self.settings);
        }
    }

    fn persist_egui_memory(&self) -> bool {
        self.screenshot.is_none()
    }
}
