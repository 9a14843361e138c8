//! Which patches the encoder sees: HF's `random_masking`, driven by a seed, explicit noise, or a painted set.
//!
//! HF draws `noise = torch.rand(1, L)`, keeps the `len_keep` patches with the smallest noise (in that order),
//! and reports `mask` (1 = removed) in spatial order. Everything here reproduces that on the host: the masks are
//! tiny and the forward pass needs the indices as plain integers anyway.

use crate::error::{MaeError, Result};

/// PyTorch's CPU generator: MT19937 seeded as `torch.manual_seed(seed)` does.
///
/// `torch.rand` on CPU turns each 32-bit draw into a float as `(u32 & 0xFFFFFF) / 2^24`.
#[derive(Clone)]
pub struct TorchGenerator {
    state: [u32; 624],
    index: usize,
}

impl std::fmt::Debug for TorchGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchGenerator").field("index", &self.index).finish_non_exhaustive()
    }
}

impl TorchGenerator {
    /// Same stream as `torch.manual_seed(seed)`: torch's mt19937 keeps only the low 32 bits of the seed.
    pub fn new(seed: u64) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed as u32;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        Self { state, index: 624 }
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for i in 0..624 {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % 624] & LOWER);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// One value of `torch.rand` (float32 in [0, 1)).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() & 0x00ff_ffff) as f32 / (1u32 << 24) as f32
    }

    /// `torch.manual_seed(seed); torch.rand(1, len)` as a flat vector.
    pub fn rand(seed: u64, len: usize) -> Vec<f32> {
        let mut generator = Self::new(seed);
        (0..len).map(|_| generator.next_f32()).collect()
    }
}

/// How to choose the masked patches.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskSpec {
    /// The mask HF draws after `torch.manual_seed(seed)` at `ratio`.
    Seed { seed: u64, ratio: f64 },
    /// Explicit noise of length L at `ratio` (HF's `noise` argument).
    Noise { noise: Vec<f32>, ratio: f64 },
    /// Exactly these patches (spatial indices) stay visible; all others are masked (painted masks).
    Keep { visible: Vec<usize> },
}

/// `int(L * (1 - ratio))` exactly as Python computes it (float64 arithmetic, then truncation toward zero).
pub fn len_keep(num_patches: usize, ratio: f64) -> usize {
    (num_patches as f64 * (1.0 - ratio)) as usize
}

pub fn check_ratio(ratio: f64) -> Result<()> {
    if ratio.is_finite() && (0.0..=1.0).contains(&ratio) {
        Ok(())
    } else {
        Err(MaeError::InvalidInput(format!("mask ratio {ratio} is outside [0, 1]")))
    }
}

/// The result of masking, all in HF's conventions.
#[derive(Debug, Clone, PartialEq)]
pub struct Masking {
    /// The noise that was sorted (length L).
    pub noise: Vec<f32>,
    /// `argsort(noise)`: kept patches first, in the order the encoder sees them.
    pub ids_shuffle: Vec<usize>,
    /// `argsort(ids_shuffle)`: position of each spatial patch in the shuffled order.
    pub ids_restore: Vec<usize>,
    /// The `len_keep` visible patches in encoder order (spatial indices).
    pub ids_keep: Vec<usize>,
    /// 1.0 for a masked (removed) patch, 0.0 for a visible one, in spatial order.
    pub mask: Vec<f32>,
}

impl Masking {
    pub fn num_patches(&self) -> usize {
        self.noise.len()
    }

    pub fn len_keep(&self) -> usize {
        self.ids_keep.len()
    }

    pub fn num_masked(&self) -> usize {
        self.num_patches() - self.len_keep()
    }

    pub fn is_masked(&self, patch: usize) -> bool {
        self.mask[patch] != 0.0
    }

