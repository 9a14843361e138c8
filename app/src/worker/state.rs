//! The worker's state between requests and what it does for each one.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use candle_core::{Device, Tensor};
use image::RgbaImage;
use mae_model::{
    Alongside, DisplayPair, DownloadProgress, ForwardOptions, LoadOptions, LoadedModel, MaeOutput, MaskSpec, Quality,
    select_device,
};

use super::protocol::{
    AttentionView, EnsembleResult, ForwardRequest, ForwardResult, HeadsResult, HeadsView, ImageInput, LoadProgress,
    LoadRequest, MAX_MODELS, ModelInfo, ModelResult, ModelSweep, ModelView, NoDifference, Request, Response,
    ResultPictures, Scrubbed, SweepReport, model_letter,
};
use super::{Responder, WorkerStats};
use crate::atomic_file::write_picture;
use crate::head_stats::{HeadStats, head_stats};
use crate::jobs::ensemble::SeedEnsemble;
use crate::jobs::evaluate::EvaluationJob;
use crate::jobs::grid::GridProgress;
use crate::jobs::sweep::{Sweep, SweepEntry, SweepKey, SweepStop};
use crate::render::Colormap;
use crate::render::attention::{self, Stack};
use crate::render::compare::{Difference, loss_difference};
use crate::render::gallery::{GallerySpec, THUMBNAIL_WIDTH, render_gallery};
use crate::render::loss::loss_overlay;
use crate::render::panels::{MaskedStyle, PanelOptions, panels_from, render_panels};

/// Side of the pictures in the Dataset panel's table, in pixels.
const DATASET_THUMBNAIL_SIDE: u32 = 48;

/// Download progress is reported at most this often (the window redraws for each report).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// Sweep progress is reported at most this often (the status line shows it).
const SWEEP_REPORT_INTERVAL: Duration = Duration::from_millis(100);

/// The sweeps of all models together may hold this share of the memory budget; the rest is for forward passes.
const SWEEP_MEMORY_SHARE: u64 = 4;

/// Work done one forward pass at a time while no request is waiting.
enum BackgroundJob {
    Ensemble {
        id: u64,
        image_id: u64,
        ensemble: SeedEnsemble,
    },
    /// A folder, one image per step; `next` is the next item.
    Dataset {
        id: u64,
        job: Box<EvaluationJob>,
        next: usize,
    },
}

impl BackgroundJob {
    fn id(&self) -> u64 {
        match self {
            BackgroundJob::Ensemble { id, .. } | BackgroundJob::Dataset { id, .. } => *id,
        }
    }

    /// Forward passes done so far (a step may run several: an ensemble step is one batch of seeds).
    fn forwards_done(&self) -> usize {
        match self {
            BackgroundJob::Ensemble { ensemble, .. } => ensemble.progress().0,
            BackgroundJob::Dataset { next, .. } => *next,
        }
    }

    fn same_kind(&self, other: &BackgroundJob) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

pub(super) struct WorkerState {
    pub(super) stats: Arc<WorkerStats>,
    /// The window's models in its order: the first is the one every panel shows, the others are compared with it.
    models: Vec<ModelSide>,
    /// In the order they were asked for; a new job replaces an older one of its kind (the window only wants the
    /// newest ensemble). They go before the sweeps: the user asked for them.
    background: Vec<BackgroundJob>,
    /// When the sweeps' progress was last reported, and whether their end was.
    sweep_reported: Option<Instant>,
    sweep_end_reported: bool,
}

/// One of the window's models with its caches: its input (the image as its preprocessor prepares it), its last
/// forward pass with the measurements and time of it, that pass's head statistics once a panel asked for them, and
/// the sweep of the image, strategy and seed on screen. The same for the first model and for every compared one.
struct ModelSide {
    loaded: LoadedModel,
    /// Image id → pixel values.
    input: Option<(u64, Tensor)>,
    output: Option<CachedOutput>,
    head_stats: Option<Arc<Vec<HeadStats>>>,
    sweep: Option<Sweep>,
}

/// A model's last forward pass: what it was for (image id, mask), the output, its measurements and how long it took.
struct CachedOutput {
    key: (u64, MaskSpec),
    output: MaeOutput,
    quality: Quality,
    made_in_ms: f64,
}

impl ModelSide {
    fn new(loaded: LoadedModel) -> Self {
        Self { loaded, input: None, output: None, head_stats: None, sweep: None }
    }

