//! What the window and the worker thread say to each other. Requests carry an id that their responses repeat;
//! pictures travel as `image::RgbaImage` (the window converts them for egui when it uploads them).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use candle_core::DType;
use image::{RgbImage, RgbaImage};
use mae_model::hub::HubSettings;
use mae_model::{DeviceChoice, DownloadProgress, MaskSpec, MaskStrategy, ModelLocation, Quality, SizeRule};

use crate::head_stats::HeadStats;
use crate::jobs::animation::AnimationJob;
use crate::jobs::evaluate::{EvaluationJob, ItemEvaluation};
use crate::jobs::grid::CheckedGridJob;
use crate::render::Colormap;
use crate::render::attention::{AttentionSelection, Query, Stack};
use crate::render::compare::Difference;
use crate::render::gallery::{Gallery, GalleryScale};
use crate::render::panels::MaskedStyle;

/// An image the window has opened, shared with the worker without copying. `id` changes whenever the picture does.
#[derive(Clone, Debug)]
pub struct ImageInput {
    pub id: u64,
    pub rgb: Arc<RgbImage>,
    /// File name or "pasted image", for titles and export captions.
    pub name: String,
    /// The size it is fed to the models at (a new size is a new id: every cache of the old one is void).
    pub size: SizeRule,
}

/// The attention overlay to draw over the original.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AttentionView {
    pub selection: AttentionSelection,
    pub colormap: Colormap,
    /// Opacity of the heatmap over the picture.
    pub alpha: f32,
}

impl Default for AttentionView {
    fn default() -> Self {
        Self { selection: AttentionSelection::default(), colormap: Colormap::Inferno, alpha: 0.6 }
    }
}

/// The per-patch loss overlay to draw over the original.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LossView {
    pub colormap: Colormap,
    pub alpha: f32,
}

impl Default for LossView {
    fn default() -> Self {
        Self { colormap: Colormap::Viridis, alpha: 0.7 }
    }
}

/// The head gallery to draw (statistics of every head come with it).
#[derive(Clone, Debug, PartialEq)]
pub struct HeadsView {
    pub stack: Stack,
    pub query: Query,
    pub scale: GalleryScale,
    pub colormap: Colormap,
}

/// How a result is drawn (not what is computed): changing only these re-draws the cached forward passes instead of
/// running the models again. Each panel that is open adds what it shows, for the model it shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ViewOptions {
    pub masked_style: MaskedStyle,
    /// What each model's result should carry besides its pictures, by the model's place in the list (a model
    /// past the end wants nothing more).
    pub models: Vec<ModelView>,
}

/// The overlays one model's result is drawn with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelView {
    /// `None` while no open panel shows this model's attention (then its forward pass keeps no attention maps).
    pub attention: Option<AttentionView>,
    /// `None` while no open panel shows its loss overlay.
    pub loss: Option<LossView>,
    /// `None` while no open panel shows its head gallery.
    pub heads: Option<HeadsView>,
}

impl ModelView {
    /// Whether the forward pass must keep its attention probabilities.
    pub fn needs_attentions(&self) -> bool {
        self.attention.is_some() || self.heads.is_some()
    }
}

impl ViewOptions {
    /// Where a panel adds what it shows of the model at `index`.
    pub fn for_model(&mut self, index: usize) -> &mut ModelView {
        if self.models.len() <= index {
            self.models.resize_with(index + 1, ModelView::default);
        }
        &mut self.models[index]
    }

    /// What the model at `index` is drawn with.
    pub fn model(&self, index: usize) -> ModelView {
        self.models.get(index).cloned().unwrap_or_default()
    }
}

/// The most models the window holds: the one every panel shows and three compared with it.
pub const MAX_MODELS: usize = 4;

/// The letter the window calls the model at `index` by: A for the first, then B, C, D.
pub fn model_letter(index: usize) -> char {
    char::from(b'A' + index.min(25) as u8)
}

/// One forward pass of every loaded model on one image and mask, drawn.
#[derive(Clone, Debug)]
pub struct ForwardRequest {
    pub id: u64,
    pub image: ImageInput,
    /// The mask on screen, as the first model's patch grid names it.
    pub mask: MaskSpec,
    pub view: ViewOptions,
}

