//! BEiT's block-wise masking (the MAE paper's "block 50%"), exactly as transformers implements it in
//! `FlavaMaskingGenerator` (`models/flava/image_processing_pil_flava.py`) with its defaults: blocks of at least 16
//! patches, aspect ratios between 0.3 and 1/0.3, 10 attempts per block, and the early stop when no attempt adds a
//! patch. It draws from Python's `random` module after `random.seed(seed)` ([`PythonRandom`]), so the same seed
//! gives the same mask as Python. About a third of seeds stop short of the requested count; the caller shows the
//! count it got.

use crate::python_random::PythonRandom;

const MIN_PATCHES_PER_BLOCK: f64 = 16.0;
const MIN_ASPECT_RATIO: f64 = 0.3;
const ATTEMPTS_PER_BLOCK: usize = 10;

/// `FlavaMaskingGenerator(input_size=(rows, cols), total_mask_patches=target)()` after `random.seed(seed)`, as a
/// flag per patch in spatial order (true = masked).
pub fn block_mask((rows, cols): (usize, usize), target: usize, seed: u64) -> Vec<bool> {
    let mut random = PythonRandom::new(seed);
    let mut masked = vec![false; rows * cols];
    // mask_group_max_aspect_ratio = 1 / mask_group_min_aspect_ratio, both taken as logs.
    let log_aspect = (MIN_ASPECT_RATIO.ln(), (1.0 / MIN_ASPECT_RATIO).ln());
    let mut count = 0;
    while count < target {
        // mask_group_max_patches defaults to total_mask_patches, so the remainder is always the smaller bound.
        let max_patches = target - count;
        let mut added = 0;
        for _ in 0..ATTEMPTS_PER_BLOCK {
            let area = random.uniform(MIN_PATCHES_PER_BLOCK, max_patches as f64);
            let aspect = random.uniform(log_aspect.0, log_aspect.1).exp();
            // Python's int(round(x)): round half to even, then truncate.
            let height = (area * aspect).sqrt().round_ties_even() as usize;
            let width = (area / aspect).sqrt().round_ties_even() as usize;
            if width < cols && height < rows {
                let top = random.randint(0, (rows - height) as i64) as usize;
                let left = random.randint(0, (cols - width) as i64) as usize;
                let block = |masked: &[bool]| {
                    (top..top + height)
                        .flat_map(|r| (left..left + width).map(move |c| r * cols + c))
                        .filter(|&i| !masked[i])
                        .collect::<Vec<_>>()
                };
                let new_patches = block(&masked);
                // Only a block that adds something and does not overshoot the remainder is taken.
                if (1..=max_patches).contains(&new_patches.len()) {
                    for patch in &new_patches {
                        masked[*patch] = true;
                    }
                    added += new_patches.len();
                }
            }
            if added > 0 {
                break;
            }
        }
        if added == 0 {
            break;
        }
        count += added;
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_never_exceed_the_target_and_repeat_per_seed() {
        for seed in 0..20 {
            let mask = block_mask((14, 14), 98, seed);
            let count = mask.iter().filter(|m| **m).count();
            assert!(count <= 98, "seed {seed}: {count}");
            assert_eq!(mask, block_mask((14, 14), 98, seed));
        }
        assert!(block_mask((14, 14), 0, 3).iter().all(|m| !m));
    }
}
