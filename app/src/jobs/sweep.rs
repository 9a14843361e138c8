//! The mask-ratio sweep of one model, image, mask strategy and seed: the result at every distinct mask the ratio
//! slider can reach, computed one forward pass at a time in the background, so scrubbing the slider shows cached
//! results instead of waiting for forward passes.
//!
//! HF keeps `int(L·(1−r))` patches, so the slider holds at most L + 1 distinct masks per seed and strategy, and
//! every one of random, block and centre masks depends on the ratio only through that kept count (NOTES §9). An
//! entry is keyed by the kept count; it holds what cannot be derived cheaply (the reconstruction once as 8-bit RGB,
//! the per-patch loss, the mask and the metrics); the masked and pasted-back pictures are derived from the original
//! and the mask when shown ([`crate::render::panels::panels_from`]), the same pixels as after a forward pass.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Result, bail};
use candle_core::Tensor;
use image::{RgbImage, RgbaImage};
use mae_model::masking::len_keep;
use mae_model::{DisplayPair, ForwardOptions, LoadedModel, MaeOutput, MaskSpec, MaskStrategy, Quality};

use crate::render::tensor_to_rgba;

/// Entries one model's sweep holds at most: a finer grid's sweep takes evenly spaced kept counts.
pub const MOST_SWEEP_ENTRIES: usize = 200;

/// What a sweep is of, besides the model: the image, and the strategy and seed that draw the masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepKey {
    pub image_id: u64,
    pub strategy: MaskStrategy,
    pub seed: u64,
}

impl SweepKey {
    /// The sweep a mask belongs to: drawn masks the ratio changes (random, block, centre); none for grid, noise,
    /// picture and painted masks, which are one mask at every ratio.
    pub fn of(image_id: u64, mask: &MaskSpec) -> Option<Self> {
        match *mask {
            MaskSpec::Drawn { strategy, seed, .. } if strategy.uses_ratio() => Some(Self { image_id, strategy, seed }),
            _ => None,
        }
    }
}

/// One distinct mask's result.
#[derive(Clone, Debug)]
pub struct SweepEntry {
    /// Patches the mask was asked to keep visible (HF's `len_keep` of the ratio): the key, also where a block or
    /// centre mask keeps more (BEiT's generator stops short; the largest centred rectangle may be smaller).
    pub kept: usize,
    pub reconstruction: RgbImage,
    /// 1 = masked, per spatial patch.
    pub mask: Vec<f32>,
    pub patch_loss: Vec<f32>,
    pub quality: Quality,
    pub requested_masked: Option<usize>,
    /// How long the forward pass that made it took.
    pub made_in_ms: f64,
}

impl SweepEntry {
    fn of(output: &MaeOutput, loaded: &LoadedModel, mask: &MaskSpec, made_in_ms: f64) -> Result<Self> {
        let reconstruction = tensor_to_rgba(&output.display_predictions()?, &loaded.preprocessor)?;
        let reconstruction = image::DynamicImage::ImageRgba8(reconstruction).to_rgb8();
        let quality = DisplayPair::of(output, &loaded.preprocessor)?.quality(output);
        let patches = output.num_patches();
        let requested_masked = mask.requested_masked(patches);
        Ok(Self {
            kept: patches - requested_masked.unwrap_or_else(|| output.masking.num_masked()),
            reconstruction,
            mask: output.masking.mask.clone(),
            patch_loss: output.patch_loss.clone(),
            quality,
            requested_masked,
            made_in_ms,
        })
    }

    /// Memory the entry holds.
    pub fn bytes(&self) -> u64 {
        (self.reconstruction.as_raw().len() + 4 * (self.mask.len() + self.patch_loss.len()) + size_of::<Self>()) as u64
    }
}

/// Why a sweep ended before its last entry.
#[derive(Clone, Debug, PartialEq)]
pub enum SweepStop {
    /// The user stopped it.
    Asked,
    /// The next entry would not fit the memory the sweeps may hold (the figures in words).
    Memory(String),
    /// A forward pass failed (the error in words).
    Failed(String),
}

impl std::fmt::Display for SweepStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SweepStop::Asked => f.write_str("stopped"),
            SweepStop::Memory(figures) => write!(f, "stopped early for memory: {figures}"),
            SweepStop::Failed(error) => write!(f, "stopped: a forward pass failed ({error})"),
        }
    }
}

/// One model's sweep in progress or finished.
#[derive(Debug)]
pub struct Sweep {
    pub key: SweepKey,
    patches: usize,
    /// Kept counts in the order they are computed: coarse to fine.
    order: Vec<usize>,
    entries: BTreeMap<usize, SweepEntry>,
    bytes: u64,
    /// Forward passes the sweep itself ran (the entry of the visible forward pass costs none).
    pub forwards: usize,
    pub stopped: Option<SweepStop>,
    /// The model input as a picture, from which the masked and pasted-back pictures are derived.
    pub original: RgbaImage,
}