    fn forget_work(&mut self) {
        self.input = None;
        self.output = None;
        self.head_stats = None;
        self.sweep = None;
    }

    /// Keeps the output just computed for `key` in the sweep of `key`, starting that sweep when it is new.
    fn remember_in_sweep(&mut self, key: SweepKey, mask: &MaskSpec) -> Result<()> {
        let cached = self.output.as_ref().context("the forward pass left no output")?;
        if self.sweep.as_ref().is_none_or(|sweep| sweep.key != key) {
            let original = crate::render::tensor_to_rgba(&cached.output.pixel_values, &self.loaded.preprocessor)?;
            self.sweep = Some(Sweep::new(key, cached.output.num_patches(), original));
        }
        let sweep = self.sweep.as_mut().context("the sweep was just made")?;
        sweep.insert_output(&cached.output, &self.loaded, mask, cached.made_in_ms)
    }

    /// The sweep of `key` with an entry to show, if there is one.
    fn sweep_of(&self, key: SweepKey) -> Option<&Sweep> {
        self.sweep.as_ref().filter(|sweep| sweep.key == key && sweep.progress().0 > 0)
    }

    /// The patch grid this model cuts `image` into, at the image's size.
    fn grid(&self, image: &ImageInput) -> Result<(usize, usize)> {
        let model_size = self.loaded.preprocessor.config.target_size();
        let patch = self.loaded.model.config().patch_size;
        let size = image.size.input_size(image.rgb.dimensions(), patch, model_size, &self.loaded.name)?;
        Ok((size.height / patch, size.width / patch))
    }

    /// The image as this model's preprocessor prepares it, cached per image.
    fn pixel_values(&mut self, image: &ImageInput) -> Result<Tensor> {
        if let Some((image_id, values)) = &self.input
            && *image_id == image.id
        {
            return Ok(values.clone());
        }
        let (values, _) = self.loaded.pixel_values_at(&image.rgb, image.size, &Device::Cpu)?;
        self.input = Some((image.id, values.clone()));
        Ok(values)
    }

    /// Runs the forward pass for `image` and `mask` unless the cached one serves (with attention maps where they
    /// are needed), and measures it; returns its time when one ran.
    fn run(
        &mut self,
        image: &ImageInput,
        mask: &MaskSpec,
        attentions: bool,
        stats: &WorkerStats,
    ) -> Result<Option<f64>> {
        let key = (image.id, mask.clone());
        let cached = self
            .output
            .as_ref()
            .is_some_and(|cached| cached.key == key && (!attentions || !cached.output.encoder_attentions.is_empty()));
        if cached {
            return Ok(None);
        }
        let pixel_values = self.pixel_values(image)?;
        let start = Instant::now();
        let output = self.loaded.model.forward(&pixel_values, mask, ForwardOptions { attentions })?;
        let made_in_ms = start.elapsed().as_secs_f64() * 1e3;
        stats.forwards.fetch_add(1, Ordering::Relaxed);
        let quality = DisplayPair::of(&output, &self.loaded.preprocessor)?.quality(&output);
        self.output = Some(CachedOutput { key, output, quality, made_in_ms });
        self.head_stats = None;
        Ok(Some(made_in_ms))
    }

    /// Every head's statistics of the cached output, computed once asked for.
    fn head_stats(&mut self) -> Result<Arc<Vec<HeadStats>>> {
        if let Some(stats) = &self.head_stats {
            return Ok(stats.clone());
        }
        let cached = self.output.as_ref().context("the forward pass left no output")?;
        let stats = Arc::new(head_stats(&cached.output, &[Stack::Encoder, Stack::Decoder])?);
        self.head_stats = Some(stats.clone());
        Ok(stats)
    }
}

impl WorkerState {
    pub(super) fn new(stats: Arc<WorkerStats>) -> Self {
        Self { stats, models: Vec::new(), background: Vec::new(), sweep_reported: None, sweep_end_reported: true }
    }

