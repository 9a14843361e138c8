//! What the window and the worker thread say to each other. Requests carry an id that their responses repeat;
//! pictures travel as `image::RgbaImage` (the window converts them for egui when it uploads them).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use candle_core::DType;
use image::{RgbImage, RgbaImage};
use mae_model::hub::HubSettings;
use mae_model::{DeviceChoice, DownloadProgress, MaskSpec, MaskStrategy, ModelLocation, Quality};

use crate::head_stats::HeadStats;
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

/// How a result is drawn (not what is computed): changing only these re-draws the cached forward pass instead of
/// running the model again. Each panel that is open adds what it shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ViewOptions {
    pub masked_style: MaskedStyle,
    /// `None` while no open panel shows attention (then the forward pass keeps no attention maps).
    pub attention: Option<AttentionView>,
    /// `None` while no open panel shows the loss overlay.
    pub loss: Option<LossView>,
    /// `None` while no open panel shows the head gallery.
    pub heads: Option<HeadsView>,
    /// What the panels switched to model B want drawn from B's forward pass (`masked_style` is this one's).
    pub for_b: Option<Box<ViewOptions>>,
}

impl ViewOptions {
    /// Whether the forward pass must keep its attention probabilities.
    pub fn needs_attentions(&self) -> bool {
        self.attention.is_some() || self.heads.is_some()
    }

    /// Where a panel adds what it shows: this view for model A, or the one drawn from model B.
    pub fn for_slot(&mut self, slot: Slot) -> &mut ViewOptions {
        match slot {
            Slot::A => self,
            Slot::B => {
                let masked_style = self.masked_style;
                self.for_b.get_or_insert_with(|| Box::new(ViewOptions { masked_style, ..ViewOptions::default() }))
            }
        }
    }
}

/// One forward pass to run and draw — a pair when a second model is loaded.
#[derive(Clone, Debug)]
pub struct ForwardRequest {
    pub id: u64,
    pub image: ImageInput,
    pub mask: MaskSpec,
    pub view: ViewOptions,
    /// The mask for model B, when one is loaded and should be run too (the same spec as `mask` unless the two
    /// models cut the image into different patch grids).
    pub compare_mask: Option<MaskSpec>,
}

/// Which of the window's two model slots a load fills, or a panel shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Slot {
    #[default]
    /// The model every panel shows.
    A,
    /// The model A is compared with (the Compare panel).
    B,
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
    pub slot: Slot,
}

