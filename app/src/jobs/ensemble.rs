//! A seed ensemble: the same image masked with several seeds of one strategy at one ratio. The command runs the
//! seeds as batched forward passes of a few at a time; the window's worker one seed per step, so a slider move
//! waits for one forward pass at most.

use anyhow::{Result, bail};
use candle_core::Tensor;
use image::RgbaImage;
use mae_model::{ForwardOptions, LoadedModel, MaskSpec, MaskStrategy};

use super::repeat_image;
use crate::render::Colormap;
use crate::render::ensemble::{Ensemble, summarize};
use crate::render::panels::{PanelOptions, render_panels};

/// Seeds per batched forward pass when the ensemble runs to the end at once (what a batch gains; the masks of one
/// strategy and ratio mostly keep one count, so they run as one group).
const SEEDS_PER_BATCH: usize = 4;

#[derive(Debug)]
pub struct SeedEnsemble {
    pixel_values: Tensor,
    strategy: MaskStrategy,
    ratio: f64,
    seeds: Vec<u64>,
    colormap: Colormap,
    pictures: Vec<RgbaImage>,
    /// How many of the seeds so far masked each patch.
    times_masked: Vec<u32>,
}

impl SeedEnsemble {
    pub fn new(
        pixel_values: Tensor,
        strategy: MaskStrategy,
        ratio: f64,
        seeds: Vec<u64>,
        colormap: Colormap,
    ) -> Result<Self> {
        if seeds.is_empty() {
            bail!("a seed ensemble needs at least one seed");
        }
        let pictures = Vec::with_capacity(seeds.len());
        Ok(Self { pixel_values, strategy, ratio, seeds, colormap, pictures, times_masked: Vec::new() })
    }

    /// Runs the next `count` seeds (one batched forward pass); does nothing once finished.
    pub fn step(&mut self, loaded: &LoadedModel, count: usize) -> Result<()> {
        let done = self.pictures.len();
        let seeds = &self.seeds[done..self.seeds.len().min(done + count.max(1))];
        if seeds.is_empty() {
            return Ok(());
        }
        let specs: Vec<MaskSpec> =
            seeds.iter().map(|&seed| MaskSpec::Drawn { strategy: self.strategy, seed, ratio: self.ratio }).collect();
        let batch = repeat_image(&self.pixel_values, specs.len())?;
        let outputs = loaded.model.forward_batch(&batch, &specs, ForwardOptions { attentions: false })?;
        for output in outputs {
            self.times_masked.resize(output.num_patches(), 0);
            for (count, &masked) in self.times_masked.iter_mut().zip(&output.masking.mask) {
                *count += u32::from(masked != 0.0);
            }
            self.pictures.push(render_panels(&output, &loaded.preprocessor, &PanelOptions::default())?.pasted);
        }
        Ok(())
    }

    pub fn is_finished(&self) -> bool {
        self.pictures.len() == self.seeds.len()
    }

    /// (seeds done, seeds in all).
    pub fn progress(&self) -> (usize, usize) {
        (self.pictures.len(), self.seeds.len())
    }

    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    pub fn seeds(&self) -> &[u64] {
        &self.seeds
    }

    /// Mean and spread over the seeds run so far.
    pub fn summary(&self) -> Ensemble {
        summarize(&self.pictures, self.times_masked.clone(), self.colormap)
    }

    /// Runs every remaining seed and summarizes them.
    pub fn finish(mut self, loaded: &LoadedModel) -> Result<Ensemble> {
        while !self.is_finished() {
            self.step(loaded, SEEDS_PER_BATCH)?;
        }
        Ok(self.summary())
    }
}