    pub(super) fn has_background_work(&self) -> bool {
        !self.background.is_empty() || !self.sweep_end_reported || self.sweep_to_step().is_some()
    }

    /// The model whose sweep goes next: of those still computing, the one with the fewest entries (so every
    /// model's sweep fills at the same pace).
    fn sweep_to_step(&self) -> Option<usize> {
        self.models
            .iter()
            .enumerate()
            .filter_map(|(index, side)| side.sweep.as_ref().filter(|sweep| !sweep.is_finished()).map(|s| (index, s)))
            .min_by_key(|(_, sweep)| sweep.progress().0)
            .map(|(index, _)| index)
    }

    /// Drops caches and background jobs (after a panic, whatever they held is suspect).
    pub(super) fn forget_work(&mut self) {
        self.background.clear();
        for side in &mut self.models {
            side.forget_work();
        }
    }

    pub(super) fn handle(&mut self, request: Request, responder: &Responder) {
        let send = |response| responder.send(response);
        match request {
            Request::LoadModel { id, load } => self.load_model(id, load, responder),
            Request::Forward(request) => {
                let id = request.id;
                match self.forward(*request) {
                    Ok(result) => send(Response::Forward(Box::new(result))),
                    Err(error) => send(Response::Failed { id, error: format!("{error:#}") }),
                }
            }
            Request::Scrub(request) => {
                let id = request.id;
                match self.scrub(*request) {
                    Ok(result) => send(Response::Forward(Box::new(result))),
                    Err(error) => send(Response::Failed { id, error: format!("{error:#}") }),
                }
            }
            Request::StopSweep => {
                for sweep in self.models.iter_mut().filter_map(|side| side.sweep.as_mut()) {
                    if !sweep.is_finished() {
                        sweep.stopped = Some(SweepStop::Asked);
                    }
                }
                self.report_sweep(responder, true);
            }
            Request::Ensemble { id, image, strategy, ratio, seeds, colormap } => {
                let ensemble = |values| SeedEnsemble::new(values, strategy, ratio, seeds, colormap);
                match self.pixel_values(&image).and_then(ensemble) {
                    Ok(ensemble) => self.start(BackgroundJob::Ensemble { id, image_id: image.id, ensemble }),
                    Err(error) => send(Response::Failed { id, error: format!("{error:#}") }),
                }
            }
            Request::ExportGrid { id, job, path } => {
                let result = (|| {
                    // Fail on a bad file name before computing anything.
                    crate::atomic_file::picture_format(&path)?;
                    if self.models.len() < job.models.max(1) {
                        bail!("the export wants {} models but {} are loaded", job.models, self.models.len());
                    }
                    let models: Vec<&LoadedModel> =
                        self.models.iter().take(job.models.max(1)).map(|side| &side.loaded).collect();
                    let stats = &self.stats;
                    let output = job.run(&models, &mut |progress| {
                        if let GridProgress::Rows { done, total } = progress {
                            stats.forwards.fetch_add(1, Ordering::Relaxed);
                            send(Response::Progress { id, done, total });
                        }
                    })?;
                    write_picture(&output.picture, &path)
                })();
                match result {
                    Ok(()) => send(Response::Exported { id, path }),
                    Err(error) => send(Response::Failed { id, error: format!("{error:#}") }),
                }
            }
            Request::ExportAnimation { id, job, path } => {
                let result = (|| {
                    if self.models.len() < job.models() {
                        bail!("the animation wants {} models but {} are loaded", job.models(), self.models.len());
                    }
                    let models: Vec<&LoadedModel> =
                        self.models.iter().take(job.models()).map(|side| &side.loaded).collect();
                    let stats = &self.stats;
                    // The window has asked before replacing a file.
                    job.write(&models, &path, true, &mut |done, total| {
                        stats.forwards.fetch_add(1, Ordering::Relaxed);
                        send(Response::Progress { id, done, total });
                    })
                })();
                match result {
                    Ok(()) => send(Response::Exported { id, path }),
                    Err(error) => send(Response::Failed { id, error: format!("{error:#}") }),
                }
            }
            Request::EvaluateFolder { id, job } => self.start(BackgroundJob::Dataset { id, job, next: 0 }),
            Request::Cancel { id } => self.background.retain(|job| job.id() != id),
            Request::CloseModel { index } => {
                if index > 0 && index < self.models.len() {
                    self.models.remove(index);
                }
            }
            Request::SwapWithFirst { id, index } => {
                if index > 0 && index < self.models.len() {
                    self.models.swap(0, index);
                    // Jobs ran on the first model: whatever they were computing is another model's now.
                    self.background.clear();
                    send(Response::Swapped { id });
                } else {
                    let error = format!("there is no model {} to swap with the first", model_letter(index));
                    send(Response::Failed { id, error });
                }
            }
            Request::Crash => panic!("crash requested"),
        }
    }

