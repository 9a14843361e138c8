//! The worker's state between requests and what it does for each one.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use candle_core::{Device, Tensor};
use image::RgbaImage;
use mae_model::{
    Alongside, DisplayPair, DownloadProgress, ForwardOptions, LoadOptions, LoadedModel, MaeOutput, MaskSpec, Quality,
    select_device,
};

use super::protocol::{
    AttentionView, CompareResult, EnsembleResult, ForwardRequest, ForwardResult, HeadsResult, HeadsView, ImageInput,
    LoadProgress, LoadRequest, ModelInfo, NoDifference, Request, Response, ResultPictures, Slot, ViewOptions,
};
use super::{Responder, WorkerStats};
use crate::atomic_file::write_picture;
use crate::head_stats::{HeadStats, head_stats};
use crate::jobs::ensemble::SeedEnsemble;
use crate::jobs::evaluate::EvaluationJob;
use crate::jobs::grid::GridProgress;
use crate::jobs::loss_curve::LossCurve;
use crate::render::Colormap;
use crate::render::attention::{self, Stack};
use crate::render::compare::loss_difference;
use crate::render::gallery::{GallerySpec, THUMBNAIL_WIDTH, render_gallery};
use crate::render::loss::loss_overlay;
use crate::render::panels::{PanelOptions, render_panels};

/// Side of the pictures in the Dataset panel's table, in pixels.
const DATASET_THUMBNAIL_SIDE: u32 = 48;

