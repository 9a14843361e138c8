//! Which patches the encoder sees: HF's `random_masking`, driven by a seed, explicit noise, or a painted set.
//!
//! HF draws `noise = torch.rand(1, L)`, keeps the `len_keep` patches with the smallest noise (in that order),
//! and reports `mask` (1 = removed) in spatial order. Everything here reproduces that on the host: the masks are
//! tiny and the forward pass needs the indices as plain integers anyway.

use crate::block_mask::block_mask;
use crate::error::{MaeError, Result};
use crate::mt19937::Mt19937;

/// Grid-wise masking (MAE paper): patch (row, col) stays visible when `row % 2 == (seed % 4) / 2` and
/// `col % 2 == seed % 2`, so the seed picks one of the four 2×2 phases; odd grids follow the rule to the edge.
fn grid_mask((rows, cols): (usize, usize), seed: u64) -> Vec<bool> {
    let (row_phase, col_phase) = (((seed % 4) / 2) as usize, (seed % 2) as usize);
    (0..rows * cols).map(|patch| !(patch / cols % 2 == row_phase && patch % cols % 2 == col_phase)).collect()
}

/// A centred rectangle of masked patches with the largest area not above `target` (ties: the squarest), placed
/// at `((rows − h) / 2, (cols − w) / 2)`.
fn centre_mask((rows, cols): (usize, usize), target: usize) -> Vec<bool> {
    let mut best = (0, 0);
    for height in 1..=rows {
        let width = (target / height).min(cols);
        let better_area = height * width > best.0 * best.1;
        let same_area_squarer = height * width == best.0 * best.1 && height.abs_diff(width) < best.0.abs_diff(best.1);
        if width > 0 && (better_area || same_area_squarer) {
            best = (height, width);
        }
    }
    let (height, width) = best;
    let (top, left) = ((rows - height) / 2, (cols - width) / 2);
    (0..rows * cols)
        .map(|patch| {
            let (row, col) = (patch / cols, patch % cols);
            (top..top + height).contains(&row) && (left..left + width).contains(&col)
        })
        .collect()
}

/// PyTorch's CPU generator: MT19937 seeded as `torch.manual_seed(seed)` does.
///
/// `torch.rand` on CPU turns each 32-bit draw into a float as `(u32 & 0xFFFFFF) / 2^24`.
#[derive(Clone, Debug)]
pub struct TorchGenerator {
    generator: Mt19937,
}

impl TorchGenerator {
    /// Same stream as `torch.manual_seed(seed)`: torch's mt19937 keeps only the low 32 bits of the seed.
    pub fn new(seed: u64) -> Self {
        Self { generator: Mt19937::from_seed(seed as u32) }
    }

    pub fn next_u32(&mut self) -> u32 {
        self.generator.next_u32()
    }

    /// One value of `torch.rand` (float32 in [0, 1)).
    fn next_f32(&mut self) -> f32 {
        (self.next_u32() & 0x00ff_ffff) as f32 / (1u32 << 24) as f32
    }

    /// `torch.manual_seed(seed); torch.rand(1, len)` as a flat vector.
    pub fn rand(seed: u64, len: usize) -> Vec<f32> {
        let mut generator = Self::new(seed);
        (0..len).map(|_| generator.next_f32()).collect()
    }
}

/// The masks the MAE paper compares (He et al. 2021, Fig. 6 and Table 1f), plus a centred hole for in-painting.
/// Each is drawn from a seed and a ratio and compiled to the visible set the forward pass takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskStrategy {
    /// HF's `random_masking` after `torch.manual_seed(seed)`, bit-exact.
    #[default]
    Random,
    /// BEiT's block-wise masking as transformers' `FlavaMaskingGenerator` draws it after `random.seed(seed)`.
    Block,
    /// One patch of every 2×2 kept (75% masked); the seed picks which of the four.
    Grid,
    /// A centred rectangle of masked patches, as square as the grid allows.
    Centre,
}

impl MaskStrategy {
    pub const ALL: [MaskStrategy; 4] =
        [MaskStrategy::Random, MaskStrategy::Block, MaskStrategy::Grid, MaskStrategy::Centre];

    /// The name the command line and captions use.
    pub fn name(self) -> &'static str {
        match self {
            MaskStrategy::Random => "random",
            MaskStrategy::Block => "block",
            MaskStrategy::Grid => "grid",
            MaskStrategy::Centre => "centre",
        }
    }

    /// Whether the mask ratio changes the mask (a grid mask always hides 75%).
    pub fn uses_ratio(self) -> bool {
        self != MaskStrategy::Grid
    }

    /// Whether the seed changes the mask (a centred hole is always the same).
    pub fn uses_seed(self) -> bool {
        self != MaskStrategy::Centre
    }
}

