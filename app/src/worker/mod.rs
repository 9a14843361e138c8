//! The model worker: one thread owns the model and does every slow thing (loading, forward passes, drawing the
//! panels), so the window thread only uploads finished pictures and never waits.
//!
//! The window sends [`Request`]s over a channel and reads [`Response`]s from another. Requests carry an id. When
//! several forward requests are waiting (a slider being dragged), only the newest runs: the others are answered by
//! it, so the picture is at most one forward pass behind the pointer. A panic while serving a request is caught,
//! reported as [`Response::Restarted`], and the worker continues with its caches cleared; the model survives
//! because it is never mutated.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use candle_core::{Device, Tensor};
use crossbeam_channel::{Receiver, Sender};
use eframe::egui::ColorImage;
use image::{RgbImage, RgbaImage};
use mae_model::{
    DeviceChoice, DownloadProgress, ForwardOptions, LoadOptions, LoadedModel, MaeOutput, MaskSpec, ModelLocation,
    select_device,
};

use crate::render::Colormap;
use crate::render::attention::{self, AttentionSelection, HeadFusion, Query, Stack};
use crate::render::ensemble::seed_ensemble;
use crate::render::grid::{Column, GAP, GridSpec, MAX_GRID_PIXELS, column_caption, compose_grid, grid_row, grid_title};
use crate::render::panels::{MaskedStyle, PanelOptions, render_panels};

/// An image the window has opened, shared with the worker without copying. `id` changes whenever the picture does.
#[derive(Clone, Debug)]
pub struct ImageInput {
    pub id: u64,
    pub rgb: Arc<RgbImage>,
    /// File name or "clipboard", for titles and export names.
    pub name: String,
}

/// Which attention map to draw over the original (the Attention panel's settings).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttentionView {
    pub decoder: bool,
    pub layer: usize,
    /// `None` = fuse all heads with `fusion`.
    pub head: Option<usize>,
    pub fusion: Fusion,
    /// `None` = the CLS token's row; `Some(p)` = the row of spatial patch `p`.
    pub query_patch: Option<usize>,
    pub rollout: bool,
    pub discard_ratio: f32,
    pub colormap: Colormap,
    pub alpha: f32,
}

impl Default for AttentionView {
    fn default() -> Self {
        Self {
            decoder: false,
            layer: 0,
            head: None,
            fusion: Fusion::Mean,
            query_patch: None,
            rollout: false,
            discard_ratio: 0.0,
            colormap: Colormap::Inferno,
            alpha: 0.6,
        }
    }
}

/// How the heads of a layer are combined when no single head is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Fusion {
    Mean,
    Max,
    Min,
}

impl Fusion {
    pub const ALL: [Fusion; 3] = [Fusion::Mean, Fusion::Max, Fusion::Min];

    pub fn name(self) -> &'static str {
        match self {
            Fusion::Mean => "mean",
            Fusion::Max => "max",
            Fusion::Min => "min",
        }
    }
}

/// The per-patch loss heatmap's settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossView {
    pub colormap: Colormap,
    pub alpha: f32,
}

impl Default for LossView {
    fn default() -> Self {
        Self { colormap: Colormap::Viridis, alpha: 0.7 }
    }
}

/// Everything about how a result is drawn (not what is computed): changing only these re-draws the cached
/// forward pass instead of running the model again.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ViewOptions {
    pub masked_style: MaskedStyle,
    /// `None` while the Attention panel is closed (nothing to draw).
    pub attention: Option<AttentionView>,
    /// `None` while the Loss panel is closed.
    pub loss: Option<LossView>,
}

/// One forward pass to run and draw.
#[derive(Clone, Debug)]
pub struct ForwardRequest {
    pub id: u64,
    pub image: ImageInput,
    pub mask: MaskSpec,
    pub view: ViewOptions,
}

#[derive(Debug)]
pub enum Request {
    /// Load a model (folder, file or hub id) on a device (`auto`, `cpu`, ...), replacing the current one.
    /// `cancel` abandons a download in progress when set.
    LoadModel {
        id: u64,
        model: String,
        device: String,
        cancel: Arc<AtomicBool>,
    },
    Forward(Box<ForwardRequest>),
    /// Mean loss over masked patches at each ratio (same image and seed), for the Loss panel's curve.
    LossCurve {
        id: u64,
        image: ImageInput,
        seed: u64,
        ratios: Vec<f64>,
    },
    /// Compute a comparison grid and write it to a picture file (File → Export).
    ExportGrid {
        id: u64,
        export: Box<GridExport>,
    },
    /// Mean and spread of the pasted-back pictures over several seeds at one ratio.
    Ensemble {
        id: u64,
        image: ImageInput,
        ratio: f64,
        seeds: Vec<u64>,
        colormap: Colormap,
    },
    /// Panics inside the worker. Exists so tests (and the curious) can check that a crash is shown and survived.
    Crash,
}

