//! The mask state: the painted mask, the mask picture and its patches for the model's input, and the paint stroke
//! in progress. Which of them is used is the settings' mask mode; drawn masks need nothing here.

use mae_model::{MaskSpec, Masking};

use super::settings::{MaskMode, SessionSettings};
use crate::jobs::masks::MaskPicture;

/// The mask picture as patches of one model input: ((height, width), patch size) → masked flags.
#[derive(Debug, Clone, PartialEq)]
struct PictureMask {
    input: ((usize, usize), usize),
    masked: Vec<bool>,
}

#[derive(Debug, Default)]
pub struct MaskState {
    /// Painted mode: true = masked, per spatial patch.
    pub painted: Vec<bool>,
    /// The mask picture (`Image` mode).
    pub picture: Option<MaskPicture>,
    /// The picture's mask for the model's input, once computed.
    picture_mask: Option<PictureMask>,
    /// Value of the paint stroke in progress (true = masking), so a drag paints instead of flickering.
    pub paint_stroke: Option<bool>,
}

impl MaskState {
    /// The mask the controls describe, for a model with `grid` patches.
    pub fn spec(&self, settings: &SessionSettings, grid: Option<(usize, usize)>) -> Option<MaskSpec> {
        let (seed, ratio) = (settings.seed, settings.mask_ratio);
        match settings.mask_mode {
            MaskMode::Painted => {
                let (rows, cols) = grid?;
                if self.painted.len() != rows * cols {
                    return None;
                }
                Some(MaskSpec::Keep { visible: unmasked(&self.painted) })
            }
            MaskMode::Image => Some(MaskSpec::Keep { visible: unmasked(&self.picture_mask.as_ref()?.masked) }),
            mode => Some(MaskSpec::Drawn { strategy: mode.strategy()?, seed, ratio }),
        }
    }

    /// Uses `picture` as the mask from now on; its patches are cut when a model is known.
    pub fn set_picture(&mut self, picture: MaskPicture) {
        self.picture = Some(picture);
        self.picture_mask = None;
    }

    /// Cuts the mask picture into the patches of a model input of `size` (height, width) cut into `patch`-pixel
    /// patches (once per picture and input). A picture that cannot be cut is dropped, and the error names it.
    pub fn fit_picture_to(&mut self, size: (usize, usize), patch: usize) -> Result<(), String> {
        let Some(picture) = &self.picture else { return Ok(()) };
        let input = (size, patch);
        if self.picture_mask.as_ref().is_some_and(|known| known.input == input) {
            return Ok(());
        }
        match mae_model::mask_picture::mask_from_picture(&picture.rgb, size, patch) {
            Ok(masked) => {
                self.picture_mask = Some(PictureMask { input, masked });
                Ok(())
            }
            Err(error) => {
                let name = picture.name.clone();
                self.picture = None;
                Err(format!("mask picture {name}: {error}"))
            }
        }
    }

    /// Makes the painted mask match `grid`, starting from `on_screen` (the mask shown, true = masked) when it fits,
    /// else from the random mask of the settings' seed and ratio.
    pub fn fit_painted_to(&mut self, grid: (usize, usize), on_screen: Option<Vec<bool>>, settings: &SessionSettings) {
        let patches = grid.0 * grid.1;
        if self.painted.len() == patches {
            return;
        }
        self.painted = match on_screen {
            Some(mask) if mask.len() == patches => mask,
            _ => random_mask(grid, settings),
        };
    }

    /// Painted mode: start again from the random mask of the current seed and ratio.
    pub fn paint_random(&mut self, grid: (usize, usize), settings: &SessionSettings) {
        self.painted = random_mask(grid, settings);
    }

    /// Flips one patch of the painted mask.
    pub fn toggle(&mut self, patch: usize) {
        if let Some(masked) = self.painted.get_mut(patch) {
            *masked = !*masked;
        }
    }
}

fn unmasked(masked: &[bool]) -> Vec<usize> {
    (0..masked.len()).filter(|&patch| !masked[patch]).collect()
}

/// HF's random mask of the settings' seed and ratio (all masked if the grid cannot be masked).
fn random_mask(grid: (usize, usize), settings: &SessionSettings) -> Vec<bool> {
    match Masking::new(&MaskSpec::random(settings.seed, settings.mask_ratio), grid) {
        Ok(masking) => masking.mask.iter().map(|&m| m > 0.5).collect(),
        Err(_) => vec![true; grid.0 * grid.1],
    }
}