impl std::str::FromStr for MaskStrategy {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        match text {
            "random" => Ok(MaskStrategy::Random),
            "block" => Ok(MaskStrategy::Block),
            "grid" => Ok(MaskStrategy::Grid),
            "centre" | "center" => Ok(MaskStrategy::Centre),
            other => Err(format!("unknown mask \"{other}\" (choose random, block, grid or centre)")),
        }
    }
}

/// How to choose the masked patches.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskSpec {
    /// A mask drawn by `strategy` from `seed` at `ratio` (the random one is HF's after `torch.manual_seed(seed)`).
    Drawn { strategy: MaskStrategy, seed: u64, ratio: f64 },
    /// Explicit noise of length L at `ratio` (HF's `noise` argument).
    Noise { noise: Vec<f32>, ratio: f64 },
    /// Exactly these patches (spatial indices) stay visible; all others are masked (painted masks).
    Keep { visible: Vec<usize> },
}

impl MaskSpec {
    /// HF's random mask after `torch.manual_seed(seed)` at `ratio`.
    pub fn random(seed: u64, ratio: f64) -> Self {
        MaskSpec::Drawn { strategy: MaskStrategy::Random, seed, ratio }
    }

    /// How many of `num_patches` patches the spec asks to mask, where it asks for a count: the random mask's
    /// `L − int(L·(1 − ratio))`, which block and centre masks aim for too (and may fall short of).
    pub fn requested_masked(&self, num_patches: usize) -> Option<usize> {
        match self {
            MaskSpec::Drawn { strategy: MaskStrategy::Grid, .. } | MaskSpec::Keep { .. } => None,
            MaskSpec::Drawn { ratio, .. } | MaskSpec::Noise { ratio, .. } => {
                Some(num_patches - len_keep(num_patches, *ratio))
            }
        }
    }
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

    /// Builds the masking for `spec` over a patch grid of (rows, columns).
    pub fn new(spec: &MaskSpec, grid: (usize, usize)) -> Result<Self> {
        let num_patches = grid.0 * grid.1;
        match spec {
            MaskSpec::Drawn { strategy, seed, ratio } => {
                check_ratio(*ratio)?;
                let masked_count = num_patches - len_keep(num_patches, *ratio);
                match strategy {
                    MaskStrategy::Random => {
                        Ok(Self::from_noise(TorchGenerator::rand(*seed, num_patches), len_keep(num_patches, *ratio)))
                    }
                    MaskStrategy::Block => Ok(Self::from_masked(&block_mask(grid, masked_count, *seed))),
                    MaskStrategy::Grid => Ok(Self::from_masked(&grid_mask(grid, *seed))),
                    MaskStrategy::Centre => Ok(Self::from_masked(&centre_mask(grid, masked_count))),
                }
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
                let mut masked = vec![true; num_patches];
                for &patch in visible {
                    if patch >= num_patches {
                        return Err(MaeError::InvalidInput(format!(
                            "visible patch {patch} does not exist (the image has {num_patches} patches)"
                        )));
                    }
                    masked[patch] = false;
                }
                Ok(Self::from_masked(&masked))
            }
        }
    }

    /// Exactly the patches flagged in `masked` (spatial order) are hidden. Any mask is expressible as HF noise —
    /// visible patches first, in spatial order, then the masked ones — so the model needs only one code path.
    fn from_masked(masked: &[bool]) -> Self {
        let num_patches = masked.len();
        let noise: Vec<f32> = masked
            .iter()
            .enumerate()
            .map(|(patch, &is_masked)| {
                let base = if is_masked { 0.5 } else { 0.0 };
                base + patch as f32 / (2 * num_patches) as f32
            })
            .collect();
        let kept = masked.iter().filter(|m| !**m).count();
        Self::from_noise(noise, kept)
    }