/// What the model is, for the status line and the controls' ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub device: String,
    /// Model input (height, width) in pixels.
    pub image_size: (usize, usize),
    pub patch_size: usize,
    pub grid: (usize, usize),
    pub encoder_layers: usize,
    pub encoder_heads: usize,
    pub decoder_layers: usize,
    pub decoder_heads: usize,
    pub default_mask_ratio: f64,
    pub load_ms: f64,
}

/// Pictures ready to upload, at model resolution.
#[derive(Clone, Debug)]
pub struct PanelImages {
    pub original: ColorImage,
    pub mask: ColorImage,
    pub masked: ColorImage,
    pub reconstruction: ColorImage,
    pub pasted: ColorImage,
    pub attention: Option<ColorImage>,
    pub loss: Option<ColorImage>,
}

/// A finished forward pass, drawn.
#[derive(Clone, Debug)]
pub struct ForwardResult {
    pub id: u64,
    pub image_id: u64,
    /// The mask spec this result was computed for (so a test or the UI can tell which request it answers).
    pub mask_spec: MaskSpec,
    /// 1 = masked, per spatial patch.
    pub mask: Vec<f32>,
    pub grid: (usize, usize),
    pub patch_size: usize,
    pub patch_loss: Vec<f32>,
    pub masked_loss: Option<f32>,
    pub visible_loss: Option<f32>,
    pub uses_target_statistics: bool,
    /// `None` when the result was re-drawn from the cached forward pass.
    pub forward_ms: Option<f64>,
    pub render_ms: f64,
    pub panels: PanelImages,
    /// Drawing an overlay failed (the rest of the result is fine).
    pub overlay_error: Option<String>,
}

#[derive(Debug)]
pub enum Response {
    /// What the load is doing; `fraction` is the download's progress when its size is known.
    ModelLoading {
        id: u64,
        message: String,
        fraction: Option<f32>,
    },
    ModelLoaded {
        id: u64,
        info: Box<ModelInfo>,
    },
    ModelFailed {
        id: u64,
        error: String,
    },
    Forward(Box<ForwardResult>),
    ForwardFailed {
        id: u64,
        error: String,
    },
    LossCurveProgress {
        id: u64,
        done: usize,
        total: usize,
    },
    LossCurve {
        id: u64,
        points: Vec<(f64, Option<f32>)>,
    },
    LossCurveFailed {
        id: u64,
        error: String,
    },
    ExportProgress {
        id: u64,
        done: usize,
        total: usize,
    },
    Exported {
        id: u64,
        path: PathBuf,
    },
    ExportFailed {
        id: u64,
        error: String,
    },
    Ensemble(Box<EnsembleResult>),
    EnsembleFailed {
        id: u64,
        error: String,
    },
    /// The worker panicked and carried on with its caches cleared; `message` says what happened.
    Restarted {
        message: String,
    },
}

/// A comparison grid to draw and save: one row per (ratio, seed), one column per view.
#[derive(Clone, Debug)]
pub struct GridExport {
    pub image: ImageInput,
    pub ratios: Vec<f64>,
    pub seeds: Vec<u64>,
    pub columns: Vec<Column>,
    pub colormap: Colormap,
    pub masked_style: MaskedStyle,
    pub tile_size: u32,
    pub path: PathBuf,
}

#[derive(Clone, Debug)]
pub struct EnsembleResult {
    pub id: u64,
    pub image_id: u64,
    pub ratio: f64,
    pub seeds: Vec<u64>,
    pub mean: ColorImage,
    pub std: ColorImage,
    /// Largest per-pixel standard deviation (0–255 display units): the top of the std colour scale.
    pub max_std: f32,
    /// How many seeds masked each patch.
    pub times_masked: Vec<u32>,
}

/// Counters the window shows and tests assert on.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Forward passes actually run.
    pub forwards: AtomicUsize,
    /// Forward requests received (run, re-drawn from cache, or skipped as superseded).
    pub forward_requests: AtomicUsize,
    /// Forward requests skipped because a newer one was already waiting.
    pub superseded: AtomicUsize,
    pub restarts: AtomicUsize,
}

impl WorkerStats {
    pub fn forwards(&self) -> usize {
        self.forwards.load(Ordering::Relaxed)
    }