    /// Advances the sweep that is furthest behind by one forward pass, and reports where the sweeps stand.
    fn sweep_step(&mut self, responder: &Responder) {
        if let Some(index) = self.sweep_to_step() {
            let others: u64 = self
                .models
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != index)
                .filter_map(|(_, side)| side.sweep.as_ref().map(Sweep::bytes))
                .sum();
            let room = (mae_model::memory::budget() / SWEEP_MEMORY_SHARE).saturating_sub(others);
            let side = &mut self.models[index];
            if let Some(sweep) = side.sweep.as_mut() {
                match &side.input {
                    Some((image_id, pixel_values)) if *image_id == sweep.key.image_id => {
                        let before = sweep.forwards;
                        if let Err(error) = sweep.step(&side.loaded, pixel_values, room) {
                            sweep.stopped = Some(SweepStop::Failed(format!("{error:#}")));
                        }
                        self.stats.sweep_forwards.fetch_add(sweep.forwards - before, Ordering::Relaxed);
                    }
                    // Another image came in and this model has not run on it yet: its sweep is of the old one.
                    _ => side.sweep = None,
                }
            }
        }
        self.report_sweep(responder, false);
    }

    /// Sends where the sweeps of the first model's image, strategy and seed stand: the first time after they
    /// start, at most every [`SWEEP_REPORT_INTERVAL`] meanwhile, and once more when they are over (or when
    /// `now`).
    fn report_sweep(&mut self, responder: &Responder, now: bool) {
        let Some(key) = self.models.first().and_then(|side| side.sweep.as_ref()).map(|sweep| sweep.key) else {
            self.sweep_end_reported = true;
            return;
        };
        let over = self.sweep_to_step().is_none();
        let recently = self.sweep_reported.is_some_and(|at| at.elapsed() < SWEEP_REPORT_INTERVAL);
        if !now && (if over { self.sweep_end_reported } else { recently }) {
            return;
        }
        let models = self
            .models
            .iter()
            .enumerate()
            .filter_map(|(index, side)| {
                let sweep = side.sweep.as_ref().filter(|sweep| sweep.key == key)?;
                let (done, total) = sweep.progress();
                Some(ModelSweep {
                    index,
                    done,
                    total,
                    forwards: sweep.forwards,
                    bytes: sweep.bytes(),
                    stopped: sweep.stopped.as_ref().map(SweepStop::to_string),
                    curve: sweep.curve(),
                })
            })
            .collect();
        let report = SweepReport { image_id: key.image_id, strategy: key.strategy, seed: key.seed, models };
        responder.send(Response::Sweep(Box::new(report)));
        self.sweep_reported = Some(Instant::now());
        self.sweep_end_reported = over;
    }

    fn start(&mut self, job: BackgroundJob) {
        self.background.retain(|queued| !queued.same_kind(&job));
        self.background.push(job);
    }

