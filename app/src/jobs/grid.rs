//! Comparison grids: every (image, mask ratio, seed) through the model, drawn as one captioned picture.
//!
//! The `export` command and the window's Export dialog both describe their grid as a [`GridJob`] and run it
//! here, so they share one validation, one tile-size range, one size limit and one title rule — and the same job
//! gives the same picture from either.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use candle_core::Device;
use image::{RgbImage, RgbaImage};
use mae_model::masking::check_ratio;
use mae_model::preprocess::load_rgb_image;
use mae_model::{ForwardOptions, LoadedModel, MaskSpec};

use crate::render::Colormap;
use crate::render::grid::{Column, GAP, GridSpec, MAX_GRID_PIXELS, column_caption, compose_grid, grid_row, grid_title};
use crate::render::panels::{MaskedStyle, PanelOptions, render_panels};

/// Sides a tile may have, in pixels (model-resolution pictures are scaled with nearest-neighbour).
pub const TILE_SIZES: RangeInclusive<u32> = 8..=4096;

/// Where a grid's picture comes from.
#[derive(Clone, Debug)]
pub enum GridImageSource {
    /// Already decoded (the picture open in the window).
    Decoded(Arc<RgbImage>),
    /// Read when its rows are drawn. A file found in a folder is skipped (and reported) when it cannot be read;
    /// a file named on its own is an error.
    File { path: PathBuf, skip_if_unreadable: bool },
}

/// One input picture and the name its rows are captioned with.
#[derive(Clone, Debug)]
pub struct GridImage {
    pub name: String,
    pub source: GridImageSource,
}

/// A comparison grid: one row per (image, ratio, seed), one column per view.
#[derive(Clone, Debug)]
pub struct GridJob {
    pub images: Vec<GridImage>,
    pub ratios: Vec<f64>,
    pub seeds: Vec<u64>,
    pub columns: Vec<Column>,
    /// Colormap of loss and attention columns.
    pub colormap: Colormap,
    pub masked_style: MaskedStyle,
    pub tile_size: u32,
}

/// What a running grid job reports.
#[derive(Clone, Debug, PartialEq)]
pub enum GridProgress {
    /// `done` of `total` rows are drawn (skipped images count as done).
    Rows { done: usize, total: usize },
    /// An image from a folder could not be read and was left out.
    Skipped { problem: String },
}

/// Refuses a tile side outside [`TILE_SIZES`].
pub fn check_tile_size(tile_size: u32) -> Result<()> {
    if !TILE_SIZES.contains(&tile_size) {
        bail!("the tile size must be {} to {} pixels, got {tile_size}", TILE_SIZES.start(), TILE_SIZES.end());
    }
    Ok(())
}

impl GridJob {
    /// Rows in the finished grid (when no image is skipped).
    pub fn row_count(&self) -> usize {
        self.images.len() * self.ratios.len() * self.seeds.len()
    }

    /// Everything that can be checked without the model, so a mistake costs no forward pass.
    pub fn check(&self) -> Result<()> {
        if self.images.is_empty() || self.columns.is_empty() || self.ratios.is_empty() || self.seeds.is_empty() {
            bail!("a grid needs at least one image, column, mask ratio and seed");
        }
        for &ratio in &self.ratios {
            check_ratio(ratio)?;
        }
        check_tile_size(self.tile_size)?;
        // The tiles alone, before captions: enough to refuse what can never be composed.
        let pitch = u64::from(self.tile_size + GAP);
        let (width, height) = (self.columns.len() as u64 * pitch, self.row_count() as u64 * pitch);
        if width.saturating_mul(height) > MAX_GRID_PIXELS {
            bail!(
                "the grid would be over {width}×{height} pixels ({} rows × {} columns; at most {MAX_GRID_PIXELS} \
                 pixels): use fewer images, mask ratios or seeds, or a smaller tile size",
                self.row_count(),
                self.columns.len()
            );
        }
        Ok(())
    }

    /// Runs every forward pass and draws the grid. Fails on the first error, except for unreadable folder images,
    /// which are reported through `progress` and left out (if none is left, that is an error).
    pub fn run(&self, loaded: &LoadedModel, progress: &mut dyn FnMut(GridProgress)) -> Result<RgbaImage> {
        self.check()?;
        let options = ForwardOptions { attentions: self.columns.iter().any(|c| matches!(c, Column::Attention(_))) };
        let panel_options = PanelOptions { masked_style: self.masked_style };
        let total = self.row_count();
        let rows_per_image = self.ratios.len() * self.seeds.len();
        let mut done = 0;
        let mut rows = Vec::with_capacity(total);
        let mut uses_target_statistics = false;
        // (height, width) the model actually saw, for the title.
        let mut input_size = None;
        for image in &self.images {
            let pixel_values = match self.pixel_values(image, loaded) {
                Ok(values) => values,
                Err(problem) if matches!(image.source, GridImageSource::File { skip_if_unreadable: true, .. }) => {
                    progress(GridProgress::Skipped { problem: format!("{problem:#}") });
                    done += rows_per_image;
                    progress(GridProgress::Rows { done, total });
                    continue;
                }
                Err(problem) => return Err(problem),
            };
            for &ratio in &self.ratios {
                for &seed in &self.seeds {
                    let output = loaded
                        .model
                        .forward(&pixel_values, &MaskSpec::Seed { seed, ratio }, options)
                        .with_context(|| format!("{}: mask ratio {ratio}, seed {seed}", image.name))?;
                    let panels = render_panels(&output, &loaded.preprocessor, &panel_options)?;
                    uses_target_statistics |= panels.uses_target_statistics;
                    input_size.get_or_insert(output.image_size());
                    rows.push(grid_row(&image.name, ratio, seed, &output, &panels, &self.columns, self.colormap)?);
                    done += 1;
                    progress(GridProgress::Rows { done, total });
                }
            }
        }
        let Some(input_size) = input_size else {
            bail!("none of the {} images could be read", self.images.len());
        };
        let patch_size = loaded.model.config().patch_size;
        let title =
            grid_title(&loaded.name, input_size, patch_size, &self.columns, self.colormap, uses_target_statistics);
        let column_captions = self.columns.iter().map(|c| column_caption(c, uses_target_statistics)).collect();
        compose_grid(&GridSpec { title, column_captions, tile_size: self.tile_size }, &rows)
    }

    fn pixel_values(&self, image: &GridImage, loaded: &LoadedModel) -> Result<candle_core::Tensor> {
        let rgb = match &image.source {
            GridImageSource::Decoded(rgb) => rgb.clone(),
            GridImageSource::File { path, .. } => Arc::new(load_rgb_image(path)?),
        };
        Ok(loaded.preprocessor.pixel_values(&rgb, &Device::Cpu)?)
    }
}
