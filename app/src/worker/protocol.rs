//! What the window and the worker thread say to each other. Requests carry an id that their responses repeat;
//! pictures travel as `image::RgbaImage` (the window converts them for egui when it uploads them).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use candle_core::DType;
use image::{RgbImage, RgbaImage};
use mae_model::hub::HubSettings;
use mae_model::{DeviceChoice, DownloadProgress, MaskSpec, ModelLocation};

use crate::head_stats::HeadStats;
use crate::jobs::grid::GridJob;
use crate::render::Colormap;
use crate::render::attention::{AttentionSelection, Query, Stack};
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
}

impl ViewOptions {
    /// Whether the forward pass must keep its attention probabilities.
    pub fn needs_attentions(&self) -> bool {
        self.attention.is_some() || self.heads.is_some()
    }
}

/// One forward pass to run and draw.
#[derive(Clone, Debug)]
pub struct ForwardRequest {
    pub id: u64,
    pub image: ImageInput,
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
}

#[derive(Debug)]
pub enum Request {
    LoadModel {
        id: u64,
        load: LoadRequest,
    },
    Forward(Box<ForwardRequest>),
    /// Mean masked loss at each ratio (same image and seed), computed a point at a time in the background.
    LossCurve {
        id: u64,
        image: ImageInput,
        seed: u64,
        ratios: Vec<f64>,
    },
    /// Mean and spread of the pasted-back pictures over several seeds at one ratio, in the background.
    Ensemble {
        id: u64,
        image: ImageInput,
        ratio: f64,
        seeds: Vec<u64>,
        colormap: Colormap,
    },
    /// Compute a comparison grid and write it to a picture file.
    ExportGrid {
        id: u64,
        job: Box<GridJob>,
        path: PathBuf,
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
    pub masked_loss: Option<f32>,
    pub visible_loss: Option<f32>,
    pub uses_target_statistics: bool,
    /// `None` when the result was re-drawn from the cached forward pass.
    pub forward_ms: Option<f64>,
    pub render_ms: f64,
    pub pictures: ResultPictures,
    /// The head gallery and every head's statistics, when a panel asked for them.
    pub heads: Option<HeadsResult>,
    /// Drawing an overlay failed (the rest of the result is fine).
    pub overlay_error: Option<String>,
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