#[derive(Debug)]
pub enum Request {
    LoadModel {
        id: u64,
        load: LoadRequest,
    },
    Forward(Box<ForwardRequest>),
    /// Mean masked loss at each ratio (same image, strategy and seed), computed a point at a time in the background.
    LossCurve {
        id: u64,
        image: ImageInput,
        strategy: MaskStrategy,
        seed: u64,
        ratios: Vec<f64>,
    },
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
    /// Evaluates every image of a folder at one mask, one image per step in the background (the Dataset panel).
    EvaluateFolder {
        id: u64,
        job: Box<EvaluationJob>,
    },
    /// Stops the background job with this id (answered with nothing more for it).
    Cancel {
        id: u64,
    },
    /// Frees model B (closing the comparison).
    CloseCompare,
    /// Model A becomes B and B becomes A; answered with `Swapped`.
    SwapModels {
        id: u64,
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
    /// How many patches the mask aimed for, where it aims for a count (a block mask may stop short).
    pub requested_masked: Option<usize>,
    /// Losses, PSNR and SSIM of the pasted-back picture against the original.
    pub quality: Quality,
    pub uses_target_statistics: bool,
    /// `None` when the result was re-drawn from the cached forward pass.
    pub forward_ms: Option<f64>,
    /// How long the forward pass that made this output took, also when it ran for an earlier request.
    pub made_in_ms: f64,
    pub render_ms: f64,
    pub pictures: ResultPictures,
    /// The head gallery and every head's statistics, when a panel asked for them.
    pub heads: Option<HeadsResult>,
    /// Drawing an overlay failed (the rest of the result is fine).
    pub overlay_error: Option<String>,
    /// Model B's result for the same request, when a second model is loaded.
    pub compare: Option<Box<CompareResult>>,
}

/// Model B's side of a forward pair, and how it compares with A's.
#[derive(Clone, Debug)]
pub struct CompareResult {
    /// B's name, as its model info has it.
    pub name: String,
    /// B's pictures, with the overlays the panels switched to B asked for (`ViewOptions::for_b`).
    pub pictures: ResultPictures,
    /// B's head gallery and statistics, when the Heads panel is switched to B.
    pub heads: Option<HeadsResult>,
    pub quality: Quality,
    pub uses_target_statistics: bool,
    pub masked_patches: usize,
    /// 1 = masked, per spatial patch of B's grid.
    pub mask: Vec<f32>,
    pub patch_loss: Vec<f32>,
    /// Drawing one of B's overlays failed.
    pub overlay_error: Option<String>,
    /// As `ForwardResult`'s: `None` when re-drawn from B's cached pass, and the time of the pass that made it.
    pub forward_ms: Option<f64>,
    pub made_in_ms: f64,
    /// Why B preprocessed the image itself and drew its own mask (same strategy, ratio and seed) instead of
    /// seeing A's pixels and visible set; `None` when both saw exactly the same.
    pub own_input: Option<String>,
    /// The per-patch loss difference, or why none is drawn with each model's loss map instead.
    pub difference: Result<Difference, NoDifference>,
}

/// Why the two losses are not compared patch by patch, with each model's loss map to show side by side.
#[derive(Clone, Debug)]
pub struct NoDifference {
    pub why: String,
    pub a_loss: RgbaImage,
    pub b_loss: RgbaImage,
}

impl Response {
    /// The id of the request this answers (`None` for a worker restart, which answers none).
    pub fn request_id(&self) -> Option<u64> {
        match self {
            Response::ModelLoading { id, .. }
            | Response::ModelLoaded { id, .. }
            | Response::Progress { id, .. }
            | Response::LossCurve { id, .. }
            | Response::Exported { id, .. }
            | Response::Swapped { id }
            | Response::DatasetRow { id, .. }
            | Response::Failed { id, .. } => Some(*id),
            Response::Forward(result) => Some(result.id),
            Response::Ensemble(result) => Some(result.id),
            Response::Restarted { .. } => None,
        }
    }
}

impl ForwardResult {
    /// The mask as flags, true = masked, per spatial patch.
    pub fn masked_patches(&self) -> Vec<bool> {
        self.mask.iter().map(|&m| m > 0.5).collect()
    }

    /// What one model of the result shows: A's, or B's when a pair was computed (`None` otherwise).
    pub fn side(&self, slot: Slot) -> Option<Side<'_>> {
        match (slot, &self.compare) {
            (Slot::A, _) => Some(Side {
                texture_key: self.id * 2,
                pictures: &self.pictures,
                heads: self.heads.as_ref(),
                patch_loss: &self.patch_loss,
                mask: &self.mask,
                quality: &self.quality,
                uses_target_statistics: self.uses_target_statistics,
            }),
            (Slot::B, Some(pair)) => Some(Side {
                texture_key: self.id * 2 + 1,
                pictures: &pair.pictures,
                heads: pair.heads.as_ref(),
                patch_loss: &pair.patch_loss,
                mask: &pair.mask,
                quality: &pair.quality,
                uses_target_statistics: pair.uses_target_statistics,
            }),
            (Slot::B, None) => None,
        }
    }
}

/// One model's side of a forward result, as the panels with an A/B switch read it.
#[derive(Clone, Copy, Debug)]
pub struct Side<'a> {
    /// Identifies the pictures for texture uploads (A's and B's of one result differ).
    pub texture_key: u64,
    pub pictures: &'a ResultPictures,
    pub heads: Option<&'a HeadsResult>,
    pub patch_loss: &'a [f32],
    /// 1 = masked, per spatial patch.
    pub mask: &'a [f32],
    pub quality: &'a Quality,
    pub uses_target_statistics: bool,
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
    LossCurve {
        id: u64,
        points: Vec<(f64, Option<f32>)>,
    },
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