    /// Advances the oldest background job by one step (one forward pass, or one batch of them), answering when it is
    /// finished.
    pub(super) fn background_step(&mut self, responder: &Responder) {
        let Some(job) = self.background.first_mut() else {
            self.sweep_step(responder);
            return;
        };
        let id = job.id();
        let done_before = job.forwards_done();
        let Some(loaded) = self.models.first().map(|side| &side.loaded) else {
            self.background.remove(0);
            responder.send(Response::Failed { id, error: "no model is loaded".into() });
            return;
        };
        let stepped = match job {
            // One seed at a time: a slider move waits for one forward pass at most.
            BackgroundJob::Ensemble { ensemble, .. } => ensemble.step(loaded, 1).map(|()| ensemble.progress()),
            BackgroundJob::Dataset { id, job, next } => {
                let evaluation = Box::new(job.evaluate_item(*next, loaded, DATASET_THUMBNAIL_SIDE));
                responder.send(Response::DatasetRow { id: *id, index: *next, evaluation });
                *next += 1;
                Ok((*next, job.items.len()))
            }
        };
        let (done, total) = match stepped {
            Ok(progress) => progress,
            Err(error) => {
                self.background.remove(0);
                responder.send(Response::Failed { id, error: format!("{error:#}") });
                return;
            }
        };
        self.stats.forwards.fetch_add(done - done_before, Ordering::Relaxed);
        responder.send(Response::Progress { id, done, total });
        if done < total {
            return;
        }
        match self.background.remove(0) {
            BackgroundJob::Ensemble { id, image_id, ensemble } => {
                let summary = ensemble.summary();
                responder.send(Response::Ensemble(Box::new(EnsembleResult {
                    id,
                    image_id,
                    ratio: ensemble.ratio(),
                    seeds: ensemble.seeds().to_vec(),
                    max_std: summary.max_std(),
                    mean: summary.mean,
                    std: summary.std,
                    times_masked: summary.times_masked,
                })));
            }
            // Every row went out as it was measured; the last progress report says it is complete.
            BackgroundJob::Dataset { .. } => {}
        }
    }

    fn load_model(&mut self, id: u64, load: LoadRequest, responder: &Responder) {
        responder.send(Response::ModelLoading { id, progress: LoadProgress::Reading });
        let start = Instant::now();
        // Download progress arrives on this thread but through a `Sync` callback: send it straight to the window,
        // a few times a second at most.
        let last_report = Mutex::new(None::<Instant>);
        let report = |progress: DownloadProgress| {
            let Ok(mut last) = last_report.lock() else { return };
            let finished = progress.total.is_some_and(|total| progress.downloaded >= total);
            if !finished && last.is_some_and(|at: Instant| at.elapsed() < PROGRESS_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
            responder.send(Response::ModelLoading { id, progress: LoadProgress::Downloading(progress) });
        };
        // The other models stay in memory beside this one: the whole set must fit together.
        let others: Vec<&LoadedModel> = self
            .models
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != load.index)
            .map(|(_, side)| &side.loaded)
            .collect();
        let alongside = (!others.is_empty()).then(|| Alongside {
            name: others.iter().map(|loaded| loaded.name.as_str()).collect::<Vec<_>>().join(" and "),
            bytes: others
                .iter()
                .map(|loaded| {
                    let dtype_bytes = loaded.model.dtype().size_in_bytes() as u64;
                    mae_model::memory::model_bytes(loaded.model.config(), dtype_bytes)
                })
                .sum(),
        });
        if load.index > self.models.len().min(MAX_MODELS - 1) {
            let error = format!("the window holds at most {MAX_MODELS} models (the first and three compared)");
            responder.send(Response::Failed { id, error });
            return;
        }
        let loaded = (|| -> Result<LoadedModel> {
            let selected = select_device(load.device)?.with_dtype(load.dtype)?;
            let options = LoadOptions { progress: Some(&report), cancel: Some(load.cancel.clone()), alongside };
            Ok(mae_model::source::load_model_with_settings(&load.location, &selected, &options, &load.hub)?)
        })();
        // The old model stays usable until the new one is in: a failed load changes nothing.
        match loaded {
            Ok(loaded) => {
                let info = model_info(&loaded, start.elapsed().as_secs_f64() * 1e3);
                if load.index == 0 {
                    // Jobs ran on the first model: they would mix two models' numbers.
                    self.background.clear();
                }
                match self.models.get_mut(load.index) {
                    Some(side) => *side = ModelSide::new(loaded),
                    None => self.models.push(ModelSide::new(loaded)),
                }
                responder.send(Response::ModelLoaded { id, info: Box::new(info) });
            }
            Err(error) => responder.send(Response::Failed { id, error: format!("{error:#}") }),
        }
    }

    /// The first model: the one background jobs run on.
    fn first(&mut self) -> Result<&mut ModelSide> {
        self.models.first_mut().context("no model is loaded")
    }

