//! What the window remembers between runs (eframe persistence): controls, display options, recent files, model.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::render::Colormap;
use crate::render::panels::MaskedStyle;
use crate::worker::{AttentionView, LossView};

/// Recent files kept in File → Open Recent.
pub const MAX_RECENT_FILES: usize = 8;

/// Largest seed ensemble offered (each seed is one forward pass).
pub const MAX_ENSEMBLE_SIZE: usize = 64;

/// How the masked patches are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaskMode {
    /// HF's random masking: `torch.manual_seed(seed); torch.rand(1, L)` at the mask ratio.
    #[default]
    Random,
    /// Exactly the patches the user painted.
    Painted,
}

/// The per-patch loss plot: bars sorted by loss, or a histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LossPlot {
    #[default]
    Sorted,
    Histogram,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub mask_ratio: f64,
    pub seed: u64,
    pub mask_mode: MaskMode,
    pub masked_style: MaskedStyle,
    /// Draw patches with nearest-neighbour filtering (crisp edges) rather than smoothed.
    pub nearest_filtering: bool,
    pub dark_theme: bool,
    pub show_attention: bool,
    pub attention: AttentionView,
    pub show_loss: bool,
    pub loss: LossView,
    pub loss_plot: LossPlot,
    pub show_ensemble: bool,
    /// Seeds in a seed ensemble (the current seed and the next ones).
    pub ensemble_size: usize,
    pub ensemble_colormap: Colormap,
    pub recent_files: Vec<PathBuf>,
    /// The model last loaded successfully (used when `--model` is not given).
    pub model: Option<String>,
    pub device: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mask_ratio: 0.75,
            seed: 2,
            mask_mode: MaskMode::Random,
            masked_style: MaskedStyle::MeanGrey,
            nearest_filtering: true,
            dark_theme: true,
            show_attention: false,
            attention: AttentionView::default(),
            show_loss: false,
            loss: LossView::default(),
            loss_plot: LossPlot::Sorted,
            show_ensemble: false,
            ensemble_size: 8,
            ensemble_colormap: Colormap::Magma,
            recent_files: Vec::new(),
            model: None,
            device: None,
        }
    }
}

impl Settings {
    /// Puts `path` first in the recent files, without duplicates, keeping at most `MAX_RECENT_FILES`.
    pub fn remember_file(&mut self, path: PathBuf) {
        self.recent_files.retain(|known| *known != path);
        self.recent_files.insert(0, path);
        self.recent_files.truncate(MAX_RECENT_FILES);
    }

    /// Values read from an older or hand-edited settings file may be out of range: bring them back.
    pub fn sanitized(mut self) -> Self {
        if !(self.mask_ratio.is_finite() && (0.0..=1.0).contains(&self.mask_ratio)) {
            self.mask_ratio = Settings::default().mask_ratio;
        }
        self.attention.alpha = self.attention.alpha.clamp(0.0, 1.0);
        self.attention.discard_ratio = self.attention.discard_ratio.clamp(0.0, 0.99);
        self.loss.alpha = self.loss.alpha.clamp(0.0, 1.0);
        self.recent_files.truncate(MAX_RECENT_FILES);
        self.ensemble_size = self.ensemble_size.clamp(2, MAX_ENSEMBLE_SIZE);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_files_stay_unique_and_bounded() {
        let mut settings = Settings::default();
        for i in 0..20 {
            settings.remember_file(PathBuf::from(format!("{i}.png")));
        }
        settings.remember_file(PathBuf::from("15.png"));
        assert_eq!(settings.recent_files.len(), MAX_RECENT_FILES);
        assert_eq!(settings.recent_files[0], PathBuf::from("15.png"));
        assert_eq!(settings.recent_files.iter().filter(|p| p.as_path() == std::path::Path::new("15.png")).count(), 1);
    }

    #[test]
    fn out_of_range_values_are_repaired() {
        let settings = Settings { mask_ratio: 7.0, ..Settings::default() }.sanitized();
        assert_eq!(settings.mask_ratio, 0.75);
        let json = r#"{"mask_ratio": 0.5, "unknown_field": 1}"#;
        let parsed: Settings = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.mask_ratio, 0.5);
        assert_eq!(parsed.seed, Settings::default().seed);
    }
}
