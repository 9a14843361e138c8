//! From model outputs to pictures. Pure functions: `MaeOutput` (and friends) in, `image::RgbaImage` out — no GUI
//! types and no forward passes (those are `crate::jobs`'), so the window, the commands and headless tests all draw
//! with the same code.

pub mod attention;
pub mod colormap;
pub mod compare;
pub mod ensemble;
pub mod gallery;
pub mod grid;
pub mod loss;
pub mod panels;
pub mod text;

pub use colormap::Colormap;

use anyhow::{Result, bail};
use candle_core::{Device, Tensor};
use image::{Rgba, RgbaImage};
use mae_model::Preprocessor;

/// A `[1, 3, H, W]` normalized tensor as the RGB picture a person sees (de-normalized, clipped, opaque).
pub fn tensor_to_rgba(tensor: &Tensor, preprocessor: &Preprocessor) -> Result<RgbaImage> {
    let (batch, channels, height, width) = tensor.dims4()?;
    if batch != 1 || channels != 3 {
        bail!("expected a [1, 3, H, W] image tensor, got {:?}", tensor.dims());
    }
    let values: Vec<f32> = tensor.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?;
    let rgb = preprocessor.denormalize_to_rgb(&values, height, width);
    Ok(image::DynamicImage::ImageRgb8(rgb).to_rgba8())
}

/// The spatial patch index under pixel (x, y) of a picture of `width`×`height` showing a `grid` of patches.
/// Works for pictures at any resolution, so overlays can be drawn on upscaled images too.
pub fn patch_at(x: u32, y: u32, width: u32, height: u32, (rows, cols): (usize, usize)) -> usize {
    let row = (y as usize * rows / height.max(1) as usize).min(rows.saturating_sub(1));
    let col = (x as usize * cols / width.max(1) as usize).min(cols.saturating_sub(1));
    row * cols + col
}

/// `base·(1 − alpha) + color·alpha`, per channel, keeping the base's alpha.
pub fn blend(base: Rgba<u8>, color: [u8; 3], alpha: f32) -> Rgba<u8> {
    let alpha = alpha.clamp(0.0, 1.0);
    let mix = |b: u8, c: u8| (f32::from(b) * (1.0 - alpha) + f32::from(c) * alpha).round() as u8;
    Rgba([mix(base[0], color[0]), mix(base[1], color[1]), mix(base[2], color[2]), base[3]])
}

/// How patches nobody looked at are drawn in heatmaps: almost black with a trace of the picture, so "empty"
/// reads at a glance and is never confused with a low score of any colormap.
pub fn empty_patch_pixel(base: Rgba<u8>) -> Rgba<u8> {
    blend(base, [24, 24, 24], 0.85)
}
