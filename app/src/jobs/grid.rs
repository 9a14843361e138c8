//! Comparison grids: every (image, mask, mask ratio, seed) through the model — or through several, the columns
//! repeated once per model and labelled with its name — drawn as one captioned picture, with each row's losses,
//! PSNR and SSIM (also as CSV rows for `export --metrics-csv`).
//!
//! The `export` command and the window's Export dialog both describe their grid as a [`GridJob`] and run it
//! here, so they share one validation, one tile-size range, one size limit and one title rule — and the same job
//! gives the same picture from either.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;

use std::io::Write;

use anyhow::{Context, Result, bail};
use candle_core::Device;
use image::{RgbImage, RgbaImage};
use mae_model::masking::check_ratio;
use mae_model::preprocess::load_rgb_image;
use mae_model::{DisplayPair, ForwardOptions, InputSize, LoadedModel, Quality, SizeRule};

use super::csv;
use super::masks::MaskItem;
use super::repeat_image;
use crate::render::Colormap;
use crate::render::grid::{
    Column, GAP, GridRow, GridSpec, MAX_GRID_PIXELS, RowLabel, column_caption, compose_grid, grid_row, grid_title,
};
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

/// A comparison grid: one row per (image, mask, ratio, seed), one column per view.
#[derive(Clone, Debug)]
pub struct GridJob {
    pub images: Vec<GridImage>,
    /// Each mask makes rows; one with its own ratio uses it instead of `ratios`.
    pub masks: Vec<MaskItem>,
    pub ratios: Vec<f64>,
    pub seeds: Vec<u64>,
    pub columns: Vec<Column>,
    /// Colormap of loss and attention columns.
    pub colormap: Colormap,
    pub masked_style: MaskedStyle,
    pub tile_size: u32,
    /// How many models run it: each repeats the columns.
    pub models: usize,
    /// The size pictures are fed at (each model rounds `native` to its own patch size).
    pub size: SizeRule,
}

/// What a running grid job reports.
#[derive(Clone, Debug, PartialEq)]
pub enum GridProgress {
    /// `done` of `total` rows are drawn (skipped images count as done).
    Rows { done: usize, total: usize },
    /// An image from a folder could not be read and was left out.
    Skipped { problem: String },
    /// An image is fed at a size other than the model's own (`--size`): which, and why, for the first model.
    Sized { image: String, size: InputSize },
}

/// What one model measured on one grid row, for `export --metrics-csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct RowMetrics {
    pub image: String,
    pub model: String,
    pub mask: String,
    pub ratio: f64,
    pub seed: u64,
    pub masked_patches: usize,
    pub quality: Quality,
}

/// A finished grid: the picture and the measurements of its rows, in row order.
#[derive(Clone, Debug)]
pub struct GridOutput {
    pub picture: RgbaImage,
    pub rows: Vec<RowMetrics>,
}

impl GridJob {
    /// Rows per image: every mask at its ratios, times the seeds.
    fn rows_per_image(&self) -> usize {
        self.masks.iter().map(|mask| mask.ratios(&self.ratios).len() * mask.seeds(&self.seeds).len()).sum()
    }

    /// Rows in the finished grid (when no image is skipped).
    pub fn row_count(&self) -> usize {
        self.images.len() * self.rows_per_image()
    }

    /// Everything that can be checked without the model, so a mistake costs no forward pass; only the job this
    /// returns can run.
    pub fn check(self) -> Result<CheckedGridJob> {
        if self.models == 0
            || self.images.is_empty()
            || self.masks.is_empty()
            || self.columns.is_empty()
            || self.ratios.is_empty()
            || self.seeds.is_empty()
        {
            bail!("a grid needs at least one model, image, mask, column, mask ratio and seed");
        }
        for &ratio in &self.ratios {
            check_ratio(ratio)?;
        }
        if !TILE_SIZES.contains(&self.tile_size) {
            // Worded for both the dialog and `--tile-size`.
            bail!(
                "the tile size must be {} to {} pixels, got {}",
                TILE_SIZES.start(),
                TILE_SIZES.end(),
                self.tile_size
            );
        }
        // The tiles alone, before captions: enough to refuse what can never be composed.
        let pitch = u64::from(self.tile_size + GAP);
        let columns = self.columns.len() * self.models;
        let (width, height) = (columns as u64 * pitch, self.row_count() as u64 * pitch);
        if width.saturating_mul(height) > MAX_GRID_PIXELS {
            bail!(
                "the grid would be over {width}×{height} pixels ({} rows × {columns} columns; at most \
                 {MAX_GRID_PIXELS} pixels): use fewer images, masks, mask ratios, seeds or models, or a smaller tile \
                 size",
                self.row_count(),
            );
        }
        Ok(CheckedGridJob(self))
    }

