//! Per-patch reconstruction loss as a heatmap, its summary numbers and a legend bar.

use image::{Rgba, RgbaImage};
use mae_model::MaeOutput;

use super::colormap::{Colormap, normalize};
use super::{blend, patch_at, text};

/// Smallest and largest finite loss (0..1 when there is none, so callers always get a usable scale).
pub fn loss_range(patch_loss: &[f32]) -> (f32, f32) {
    let finite = patch_loss.iter().copied().filter(|v| v.is_finite());
    let (low, high) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if low <= high { (low, high) } else { (0.0, 1.0) }
}

/// One scale across several outputs, so their heatmaps can be compared colour for colour.
pub fn shared_scale<'a>(outputs: impl IntoIterator<Item = &'a MaeOutput>) -> (f32, f32) {
    let all: Vec<f32> = outputs.into_iter().flat_map(|output| output.patch_loss.iter().copied()).collect();
    loss_range(&all)
}

/// The numbers behind a loss heatmap.
#[derive(Clone, Debug, PartialEq)]
pub struct LossSummary {
    /// Mean over masked patches (the training loss); `None` when nothing is masked.
    pub masked_mean: Option<f32>,
    /// Mean over visible patches; `None` when everything is masked.
    pub visible_mean: Option<f32>,
    pub min: f32,
    pub max: f32,
    /// Per-patch loss in spatial order, for plots.
    pub per_patch: Vec<f32>,
}

pub fn summary(output: &MaeOutput) -> LossSummary {
    let (min, max) = loss_range(&output.patch_loss);
    LossSummary {
        masked_mean: output.loss,
        visible_mean: output.visible_loss(),
        min,
        max,
        per_patch: output.patch_loss.clone(),
    }
}

/// Every patch of `base` (any resolution showing the whole grid) blended at `alpha` with the colour of its loss,
/// scaled over `scale` (`None`: this image's own min..max).
pub fn loss_overlay(
    base: &RgbaImage,
    output: &MaeOutput,
    colormap: Colormap,
    alpha: f32,
    scale: Option<(f32, f32)>,
) -> RgbaImage {
    let (low, high) = scale.unwrap_or_else(|| loss_range(&output.patch_loss));
    let (width, height) = base.dimensions();
    RgbaImage::from_fn(width, height, |x, y| {
        let loss = output.patch_loss.get(patch_at(x, y, width, height, output.grid)).copied().unwrap_or(f32::NAN);
        blend(*base.get_pixel(x, y), colormap.color(normalize(loss, low, high)), alpha)
    })
}

/// A horizontal colour bar from `min` (left) to `max` (right); when it is tall enough the two values are written
/// at its ends in black or white, whichever reads better on the colour beneath.
pub fn legend_bar(colormap: Colormap, min: f32, max: f32, width: u32, height: u32) -> RgbaImage {
    let width = width.max(1);
    let mut bar = RgbaImage::from_fn(width, height, |x, _| {
        let [r, g, b] = colormap.color(x as f32 / (width - 1).max(1) as f32);
        Rgba([r, g, b, 255])
    });
    let size = (height as f32 * 0.7).min(18.0);
    if height >= 14 {
        let top = (height as f32 - text::line_height(size) as f32) / 2.0;
        let label_min = format_value(min);
        let label_max = format_value(max);
        let ink = |t: f32| if luminance(colormap.color(t)) > 140.0 { [0, 0, 0] } else { [255, 255, 255] };
        text::draw_text(&mut bar, &label_min, 3.0, top, size, ink(0.0));
        let right = width as f32 - text::text_width(&label_max, size) as f32 - 3.0;
        text::draw_text(&mut bar, &label_max, right, top, size, ink(1.0));
    }
    bar
}

/// Short, readable numbers for captions and legends.
pub fn format_value(value: f32) -> String {
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e4).contains(&magnitude) { format!("{value:.3}") } else { format!("{value:.2e}") }
}

fn luminance([r, g, b]: [u8; 3]) -> f32 {
    0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
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
    fn legend_runs_from_low_to_high() {
        let bar = legend_bar(Colormap::Viridis, 0.0, 1.0, 200, 8);
        assert_eq!(bar.dimensions(), (200, 8));
        let left = bar.get_pixel(0, 4).0;
        let right = bar.get_pixel(199, 4).0;
        assert_eq!([left[0], left[1], left[2]], Colormap::Viridis.color(0.0));
        assert_eq!([right[0], right[1], right[2]], Colormap::Viridis.color(1.0));
        assert_eq!(format_value(0.1234), "0.123");
        assert_eq!(format_value(12345.0), "1.23e4");
    }
}