    /// The image as the first model's preprocessor prepares it (for its background jobs).
    fn pixel_values(&mut self, image: &ImageInput) -> Result<Tensor> {
        self.first()?.pixel_values(image)
    }

    /// Every model's forward pass for the request (each reusing its cached one where it serves), drawn, and each
    /// compared model's per-patch loss set against the first's. A compared model sees the first's pixels and
    /// visible set when both preprocess alike and cut the image into the same grid; otherwise it preprocesses the
    /// image itself and draws its own mask with the same strategy, ratio and seed, and its result says so. A
    /// painted or picture mask names patches of the first model's grid, so a model of another grid sits it out.
    fn forward(&mut self, request: ForwardRequest) -> Result<ForwardResult> {
        let render_start = Instant::now();
        let first = self.models.first().context("no model is loaded")?;
        let (first_grid, first_preprocessing) = (first.grid(&request.image)?, first.loaded.preprocessor.config.clone());
        let mut models = Vec::with_capacity(self.models.len());
        // The first model's pixel values, which every model that preprocesses alike takes as they are.
        let mut first_input: Option<(u64, Tensor)> = None;
        for (index, side) in self.models.iter_mut().enumerate() {
            let grid = side.grid(&request.image)?;
            let own_input = (index > 0).then(|| own_input(side, grid, first_grid, &first_preprocessing)).flatten();
            if index > 0 && grid != first_grid && matches!(request.mask, MaskSpec::Keep { .. }) {
                continue;
            }
            if own_input.is_none() && first_input.is_some() {
                side.input = first_input.clone();
            }
            let view = request.view.model(index);
            let forward_ms = side.run(&request.image, &request.mask, view.needs_attentions(), &self.stats)?;
            if index == 0 {
                first_input = side.input.clone();
            }
            // Every new result of a drawn mask is an entry of its sweep, which starts with it.
            if let Some(key) = SweepKey::of(request.image.id, &request.mask)
                && (forward_ms.is_some() || side.sweep.as_ref().is_none_or(|sweep| sweep.key != key))
            {
                let starts = side.sweep.as_ref().is_none_or(|sweep| sweep.key != key);
                side.remember_in_sweep(key, &request.mask)?;
                self.sweep_end_reported = false;
                if starts {
                    self.sweep_reported = None;
                }
            }
            let stats = view.heads.is_some().then(|| side.head_stats()).transpose()?;
            let cached = side.output.as_ref().context("the forward pass left no output")?;
            let output = &cached.output;
            let (pictures, heads, overlay_error) =
                draw(output, &side.loaded, request.view.masked_style, &view, stats.as_ref())?;
            models.push(ModelResult {
                index,
                name: side.loaded.name.clone(),
                texture_key: request.id * MAX_MODELS as u64 + index as u64,
                mask: output.masking.mask.clone(),
                grid: output.grid,
                patch_size: output.patch_size,
                patch_loss: output.patch_loss.clone(),
                requested_masked: request.mask.requested_masked(output.num_patches()),
                quality: cached.quality,
                uses_target_statistics: output.norm_pix_loss,
                forward_ms,
                made_in_ms: cached.made_in_ms,
                pictures,
                heads,
                overlay_error,
                own_input,
                difference: None,
                scrubbed: None,
            });
        }
        Ok(answer(request, render_start, models))
    }
}