/// Download progress is reported at most this often (the window redraws for each report).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// Work done one forward pass at a time while no request is waiting.
enum BackgroundJob {
    LossCurve {
        id: u64,
        curve: LossCurve,
    },
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
            BackgroundJob::LossCurve { id, .. }
            | BackgroundJob::Ensemble { id, .. }
            | BackgroundJob::Dataset { id, .. } => *id,
        }
    }

    /// Forward passes done so far (a step may run several: an ensemble step is one batch of seeds).
    fn forwards_done(&self) -> usize {
        match self {
            BackgroundJob::LossCurve { curve, .. } => curve.progress().0,
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
    model: Option<LoadedModel>,
    /// Bumped on every model (re)load so caches keyed on it go stale.
    model_generation: u64,
    /// Preprocessed input of the last image: (model generation, image id) → pixel values.
    input: Option<((u64, u64), Tensor)>,
    /// The last forward pass: (model generation, image id, mask) → output, and how long it took in milliseconds.
    output: Option<((u64, u64, MaskSpec), MaeOutput, f64)>,
    /// Every head's statistics of that output, once a panel asked for them.
    output_head_stats: Option<Arc<Vec<HeadStats>>>,
    /// PSNR, SSIM and losses of that output (a view change re-draws without measuring again).
    output_quality: Option<Quality>,
    /// In the order they were asked for; a new job replaces an older one of its kind (the window only wants the
    /// newest curve and the newest ensemble).
    background: Vec<BackgroundJob>,
    /// Model B, run beside A for every forward request while the window compares two models.
    compare: Option<CompareModel>,
}

/// Model B with its own caches: its input (when it preprocesses the image itself), its last forward pass with its
/// measurements, and that pass's head statistics once the Heads panel asked for B's.
struct CompareModel {
    loaded: LoadedModel,
    input: Option<(u64, Tensor)>,
    /// (image id, mask) → output, its measurements and how long it took in milliseconds.
    output: Option<((u64, MaskSpec), MaeOutput, Quality, f64)>,
    head_stats: Option<Arc<Vec<HeadStats>>>,
}

impl CompareModel {
    fn new(loaded: LoadedModel) -> Self {
        Self { loaded, input: None, output: None, head_stats: None }
    }
}

impl WorkerState {
    pub(super) fn new(stats: Arc<WorkerStats>) -> Self {
        Self {
            stats,
            model: None,
            model_generation: 0,
            input: None,
            output: None,
            output_head_stats: None,
            output_quality: None,
            background: Vec::new(),
            compare: None,
        }
    }

    pub(super) fn has_background_work(&self) -> bool {
        !self.background.is_empty()
    }

    /// Drops caches and background jobs (after a panic, whatever they held is suspect).
    pub(super) fn forget_work(&mut self) {
        self.input = None;
        self.output = None;
        self.output_head_stats = None;
        self.output_quality = None;
        self.background.clear();
        if let Some(compare) = self.compare.as_mut() {
            compare.input = None;
            compare.output = None;
            compare.head_stats = None;
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
            Request::LossCurve { id, image, strategy, seed, ratios } => {
                match self.pixel_values(&image).and_then(|values| LossCurve::new(values, strategy, seed, ratios)) {
                    Ok(curve) => self.start(BackgroundJob::LossCurve { id, curve }),
                    Err(error) => send(Response::Failed { id, error: format!("{error:#}") }),
                }
            }
            Request::Ensemble { id, image, strategy, ratio, seeds, colormap } => {
                let ensemble = |values| SeedEnsemble::new(values, strategy, ratio, seeds, colormap);
                match self.pixel_values(&image).and_then(ensemble) {
                    Ok(ensemble) => self.start(BackgroundJob::Ensemble { id, image_id: image.id, ensemble }),
                    Err(error) => send(Response::Failed { id, error: format!("{error:#}") }),
                }
            }
            Request::ExportGrid { id, job, path } => {
                let result = self.loaded().and_then(|loaded| {
                    // Fail on a bad file name before computing anything.
                    crate::atomic_file::picture_format(&path)?;
                    let mut models = vec![loaded];
                    if job.models == 2 {
                        models.push(&self.compare.as_ref().context("model B was closed before the export")?.loaded);
                    }
                    let stats = &self.stats;
                    let output = job.run(&models, &mut |progress| {
                        if let GridProgress::Rows { done, total } = progress {
                            stats.forwards.fetch_add(1, Ordering::Relaxed);
                            send(Response::Progress { id, done, total });
                        }
                    })?;
                    write_picture(&output.picture, &path)
                });
                match result {
                    Ok(()) => send(Response::Exported { id, path }),
                    Err(error) => send(Response::Failed { id, error: format!("{error:#}") }),
                }
            }
            Request::EvaluateFolder { id, job } => self.start(BackgroundJob::Dataset { id, job, next: 0 }),
            Request::Cancel { id } => self.background.retain(|job| job.id() != id),
            Request::CloseCompare => self.compare = None,
            Request::SwapModels { id } => match (self.model.take(), self.compare.take()) {
                (Some(a), Some(b)) => {
                    self.model = Some(b.loaded);
                    self.compare = Some(CompareModel::new(a));
                    self.model_generation += 1;
                    self.forget_work();
                    send(Response::Swapped { id });
                }
                (a, b) => {
                    (self.model, self.compare) = (a, b);
                    send(Response::Failed { id, error: "there are not two models to swap".into() });
                }
            },
            Request::Crash => panic!("crash requested"),
        }
    }

    fn start(&mut self, job: BackgroundJob) {
        self.background.retain(|queued| !queued.same_kind(&job));
        self.background.push(job);
    }

    /// Advances the oldest background job by one step (one forward pass, or one batch of them), answering when it is
    /// finished.
    pub(super) fn background_step(&mut self, responder: &Responder) {
        let Some(job) = self.background.first_mut() else { return };
        let id = job.id();
        let done_before = job.forwards_done();
        let Some(loaded) = self.model.as_ref() else {
            self.background.remove(0);
            responder.send(Response::Failed { id, error: "no model is loaded".into() });
            return;
        };
        let stepped = match job {
            BackgroundJob::LossCurve { curve, .. } => curve.step(&loaded.model).map(|()| curve.progress()),
            BackgroundJob::Ensemble { ensemble, .. } => ensemble.step(loaded).map(|()| ensemble.progress()),
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
            BackgroundJob::LossCurve { id, curve } => {
                responder.send(Response::LossCurve { id, points: curve.points().to_vec() });
            }
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
        // The other slot's model stays in memory beside this one: the pair must fit together.
        let other = match load.slot {
            Slot::A => self.compare.as_ref().map(|compare| &compare.loaded),
            Slot::B => self.model.as_ref(),
        };
        let alongside = other.map(|loaded| Alongside {
            name: loaded.name.clone(),
            bytes: mae_model::memory::model_bytes(loaded.model.config(), loaded.model.dtype().size_in_bytes() as u64),
        });
        let loaded = (|| -> Result<LoadedModel> {
            let selected = select_device(load.device)?.with_dtype(load.dtype)?;
            let options = LoadOptions { progress: Some(&report), cancel: Some(load.cancel.clone()), alongside };
            Ok(mae_model::source::load_model_with_settings(&load.location, &selected, &options, &load.hub)?)
        })();
        // The old model stays usable until the new one is in: a failed load changes nothing.
        match loaded {
            Ok(loaded) => {
                let info = model_info(&loaded, start.elapsed().as_secs_f64() * 1e3);
                match load.slot {
                    Slot::A => {
                        self.model = Some(loaded);
                        self.model_generation += 1;
                        self.forget_work();
                    }
                    Slot::B => self.compare = Some(CompareModel::new(loaded)),
                }
                responder.send(Response::ModelLoaded { id, info: Box::new(info) });
            }
            Err(error) => responder.send(Response::Failed { id, error: format!("{error:#}") }),
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
        // Attention maps are kept only while a panel shows them: they cost memory and some time.
        let attentions = request.view.needs_attentions();
        let mut forward_ms = None;
        let cached = self.output.as_ref().is_some_and(|(cached_key, output, _)| {
            *cached_key == key && (!attentions || !output.encoder_attentions.is_empty())
        });
        if !cached {
            let pixel_values = self.pixel_values(&request.image)?;
            let start = Instant::now();
            let output = self.loaded()?.model.forward(&pixel_values, &request.mask, ForwardOptions { attentions })?;
            let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
            forward_ms = Some(elapsed_ms);
            self.stats.forwards.fetch_add(1, Ordering::Relaxed);
            self.output = Some((key, output, elapsed_ms));
            self.output_head_stats = None;
            self.output_quality = None;
        }
        let render_start = Instant::now();
        if request.view.heads.is_some() && self.output_head_stats.is_none() {
            let (_, output, _) = self.output.as_ref().context("the forward pass left no output")?;
            self.output_head_stats = Some(Arc::new(head_stats(output, &[Stack::Encoder, Stack::Decoder])?));
        }
        if self.output_quality.is_none() {
            let (_, output, _) = self.output.as_ref().context("the forward pass left no output")?;
            let quality = DisplayPair::of(output, &self.loaded()?.preprocessor)?.quality(output);
            self.output_quality = Some(quality);
        }
        let quality = self.output_quality.context("the forward pass left no measurements")?;
        let (_, output, made_in_ms) = self.output.as_ref().context("the forward pass left no output")?;
        // Field by field (not `self.loaded()`), so model B's slot can be borrowed mutably beside A's output.
        let loaded = self.model.as_ref().context("no model is loaded")?;
        let (pictures, heads, overlay_error) = draw(output, loaded, &request.view, self.output_head_stats.as_ref())?;
        let compare = match (&request.compare_mask, self.compare.as_mut()) {
            (Some(mask), Some(compare)) => {
                let pixel_values = self.input.as_ref().map(|(_, values)| values.clone());
                let a = (loaded, output, &pictures);
                let pair = run_compare(compare, a, pixel_values, &request, mask, &self.stats)?;
                Some(Box::new(pair))
            }
            _ => None,
        };
        Ok(ForwardResult {
            id: request.id,
            image_id: request.image.id,
            requested_masked: request.mask.requested_masked(output.num_patches()),
            mask_spec: request.mask,
            mask: output.masking.mask.clone(),
            grid: output.grid,
            patch_size: output.patch_size,
            patch_loss: output.patch_loss.clone(),
            quality,
            uses_target_statistics: output.norm_pix_loss,
            forward_ms,
            made_in_ms: *made_in_ms,
            render_ms: render_start.elapsed().as_secs_f64() * 1e3,
            pictures,
            heads,
            overlay_error,
            compare,
        })
    }
}

/// Model B's forward pass for the request A just answered, drawn and compared with A's. B sees A's pixel values and
/// visible set when both preprocess alike and cut the image into the same grid; otherwise it preprocesses the
/// image itself and draws its own mask with the same strategy, ratio and seed, and the result says so.
fn run_compare(
    compare: &mut CompareModel,
    (a_loaded, a_output, a_pictures): (&LoadedModel, &MaeOutput, &ResultPictures),
    a_pixel_values: Option<Tensor>,
    request: &ForwardRequest,
    mask: &MaskSpec,
    stats: &WorkerStats,
) -> Result<CompareResult> {
    let b_config = compare.loaded.model.config();
    let preprocessing_difference = compare.loaded.preprocessor.config.difference_from(&a_loaded.preprocessor.config);
    let same_preprocessing = preprocessing_difference.is_none();
    let b_grid = {
        let (height, width) = compare.loaded.preprocessor.config.target_size();
        (height / b_config.patch_size, width / b_config.patch_size)
    };
    let same_grid = b_grid == a_output.grid;
    let own_input = (!(same_preprocessing && same_grid)).then(|| {
        let why = match preprocessing_difference {
            Some(difference) if same_grid => format!("preprocesses images differently ({difference}, A's second)"),
            _ => format!(
                "cuts the image into another grid ({}×{} patches against A's {}×{})",
                b_grid.0, b_grid.1, a_output.grid.0, a_output.grid.1
            ),
        };
        format!(
            "B {why}: each model preprocessed the image itself and drew its own mask with the same strategy, ratio \
             and seed"
        )
    });
    let key = (request.image.id, mask.clone());
    // What the panels switched to B show; B's pictures are drawn in A's masked style.
    let b_view = match &request.view.for_b {
        Some(view) => ViewOptions { masked_style: request.view.masked_style, ..(**view).clone() },
        None => ViewOptions { masked_style: request.view.masked_style, ..ViewOptions::default() },
    };
    let attentions = b_view.needs_attentions();
    let mut forward_ms = None;
    let cached = compare
        .output
        .as_ref()
        .is_some_and(|(cached, output, _, _)| *cached == key && (!attentions || !output.encoder_attentions.is_empty()));
    if !cached {
        let pixel_values = match (same_preprocessing, a_pixel_values) {
            (true, Some(values)) => values,
            _ => match &compare.input {
                Some((image_id, values)) if *image_id == request.image.id => values.clone(),
                _ => {
                    let values = compare.loaded.preprocessor.pixel_values(&request.image.rgb, &Device::Cpu)?;
                    compare.input = Some((request.image.id, values.clone()));
                    values
                }
            },
        };
        let start = Instant::now();
        let output = compare.loaded.model.forward(&pixel_values, mask, ForwardOptions { attentions })?;
        let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
        forward_ms = Some(elapsed_ms);
        stats.forwards.fetch_add(1, Ordering::Relaxed);
        let quality = DisplayPair::of(&output, &compare.loaded.preprocessor)?.quality(&output);
        compare.output = Some((key, output, quality, elapsed_ms));
        compare.head_stats = None;
    }
    if b_view.heads.is_some() && compare.head_stats.is_none() {
        let (_, output, _, _) = compare.output.as_ref().context("model B's forward pass left no output")?;
        compare.head_stats = Some(Arc::new(head_stats(output, &[Stack::Encoder, Stack::Decoder])?));
    }
    let (_, b_output, quality, made_in_ms) =
        compare.output.as_ref().context("model B's forward pass left no output")?;
    let (pictures, heads, overlay_error) = draw(b_output, &compare.loaded, &b_view, compare.head_stats.as_ref())?;
    let comparable = own_input.is_none() && b_output.norm_pix_loss == a_output.norm_pix_loss;
    let difference = if comparable {
        let masked: Vec<bool> = a_output.masking.mask.iter().map(|&m| m > 0.5).collect();
        let side = a_output.patch_size as u32;
        Ok(loss_difference(&a_output.patch_loss, &b_output.patch_loss, &masked, a_output.grid, side))
    } else {
        let why = if own_input.is_some() {
            "the two models did not see the same patches, so their losses are shown side by side".to_string()
        } else {
            "one model's loss is on normalised pixels (norm-pix) and the other's is not, so their losses are shown \
             side by side"
                .to_string()
        };
        let a_loss = loss_overlay(&a_pictures.original, a_output, Colormap::Viridis, LOSS_ALPHA);
        let b_loss = loss_overlay(&pictures.original, b_output, Colormap::Viridis, LOSS_ALPHA);
        Err(NoDifference { why, a_loss, b_loss })
    };
    Ok(CompareResult {
        name: compare.loaded.name.clone(),
        pictures,
        heads,
        quality: *quality,
        uses_target_statistics: b_output.norm_pix_loss,
        masked_patches: b_output.masking.num_masked(),
        mask: b_output.masking.mask.clone(),
        patch_loss: b_output.patch_loss.clone(),
        overlay_error,
        forward_ms,
        made_in_ms: *made_in_ms,
        own_input,
        difference,
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
    view: &ViewOptions,
    stats: Option<&Arc<Vec<HeadStats>>>,
) -> Result<(ResultPictures, Option<HeadsResult>, Option<String>)> {
    let panels = render_panels(output, &loaded.preprocessor, &PanelOptions { masked_style: view.masked_style })?;
    let mut overlay_error = None;
    let attention = view.attention.as_ref().and_then(|attention_view| {
        attention_overlay(output, &panels.original, attention_view)
            .map_err(|error| overlay_error = Some(format!("attention: {error:#}")))
            .ok()
    });
    let loss = view.loss.as_ref().map(|loss| loss_overlay(&panels.original, output, loss.colormap, loss.alpha));
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
