//! The worker's state between requests and what it does for each one.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use candle_core::{Device, Tensor};
use image::RgbaImage;
use mae_model::{DownloadProgress, ForwardOptions, LoadOptions, LoadedModel, MaeOutput, MaskSpec, select_device};

use super::protocol::{
    AttentionView, EnsembleResult, ForwardRequest, ForwardResult, HeadsResult, HeadsView, ImageInput, LoadProgress,
    LoadRequest, ModelInfo, Request, Response, ResultPictures, ViewOptions,
};
use super::{Responder, WorkerConfig, WorkerStats};
use crate::atomic_file::write_picture;
use crate::head_stats::{HeadStats, head_stats};
use crate::jobs::ensemble::SeedEnsemble;
use crate::jobs::grid::GridProgress;
use crate::jobs::loss_curve::LossCurve;
use crate::render::attention::{self, Stack};
use crate::render::gallery::{GallerySpec, THUMBNAIL_WIDTH, render_gallery};
use crate::render::loss::loss_overlay;
use crate::render::panels::{PanelOptions, render_panels};

/// Download progress is reported at most this often (the window redraws for each report).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// Work done one forward pass at a time while no request is waiting.
enum BackgroundJob {
    LossCurve { id: u64, curve: LossCurve },
    Ensemble { id: u64, image_id: u64, ensemble: SeedEnsemble },
}

impl BackgroundJob {
    fn id(&self) -> u64 {
        match self {
            BackgroundJob::LossCurve { id, .. } | BackgroundJob::Ensemble { id, .. } => *id,
        }
    }

    fn same_kind(&self, other: &BackgroundJob) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

pub(super) struct WorkerState {
    config: WorkerConfig,
    pub(super) stats: Arc<WorkerStats>,
    model: Option<LoadedModel>,
    /// Bumped on every model (re)load so caches keyed on it go stale.
    model_generation: u64,
    /// Preprocessed input of the last image: (model generation, image id) → pixel values.
    input: Option<((u64, u64), Tensor)>,
    /// The last forward pass: (model generation, image id, mask) → output.
    output: Option<((u64, u64, MaskSpec), MaeOutput)>,
    /// Every head's statistics of that output, once a panel asked for them.
    output_head_stats: Option<Arc<Vec<HeadStats>>>,
    /// In the order they were asked for; a new job replaces an older one of its kind (the window only wants the
    /// newest curve and the newest ensemble).
    background: Vec<BackgroundJob>,
}

impl WorkerState {
    pub(super) fn new(config: WorkerConfig, stats: Arc<WorkerStats>) -> Self {
        Self {
            config,
            stats,
            model: None,
            model_generation: 0,
            input: None,
            output: None,
            output_head_stats: None,
            background: Vec::new(),
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
        self.background.clear();
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
            Request::LossCurve { id, image, seed, ratios } => match self.pixel_values(&image) {
                Ok(pixel_values) => {
                    self.start(BackgroundJob::LossCurve { id, curve: LossCurve::new(pixel_values, seed, ratios) })
                }
                Err(error) => send(Response::Failed { id, error: format!("{error:#}") }),
            },
            Request::Ensemble { id, image, ratio, seeds, colormap } => {
                match self.pixel_values(&image).and_then(|values| SeedEnsemble::new(values, ratio, seeds, colormap)) {
                    Ok(ensemble) => self.start(BackgroundJob::Ensemble { id, image_id: image.id, ensemble }),
                    Err(error) => send(Response::Failed { id, error: format!("{error:#}") }),
                }
            }
            Request::ExportGrid { id, job, path } => {
                let result = self.loaded().and_then(|loaded| {
                    // Fail on a bad file name before computing anything.
                    crate::atomic_file::picture_format(&path)?;
                    let stats = &self.stats;
                    let picture = job.run(loaded, &mut |progress| {
                        if let GridProgress::Rows { done, total } = progress {
                            stats.forwards.fetch_add(1, Ordering::Relaxed);
                            send(Response::Progress { id, done, total });
                        }
                    })?;
                    write_picture(&picture, &path)
                });
                match result {
                    Ok(()) => send(Response::Exported { id, path }),
                    Err(error) => send(Response::Failed { id, error: format!("{error:#}") }),
                }
            }
            Request::Crash => panic!("crash requested"),
        }
    }

    fn start(&mut self, job: BackgroundJob) {
        self.background.retain(|queued| !queued.same_kind(&job));
        self.background.push(job);
    }

    /// Advances the oldest background job by one forward pass, answering when it is finished.
    pub(super) fn background_step(&mut self, responder: &Responder) {
        let Some(job) = self.background.first_mut() else { return };
        let id = job.id();
        let Some(loaded) = self.model.as_ref() else {
            self.background.remove(0);
            responder.send(Response::Failed { id, error: "no model is loaded".into() });
            return;
        };
        let stepped = match job {
            BackgroundJob::LossCurve { curve, .. } => curve.step(&loaded.model).map(|()| curve.progress()),
            BackgroundJob::Ensemble { ensemble, .. } => ensemble.step(loaded).map(|()| ensemble.progress()),
        };
        let (done, total) = match stepped {
            Ok(progress) => progress,
            Err(error) => {
                self.background.remove(0);
                responder.send(Response::Failed { id, error: format!("{error:#}") });
                return;
            }
        };
        self.stats.forwards.fetch_add(1, Ordering::Relaxed);
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
        let loaded = (|| -> Result<LoadedModel> {
            let selected = select_device(load.device)?.with_dtype(load.dtype)?;
            let options = LoadOptions { progress: Some(&report), cancel: Some(load.cancel.clone()) };
            Ok(mae_model::source::load_model_with_settings(&load.location, &selected, &options, &load.hub)?)
        })();
        // The old model stays usable until the new one is in: a failed load changes nothing.
        match loaded {
            Ok(loaded) => {
                let info = model_info(&loaded, start.elapsed().as_secs_f64() * 1e3);
                self.model = Some(loaded);
                self.model_generation += 1;
                self.forget_work();
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
            self.output_head_stats = None;
        }
        let render_start = Instant::now();
        if request.view.heads.is_some() && self.output_head_stats.is_none() {
            let (_, output) = self.output.as_ref().context("the forward pass left no output")?;
            self.output_head_stats = Some(Arc::new(head_stats(output, &[Stack::Encoder, Stack::Decoder])?));
        }
        let (_, output) = self.output.as_ref().context("the forward pass left no output")?;
        let loaded = self.loaded()?;
        let (pictures, heads, overlay_error) = draw(output, loaded, &request.view, self.output_head_stats.as_ref())?;
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
            uses_target_statistics: output.norm_pix_loss,
            forward_ms,
            render_ms: render_start.elapsed().as_secs_f64() * 1e3,
            pictures,
            heads,
            overlay_error,
        })
    }
}

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
    };
    render_gallery(output, base, &spec)
}

fn attention_overlay(output: &MaeOutput, base: &RgbaImage, view: &AttentionView) -> Result<RgbaImage> {
    let scores = attention::patch_scores(output, &view.selection)?;
    Ok(attention::overlay(base, &scores, output.grid, output.patch_size, view.colormap, view.alpha))
}
