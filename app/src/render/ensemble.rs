//! Seed ensembles drawn: the pasted-back pictures of the same image under several masks, summarized per pixel.
//! Where they disagree the model is unsure; where a patch was never masked they agree exactly. (The forward
//! passes themselves are `jobs::ensemble`'s.)

use image::{Rgba, RgbaImage};

use super::colormap::Colormap;

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

impl Ensemble {
    /// The largest per-pixel standard deviation: the top of the std picture's colour scale.
    pub fn max_std(&self) -> f32 {
        self.std_values.iter().copied().fold(0.0, f32::max)
    }
}

/// Mean and spread of `pictures` (all the same size, at least one).
pub fn summarize(pictures: &[RgbaImage], times_masked: Vec<u32>, colormap: Colormap) -> Ensemble {
    let (width, height) = pictures.first().map_or((0, 0), RgbaImage::dimensions);
    let count = pictures.len().max(1) as f32;
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
    Ensemble { mean, std, std_values, times_masked }
}