    /// HF's `random_masking` for one image given its noise.
    fn from_noise(noise: Vec<f32>, len_keep: usize) -> Self {
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

    /// Draws `masked` as rows of `#` (masked) and `.` (visible), for hand-checked expectations.
    fn picture(masked: &[bool], cols: usize) -> Vec<String> {
        masked.chunks(cols).map(|row| row.iter().map(|&m| if m { '#' } else { '.' }).collect()).collect()
    }

    #[test]
    fn torch_rand_is_the_top_24_bits_of_each_draw() {
        let mut raw = Mt19937::from_seed(7);
        let expected: Vec<f32> = (0..5).map(|_| (raw.next_u32() >> 8) as f32 / 16_777_216.0).collect();
        // `& 0xFFFFFF` keeps the low 24 bits, not the top ones: the two differ, so this pins torch's choice.
        assert_ne!(TorchGenerator::rand(7, 5), expected);
        let mut raw = Mt19937::from_seed(7);
        let low_bits: Vec<f32> = (0..5).map(|_| (raw.next_u32() & 0xff_ffff) as f32 / 16_777_216.0).collect();
        assert_eq!(TorchGenerator::rand(7, 5), low_bits);
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
        let masking = Masking::new(&MaskSpec::Keep { visible: vec![5, 0, 7] }, (3, 3)).unwrap();
        assert_eq!(masking.ids_keep, vec![0, 5, 7]);
        assert_eq!(masking.num_masked(), 6);
        for patch in 0..9 {
            assert_eq!(masking.is_masked(patch), ![0, 5, 7].contains(&patch));
        }
        assert!(Masking::new(&MaskSpec::Keep { visible: vec![9] }, (3, 3)).is_err());
    }

    #[test]
    fn grid_masks_keep_one_patch_of_every_two_by_two() {
        // Seed 0 keeps (even row, even col); seed 1 (even, odd); seed 2 (odd, even); seed 3 (odd, odd).
        assert_eq!(picture(&grid_mask((3, 5), 0), 5), [".#.#.", "#####", ".#.#."]);
        assert_eq!(picture(&grid_mask((3, 5), 1), 5), ["#.#.#", "#####", "#.#.#"]);
        assert_eq!(picture(&grid_mask((3, 5), 2), 5), ["#####", ".#.#.", "#####"]);
        assert_eq!(picture(&grid_mask((3, 5), 7), 5), ["#####", "#.#.#", "#####"]);
        let masking = Masking::new(&MaskSpec::Drawn { strategy: MaskStrategy::Grid, seed: 0, ratio: 0.1 }, (14, 14));
        assert_eq!(masking.unwrap().num_masked(), 196 - 49);
    }

    #[test]
    fn centre_masks_are_the_largest_squarest_centred_rectangle() {
        // 5×6 grid, ratio 0.5: L − int(30·0.5) = 15 asked; 3×5 = 15 fits exactly.
        assert_eq!(picture(&centre_mask((5, 6), 15), 6), ["......", "#####.", "#####.", "#####.", "......"]);
        // 14×14 at 0.75: 147 asked; 12×12 = 144 is the largest rectangle not above it.
        let masked = centre_mask((14, 14), 147);
        assert_eq!(masked.iter().filter(|m| **m).count(), 144);
        assert!(masked[14 + 1] && !masked[0] && !masked[13 * 14 + 13] && masked[12 * 14 + 12] && !masked[13 * 14 + 12]);
        // 4×4, 7 asked: 2×3 = 6 (squarer than 1×4 = 4, larger than 2×2), centred at row 1, column 0.
        assert_eq!(picture(&centre_mask((4, 4), 7), 4), ["....", "###.", "###.", "...."]);
        assert!(centre_mask((4, 4), 0).iter().all(|m| !m));
        let spec = MaskSpec::Drawn { strategy: MaskStrategy::Centre, seed: 3, ratio: 0.75 };
        assert_eq!(spec.requested_masked(196), Some(147));
        assert_eq!(Masking::new(&spec, (14, 14)).unwrap().num_masked(), 144);
    }

    #[test]
    fn random_spec_is_torch_noise_sorted() {
        let masking = Masking::new(&MaskSpec::random(2, 0.75), (14, 14)).unwrap();
        assert_eq!(masking.noise, TorchGenerator::rand(2, 196));
        assert_eq!(masking.len_keep(), 49);
    }

    #[test]
    fn strategy_names_round_trip() {
        for strategy in MaskStrategy::ALL {
            assert_eq!(strategy.name().parse::<MaskStrategy>(), Ok(strategy));
        }
        assert!("blocks".parse::<MaskStrategy>().unwrap_err().contains("random, block, grid or centre"));
    }

    #[test]
    fn bad_ratios_and_noise_are_refused() {
        for ratio in [-0.1, 1.01, f64::NAN] {
            for strategy in MaskStrategy::ALL {
                assert!(Masking::new(&MaskSpec::Drawn { strategy, seed: 0, ratio }, (4, 4)).is_err());
            }
        }
        let err = Masking::new(&MaskSpec::Noise { noise: vec![0.0; 3], ratio: 0.5 }, (2, 2)).unwrap_err();
        assert!(err.to_string().contains("3 values"), "{err}");
    }
}