    /// Builds the masking for `spec` over `num_patches` patches.
    pub fn new(spec: &MaskSpec, num_patches: usize) -> Result<Self> {
        match spec {
            MaskSpec::Seed { seed, ratio } => {
                check_ratio(*ratio)?;
                Ok(Self::from_noise(TorchGenerator::rand(*seed, num_patches), len_keep(num_patches, *ratio)))
            }
            MaskSpec::Noise { noise, ratio } => {
                check_ratio(*ratio)?;
                if noise.len() != num_patches {
                    return Err(MaeError::InvalidInput(format!(
                        "noise has {} values but the image has {num_patches} patches",
                        noise.len()
                    )));
                }
                if let Some(bad) = noise.iter().find(|v| !v.is_finite()) {
                    return Err(MaeError::InvalidInput(format!("noise contains {bad}; it must be finite")));
                }
                Ok(Self::from_noise(noise.clone(), len_keep(num_patches, *ratio)))
            }
            MaskSpec::Keep { visible } => {
                let mut is_visible = vec![false; num_patches];
                for &patch in visible {
                    if patch >= num_patches {
                        return Err(MaeError::InvalidInput(format!(
                            "visible patch {patch} does not exist (the image has {num_patches} patches)"
                        )));
                    }
                    is_visible[patch] = true;
                }
                // Noise that sorts the visible patches first (in spatial order), then the masked ones: any mask
                // is expressible as HF noise, so the model needs only one code path.
                let noise: Vec<f32> = (0..num_patches)
                    .map(|patch| {
                        let base = if is_visible[patch] { 0.0 } else { 0.5 };
                        base + patch as f32 / (2 * num_patches) as f32
                    })
                    .collect();
                let kept = is_visible.iter().filter(|v| **v).count();
                Ok(Self::from_noise(noise, kept))
            }
        }
    }

    /// HF's `random_masking` for one image given its noise.
    pub fn from_noise(noise: Vec<f32>, len_keep: usize) -> Self {
        let num_patches = noise.len();
        let mut ids_shuffle: Vec<usize> = (0..num_patches).collect();
        // Stable, so ties (only possible with hand-made noise) keep spatial order, as torch's CPU sort does.
        ids_shuffle.sort_by(|&a, &b| noise[a].total_cmp(&noise[b]));
        let mut ids_restore = vec![0; num_patches];
        for (position, &patch) in ids_shuffle.iter().enumerate() {
            ids_restore[patch] = position;
        }
        let ids_keep = ids_shuffle[..len_keep].to_vec();
        let mask = ids_restore.iter().map(|&position| if position < len_keep { 0.0 } else { 1.0 }).collect();
        Self { noise, ids_shuffle, ids_restore, ids_keep, mask }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_stream() {
        // First outputs of std::mt19937 seeded with 5489 (the C++ standard's default seed).
        let mut generator = TorchGenerator::new(5489);
        assert_eq!(generator.next_u32(), 3_499_211_612);
        assert_eq!(generator.next_u32(), 581_869_302);
        // The 10000th output of a default-seeded std::mt19937, required by the C++ standard.
        let mut generator = TorchGenerator::new(5489);
        let last = (0..10_000).map(|_| generator.next_u32()).last().unwrap();
        assert_eq!(last, 4_123_659_995);
    }

    #[test]
    fn len_keep_truncates_like_python() {
        assert_eq!(len_keep(196, 0.75), 49);
        assert_eq!(len_keep(196, 0.6), 78);
        assert_eq!(len_keep(36, 0.6), 14);
        assert_eq!(len_keep(196, 0.0), 196);
        assert_eq!(len_keep(196, 1.0), 0);
    }

    #[test]
    fn masking_keeps_the_smallest_noise_in_order() {
        let masking = Masking::from_noise(vec![0.9, 0.1, 0.5, 0.3], 2);
        assert_eq!(masking.ids_shuffle, vec![1, 3, 2, 0]);
        assert_eq!(masking.ids_restore, vec![3, 0, 2, 1]);
        assert_eq!(masking.ids_keep, vec![1, 3]);
        assert_eq!(masking.mask, vec![1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn painted_masks_keep_exactly_the_visible_patches() {
        let masking = Masking::new(&MaskSpec::Keep { visible: vec![5, 0, 7] }, 9).unwrap();
        assert_eq!(masking.ids_keep, vec![0, 5, 7]);
        assert_eq!(masking.num_masked(), 6);
        for patch in 0..9 {
            assert_eq!(masking.is_masked(patch), ![0, 5, 7].contains(&patch));
        }
        assert!(Masking::new(&MaskSpec::Keep { visible: vec![9] }, 9).is_err());
    }

    #[test]
    fn bad_ratios_and_noise_are_refused() {
        for ratio in [-0.1, 1.01, f64::NAN] {
            assert!(Masking::new(&MaskSpec::Seed { seed: 0, ratio }, 16).is_err());
        }
        let err = Masking::new(&MaskSpec::Noise { noise: vec![0.0; 3], ratio: 0.5 }, 4).unwrap_err();
        assert!(err.to_string().contains("3 values"), "{err}");
    }
}