    /// The image as each model's own preprocessor prepares it at the job's size (read once), with the size the
    /// first model takes it at.
    fn pixel_values(
        &self,
        image: &GridImage,
        models: &[&LoadedModel],
    ) -> Result<(Vec<candle_core::Tensor>, Option<InputSize>)> {
        let rgb = match &image.source {
            GridImageSource::Decoded(rgb) => rgb.clone(),
            GridImageSource::File { path, .. } => Arc::new(load_rgb_image(path)?),
        };
        let mut first_size = None;
        let mut values = Vec::with_capacity(models.len());
        for loaded in models {
            let (tensor, size) = loaded.pixel_values_at(&rgb, self.size, &Device::Cpu)?;
            first_size.get_or_insert(size);
            values.push(tensor);
        }
        Ok((values, first_size))
    }
}

/// A [`GridJob`] that [`GridJob::check`] accepted (read through `Deref`, never changed): the only kind that runs.
#[derive(Clone, Debug)]
pub struct CheckedGridJob(GridJob);

impl std::ops::Deref for CheckedGridJob {
    type Target = GridJob;

    fn deref(&self) -> &GridJob {
        &self.0
    }
}

impl CheckedGridJob {
    /// Runs every forward pass and draws the grid: with several models, each row holds every model's columns in
    /// turn, each model cutting the image with its own preprocessing and drawing the row's mask on its own grid.
    /// Fails on the first error, except for unreadable folder images, which are reported through `progress` and left
    /// out (if none is left, that is an error).
    pub fn run(&self, models: &[&LoadedModel], progress: &mut dyn FnMut(GridProgress)) -> Result<GridOutput> {
        let Some(first) = models.first() else { bail!("a grid needs at least one model") };
        if models.len() != self.models {
            bail!("the grid was planned for {} models and is run with {}", self.models, models.len());
        }
        let several = models.len() > 1;
        let options = ForwardOptions { attentions: self.columns.iter().any(|c| matches!(c, Column::Attention(_))) };
        let panel_options = PanelOptions { masked_style: self.masked_style };
        let total = self.row_count();
        let mut done = 0;
        let mut rows = Vec::with_capacity(total);
        let mut metrics = Vec::with_capacity(total * models.len());
        let mut uses_target_statistics = vec![false; models.len()];
        // (height, width) model A actually saw, for the title.
        let mut input_size = None;
        for image in &self.images {
            let pixel_values = match self.pixel_values(image, models) {
                Ok((values, size)) => {
                    if let Some(size) = size.filter(|_| self.size != SizeRule::Model) {
                        progress(GridProgress::Sized { image: image.name.clone(), size });
                    }
                    values
                }
                Err(problem) if matches!(image.source, GridImageSource::File { skip_if_unreadable: true, .. }) => {
                    progress(GridProgress::Skipped { problem: format!("{problem:#}") });
                    done += self.rows_per_image();
                    progress(GridProgress::Rows { done, total });
                    continue;
                }
                Err(problem) => return Err(problem),
            };
            for mask in &self.masks {
                for &ratio in mask.ratios(&self.ratios) {
                    let seeds = mask.seeds(&self.seeds);
                    // Every model runs the row's seeds as one batched forward pass: outputs[model][seed].
                    let mut outputs = Vec::with_capacity(models.len());
                    for (loaded, values) in models.iter().zip(&pixel_values) {
                        let what = || {
                            format!(
                                "{}: {}mask {}, ratio {ratio}, seeds {seeds:?}",
                                image.name,
                                model_prefix(loaded, several),
                                mask.source.name()
                            )
                        };
                        let (_, _, height, width) = values.dims4()?;
                        let patch = loaded.model.config().patch_size;
                        let specs = seeds
                            .iter()
                            .map(|&seed| mask.source.spec(seed, ratio, (height, width), patch))
                            .collect::<Result<Vec<_>>>()
                            .with_context(what)?;
                        let batch = repeat_image(values, specs.len())?;
                        let results = loaded.model.forward_batch(&batch, &specs, options).with_context(what)?;
                        outputs.push(specs.into_iter().zip(results).collect::<Vec<_>>());
                    }
                    for (seed_index, &seed) in seeds.iter().enumerate() {
                        let mut row = GridRow { caption: Vec::new(), tiles: Vec::new() };
                        for (index, (loaded, model_outputs)) in models.iter().zip(&outputs).enumerate() {
                            let (spec, output) = &model_outputs[seed_index];
                            let panels = render_panels(output, &loaded.preprocessor, &panel_options)?;
                            let quality = DisplayPair::of(output, &loaded.preprocessor)?.quality(output);
                            uses_target_statistics[index] |= panels.uses_target_statistics;
                            input_size.get_or_insert(output.image_size());
                            let measured = RowMetrics {
                                image: image.name.clone(),
                                model: loaded.name.clone(),
                                mask: mask.source.name(),
                                ratio,
                                seed,
                                masked_patches: output.masking.num_masked(),
                                quality,
                            };
                            let label = RowLabel {
                                image: &image.name,
                                model: several.then_some(loaded.name.as_str()),
                                mask: &measured.mask,
                                ratio: mask.source.uses_ratio().then_some(ratio),
                                seed,
                                requested_masked: spec.requested_masked(output.num_patches()),
                                quality: &measured.quality,
                            };
                            let part = grid_row(&label, output, &panels, &self.columns, self.colormap)?;
                            // The image, mask and seed lines once; each model's own measurements after them.
                            let skip = if index == 0 { 0 } else { label.shared_lines() };
                            row.caption.extend(part.caption.into_iter().skip(skip));
                            row.tiles.extend(part.tiles);
                            metrics.push(measured);
                        }
                        rows.push(row);
                        done += 1;
                        progress(GridProgress::Rows { done, total });
                    }
                }
            }
        }
        let Some(input_size) = input_size else {
            bail!("none of the {} images could be read", self.images.len());
        };
        let names: Vec<&str> = models.iter().map(|loaded| loaded.name.as_str()).collect();
        let any_statistics = uses_target_statistics.iter().any(|&uses| uses);
        let patch = first.model.config().patch_size;
        let title = grid_title(&names.join(" vs "), input_size, patch, &self.columns, self.colormap, any_statistics);
        let column_captions = models
            .iter()
            .zip(&uses_target_statistics)
            .flat_map(|(loaded, &uses)| {
                self.columns
                    .iter()
                    .map(move |column| format!("{}{}", model_prefix(loaded, several), column_caption(column, uses)))
            })
            .collect();
        let picture = compose_grid(&GridSpec { title, column_captions, tile_size: self.tile_size }, &rows)?;
        Ok(GridOutput { picture, rows: metrics })
    }
}

