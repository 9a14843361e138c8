//! The session's settings, remembered between runs, and the mask modes they choose between.

use std::path::PathBuf;

use mae_model::{DeviceChoice, MaskStrategy, SizeRule};
use serde::{Deserialize, Serialize};

use crate::render::attention::Query;
use crate::render::panels::MaskedStyle;

/// Recent files kept in File → Open Recent.
pub const MAX_RECENT_FILES: usize = 8;

/// How the masked patches are chosen: one of the drawn strategies, a mask picture, or painted by hand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaskMode {
    /// HF's random masking: `torch.manual_seed(seed); torch.rand(1, L)` at the mask ratio.
    #[default]
    Random,
    /// BEiT's block-wise masking after Python's `random.seed(seed)`.
    Block,
    /// One patch of every 2×2 kept.
    Grid,
    /// A centred hole.
    Centre,
    /// The white patches of a mask picture (File → Open mask…, or a picture dropped while this is chosen).
    Image,
    /// Exactly the patches the user painted.
    Painted,
}

impl MaskMode {
    pub const ALL: [MaskMode; 6] =
        [MaskMode::Random, MaskMode::Block, MaskMode::Grid, MaskMode::Centre, MaskMode::Image, MaskMode::Painted];

    /// The drawn strategy, for the modes that are one.
    pub fn strategy(self) -> Option<MaskStrategy> {
        match self {
            MaskMode::Random => Some(MaskStrategy::Random),
            MaskMode::Block => Some(MaskStrategy::Block),
            MaskMode::Grid => Some(MaskStrategy::Grid),
            MaskMode::Centre => Some(MaskStrategy::Centre),
            MaskMode::Image | MaskMode::Painted => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            MaskMode::Random => "Random",
            MaskMode::Block => "Block",
            MaskMode::Grid => "Grid",
            MaskMode::Centre => "Centre",
            MaskMode::Image => "From a picture",
            MaskMode::Painted => "Painted",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            MaskMode::Random => "HF's random masking: the mask torch.manual_seed(seed) draws at the mask ratio",
            MaskMode::Block => {
                "BEiT's block-wise masking (MAE paper, Fig. 6) as transformers draws it after random.seed(seed); it \
                 may stop short of the ratio's count"
            }
            MaskMode::Grid => "One patch of every 2×2 kept (75% masked); the seed picks which of the four",
            MaskMode::Centre => "A centred rectangle of masked patches, as square as the grid allows",
            MaskMode::Image => {
                "The white areas of a picture (File > Open mask…, or drop a picture while this is chosen)"
            }
            MaskMode::Painted => {
                "Choose the masked patches yourself: click or drag over the original or masked picture"
            }
        }
    }

    /// Why the ratio slider does nothing in this mode, if it does nothing.
    pub fn ratio_unused_because(self) -> Option<&'static str> {
        match self {
            MaskMode::Grid => Some("A grid mask always hides 3 of every 4 patches (75%)"),
            MaskMode::Image => Some("The mask picture decides what is masked"),
            MaskMode::Painted => Some("In painted mode the painted patches decide what is masked"),
            _ => None,
        }
    }

    /// Whether the seed changes the mask in this mode.
    pub fn uses_seed(self) -> bool {
        self.strategy().is_some_and(MaskStrategy::uses_seed)
    }
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
    /// The mask picture last opened (read again at start when the mode is `Image`).
    pub mask_picture: Option<PathBuf>,
    /// The model last loaded successfully (used when `--model` is not given).
    pub model: Option<String>,
    /// The models compared with the first (B, C, D), loaded again at start until each is closed.
    pub compare_models: Vec<String>,
    pub device: String,
    pub dtype: String,
    /// The size pictures are fed to the model at (the Size control, `--size`).
    pub size: SizeRule,
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
            mask_picture: None,
            model: None,
            compare_models: Vec::new(),
            device: DeviceChoice::Auto.name().into(),
            dtype: "f32".into(),
            size: SizeRule::Model,
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
