//! Per-patch reconstruction loss as a heatmap, and short numbers for its captions and legends.

use image::RgbaImage;

use super::colormap::{Colormap, normalize};
use super::{blend, patch_at};

/// Smallest and largest finite loss (0..1 when there is none, so callers always get a usable scale).
pub fn loss_range(patch_loss: &[f32]) -> (f32, f32) {
    let finite = patch_loss.iter().copied().filter(|v| v.is_finite());
    let (low, high) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if low <= high { (low, high) } else { (0.0, 1.0) }
}

/// Every patch of `base` (any resolution showing the whole grid) blended at `alpha` with the colour of its loss
/// (`patch_loss` per spatial patch of `grid`), scaled over these losses' own lowest..highest.
pub fn loss_overlay(
    base: &RgbaImage,
    patch_loss: &[f32],
    grid: (usize, usize),
    colormap: Colormap,
    alpha: f32,
) -> RgbaImage {
    let (low, high) = loss_range(patch_loss);
    let (width, height) = base.dimensions();
    RgbaImage::from_fn(width, height, |x, y| {
        let loss = patch_loss.get(patch_at(x, y, width, height, grid)).copied().unwrap_or(f32::NAN);
        blend(*base.get_pixel(x, y), colormap.color(normalize(loss, low, high)), alpha)
    })
}

/// Short, readable numbers for captions and legends.
pub fn format_value(value: f32) -> String {
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e4).contains(&magnitude) { format!("{value:.3}") } else { format!("{value:.2e}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_skip_non_finite_values() {
        assert_eq!(loss_range(&[2.0, f32::NAN, 0.5, f32::INFINITY]), (0.5, 2.0));
        assert_eq!(loss_range(&[]), (0.0, 1.0));
    }

    #[test]
    fn values_read_short() {
        assert_eq!(format_value(0.1234), "0.123");
        assert_eq!(format_value(12345.0), "1.23e4");
        assert_eq!(format_value(0.0), "0.000");
    }
}