/// A model to load, replacing the current one once it is ready.
#[derive(Clone, Debug)]
pub struct LoadRequest {
    pub location: ModelLocation,
    pub device: DeviceChoice,
    /// f32, or f16/bf16 on a GPU.
    pub dtype: DType,
    /// Set it to abandon a download in progress.
    pub cancel: Arc<AtomicBool>,
    /// The Hugging Face cache and network settings to load hub models with.
    pub hub: HubSettings,
    /// Which of the window's models it becomes: 0 is the one every panel shows; an index past the end adds it
    /// (up to [`MAX_MODELS`]); the rest stay in memory beside it.
    pub index: usize,
}

#[derive(Debug)]
pub enum Request {
    LoadModel {
        id: u64,
        load: LoadRequest,
    },
    Forward(Box<ForwardRequest>),
    /// The slider is being dragged: answer from the sweep cache (no forward pass, no attention maps), with the
    /// exact entry or the nearest one cached; a forward pass runs only while no sweep of this image, strategy and
    /// seed exists yet. Answered with `Forward`, each model's result saying what it shows ([`Scrubbed`]).
    Scrub(Box<ForwardRequest>),
    /// Stops the sweeps in progress (a new image, strategy or seed starts new ones).
    StopSweep,
    /// Mean and spread of the pasted-back pictures over several seeds at one ratio, in the background.
    Ensemble {
        id: u64,
        image: ImageInput,
        strategy: MaskStrategy,
        ratio: f64,
        seeds: Vec<u64>,
        colormap: Colormap,
    },
    /// Compute a comparison grid and write it to a picture file.
    ExportGrid {
        id: u64,
        job: Box<CheckedGridJob>,
        path: PathBuf,
    },
    /// Compute an animation (a grid per frame) and write it to a GIF or APNG file.
    ExportAnimation {
        id: u64,
        job: Box<AnimationJob>,
        path: PathBuf,
    },
    /// Evaluates every image of a folder at one mask, one image per step in the background (the Dataset panel).
    EvaluateFolder {
        id: u64,
        job: Box<EvaluationJob>,
    },
    /// Stops the background job with this id (answered with nothing more for it).
    Cancel {
        id: u64,
    },
    /// Frees the compared model at `index` (1 or more); the ones after it move up a place.
    CloseModel {
        index: usize,
    },
    /// The model at `index` becomes the first (the one every panel shows) and the first takes its place;
    /// answered with `Swapped`.
    SwapWithFirst {
        id: u64,
        index: usize,
    },
    /// Panics inside the worker. Exists so tests (and the curious) can check that a crash is shown and survived.
    Crash,
}

/// What a model load is doing.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadProgress {
    /// Reading (and checking) the files.
    Reading,
    /// Downloading from the hub; can be cancelled.
    Downloading(DownloadProgress),
}

