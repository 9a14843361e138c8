//! Models on one masked image: a compared model's per-patch loss difference from the first (B − A) as a heatmap on
//! a diverging colormap centred on 0 (blue where its loss is lower, red where A's is), and the count of masked
//! patches each of several models wins with the lowest loss.

use image::{Rgba, RgbaImage};

use super::patch_at;

/// Visible patches are not what either model was trained to predict: drawn in a neutral grey.
const VISIBLE_GREY: Rgba<u8> = Rgba([128, 128, 128, 255]);

/// What [`loss_difference`] draws.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    pub picture: RgbaImage,
    /// The colour scale runs from −`max_abs` (deepest blue: B better) to +`max_abs` (deepest red: A better).
    pub max_abs: f32,
}

/// The difference of two per-patch losses over the same grid and mask (`masked[i]`: patch i was hidden from both),
/// drawn at `side` × `side` pixels per patch.
pub fn loss_difference(
    first_loss: &[f32],
    own_loss: &[f32],
    masked: &[bool],
    grid: (usize, usize),
    side: u32,
) -> Difference {
    let difference: Vec<f32> = first_loss.iter().zip(own_loss).map(|(first, own)| own - first).collect();
    let masked_differences = || difference.iter().zip(masked).filter(|(_, m)| **m).map(|(d, _)| *d);
    let max_abs = masked_differences().filter(|d| d.is_finite()).fold(0.0f32, |max, d| max.max(d.abs()));
    let (width, height) = (grid.1 as u32 * side, grid.0 as u32 * side);
    let picture = RgbaImage::from_fn(width, height, |x, y| {
        let patch = patch_at(x, y, width, height, grid);
        match (masked.get(patch), difference.get(patch)) {
            (Some(true), Some(&d)) if d.is_finite() => diverging(d, max_abs),
            _ => VISIBLE_GREY,
        }
    });
    Difference { picture, max_abs }
}

/// For models that saw the same patches (`losses[m]`: model m's per-patch loss on one grid), how many masked patches
/// each wins: where its loss is the lowest of all, alone. A tie — two models sharing the lowest — is nobody's win.
pub fn lowest_loss_wins(losses: &[&[f32]], masked: &[bool]) -> Vec<usize> {
    let mut wins = vec![0; losses.len()];
    for (patch, _) in masked.iter().enumerate().filter(|(_, masked)| **masked) {
        let values: Vec<f32> = losses.iter().map(|loss| loss.get(patch).copied().unwrap_or(f32::NAN)).collect();
        let lowest = values.iter().copied().filter(|value| value.is_finite()).fold(f32::INFINITY, f32::min);
        let holders: Vec<usize> = (0..values.len()).filter(|&model| values[model] == lowest).collect();
        if let [winner] = holders[..] {
            wins[winner] += 1;
        }
    }
    wins
}

/// `value` in −`max_abs`..`max_abs` on ColorBrewer's red–blue map, white at 0.
fn diverging(value: f32, max_abs: f32) -> Rgba<u8> {
    let t = if max_abs > 0.0 { 0.5 + 0.5 * f64::from((value / max_abs).clamp(-1.0, 1.0)) } else { 0.5 };
    // RED_BLUE runs red (0) → blue (1); B better (negative) must be blue.
    let colour = colorous::RED_BLUE.eval_continuous(1.0 - t);
    Rgba([colour.r, colour.g, colour.b, 255])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_single_lowest_loss_of_several_models_wins_its_patch() {
        let (a, b, c) = ([1.0, 2.0, 3.0, 0.5, 9.0], [2.0, 1.0, 3.0, 0.5, 0.1], [3.0, 3.0, 1.0, 0.7, 8.0]);
        let masked = [true, true, true, true, false];
        // Patch 3 is a tie between A and B (nobody's), patch 4 is visible.
        assert_eq!(lowest_loss_wins(&[&a, &b, &c], &masked), [1, 1, 1]);
        assert_eq!(lowest_loss_wins(&[&a, &b], &masked), [1, 1], "patch 2 ties too without C");
    }

    #[test]
    fn colours_follow_the_sign_on_masked_patches() {
        // 1×4 grid: patch 0 B better, 1 A better, 2 tie, 3 visible (B much better there, but not counted).
        let a = [1.0, 0.2, 0.5, 9.0];
        let b = [0.5, 0.6, 0.5, 0.0];
        let masked = [true, true, true, false];
        let difference = loss_difference(&a, &b, &masked, (1, 4), 2);
        assert_eq!(lowest_loss_wins(&[&a, &b], &masked), [1, 1], "the tie and the visible patch are nobody's");
        assert!((difference.max_abs - 0.5).abs() < 1e-6, "{}", difference.max_abs);
        assert_eq!(difference.picture.dimensions(), (8, 2));
        let at = |patch: u32| *difference.picture.get_pixel(patch * 2, 0);
        let (b_better, a_better, tie, visible) = (at(0), at(1), at(2), at(3));
        assert!(b_better[2] > b_better[0], "B's win is blue: {b_better:?}");
        assert!(a_better[0] > a_better[2], "A's win is red: {a_better:?}");
        assert!(tie.0[..3].iter().all(|&c| c > 230), "a tie is the map's near-white middle: {tie:?}");
        assert_eq!(visible, VISIBLE_GREY);
    }
}
