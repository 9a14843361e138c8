//! Seed ensembles: the same image masked with several seeds at one ratio. Where the pasted-back pictures
//! disagree, the model is unsure; where a patch was never masked they agree exactly.

use anyhow::{Result, bail};
use candle_core::Tensor;
use image::{Rgba, RgbaImage};
use mae_model::{ForwardOptions, MaeModel, MaskSpec, Preprocessor};

use super::colormap::Colormap;
use super::panels::{PanelOptions, render_panels};

#[derive(Clone, Debug)]
pub struct Ensemble {
    /// Per-pixel mean of the pasted-back pictures (rounded to 8 bits).
    pub mean: RgbaImage,
    /// `std_values` coloured with the chosen colormap, scaled over 0..its maximum.
    pub std: RgbaImage,
    /// Per-pixel standard deviation over seeds, in 0–255 display units (root mean of the three channels'
    /// population variances), row-major `H·W`.
    pub std_values: Vec<f32>,
    /// How many of the seeds masked each patch, spatial order.
    pub times_masked: Vec<u32>,
}

pub fn seed_ensemble(
    model: &MaeModel,
    preprocessor: &Preprocessor,
    pixel_values: &Tensor,
    ratio: f64,
    seeds: &[u64],
    colormap: Colormap,
) -> Result<Ensemble> {
    if seeds.is_empty() {
        bail!("a seed ensemble needs at least one seed");
    }
    let mut pictures = Vec::with_capacity(seeds.len());
    let mut times_masked: Vec<u32> = Vec::new();
    for &seed in seeds {
        let output =
            model.forward(pixel_values, &MaskSpec::Seed { seed, ratio }, ForwardOptions { attentions: false })?;
        times_masked.resize(output.num_patches(), 0);
        for (count, &masked) in times_masked.iter_mut().zip(&output.masking.mask) {
            *count += u32::from(masked != 0.0);
        }
        pictures.push(render_panels(&output, preprocessor, &PanelOptions::default())?.pasted);
    }
    let (width, height) = pictures[0].dimensions();
    let count = pictures.len() as f32;
    let mut mean = RgbaImage::new(width, height);
    let mut std_values = Vec::with_capacity((width * height) as usize);
    for y in 0..height {
        for x in 0..width {
            let mut mean_pixel = [0u8; 3];
            let mut variance_sum = 0.0f32;
            for (channel, mean_value) in mean_pixel.iter_mut().enumerate() {
                // Sums of 8-bit values are exact in f32, so identical values give a mean equal to each of them
                // and a variance of exactly 0: never-masked patches come out with std 0, not rounding noise.
                let values = pictures.iter().map(|picture| f32::from(picture.get_pixel(x, y)[channel]));
                let channel_mean = values.clone().sum::<f32>() / count;
                variance_sum += values.map(|v| (v - channel_mean).powi(2)).sum::<f32>() / count;
                *mean_value = channel_mean.round() as u8;
            }
            mean.put_pixel(x, y, Rgba([mean_pixel[0], mean_pixel[1], mean_pixel[2], 255]));
            std_values.push((variance_sum / 3.0).sqrt());
        }
    }
    let highest = std_values.iter().copied().fold(0.0f32, f32::max);
    let std = RgbaImage::from_fn(width, height, |x, y| {
        let value = std_values[(y * width + x) as usize];
        let [r, g, b] = colormap.color(if highest > 0.0 { value / highest } else { 0.0 });
        Rgba([r, g, b, 255])
    });
    Ok(Ensemble { mean, std, std_values, times_masked })
}