impl LoadProgress {
    /// How far the download has come, when its size is known.
    pub fn fraction(&self) -> Option<f32> {
        match self {
            LoadProgress::Downloading(DownloadProgress { downloaded, total: Some(total), .. }) if *total > 0 => {
                Some((*downloaded as f64 / *total as f64).clamp(0.0, 1.0) as f32)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for LoadProgress {
    /// "reading the model files" / "downloading model.safetensors: 120 of 448 MB (27 %)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MB: f64 = 1e6;
        match self {
            LoadProgress::Reading => f.write_str("reading the model files"),
            LoadProgress::Downloading(progress) => {
                let done = progress.downloaded as f64 / MB;
                match progress.total {
                    Some(total) if total > 0 => write!(
                        f,
                        "downloading {}: {done:.0} of {:.0} MB ({:.0} %)",
                        progress.file,
                        total as f64 / MB,
                        100.0 * progress.downloaded as f64 / total as f64
                    ),
                    _ => write!(f, "downloading {}: {done:.0} MB", progress.file),
                }
            }
        }
    }
}

/// What the model is, for the status line and the controls' ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    /// "cpu", "cuda" or "metal".
    pub device: String,
    pub dtype: DType,
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

/// The pictures of one result, at model resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultPictures {
    pub original: RgbaImage,
    pub mask: RgbaImage,
    pub masked: RgbaImage,
    pub reconstruction: RgbaImage,
    pub pasted: RgbaImage,
    pub attention: Option<RgbaImage>,
    pub loss: Option<RgbaImage>,
}

/// A finished forward pass of every model, drawn.
#[derive(Clone, Debug)]
pub struct ForwardResult {
    pub id: u64,
    pub image_id: u64,
    /// The mask spec this result was computed for (so a test or the UI can tell which request it answers).
    pub mask_spec: MaskSpec,
    pub render_ms: f64,
    /// One per model that ran, in the list's order; the first model's always comes first.
    pub models: Vec<ModelResult>,
}

/// One model's side of a forward result.
#[derive(Clone, Debug)]
pub struct ModelResult {
    /// The model's place in the list (0: the one every panel shows).
    pub index: usize,
    /// The model's name, as its model info has it.
    pub name: String,
    /// Identifies the pictures for texture uploads (every model's of every result differ).
    pub texture_key: u64,
    /// 1 = masked, per spatial patch of this model's grid.
    pub mask: Vec<f32>,
    pub grid: (usize, usize),
    pub patch_size: usize,
    pub patch_loss: Vec<f32>,
    /// How many patches the mask aimed for, where it aims for a count (a block mask may stop short).
    pub requested_masked: Option<usize>,
    /// Losses, PSNR and SSIM of the pasted-back picture against the original.
    pub quality: Quality,
    pub uses_target_statistics: bool,
    /// `None` when the result was re-drawn from the model's cached forward pass.
    pub forward_ms: Option<f64>,
    /// How long the forward pass that made this output took, also when it ran for an earlier request.
    pub made_in_ms: f64,
    /// The pictures, with the overlays the panels showing this model asked for.
    pub pictures: ResultPictures,
    /// The head gallery and every head's statistics, when a panel asked for them.
    pub heads: Option<HeadsResult>,
    /// Drawing an overlay failed (the rest of the result is fine).
    pub overlay_error: Option<String>,
    /// Shown from the sweep cache while the slider is dragged: which entry; `None` after a forward pass.
    pub scrubbed: Option<Scrubbed>,
    /// Why this model preprocessed the image itself and drew its own mask (same strategy, ratio and seed) instead
    /// of seeing the first model's pixels and visible set; `None` when it saw exactly the same (and for the first).
    pub own_input: Option<String>,
    /// The per-patch loss difference from the first model, or why none is drawn with each model's loss map
    /// instead; `None` for the first model itself.
    pub difference: Option<Result<Difference, NoDifference>>,
}

/// A result shown from the sweep cache.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scrubbed {
    /// Whether the entry is the slider's own mask; otherwise the cached one nearest to it, until its own is cached.
    pub exact: bool,
    /// The fraction of patches the shown entry's mask was asked to hide (a block or centre mask may hide fewer).
    pub masked_fraction: f64,
}

/// Where every model's sweep stands (sent at most ten times a second, and when the sweeps finish or stop).
#[derive(Clone, Debug, PartialEq)]
pub struct SweepReport {
    pub image_id: u64,
    pub strategy: MaskStrategy,
    pub seed: u64,
    /// One per model with a sweep, in the list's order.
    pub models: Vec<ModelSweep>,
}

/// One model's sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSweep {
    /// The model's place in the list.
    pub index: usize,
    /// Entries cached, of those the sweep computes.
    pub done: usize,
    pub total: usize,
    /// Forward passes the sweep ran.
    pub forwards: usize,
    /// Memory the entries hold.
    pub bytes: u64,
    /// Why the sweep stopped early, in words.
    pub stopped: Option<String>,
    /// Mean masked loss against the fraction of patches asked to be masked, at every cached entry, lowest first.
    pub curve: Vec<(f64, Option<f32>)>,
}

impl ModelSweep {
    /// Nothing more will be cached.
    pub fn is_over(&self) -> bool {
        self.done >= self.total || self.stopped.is_some()
    }
}

impl SweepReport {
    pub fn is_over(&self) -> bool {
        self.models.iter().all(ModelSweep::is_over)
    }