    pub fn forward_requests(&self) -> usize {
        self.forward_requests.load(Ordering::Relaxed)
    }

    pub fn superseded(&self) -> usize {
        self.superseded.load(Ordering::Relaxed)
    }

    pub fn restarts(&self) -> usize {
        self.restarts.load(Ordering::Relaxed)
    }
}

/// Called after every response so the window wakes up (`egui::Context::request_repaint`).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
pub struct WorkerConfig {
    pub notify: Notify,
    /// Every forward pass takes at least this long. Lets tests imitate a big model on a slow machine with a tiny
    /// fixture model; zero in the application.
    pub min_forward_time: Duration,
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig").field("min_forward_time", &self.min_forward_time).finish_non_exhaustive()
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self { notify: Arc::new(|| {}), min_forward_time: Duration::ZERO }
    }
}

/// The window's end of the worker. Dropping it closes the request channel, which ends the thread.
#[derive(Debug)]
pub struct Worker {
    requests: Option<Sender<Request>>,
    responses: Receiver<Response>,
    stats: Arc<WorkerStats>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(config: WorkerConfig) -> Self {
        let (request_sender, request_receiver) = crossbeam_channel::unbounded();
        let (response_sender, response_receiver) = crossbeam_channel::unbounded();
        let stats = Arc::new(WorkerStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("mae-worker".into())
            .spawn(move || run(request_receiver, response_sender, config, thread_stats))
            .expect("the operating system refused to start the worker thread");
        Self { requests: Some(request_sender), responses: response_receiver, stats, thread: Some(thread) }
    }

    /// Queues a request; never blocks. Returns false when the worker is gone (it never should be).
    pub fn send(&self, request: Request) -> bool {
        self.requests.as_ref().is_some_and(|sender| sender.send(request).is_ok())
    }

    /// Responses that have arrived since the last call; never blocks.
    pub fn try_recv(&self) -> Option<Response> {
        self.responses.try_recv().ok()
    }

    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.requests.take();
        // A forward pass in flight finishes within a second or so; don't make the window wait for it on exit.
        if let Some(thread) = self.thread.take()
            && thread.is_finished()
        {
            let _ = thread.join();
        }
    }
}

/// The worker's state between requests.
struct WorkerState {
    config: WorkerConfig,
    stats: Arc<WorkerStats>,
    model: Option<LoadedModel>,
    /// Bumped on every model (re)load so caches keyed on it go stale.
    model_generation: u64,
    /// Preprocessed input of the last image: (model generation, image id) → pixel values.
    input: Option<((u64, u64), Tensor)>,
    /// The last forward pass: (model generation, image id, mask) → output.
    output: Option<((u64, u64, MaskSpec), MaeOutput)>,
    curve: Option<CurveJob>,
    /// For download progress, which is reported from inside a load.
    progress: Sender<Response>,
}