/// "name: " before a column caption or an error when a grid shows several models; nothing for one.
fn model_prefix(loaded: &LoadedModel, several: bool) -> String {
    if several { format!("{}: ", loaded.name) } else { String::new() }
}

/// The metrics of every row and model as CSV (`image,model,mask,mask_ratio,seed,masked_patches,masked_loss,
/// visible_loss,psnr_db,psnr_masked_db,ssim,masked_fraction`); a value that does not exist is an empty cell, a
/// perfect PSNR is `inf`. `mask_ratio` is the ratio asked; `masked_fraction` what the mask did.
pub fn write_metrics_csv(rows: &[RowMetrics], mut writer: impl Write) -> std::io::Result<()> {
    writeln!(
        writer,
        "image,model,mask,mask_ratio,seed,masked_patches,masked_loss,visible_loss,psnr_db,psnr_masked_db,ssim,\
         masked_fraction"
    )?;
    for row in rows {
        let quality = &row.quality;
        let fields = [
            row.image.clone(),
            row.model.clone(),
            row.mask.clone(),
            row.ratio.to_string(),
            row.seed.to_string(),
            row.masked_patches.to_string(),
            csv::number(quality.masked_loss.map(f64::from)),
            csv::number(quality.visible_loss.map(f64::from)),
            csv::number(Some(quality.psnr_db)),
            csv::number(quality.psnr_masked_db),
            csv::number(quality.ssim),
            quality.masked_fraction.to_string(),
        ];
        writer.write_all(csv::line(&fields).as_bytes())?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_csv_leaves_missing_values_empty() {
        let quality = Quality {
            psnr_db: f64::INFINITY,
            psnr_masked_db: None,
            ssim: Some(1.0),
            masked_loss: None,
            visible_loss: Some(0.25),
            masked_fraction: 0.0,
        };
        let row = RowMetrics {
            image: "a,b.png".into(),
            model: "demo".into(),
            mask: "grid".into(),
            ratio: 0.75,
            seed: 3,
            masked_patches: 0,
            quality,
        };
        let mut csv = Vec::new();
        write_metrics_csv(&[row], &mut csv).unwrap();
        let text = String::from_utf8(csv).unwrap();
        assert_eq!(text.lines().nth(1), Some("\"a,b.png\",demo,grid,0.75,3,0,,0.25,inf,,1,0"));
    }
}