    pub fn model(&self, index: usize) -> Option<&ModelSweep> {
        self.models.iter().find(|model| model.index == index)
    }
}

/// Why two losses are not compared patch by patch, with each model's loss map to show side by side.
#[derive(Clone, Debug)]
pub struct NoDifference {
    pub why: String,
    /// The first model's loss map, and this one's.
    pub first_loss: RgbaImage,
    pub own_loss: RgbaImage,
}

impl ModelResult {
    /// The mask as flags, true = masked, per spatial patch.
    pub fn masked_patches(&self) -> Vec<bool> {
        self.mask.iter().map(|&m| m > 0.5).collect()
    }
}

impl ForwardResult {
    /// The first model's result: the one every panel shows unless switched to another.
    pub fn first(&self) -> &ModelResult {
        &self.models[0]
    }

    /// The result of the model at `index` of the list, when it ran.
    pub fn model(&self, index: usize) -> Option<&ModelResult> {
        self.models.iter().find(|model| model.index == index)
    }

    /// How many masked patches each model wins, for the first and every model compared with it patch by patch
    /// (the same patches seen, loss measured alike): (the model's place in the list, its wins).
    pub fn wins(&self) -> Vec<(usize, usize)> {
        let comparable: Vec<&ModelResult> = self
            .models
            .iter()
            .filter(|model| model.index == 0 || model.difference.as_ref().is_some_and(Result::is_ok))
            .collect();
        let losses: Vec<&[f32]> = comparable.iter().map(|model| model.patch_loss.as_slice()).collect();
        let wins = crate::render::compare::lowest_loss_wins(&losses, &self.first().masked_patches());
        comparable.iter().map(|model| model.index).zip(wins).collect()
    }
}

/// Every head's statistics (encoder then decoder) and the gallery of one stack.
#[derive(Clone, Debug)]
pub struct HeadsResult {
    pub stats: Arc<Vec<HeadStats>>,
    pub gallery: Gallery,
}

#[derive(Clone, Debug)]
pub struct EnsembleResult {
    pub id: u64,
    pub image_id: u64,
    pub ratio: f64,
    pub seeds: Vec<u64>,
    pub mean: RgbaImage,
    pub std: RgbaImage,
    /// Largest per-pixel standard deviation (0–255 display units): the top of the std colour scale.
    pub max_std: f32,
    /// How many seeds masked each patch.
    pub times_masked: Vec<u32>,
}

#[derive(Debug)]
pub enum Response {
    ModelLoading {
        id: u64,
        progress: LoadProgress,
    },
    ModelLoaded {
        id: u64,
        info: Box<ModelInfo>,
    },
    Forward(Box<ForwardResult>),
    /// A background job or export has done `done` of `total` forward passes.
    Progress {
        id: u64,
        done: usize,
        total: usize,
    },
    Sweep(Box<SweepReport>),
    Ensemble(Box<EnsembleResult>),
    Exported {
        id: u64,
        path: PathBuf,
    },
    /// Models A and B changed places.
    Swapped {
        id: u64,
    },
    /// One image of a folder evaluated (`index` into the job's items).
    DatasetRow {
        id: u64,
        index: usize,
        evaluation: Box<ItemEvaluation>,
    },
    /// The request with this id failed; `error` says why in one line.
    Failed {
        id: u64,
        error: String,
    },
    /// The worker panicked and carried on with its caches cleared; `message` says what happened.
    Restarted {
        message: String,
    },
}

impl Response {
    /// The id of the request this answers (`None` for a worker restart, which answers none).
    pub fn request_id(&self) -> Option<u64> {
        match self {
            Response::ModelLoading { id, .. }
            | Response::ModelLoaded { id, .. }
            | Response::Progress { id, .. }
            | Response::Exported { id, .. }
            | Response::Swapped { id }
            | Response::DatasetRow { id, .. }
            | Response::Failed { id, .. } => Some(*id),
            Response::Forward(result) => Some(result.id),
            Response::Ensemble(result) => Some(result.id),
            Response::Restarted { .. } | Response::Sweep(_) => None,
        }
    }
}