impl WorkerState {
    /// Every model's result at the slider's ratio from its sweep: the exact entry or, until that is cached, the
    /// nearest one, drawn without attention maps and without any forward pass. While a model has no sweep of this
    /// image, strategy and seed yet (the image or seed just changed), it is a forward request like any other.
    fn scrub(&mut self, request: ForwardRequest) -> Result<ForwardResult> {
        let (Some(key), MaskSpec::Drawn { ratio, .. }) = (SweepKey::of(request.image.id, &request.mask), &request.mask)
        else {
            return self.forward(request);
        };
        if self.models.is_empty() || self.models.iter().any(|side| side.sweep_of(key).is_none()) {
            return self.forward(request);
        }
        let render_start = Instant::now();
        let (first_grid, first_preprocessing) =
            (self.models[0].grid(&request.image)?, self.models[0].loaded.preprocessor.config.clone());
        let mut models = Vec::with_capacity(self.models.len());
        for (index, side) in self.models.iter().enumerate() {
            let sweep = side.sweep_of(key).context("the sweep went away")?;
            let (entry, exact) = sweep.lookup(*ratio).context("the sweep has no entry")?;
            let view = request.view.model(index);
            let grid = side.grid(&request.image)?;
            let pictures = draw_entry(sweep, entry, grid, &side.loaded, request.view.masked_style, &view)?;
            let patches = entry.mask.len();
            models.push(ModelResult {
                index,
                name: side.loaded.name.clone(),
                texture_key: request.id * MAX_MODELS as u64 + index as u64,
                mask: entry.mask.clone(),
                grid,
                patch_size: side.loaded.model.config().patch_size,
                patch_loss: entry.patch_loss.clone(),
                requested_masked: entry.requested_masked,
                quality: entry.quality,
                uses_target_statistics: side.loaded.model.config().norm_pix_loss,
                forward_ms: None,
                made_in_ms: entry.made_in_ms,
                pictures,
                heads: None,
                overlay_error: None,
                own_input: (index > 0).then(|| own_input(side, grid, first_grid, &first_preprocessing)).flatten(),
                difference: None,
                scrubbed: Some(Scrubbed {
                    exact,
                    masked_fraction: (patches - entry.kept) as f64 / patches.max(1) as f64,
                }),
            });
        }
        Ok(answer(request, render_start, models))
    }
}

/// The pictures of a sweep entry: the masked and pasted-back ones derived from the original and the mask, exactly
/// as after a forward pass; the loss overlay where a panel shows it; no attention maps (the entry has none).
fn draw_entry(
    sweep: &Sweep,
    entry: &SweepEntry,
    grid: (usize, usize),
    loaded: &LoadedModel,
    masked_style: MaskedStyle,
    view: &ModelView,
) -> Result<ResultPictures> {
    let reconstruction = image::DynamicImage::ImageRgb8(entry.reconstruction.clone()).to_rgba8();
    let options = PanelOptions { masked_style };
    let panels =
        panels_from(sweep.original.clone(), reconstruction, &entry.mask, grid, &loaded.preprocessor, &options)?;
    let loss = view
        .loss
        .as_ref()
        .map(|loss| loss_overlay(&panels.original, &entry.patch_loss, grid, loss.colormap, loss.alpha));
    Ok(ResultPictures {
        original: panels.original,
        mask: panels.mask,
        masked: panels.masked,
        reconstruction: panels.reconstruction,
        pasted: panels.pasted,
        attention: None,
        loss,
    })
}

/// Why a compared model cannot see the first model's pixels and visible set, or `None` when it can: it
/// preprocesses images otherwise (what differs is named) or cuts them into another grid.
fn own_input(
    side: &ModelSide,
    grid: (usize, usize),
    first_grid: (usize, usize),
    first_preprocessing: &mae_model::PreprocessorConfig,
) -> Option<String> {
    let why = match side.loaded.preprocessor.config.difference_from(first_preprocessing) {
        _ if grid != first_grid => format!(
            "cuts the image into another grid ({}×{} patches against the first model's {}×{})",
            grid.0, grid.1, first_grid.0, first_grid.1
        ),
        Some(difference) => format!("preprocesses images differently ({difference}, the first model's second)"),
        None => return None,
    };
    Some(format!(
        "{} {why}: each model preprocessed the image itself and drew its own mask with the same strategy, ratio and \
         seed",
        side.loaded.name
    ))
}

/// The answer to `request`: every model's result, each compared model's set against the first's, timed from
/// `render_start`.
fn answer(request: ForwardRequest, render_start: Instant, mut models: Vec<ModelResult>) -> ForwardResult {
    compare_with_first(&mut models);
    ForwardResult {
        id: request.id,
        image_id: request.image.id,
        mask_spec: request.mask,
        render_ms: render_start.elapsed().as_secs_f64() * 1e3,
        models,
    }
}

