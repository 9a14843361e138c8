//! The four panels (original, masked, reconstruction, pasted-back) plus the binary mask, at model resolution.

use anyhow::{Result, bail};
use image::{Rgba, RgbaImage};
use mae_model::{MaeOutput, Preprocessor};

use super::{patch_at, tensor_to_rgba};

/// How masked patches look in the "masked" panel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MaskedStyle {
    /// Normalized value 0, i.e. the ImageNet mean colour (what the MAE paper and demo show).
    #[default]
    MeanGrey,
    /// The original, darkened: shows what was hidden without pretending the model saw it.
    Dimmed,
    /// A light/dark checkerboard, unmistakably "no data".
    Checker,
}

impl MaskedStyle {
    pub const ALL: [MaskedStyle; 3] = [MaskedStyle::MeanGrey, MaskedStyle::Dimmed, MaskedStyle::Checker];

    pub fn name(self) -> &'static str {
        match self {
            MaskedStyle::MeanGrey => "mean grey",
            MaskedStyle::Dimmed => "dimmed",
            MaskedStyle::Checker => "checker",
        }
    }
}

/// `--masked-style`: mean-grey (also mean-gray, grey, gray), dimmed or checker.
impl clap::ValueEnum for MaskedStyle {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let value = match self {
            MaskedStyle::MeanGrey => {
                clap::builder::PossibleValue::new("mean-grey").aliases(["mean-gray", "grey", "gray"])
            }
            MaskedStyle::Dimmed => clap::builder::PossibleValue::new("dimmed"),
            MaskedStyle::Checker => clap::builder::PossibleValue::new("checker"),
        };
        Some(value)
    }
}

#[derive(Clone, Debug, Default)]
pub struct PanelOptions {
    pub masked_style: MaskedStyle,
}

/// Everything the main view shows for one forward pass, each `H×W` at model resolution.
#[derive(Clone, Debug)]
pub struct Panels {
    /// The de-normalized model input.
    pub original: RgbaImage,
    /// White where the mask tensor is 1 (patch removed), black where it is 0.
    pub mask: RgbaImage,
    /// The original with masked patches hidden as `MaskedStyle` says.
    pub masked: RgbaImage,
    /// The model's prediction for every patch (visible ones included).
    pub reconstruction: RgbaImage,
    /// Original pixels on visible patches (exactly), reconstruction on masked ones.
    pub pasted: RgbaImage,
    /// The reconstruction of a `norm_pix_loss` model was de-normalized with each target patch's own mean and
    /// std, which leaks information about the masked patches: say so wherever it is shown.
    pub uses_target_statistics: bool,
}

/// Dimmed patches keep this fraction of their brightness.
const DIM_FACTOR: f32 = 0.3;
const CHECKER_LIGHT: [u8; 3] = [205, 205, 205];
const CHECKER_DARK: [u8; 3] = [150, 150, 150];

pub fn render_panels(output: &MaeOutput, preprocessor: &Preprocessor, options: &PanelOptions) -> Result<Panels> {
    let original = tensor_to_rgba(&output.pixel_values, preprocessor)?;
    let reconstruction = tensor_to_rgba(&output.display_predictions()?, preprocessor)?;
    let (height, width) = output.image_size();
    if original.dimensions() != (width as u32, height as u32) || reconstruction.dimensions() != original.dimensions() {
        bail!("the model output does not match its {height}×{width} patch grid");
    }
    let mut panels = panels_from(original, reconstruction, &output.masking.mask, output.grid, preprocessor, options)?;
    panels.uses_target_statistics = output.norm_pix_loss;
    Ok(panels)
}

/// The panels of a result from the model input and reconstruction as pictures and the mask (1 = masked, per
/// spatial patch of `grid`): what [`render_panels`] draws after a forward pass, and what a cached sweep entry is
/// shown with (the same pixels).
pub fn panels_from(
    original: RgbaImage,
    reconstruction: RgbaImage,
    mask: &[f32],
    grid: (usize, usize),
    preprocessor: &Preprocessor,
    options: &PanelOptions,
) -> Result<Panels> {
    let (width, height) = original.dimensions();
    if reconstruction.dimensions() != original.dimensions() {
        bail!("the reconstruction is {:?} pixels and the original {:?}", reconstruction.dimensions(), (width, height));
    }
    if mask.len() != grid.0 * grid.1 {
        bail!("the mask has {} entries for {} patches", mask.len(), grid.0 * grid.1);
    }
    let masked_at = |x: u32, y: u32| mask[patch_at(x, y, width, height, grid)] != 0.0;
    // The mean grey is what a masked patch is in normalized space (0), de-normalized like everything else.
    let mean_grey = {
        let zeros = vec![0f32; 3];
        let pixel = preprocessor.denormalize_to_rgb(&zeros, 1, 1).get_pixel(0, 0).0;
        Rgba([pixel[0], pixel[1], pixel[2], 255])
    };
    let checker_cell = (width / grid.1.max(1) as u32 / 4).max(1);

    let mask = RgbaImage::from_fn(width, height, |x, y| {
        let level = if masked_at(x, y) { 255 } else { 0 };
        Rgba([level, level, level, 255])
    });
    let masked = RgbaImage::from_fn(width, height, |x, y| {
        let pixel = *original.get_pixel(x, y);
        if !masked_at(x, y) {
            return pixel;
        }
        match options.masked_style {
            MaskedStyle::MeanGrey => mean_grey,
            MaskedStyle::Dimmed => {
                let dim = |v: u8| (f32::from(v) * DIM_FACTOR).round() as u8;
                Rgba([dim(pixel[0]), dim(pixel[1]), dim(pixel[2]), 255])
            }
            MaskedStyle::Checker => {
                let [r, g, b] =
                    if (x / checker_cell + y / checker_cell).is_multiple_of(2) { CHECKER_LIGHT } else { CHECKER_DARK };
                Rgba([r, g, b, 255])
            }
        }
    });
    let pasted = RgbaImage::from_fn(width, height, |x, y| {
        if masked_at(x, y) { *reconstruction.get_pixel(x, y) } else { *original.get_pixel(x, y) }
    });
    Ok(Panels { original, mask, masked, reconstruction, pasted, uses_target_statistics: false })
}

/// Gap between pictures in [`side_by_side`], in pixels.
const SIDE_BY_SIDE_GAP: u32 = 8;

/// Pictures in a row, top-aligned, `SIDE_BY_SIDE_GAP` apart on white (the window's "save the four panels").
pub fn side_by_side(pictures: &[&RgbaImage]) -> RgbaImage {
    let gaps = SIDE_BY_SIDE_GAP * pictures.len().saturating_sub(1) as u32;
    let width = pictures.iter().map(|p| p.width()).sum::<u32>() + gaps;
    let height = pictures.iter().map(|p| p.height()).max().unwrap_or(0);
    let mut out = RgbaImage::from_pixel(width.max(1), height.max(1), Rgba([255, 255, 255, 255]));
    let mut left = 0;
    for picture in pictures {
        image::imageops::replace(&mut out, *picture, i64::from(left), 0);
        left += picture.width() + SIDE_BY_SIDE_GAP;
    }
    out
}
