//! How good a reconstruction is, as people compare them: PSNR and SSIM on the pictures a person sees, before they
//! are quantised to 8 bits. `original = clip(pixel_values·std + mean, 0, 1)`; `pasted_back` is the original on
//! visible patches and the displayed reconstruction (norm-pix undone, clipped the same way) on masked ones.
//!
//! SSIM is Wang et al. 2004 exactly as scikit-image's `structural_similarity(a, b, gaussian_weights=True,
//! sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1)` computes it: a Gaussian window
//! (σ = 1.5, truncated at 3.5σ: 11 taps) applied as SciPy's `gaussian_filter` with mirrored ("reflect") borders,
//! population statistics, K1 = 0.01, K2 = 0.03, each channel's SSIM map averaged after cropping 5 pixels from
//! every side, then the channels averaged. Everything is computed in f64.

use crate::error::Result;
use crate::outputs::MaeOutput;
use crate::preprocess::Preprocessor;

const SSIM_SIGMA: f64 = 1.5;
/// `int(3.5·σ + 0.5)`, the window radius scikit-image and SciPy use for σ = 1.5.
const SSIM_RADIUS: usize = 5;
const SSIM_C1: f64 = 0.01 * 0.01;
const SSIM_C2: f64 = 0.03 * 0.03;

/// The two pictures the metrics compare, channel-major `[3, H, W]` in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct DisplayPair {
    pub height: usize,
    pub width: usize,
    pub original: Vec<f32>,
    pub pasted_back: Vec<f32>,
    /// Per pixel (`H·W`): whether it lies in a masked patch.
    pub masked_pixels: Vec<bool>,
}

/// PSNR and SSIM of a result, plus its losses (the model's own measure).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quality {
    /// PSNR in dB over every pixel (+∞ for a perfect match).
    pub psnr_db: f64,
    /// PSNR over the masked pixels only (visible pixels are copied, so this is the honest one); `None` when
    /// nothing is masked.
    pub psnr_masked_db: Option<f64>,
    /// Mean SSIM over the three channels; `None` when the picture is smaller than the 11×11 window (scikit-image
    /// refuses such pictures too).
    pub ssim: Option<f64>,
    pub masked_loss: Option<f32>,
    pub visible_loss: Option<f32>,
    /// Patches masked ÷ patches: what the mask did, whatever ratio was asked (a grid mask masks 3/4 at any ratio).
    pub masked_fraction: f64,
}

impl DisplayPair {
    /// The original and pasted-back pictures of `output`, de-normalized as `preprocessor` says.
    pub fn of(output: &MaeOutput, preprocessor: &Preprocessor) -> Result<Self> {
        let (height, width) = output.image_size();
        let original =
            preprocessor.to_unit_range(&output.pixel_values.flatten_all()?.to_vec1::<f32>()?, height * width);
        let predicted =
            preprocessor.to_unit_range(&output.display_predictions()?.flatten_all()?.to_vec1::<f32>()?, height * width);
        let (cols, patch) = (output.grid.1, output.patch_size);
        let masked_pixels: Vec<bool> = (0..height * width)
            .map(|index| {
                let (y, x) = (index / width, index % width);
                output.masking.is_masked((y / patch) * cols + x / patch)
            })
            .collect();
        let plane = height * width;
        let pasted_back = original
            .iter()
            .zip(&predicted)
            .enumerate()
            .map(|(index, (&seen, &guessed))| if masked_pixels[index % plane] { guessed } else { seen })
            .collect();
        Ok(Self { height, width, original, pasted_back, masked_pixels })
    }

    pub fn quality(&self, output: &MaeOutput) -> Quality {
        let plane = self.height * self.width;
        let everywhere = vec![true; plane];
        let any_masked = self.masked_pixels.iter().any(|m| *m);
        Quality {
            psnr_db: psnr(&self.original, &self.pasted_back, &everywhere),
            psnr_masked_db: any_masked.then(|| psnr(&self.original, &self.pasted_back, &self.masked_pixels)),
            ssim: ssim(&self.original, &self.pasted_back, self.height, self.width),
            masked_loss: output.loss,
            visible_loss: output.visible_loss(),
            masked_fraction: output.masking.num_masked() as f64 / output.masking.num_patches().max(1) as f64,
        }
    }
}

/// `10·log10(1 / MSE)` over the pixels `included` selects (all channels), data range 1; +∞ when identical.
pub fn psnr(a: &[f32], b: &[f32], included: &[bool]) -> f64 {
    let plane = included.len();
    let (mut sum, mut count) = (0.0f64, 0usize);
    for (index, (&x, &y)) in a.iter().zip(b).enumerate() {
        if included[index % plane] {
            let difference = f64::from(x) - f64::from(y);
            sum += difference * difference;
            count += 1;
        }
    }
    let mse = sum / count as f64;
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (1.0 / mse).log10() }
}