/// Each compared model's per-patch loss set against the first model's (`models[0]`), patch by patch where they saw
/// the same patches.
fn compare_with_first(models: &mut [ModelResult]) {
    let Some((first, compared)) = models.split_first_mut() else { return };
    for result in compared {
        result.difference = Some(difference(first, result));
    }
}

/// A compared model's per-patch loss set against the first model's: the difference map and wins where both saw
/// the same patches and measure loss alike, else why not, with each one's loss map.
fn difference(first: &ModelResult, own: &ModelResult) -> Result<Difference, NoDifference> {
    let own_input = own.own_input.is_some();
    if !own_input && own.uses_target_statistics == first.uses_target_statistics {
        let masked = first.masked_patches();
        let side = first.patch_size as u32;
        return Ok(loss_difference(&first.patch_loss, &own.patch_loss, &masked, first.grid, side));
    }
    let why = if own_input {
        "the two models did not see the same patches, so their losses are shown side by side"
    } else {
        "one model's loss is on normalised pixels (norm-pix) and the other's is not, so their losses are shown side \
         by side"
    };
    Err(NoDifference {
        why: why.to_string(),
        first_loss: loss_overlay(
            &first.pictures.original,
            &first.patch_loss,
            first.grid,
            Colormap::Viridis,
            LOSS_ALPHA,
        ),
        own_loss: loss_overlay(&own.pictures.original, &own.patch_loss, own.grid, Colormap::Viridis, LOSS_ALPHA),
    })
}

/// Opacity of the loss maps drawn side by side when two losses cannot be compared patch by patch.
const LOSS_ALPHA: f32 = 0.8;

fn model_info(loaded: &LoadedModel, load_ms: f64) -> ModelInfo {
    let config = loaded.model.config();
    let (height, width) = loaded.preprocessor.config.target_size();
    let patch = config.patch_size;
    ModelInfo {
        name: loaded.name.clone(),
        device: loaded.model.device_name().to_string(),
        dtype: loaded.model.dtype(),
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

/// Draws the pictures and any overlays the view asks for. An overlay that cannot be drawn is reported, not fatal.
fn draw(
    output: &MaeOutput,
    loaded: &LoadedModel,
    masked_style: MaskedStyle,
    view: &ModelView,
    stats: Option<&Arc<Vec<HeadStats>>>,
) -> Result<(ResultPictures, Option<HeadsResult>, Option<String>)> {
    let panels = render_panels(output, &loaded.preprocessor, &PanelOptions { masked_style })?;
    let mut overlay_error = None;
    let attention = view.attention.as_ref().and_then(|attention_view| {
        attention_overlay(output, &panels.original, attention_view)
            .map_err(|error| overlay_error = Some(format!("attention: {error:#}")))
            .ok()
    });
    let loss = view
        .loss
        .as_ref()
        .map(|loss| loss_overlay(&panels.original, &output.patch_loss, output.grid, loss.colormap, loss.alpha));
    let heads = match (&view.heads, stats) {
        (Some(heads_view), Some(stats)) => gallery(output, &panels.original, heads_view)
            .map(|gallery| HeadsResult { stats: stats.clone(), gallery })
            .map_err(|error| overlay_error = Some(format!("head gallery: {error:#}")))
            .ok(),
        _ => None,
    };
    let pictures = ResultPictures {
        original: panels.original,
        mask: panels.mask,
        masked: panels.masked,
        reconstruction: panels.reconstruction,
        pasted: panels.pasted,
        attention,
        loss,
    };
    Ok((pictures, heads, overlay_error))
}

fn gallery(output: &MaeOutput, base: &RgbaImage, view: &HeadsView) -> Result<crate::render::gallery::Gallery> {
    let spec = GallerySpec {
        stacks: vec![view.stack],
        query: view.query,
        scale: view.scale,
        colormap: view.colormap,
        thumbnail: THUMBNAIL_WIDTH,
        // The Heads panel writes the title and labels itself, readable at any scale.
        text: false,
    };
    render_gallery(output, base, &spec)
}

fn attention_overlay(output: &MaeOutput, base: &RgbaImage, view: &AttentionView) -> Result<RgbaImage> {
    let scores = attention::patch_scores(output, &view.selection)?;
    Ok(attention::overlay(base, &scores, output.grid, output.patch_size, view.colormap, view.alpha))
}