impl Sweep {
    /// A sweep over a grid of `patches`, of the picture `original` (the model input, de-normalized).
    pub fn new(key: SweepKey, patches: usize, original: RgbaImage) -> Self {
        Self {
            key,
            patches,
            order: sweep_order(patches),
            entries: BTreeMap::new(),
            bytes: 0,
            forwards: 0,
            stopped: None,
            original,
        }
    }

    /// Keeps a forward pass's result (the visible one's, without its attention maps) as an entry.
    pub fn insert_output(
        &mut self,
        output: &MaeOutput,
        loaded: &LoadedModel,
        mask: &MaskSpec,
        made_in_ms: f64,
    ) -> Result<()> {
        if output.num_patches() != self.patches {
            bail!("a result of {} patches does not belong to a sweep of {}", output.num_patches(), self.patches);
        }
        let entry = SweepEntry::of(output, loaded, mask, made_in_ms)?;
        self.bytes += entry.bytes();
        if let Some(replaced) = self.entries.insert(entry.kept, entry) {
            self.bytes -= replaced.bytes();
        }
        Ok(())
    }

    /// The next kept count to compute, if any is left and the sweep was not stopped.
    fn next_count(&self) -> Option<usize> {
        if self.stopped.is_some() {
            return None;
        }
        self.order.iter().copied().find(|kept| !self.entries.contains_key(kept))
    }

    pub fn is_finished(&self) -> bool {
        self.next_count().is_none()
    }

    /// Computes the next entry: one forward pass of `loaded` on `pixel_values`. Stops instead, for memory, when
    /// the entry would take the sweep past `room` bytes.
    pub fn step(&mut self, loaded: &LoadedModel, pixel_values: &Tensor, room: u64) -> Result<()> {
        let Some(kept) = self.next_count() else { return Ok(()) };
        let estimate = self.entries.values().next().map_or(0, SweepEntry::bytes);
        if self.bytes + estimate > room {
            self.stopped = Some(SweepStop::Memory(format!(
                "{} entries hold {}; another would pass the {} the sweeps may use",
                self.entries.len(),
                mae_model::memory::format_bytes(self.bytes),
                mae_model::memory::format_bytes(room)
            )));
            return Ok(());
        }
        let mask = MaskSpec::Drawn {
            strategy: self.key.strategy,
            seed: self.key.seed,
            ratio: ratio_keeping(self.patches, kept),
        };
        let start = Instant::now();
        let output = loaded.model.forward(pixel_values, &mask, ForwardOptions { attentions: false })?;
        self.forwards += 1;
        self.insert_output(&output, loaded, &mask, start.elapsed().as_secs_f64() * 1e3)
    }

    /// The entry for `ratio`: the exact one when cached (`true`), else the cached one nearest in kept count.
    pub fn lookup(&self, ratio: f64) -> Option<(&SweepEntry, bool)> {
        let kept = len_keep(self.patches, ratio);
        if let Some(entry) = self.entries.get(&kept) {
            return Some((entry, true));
        }
        let below = self.entries.range(..kept).next_back().map(|(_, entry)| entry);
        let above = self.entries.range(kept..).next().map(|(_, entry)| entry);
        let nearest = match (below, above) {
            (Some(below), Some(above)) => {
                if kept - below.kept <= above.kept - kept {
                    below
                } else {
                    above
                }
            }
            (one, other) => one.or(other)?,
        };
        Some((nearest, false))
    }