/// Mean SSIM of two `[channels, H, W]` pictures in [0, 1] (see the module's header for the exact definition).
pub fn ssim(a: &[f32], b: &[f32], height: usize, width: usize) -> Option<f64> {
    let window = 2 * SSIM_RADIUS + 1;
    if height < window || width < window {
        return None;
    }
    let plane = height * width;
    let channels = a.len() / plane;
    let weights = gaussian_weights();
    let mut total = 0.0;
    for channel in 0..channels {
        let x: Vec<f64> = a[channel * plane..(channel + 1) * plane].iter().map(|&v| f64::from(v)).collect();
        let y: Vec<f64> = b[channel * plane..(channel + 1) * plane].iter().map(|&v| f64::from(v)).collect();
        let product = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(u, v)| u * v).collect::<Vec<f64>>();
        let blur = |values: &[f64]| gaussian_filter(values, height, width, &weights);
        let (mean_x, mean_y) = (blur(&x), blur(&y));
        let (mean_xx, mean_yy, mean_xy) = (blur(&product(&x, &x)), blur(&product(&y, &y)), blur(&product(&x, &y)));
        let mut sum = 0.0;
        for row in SSIM_RADIUS..height - SSIM_RADIUS {
            for col in SSIM_RADIUS..width - SSIM_RADIUS {
                let i = row * width + col;
                let (ux, uy) = (mean_x[i], mean_y[i]);
                let (vx, vy, vxy) = (mean_xx[i] - ux * ux, mean_yy[i] - uy * uy, mean_xy[i] - ux * uy);
                let numerator = (2.0 * ux * uy + SSIM_C1) * (2.0 * vxy + SSIM_C2);
                let denominator = (ux * ux + uy * uy + SSIM_C1) * (vx + vy + SSIM_C2);
                sum += numerator / denominator;
            }
        }
        total += sum / ((height - 2 * SSIM_RADIUS) * (width - 2 * SSIM_RADIUS)) as f64;
    }
    Some(total / channels as f64)
}

/// SciPy's `_gaussian_kernel1d(1.5, 0, 5)`: `exp(−x²/2σ²)` over −5..=5, normalised to sum 1.
fn gaussian_weights() -> Vec<f64> {
    let raw: Vec<f64> = (-(SSIM_RADIUS as i64)..=SSIM_RADIUS as i64)
        .map(|x| (-0.5 / (SSIM_SIGMA * SSIM_SIGMA) * (x * x) as f64).exp())
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|w| w / sum).collect()
}

/// SciPy's "reflect" border: `d c b a | a b c d | d c b a`, repeated for offsets beyond the picture.
fn reflect(index: i64, length: usize) -> usize {
    let period = 2 * length as i64;
    let folded = index.rem_euclid(period);
    (if folded < length as i64 { folded } else { period - 1 - folded }) as usize
}

/// The separable Gaussian of one `H×W` plane: rows, then columns. The reflected neighbour of every position is
/// looked up once per axis rather than per tap (folding each index cost a dump ~80 ms); the taps are summed in the
/// same order, so the result is unchanged.
fn gaussian_filter(values: &[f64], height: usize, width: usize, weights: &[f64]) -> Vec<f64> {
    let radius = SSIM_RADIUS as i64;
    let neighbours = |length: usize| -> Vec<usize> {
        (-radius..length as i64 + radius).map(|index| reflect(index, length)).collect()
    };
    let (columns, rows) = (neighbours(width), neighbours(height));
    let taps = weights.len();
    let mut along_rows = vec![0.0; values.len()];
    for (source, target) in values.chunks_exact(width).zip(along_rows.chunks_exact_mut(width)) {
        for (col, value) in target.iter_mut().enumerate() {
            *value = weights.iter().zip(&columns[col..col + taps]).map(|(w, &c)| w * source[c]).sum();
        }
    }
    let mut filtered = vec![0.0; values.len()];
    for (row, target) in filtered.chunks_exact_mut(width).enumerate() {
        let source_rows = &rows[row..row + taps];
        for (col, value) in target.iter_mut().enumerate() {
            *value = weights.iter().zip(source_rows).map(|(w, &r)| w * along_rows[r * width + col]).sum();
        }
    }
    filtered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_mirrors_about_the_edge() {
        let indices: Vec<usize> = (-4..8).map(|i| reflect(i, 3)).collect();
        assert_eq!(indices, vec![2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1]);
    }

    #[test]
    fn identical_pictures_are_perfect() {
        let picture: Vec<f32> = (0..3 * 16 * 16).map(|i| (i % 7) as f32 / 7.0).collect();
        assert_eq!(psnr(&picture, &picture, &[true; 256]), f64::INFINITY);
        assert!((ssim(&picture, &picture, 16, 16).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(ssim(&picture[..3 * 100], &picture[..3 * 100], 10, 10), None);
    }

    #[test]
    fn psnr_of_a_known_error() {
        // Every value off by 0.1: MSE 0.01, PSNR 20 dB; counting only the second pixel, it is off by 0.2: ~14 dB.
        let a = [0.5f32; 6];
        let b = [0.4f32, 0.3, 0.4, 0.3, 0.4, 0.3];
        let every = psnr(&a, &[0.4; 6], &[true, true]);
        assert!((every - 20.0).abs() < 1e-5, "{every}");
        let second = psnr(&a, &b, &[false, true]);
        assert!((second - 10.0 * (1.0f64 / 0.04).log10()).abs() < 1e-5, "{second}");
    }
}
