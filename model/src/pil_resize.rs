//! Pillow's convolution resampler (`Image.resize` with BILINEAR, BICUBIC or LANCZOS), bit for bit.
//!
//! HF's image processors resize with PIL, so an image-based forward equals HF's only if our resized pixels equal
//! PIL's exactly: one grey level on a few pixels already moves the logits by ~1e-3. fast_image_resize is close
//! (within one level) but computes its coefficients differently; this port of `libImaging/Resample.c` follows
//! Pillow's arithmetic: f64 filter weights, normalized to 22-bit fixed point, a horizontal pass rounded to 8 bits,
//! then a vertical pass.

/// Fractional bits of Pillow's fixed-point coefficients (`PRECISION_BITS = 32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// A Pillow resampling filter: its support radius and kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PilFilter {
    Bilinear,
    Bicubic,
    Lanczos,
}

impl PilFilter {
    fn support(self) -> f64 {
        match self {
            Self::Bilinear => 1.0,
            Self::Bicubic => 2.0,
            Self::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Self::Bilinear => {
                let x = x.abs();
                if x < 1.0 { 1.0 - x } else { 0.0 }
            }
            Self::Bicubic => {
                // Pillow's bicubic uses a = -0.5.
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Self::Lanczos => {
                let sinc = |x: f64| {
                    if x == 0.0 {
                        1.0
                    } else {
                        let x = x * std::f64::consts::PI;
                        x.sin() / x
                    }
                };
                if (-3.0..3.0).contains(&x) { sinc(x) * sinc(x / 3.0) } else { 0.0 }
            }
        }
    }
}

/// For each output position: the first source index and the fixed-point weights of its window.
struct Coefficients {
    windows: Vec<(usize, Vec<i32>)>,
}

impl Coefficients {
    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the whole input range.
    fn new(input: usize, output: usize, filter: PilFilter) -> Self {
        let scale = input as f64 / output as f64;
        let filter_scale = scale.max(1.0);
        let support = filter.support() * filter_scale;
        let windows = (0..output)
            .map(|out| {
                let center = (out as f64 + 0.5) * scale;
                // Pillow rounds the window ends with `(int)(x + 0.5)`, truncation toward zero.
                let first = ((center - support + 0.5) as i64).max(0) as usize;
                let last = ((center + support + 0.5) as i64).min(input as i64) as usize;
                let weights: Vec<f64> =
                    (first..last).map(|x| filter.weight((x as f64 - center + 0.5) / filter_scale)).collect();
                let total: f64 = weights.iter().sum();
                let fixed = weights
                    .iter()
                    .map(|w| {
                        let w = if total != 0.0 { w / total } else { *w };
                        let scaled = w * (1u32 << PRECISION_BITS) as f64;
                        (if w < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
                    })
                    .collect();
                (first, fixed)
            })
            .collect();
        Self { windows }
    }
}

/// Pillow's `clip8`: drop the fractional bits (rounding was pre-added) and saturate.
fn clip8(value: i64) -> u8 {
    (value >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes packed RGB bytes from `from` to `to` (width, height) exactly as Pillow does.
pub fn resize_rgb(pixels: &[u8], from: (usize, usize), to: (usize, usize), filter: PilFilter) -> Vec<u8> {
    let ((in_w, in_h), (out_w, out_h)) = (from, to);
    let rounding = 1i64 << (PRECISION_BITS - 1);
    // Horizontal pass (skipped when the width does not change, as Pillow does).
    let horizontal = if in_w == out_w {
        pixels.to_vec()
    } else {
        let coefficients = Coefficients::new(in_w, out_w, filter);
        let mut out = vec![0u8; out_w * in_h * 3];
        for y in 0..in_h {
            let row = &pixels[y * in_w * 3..(y + 1) * in_w * 3];
            for (x, (first, weights)) in coefficients.windows.iter().enumerate() {
                let mut sums = [rounding; 3];
                for (offset, weight) in weights.iter().enumerate() {
                    let pixel = &row[(first + offset) * 3..(first + offset) * 3 + 3];
                    for c in 0..3 {
                        sums[c] += pixel[c] as i64 * *weight as i64;
                    }
                }
                for c in 0..3 {
                    out[(y * out_w + x) * 3 + c] = clip8(sums[c]);
                }
            }
        }
        out
    };
    if in_h == out_h {
        return horizontal;
    }
    let coefficients = Coefficients::new(in_h, out_h, filter);
    let mut out = vec![0u8; out_w * out_h * 3];
    for (y, (first, weights)) in coefficients.windows.iter().enumerate() {
        for x in 0..out_w {
            let mut sums = [rounding; 3];
            for (offset, weight) in weights.iter().enumerate() {
                let pixel = &horizontal[((first + offset) * out_w + x) * 3..][..3];
                for c in 0..3 {
                    sums[c] += pixel[c] as i64 * *weight as i64;
                }
            }
            for c in 0..3 {
                out[(y * out_w + x) * 3 + c] = clip8(sums[c]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_of_each_window_sum_to_one_in_fixed_point() {
        for (input, output) in [(451, 224), (300, 224), (80, 224), (224, 224), (7, 3)] {
            for filter in [PilFilter::Bilinear, PilFilter::Bicubic, PilFilter::Lanczos] {
                for (_, weights) in Coefficients::new(input, output, filter).windows {
                    let total: i64 = weights.iter().map(|w| *w as i64).sum();
                    assert!((total - (1 << PRECISION_BITS)).abs() <= weights.len() as i64, "{input}->{output}");
                }
            }
        }
    }

    #[test]
    fn flat_images_stay_flat() {
        let pixels = [200u8, 10, 77].repeat(50 * 30);
        let out = resize_rgb(&pixels, (50, 30), (17, 64), PilFilter::Bicubic);
        assert!(out.chunks(3).all(|p| p == [200, 10, 77]));
    }
}