    /// (entries cached, entries the sweep computes in all).
    pub fn progress(&self) -> (usize, usize) {
        let planned = self.order.iter().filter(|kept| self.entries.contains_key(kept)).count();
        (planned, self.order.len())
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Mean masked loss against the fraction of patches asked to be masked, at every cached entry, lowest fraction
    /// first (`None` where nothing is masked).
    pub fn curve(&self) -> Vec<(f64, Option<f32>)> {
        self.entries
            .values()
            .rev()
            .map(|entry| ((self.patches - entry.kept) as f64 / self.patches as f64, entry.quality.masked_loss))
            .collect()
    }
}

/// The kept counts of a sweep over `patches` in the order it computes them: every 10th of the distinct counts
/// (from all patches kept down to none), then every 5th, then the rest, so a partial sweep already spans the
/// slider. At most [`MOST_SWEEP_ENTRIES`], evenly spaced.
pub fn sweep_order(patches: usize) -> Vec<usize> {
    let distinct = patches + 1;
    let counts: Vec<usize> = if distinct <= MOST_SWEEP_ENTRIES {
        (0..=patches).rev().collect()
    } else {
        let last = MOST_SWEEP_ENTRIES - 1;
        (0..MOST_SWEEP_ENTRIES).map(|step| patches - (step * patches + last / 2) / last).collect()
    };
    let pass = |keep: &dyn Fn(usize) -> bool| -> Vec<usize> {
        counts.iter().enumerate().filter(|(index, _)| keep(*index)).map(|(_, &kept)| kept).collect()
    };
    let mut order = pass(&|index| index.is_multiple_of(10));
    order.extend(pass(&|index| index.is_multiple_of(5) && !index.is_multiple_of(10)));
    order.extend(pass(&|index| !index.is_multiple_of(5)));
    order
}

/// A mask ratio at which HF keeps exactly `kept` of `patches`: the masked fraction, moved by the last bits of the
/// float where Python's `int(L·(1−r))` would truncate it to another count.
pub fn ratio_keeping(patches: usize, kept: usize) -> f64 {
    let mut ratio = (patches - kept.min(patches)) as f64 / patches.max(1) as f64;
    // Each nudge moves one unit in the last place; a handful are ever needed.
    for _ in 0..64 {
        match len_keep(patches, ratio).cmp(&kept) {
            std::cmp::Ordering::Equal => break,
            std::cmp::Ordering::Less => ratio = f64::from_bits(ratio.to_bits() - 1),
            std::cmp::Ordering::Greater => ratio = f64::from_bits(ratio.to_bits() + 1),
        }
    }
    ratio
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kept_count_has_a_ratio_that_keeps_it() {
        for patches in [1, 36, 49, 196, 256, 576, 1024] {
            for kept in 0..=patches {
                let ratio = ratio_keeping(patches, kept);
                assert!((0.0..=1.0).contains(&ratio), "{patches} {kept} {ratio}");
                assert_eq!(len_keep(patches, ratio), kept, "{patches} patches, {kept} kept at {ratio}");
            }
        }
    }

    #[test]
    fn a_sweep_stops_for_memory_before_an_entry_would_pass_its_room() {
        let path = format!("{}/../tests/fixtures/models/tiny-p16", env!("CARGO_MANIFEST_DIR"));
        let location: mae_model::ModelLocation = path.parse().unwrap();
        let device = mae_model::select_device(mae_model::DeviceChoice::Cpu).unwrap();
        let loaded = mae_model::source::load_model(&location, &device, &Default::default()).unwrap();
        let rgb = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, 90]));
        let pixel_values = loaded.preprocessor.pixel_values(&rgb, &candle_core::Device::Cpu).unwrap();
        let key = SweepKey { image_id: 1, strategy: MaskStrategy::Random, seed: 0 };
        let mask = MaskSpec::random(0, 0.75);
        let output = loaded.model.forward(&pixel_values, &mask, ForwardOptions { attentions: false }).unwrap();
        let original = tensor_to_rgba(&output.pixel_values, &loaded.preprocessor).unwrap();
        let mut sweep = Sweep::new(key, 16, original);
        sweep.insert_output(&output, &loaded, &mask, 1.0).unwrap();
        let one = sweep.bytes();
        // Room for two entries: the second is computed, the third refused before its forward pass.
        for _ in 0..3 {
            sweep.step(&loaded, &pixel_values, 2 * one + one / 2).unwrap();
        }
        assert_eq!(sweep.progress(), (2, 17));
        assert_eq!(sweep.forwards, 1);
        assert!(sweep.is_finished(), "a stopped sweep computes nothing more");
        let why = sweep.stopped.as_ref().unwrap().to_string();
        assert!(why.starts_with("stopped early for memory: 2 entries hold"), "{why}");
        // Scrubbing still finds the nearest of the two.
        let (entry, exact) = sweep.lookup(0.1).unwrap();
        assert!(!exact);
        assert_eq!(entry.kept, 16, "all kept (the sweep's first count) is nearest to 0.1");
    }

    #[test]
    fn the_order_is_coarse_to_fine_and_covers_each_count_once() {
        let order = sweep_order(196);
        assert_eq!(order.len(), 197);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..=196).collect::<Vec<_>>());
        // Every 10th count first (20 of them), from everything kept down.
        assert_eq!(&order[..3], &[196, 186, 176]);
        assert_eq!(order[19], 6);
        // Then the 5th between them.
        assert_eq!(order[20], 191);
        let large = sweep_order(4096);
        assert_eq!(large.len(), MOST_SWEEP_ENTRIES);
        let mut distinct = large.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), MOST_SWEEP_ENTRIES);
        assert_eq!((distinct[0], distinct[MOST_SWEEP_ENTRIES - 1]), (0, 4096));
    }
}