fn run(requests: Receiver<Request>, responses: Sender<Response>, config: WorkerConfig, stats: Arc<WorkerStats>) {
    let mut state = WorkerState {
        config,
        stats,
        model: None,
        model_generation: 0,
        input: None,
        output: None,
        curve: None,
        progress: responses.clone(),
    };
    let notify = state.config.notify.clone();
    let mut send = |response: Response| {
        let _ = responses.send(response);
        notify();
    };
    loop {
        // A loss curve is computed one ratio at a time between requests, so it never holds up the picture.
        let first = if state.curve.is_some() {
            match requests.try_recv() {
                Ok(request) => Some(request),
                Err(crossbeam_channel::TryRecvError::Empty) => None,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return,
            }
        } else {
            match requests.recv() {
                Ok(request) => Some(request),
                Err(_) => return,
            }
        };
        let Some(first) = first else {
            guarded(&mut state, &mut send, |state, send| state.curve_step(send));
            continue;
        };
        // Everything that queued up while we were busy: only the newest forward request is worth running.
        let mut batch = vec![first];
        batch.extend(requests.try_iter());
        let newest_forward = batch.iter().rposition(|request| matches!(request, Request::Forward(_)));
        for (index, request) in batch.into_iter().enumerate() {
            if let Request::Forward(_) = request {
                state.stats.forward_requests.fetch_add(1, Ordering::Relaxed);
                if Some(index) != newest_forward {
                    state.stats.superseded.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            guarded(&mut state, &mut send, |state, send| state.handle(request, send));
        }
    }
}

/// Runs one piece of work; a panic in it is reported and the worker goes on with fresh caches ("restarted").
fn guarded(
    state: &mut WorkerState,
    send: &mut dyn FnMut(Response),
    work: impl FnOnce(&mut WorkerState, &mut dyn FnMut(Response)),
) {
    let outcome = catch_unwind(AssertUnwindSafe(|| work(state, send)));
    if let Err(panic) = outcome {
        state.stats.restarts.fetch_add(1, Ordering::Relaxed);
        state.input = None;
        state.output = None;
        state.curve = None;
        let message = format!("the model worker crashed ({}) and was restarted", panic_message(&panic));
        send(Response::Restarted { message });
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".into()
    }
}

impl WorkerState {
    fn handle(&mut self, request: Request, send: &mut dyn FnMut(Response)) {
        match request {
            Request::LoadModel { id, model, device, cancel } => self.load_model(id, &model, &device, cancel, send),
            Request::Forward(request) => {
                let id = request.id;
                match self.forward(*request) {
                    Ok(result) => send(Response::Forward(Box::new(result))),
                    Err(error) => send(Response::ForwardFailed { id, error: format!("{error:#}") }),
                }
            }
            Request::LossCurve { id, image, seed, ratios } => {
                if ratios.is_empty() {
                    send(Response::LossCurve { id, points: Vec::new() });
                } else if let Err(error) = self.start_loss_curve(id, &image, seed, ratios) {
                    send(Response::LossCurveFailed { id, error: format!("{error:#}") });
                }
            }
            Request::ExportGrid { id, export } => match self.export_grid(id, &export, send) {
                Ok(()) => send(Response::Exported { id, path: export.path.clone() }),
                Err(error) => send(Response::ExportFailed { id, error: format!("{error:#}") }),
            },
            Request::Ensemble { id, image, ratio, seeds, colormap } => {
                match self.ensemble(id, &image, ratio, &seeds, colormap) {
                    Ok(result) => send(Response::Ensemble(Box::new(result))),
                    Err(error) => send(Response::EnsembleFailed { id, error: format!("{error:#}") }),
                }
            }
            Request::Crash => panic!("crash requested"),
        }
    }

    fn load_model(
        &mut self,
        id: u64,
        model: &str,
        device: &str,
        cancel: Arc<AtomicBool>,
        send: &mut dyn FnMut(Response),
    ) {
        send(Response::ModelLoading { id, message: format!("loading {model} on {device}…"), fraction: None });
        let start = Instant::now();
        // Download progress arrives on this thread but through a `Sync` callback: send it straight to the window,
        // a few times a second at most.
        let last_report = Mutex::new(None::<Instant>);
        let progress_sender = self.progress.clone();
        let notify = self.config.notify.clone();
        let report = move |progress: DownloadProgress| {
            let Ok(mut last) = last_report.lock() else { return };
            let finished = progress.total.is_some_and(|total| progress.downloaded >= total);
            if !finished && last.is_some_and(|at: Instant| at.elapsed() < Duration::from_millis(200)) {
                return;
            }
            *last = Some(Instant::now());
            let fraction = progress
                .total
                .filter(|&total| total > 0)
                .map(|total| (progress.downloaded as f64 / total as f64).clamp(0.0, 1.0) as f32);
            let message = download_message(&progress);
            let _ = progress_sender.send(Response::ModelLoading { id, message, fraction });
            notify();
        };
        let loaded = (|| -> Result<LoadedModel> {
            let selected = select_device(device.parse::<DeviceChoice>()?)?;
            let location: ModelLocation = model.parse()?;
            let options = LoadOptions { progress: Some(&report), cancel: Some(cancel) };
            Ok(mae_model::load_model(&location, &selected, &options)?)
        })();
        // The old model stays usable until the new one is in: a failed load changes nothing.
        match loaded {
            Ok(loaded) => {
                let info = model_info(&loaded, start.elapsed().as_secs_f64() * 1e3);
                self.model = Some(loaded);
                self.model_generation += 1;
                self.input = None;
                self.output = None;
                self.curve = None;
                send(Response::ModelLoaded { id, info: Box::new(info) });
            }
            Err(error) => send(Response::ModelFailed { id, error: format!("{error:#}") }),
        }
    }

    fn loaded(&self) -> Result<&LoadedModel> {
        self.model.as_ref().context("no model is loaded")
    }

    /// The image as the model's preprocessor prepares it, cached per image and model.
    fn pixel_values(&mut self, image: &ImageInput) -> Result<Tensor> {
        let key = (self.model_generation, image.id);
        if let Some((cached_key, values)) = &self.input
            && *cached_key == key
        {
            return Ok(values.clone());
        }
        let values = self.loaded()?.preprocessor.pixel_values(&image.rgb, &Device::Cpu)?;
        self.input = Some((key, values.clone()));
        Ok(values)
    }

    fn forward(&mut self, request: ForwardRequest) -> Result<ForwardResult> {
        let key = (self.model_generation, request.image.id, request.mask.clone());
        // Attention maps are kept only while the Attention panel is open: they cost memory and some time.
        let attentions = request.view.attention.is_some();
        let mut forward_ms = None;
        let cached = self.output.as_ref().is_some_and(|(cached_key, output)| {
            *cached_key == key && (!attentions || !output.encoder_attentions.is_empty())
        });
        if !cached {
            let pixel_values = self.pixel_values(&request.image)?;
            let start = Instant::now();
            let output = self.loaded()?.model.forward(&pixel_values, &request.mask, ForwardOptions { attentions })?;
            let elapsed = start.elapsed();
            if elapsed < self.config.min_forward_time {
                std::thread::sleep(self.config.min_forward_time - elapsed);
            }
            forward_ms = Some(start.elapsed().as_secs_f64() * 1e3);
            self.stats.forwards.fetch_add(1, Ordering::Relaxed);
            self.output = Some((key, output));
        }
        let (_, output) = self.output.as_ref().expect("the output was just cached");
        let loaded = self.model.as_ref().context("no model is loaded")?;
        let render_start = Instant::now();
        let (panels, overlay_error, uses_target_statistics) = draw(output, loaded, &request.view)?;
        Ok(ForwardResult {
            id: request.id,
            image_id: request.image.id,
            mask_spec: request.mask,
            mask: output.masking.mask.clone(),
            grid: output.grid,
            patch_size: output.patch_size,
            patch_loss: output.patch_loss.clone(),
            masked_loss: output.loss,
            visible_loss: output.visible_loss(),
            uses_target_statistics,
            forward_ms,
            render_ms: render_start.elapsed().as_secs_f64() * 1e3,
            panels,
            overlay_error,
        })
    }

    fn export_grid(&mut self, id: u64, export: &GridExport, send: &mut dyn FnMut(Response)) -> Result<()> {
        if export.columns.is_empty() || export.ratios.is_empty() || export.seeds.is_empty() {
            anyhow::bail!("choose at least one column, one ratio and one seed");
        }
        // Fail on a bad file name or an impossible size before computing anything.
        let format = crate::export::output_format(&export.path)?;
        let pitch = u64::from(export.tile_size + GAP);
        let (rows, columns) = ((export.ratios.len() * export.seeds.len()) as u64, export.columns.len() as u64);
        if (columns * pitch).saturating_mul(rows * pitch) > MAX_GRID_PIXELS {
            anyhow::bail!(
                "the grid would be over {}×{} pixels (at most {MAX_GRID_PIXELS}): use fewer ratios or seeds, \
                 or a smaller tile size",
                columns * pitch,
                rows * pitch
            );
        }
        let pixel_values = self.pixel_values(&export.image)?;
        let loaded = self.loaded()?;
        let attentions = export.columns.iter().any(|column| matches!(column, Column::Attention(_)));
        let panel_options = PanelOptions { masked_style: export.masked_style };
        let total = export.ratios.len() * export.seeds.len();
        let mut rows = Vec::with_capacity(total);
        let mut uses_target_statistics = false;
        for &ratio in &export.ratios {
            for &seed in &export.seeds {
                let spec = MaskSpec::Seed { seed, ratio };
                let output = loaded.model.forward(&pixel_values, &spec, ForwardOptions { attentions })?;
                self.stats.forwards.fetch_add(1, Ordering::Relaxed);
                let panels = render_panels(&output, &loaded.preprocessor, &panel_options)?;
                uses_target_statistics |= panels.uses_target_statistics;
                let name = &export.image.name;
                rows.push(grid_row(name, ratio, seed, &output, &panels, &export.columns, export.colormap)?);
                send(Response::ExportProgress { id, done: rows.len(), total });
            }
        }
        let config = loaded.model.config();
        let title = grid_title(
            &loaded.name,
            loaded.preprocessor.config.target_size(),
            config.patch_size,
            &export.columns,
            export.colormap,
            uses_target_statistics,
        );
        let column_captions =
            export.columns.iter().map(|column| column_caption(column, uses_target_statistics)).collect();
        let picture = compose_grid(&GridSpec { title, column_captions, tile_size: export.tile_size }, &rows)?;
        crate::export::save(&picture, &export.path, format)
    }

    fn ensemble(
        &mut self,
        id: u64,
        image: &ImageInput,
        ratio: f64,
        seeds: &[u64],
        colormap: Colormap,
    ) -> Result<EnsembleResult> {
        let pixel_values = self.pixel_values(image)?;
        let loaded = self.loaded()?;
        let ensemble = seed_ensemble(&loaded.model, &loaded.preprocessor, &pixel_values, ratio, seeds, colormap)?;
        self.stats.forwards.fetch_add(seeds.len(), Ordering::Relaxed);
        Ok(EnsembleResult {
            id,
            image_id: image.id,
            ratio,
            seeds: seeds.to_vec(),
            mean: color_image(&ensemble.mean),
            std: color_image(&ensemble.std),
            max_std: ensemble.std_values.iter().copied().fold(0.0, f32::max),
            times_masked: ensemble.times_masked,
        })
    }

    fn start_loss_curve(&mut self, id: u64, image: &ImageInput, seed: u64, ratios: Vec<f64>) -> Result<()> {
        let pixel_values = self.pixel_values(image)?;
        self.curve = Some(CurveJob { id, pixel_values, seed, ratios, points: Vec::new() });
        Ok(())
    }

    /// Computes the next point of the loss curve in progress.
    fn curve_step(&mut self, send: &mut dyn FnMut(Response)) {
        let Some(job) = self.curve.as_mut() else { return };
        let ratio = job.ratios[job.points.len()];
        let model = match self.model.as_ref() {
            Some(loaded) => &loaded.model,
            None => {
                send(Response::LossCurveFailed { id: job.id, error: "no model is loaded".into() });
                self.curve = None;
                return;
            }
        };
        let spec = MaskSpec::Seed { seed: job.seed, ratio };
        match model.forward(&job.pixel_values, &spec, ForwardOptions { attentions: false }) {
            Ok(output) => {
                self.stats.forwards.fetch_add(1, Ordering::Relaxed);
                job.points.push((ratio, output.loss));
                send(Response::LossCurveProgress { id: job.id, done: job.points.len(), total: job.ratios.len() });
                if job.points.len() == job.ratios.len() {
                    let job = self.curve.take().expect("the job is in progress");
                    send(Response::LossCurve { id: job.id, points: job.points });
                }
            }
            Err(error) => {
                send(Response::LossCurveFailed { id: job.id, error: format!("{error:#}") });
                self.curve = None;
            }
        }
    }
}

/// A loss-vs-ratio curve being computed point by point.
struct CurveJob {
    id: u64,
    pixel_values: Tensor,
    seed: u64,
    ratios: Vec<f64>,
    points: Vec<(f64, Option<f32>)>,
}

/// "downloading model.safetensors: 120 of 447 MB (27 %)".
fn download_message(progress: &DownloadProgress) -> String {
    const MB: f64 = 1e6;
    let done = progress.downloaded as f64 / MB;
    match progress.total {
        Some(total) if total > 0 => format!(
            "downloading {}: {done:.0} of {:.0} MB ({:.0} %)",
            progress.file,
            total as f64 / MB,
            100.0 * progress.downloaded as f64 / total as f64
        ),
        _ => format!("downloading {}: {done:.0} MB", progress.file),
    }
}

fn model_info(loaded: &LoadedModel, load_ms: f64) -> ModelInfo {
    let config = loaded.model.config();
    let (height, width) = loaded.preprocessor.config.target_size();
    let patch = config.patch_size;
    ModelInfo {
        name: loaded.name.clone(),
        device: loaded.model.device_name().to_string(),
        image_size: (height, width),
        patch_size: patch,
        grid: (height / patch, width / patch),
        encoder_layers: config.num_hidden_layers,
        encoder_heads: config.num_attention_heads,
        decoder_layers: config.decoder_num_hidden_layers,
        decoder_heads: config.decoder_num_attention_heads,
        default_mask_ratio: config.mask_ratio,
        load_ms,
    }
}

/// Draws the panels and any overlays the view asks for. An overlay that cannot be drawn is reported, not fatal.
fn draw(output: &MaeOutput, loaded: &LoadedModel, view: &ViewOptions) -> Result<(PanelImages, Option<String>, bool)> {
    let panels = render_panels(output, &loaded.preprocessor, &PanelOptions { masked_style: view.masked_style })?;
    let mut overlay_error = None;
    let attention = view.attention.as_ref().and_then(|attention_view| {
        attention_overlay(output, &panels.original, attention_view)
            .map_err(|error| overlay_error = Some(format!("attention: {error:#}")))
            .ok()
    });
    let loss = view.loss.as_ref().map(|loss_view| {
        crate::render::loss::loss_overlay(&panels.original, output, loss_view.colormap, loss_view.alpha, None)
    });
    let images = PanelImages {
        original: color_image(&panels.original),
        mask: color_image(&panels.mask),
        masked: color_image(&panels.masked),
        reconstruction: color_image(&panels.reconstruction),
        pasted: color_image(&panels.pasted),
        attention: attention.as_ref().map(color_image),
        loss: loss.as_ref().map(color_image),
    };
    Ok((images, overlay_error, panels.uses_target_statistics))
}

fn attention_overlay(output: &MaeOutput, base: &RgbaImage, view: &AttentionView) -> Result<RgbaImage> {
    let selection = AttentionSelection {
        stack: if view.decoder { Stack::Decoder } else { Stack::Encoder },
        layer: view.layer,
        heads: match (view.head, view.fusion) {
            (Some(head), _) => HeadFusion::Head(head),
            (None, Fusion::Mean) => HeadFusion::Mean,
            (None, Fusion::Max) => HeadFusion::Max,
            (None, Fusion::Min) => HeadFusion::Min,
        },
        query: view.query_patch.map_or(Query::Cls, Query::Patch),
        rollout: view.rollout,
        discard_ratio: view.discard_ratio,
    };
    let scores = attention::patch_scores(output, &selection)?;
    Ok(attention::overlay(base, &scores, output.grid, output.patch_size, view.colormap, view.alpha))
}

pub fn color_image(image: &RgbaImage) -> ColorImage {
    ColorImage::from_rgba_unmultiplied([image.width() as usize, image.height() as usize], image.as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(60);

    fn fixture_model() -> String {
        format!("{}/../tests/fixtures/models/tiny-p16", env!("CARGO_MANIFEST_DIR"))
    }

    fn sample_image(id: u64) -> ImageInput {
        let rgb = RgbImage::from_fn(48, 40, |x, y| image::Rgb([(x * 5) as u8, (y * 6) as u8, 77]));
        ImageInput { id, rgb: Arc::new(rgb), name: "gradient".into() }
    }

    fn forward(id: u64, ratio: f64, view: ViewOptions) -> Request {
        let mask = MaskSpec::Seed { seed: 0, ratio };
        Request::Forward(Box::new(ForwardRequest { id, image: sample_image(1), mask, view }))
    }

    fn load(worker: &Worker, model: &str) -> Response {
        let cancel = Arc::new(AtomicBool::new(false));
        worker.send(Request::LoadModel { id: 0, model: model.into(), device: "cpu".into(), cancel });
        next(worker, |response| matches!(response, Response::ModelLoaded { .. } | Response::ModelFailed { .. }))
    }

    /// The next response `wanted` accepts (others are dropped), failing the test after a while.
    fn next(worker: &Worker, wanted: impl Fn(&Response) -> bool) -> Response {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            if let Ok(response) = worker.responses.recv_timeout(Duration::from_millis(50))
                && wanted(&response)
            {
                return response;
            }
        }
        panic!("no matching response from the worker within {WAIT:?}");
    }

    fn forward_result(worker: &Worker) -> Box<ForwardResult> {
        match next(worker, |r| matches!(r, Response::Forward(_) | Response::ForwardFailed { .. })) {
            Response::Forward(result) => result,
            other => panic!("expected a result, got {other:?}"),
        }
    }

    #[test]
    fn queued_forward_requests_collapse_into_the_newest() {
        let config = WorkerConfig { min_forward_time: Duration::from_millis(300), ..WorkerConfig::default() };
        let worker = Worker::spawn(config);
        assert!(matches!(load(&worker, &fixture_model()), Response::ModelLoaded { .. }));
        // The first request keeps the worker busy for 300 ms; the 49 sent meanwhile are one batch.
        for id in 0..50 {
            worker.send(forward(id, 0.01 * id as f64, ViewOptions::default()));
        }
        let mut answered = vec![forward_result(&worker).id];
        if answered[0] != 49 {
            answered.push(forward_result(&worker).id);
        }
        assert_eq!(answered.last(), Some(&49), "the newest request is always answered");
        let stats = worker.stats();
        assert_eq!(stats.forwards(), answered.len(), "one forward per answer: {answered:?}");
        assert_eq!(stats.forward_requests(), 50);
        assert_eq!(stats.superseded(), 50 - answered.len());
    }

    #[test]
    fn a_view_change_redraws_without_running_the_model() {
        let worker = Worker::spawn(WorkerConfig::default());
        load(&worker, &fixture_model());
        worker.send(forward(1, 0.5, ViewOptions::default()));
        let first = forward_result(&worker);
        assert!(first.forward_ms.is_some());
        assert!(first.panels.attention.is_none());
        let view = ViewOptions { attention: Some(AttentionView::default()), ..ViewOptions::default() };
        worker.send(forward(2, 0.5, view));
        let second = forward_result(&worker);
        assert!(second.panels.attention.is_some());
        assert_eq!(second.mask, first.mask);
        // Attention maps were not kept the first time (panel closed), so the model ran again, keeping them.
        assert_eq!(worker.stats().forwards(), 2);
        let view = ViewOptions {
            attention: Some(AttentionView { layer: 1, ..AttentionView::default() }),
            ..ViewOptions::default()
        };
        worker.send(forward(3, 0.5, view));
        let third = forward_result(&worker);
        assert_eq!(third.forward_ms, None, "the cached output was re-drawn");
        assert!(third.panels.attention.is_some());
        assert_ne!(third.panels.attention, second.panels.attention, "another layer looks different");
        let plain = forward(4, 0.5, ViewOptions::default());
        worker.send(plain);
        assert_eq!(forward_result(&worker).forward_ms, None, "outputs with attention maps serve plain views too");
        assert_eq!(worker.stats().forwards(), 2);
    }

    #[test]
    fn a_panic_is_reported_and_the_worker_carries_on() {
        let worker = Worker::spawn(WorkerConfig::default());
        load(&worker, &fixture_model());
        worker.send(Request::Crash);
        match next(&worker, |r| matches!(r, Response::Restarted { .. })) {
            Response::Restarted { message } => assert!(message.contains("crash requested"), "{message}"),
            _ => unreachable!(),
        }
        worker.send(forward(7, 0.75, ViewOptions::default()));
        assert_eq!(forward_result(&worker).id, 7, "the model survived the crash");
        assert_eq!(worker.stats().restarts(), 1);
    }

    #[test]
    fn a_failed_load_keeps_the_model_in_use_and_says_why() {
        let worker = Worker::spawn(WorkerConfig::default());
        worker.send(forward(1, 0.5, ViewOptions::default()));
        match next(&worker, |r| matches!(r, Response::ForwardFailed { .. })) {
            Response::ForwardFailed { error, .. } => assert!(error.contains("no model"), "{error}"),
            _ => unreachable!(),
        }
        load(&worker, &fixture_model());
        match load(&worker, "/no/such/model/folder") {
            Response::ModelFailed { error, .. } => assert!(error.contains("/no/such/model/folder"), "{error}"),
            other => panic!("expected a failure, got {other:?}"),
        }
        worker.send(forward(2, 0.5, ViewOptions::default()));
        assert_eq!(forward_result(&worker).grid, (4, 4));
    }

    #[test]
    fn the_loss_curve_arrives_point_by_point() {
        let worker = Worker::spawn(WorkerConfig::default());
        load(&worker, &fixture_model());
        let ratios = vec![0.0, 0.25, 0.5, 0.75];
        worker.send(Request::LossCurve { id: 3, image: sample_image(1), seed: 2, ratios: ratios.clone() });
        let mut progress = Vec::new();
        loop {
            match next(&worker, |r| matches!(r, Response::LossCurve { .. } | Response::LossCurveProgress { .. })) {
                Response::LossCurveProgress { done, total, .. } => progress.push((done, total)),
                Response::LossCurve { id, points } => {
                    assert_eq!(id, 3);
                    assert_eq!(points.iter().map(|(ratio, _)| *ratio).collect::<Vec<_>>(), ratios);
                    assert_eq!(points[0].1, None, "nothing is masked at ratio 0");
                    assert!(points[1..].iter().all(|(_, loss)| loss.is_some_and(f32::is_finite)));
                    break;
                }
                _ => unreachable!(),
            }
        }
        assert_eq!(progress, vec![(1, 4), (2, 4), (3, 4), (4, 4)]);
    }

    #[test]
    fn download_progress_reads_as_a_sentence() {
        let progress =
            DownloadProgress { file: "model.safetensors".into(), downloaded: 120_000_000, total: Some(447_670_680) };
        assert_eq!(download_message(&progress), "downloading model.safetensors: 120 of 448 MB (27 %)");
        let unknown = DownloadProgress { total: None, ..progress };
        assert_eq!(download_message(&unknown), "downloading model.safetensors: 120 MB");
    }

    #[test]
    fn dropping_the_handle_ends_the_thread() {
        let worker = Worker::spawn(WorkerConfig::default());
        let stats = worker.stats().clone();
        drop(worker);
        // The thread held the other clone of the stats; it lets go when it ends.
        let start = Instant::now();
        while Arc::strong_count(&stats) > 1 {
            assert!(start.elapsed() < WAIT, "the worker thread did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
