//! `mae-explorer export`: comparison grids as picture files, drawn by the same render code as the window.
//!
//! Everything that can be checked without the model (columns, colormap, ratios, seeds, output path) is checked
//! first, so a typo costs no model load; the picture is written to a temporary file beside the target and renamed
//! into place, and an existing file is only replaced with `--force`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use candle_core::Device;
use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};
use indicatif::{ProgressBar, ProgressStyle};
use mae_model::masking::check_ratio;
use mae_model::preprocess::load_rgb_image;
use mae_model::{ForwardOptions, LoadedModel, MaskSpec};

use crate::atomic_file::{check_output_folder, check_overwrite, write_bytes, write_output};
use crate::cli::ExportArgs;
use crate::model_arg::load_model;
use crate::render::Colormap;
use crate::render::grid::{
    Column, GAP, GridSpec, MAX_GRID_PIXELS, MAX_TILE_SIZE, column_caption, compose_grid, grid_row, grid_title,
    parse_columns,
};
use crate::render::panels::{MaskedStyle, PanelOptions, render_panels};

/// File extensions taken from a folder given to `--image` (other files there are ignored).
pub const IMAGE_EXTENSIONS: &[&str] =
    &["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "ppm", "pgm", "pnm", "tga", "ico", "qoi"];

/// The validated form of `ExportArgs`.
#[derive(Clone, Debug)]
pub struct ExportPlan {
    pub columns: Vec<Column>,
    pub colormap: Colormap,
    pub masked_style: MaskedStyle,
    pub ratios: Vec<f64>,
    pub seeds: Vec<u64>,
    pub format: ImageFormat,
}

pub fn run(args: &ExportArgs) -> Result<()> {
    let plan = plan(args)?;
    let images = collect_images(&args.image)?;
    check_grid_fits(images.len(), &plan, args.tile_size)?;
    let loaded = load_model(&args.model, &args.device)?;
    let picture = render_export(&loaded, &images, &plan, args.tile_size)?;
    let bytes = encode(&picture, &args.out, plan.format)?;
    write_output(&args.out, args.force, |temporary| write_bytes(temporary, &bytes, &args.out))
}

/// Checks every option that needs no model, naming the first bad one.
pub fn plan(args: &ExportArgs) -> Result<ExportPlan> {
    let columns = parse_columns(&args.columns).map_err(|e| anyhow!("--columns: {e}"))?;
    let colormap: Colormap = args.colormap.parse().map_err(|e| anyhow!("--colormap: {e}"))?;
    let masked_style = match args.masked_style.trim().to_ascii_lowercase().as_str() {
        "mean-grey" | "mean-gray" | "grey" | "gray" => MaskedStyle::MeanGrey,
        "dimmed" => MaskedStyle::Dimmed,
        "checker" => MaskedStyle::Checker,
        other => bail!("--masked-style: unknown style \"{other}\" (choose mean-grey, dimmed or checker)"),
    };
    let ratios = parse_list(&args.mask_ratios, "--mask-ratios", "mask ratio", |text| text.parse::<f64>().ok())?;
    for &ratio in &ratios {
        check_ratio(ratio).map_err(|e| anyhow!("--mask-ratios: {e}"))?;
    }
    let seeds = parse_list(&args.seeds, "--seeds", "seed", |text| text.parse::<u64>().ok())?;
    if args.tile_size == 0 || args.tile_size > MAX_TILE_SIZE {
        bail!("--tile-size must be between 1 and {MAX_TILE_SIZE} pixels, got {}", args.tile_size);
    }
    let format = output_format(&args.out)?;
    check_output_folder(&args.out)?;
    check_overwrite(&args.out, args.force)?;
    Ok(ExportPlan { columns, colormap, masked_style, ratios, seeds, format })
}

pub(crate) fn parse_list<T>(list: &str, option: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
    let values: Vec<T> = list
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| parse(part).ok_or_else(|| anyhow!("{option}: \"{part}\" is not a valid {what}")))
        .collect::<Result<_>>()?;
    if values.is_empty() {
        bail!("{option}: the list is empty (give at least one {what})");
    }
    Ok(values)
}

/// Refuses, before any forward pass, a grid whose tiles alone would exceed what can be composed in memory.
fn check_grid_fits(images: usize, plan: &ExportPlan, tile_size: u32) -> Result<()> {
    let rows = (images * plan.ratios.len() * plan.seeds.len()) as u64;
    let pitch = u64::from(tile_size + GAP);
    let (width, height) = (plan.columns.len() as u64 * pitch, rows * pitch);
    if width.saturating_mul(height) > MAX_GRID_PIXELS {
        bail!(
            "the grid would be over {width}×{height} pixels ({rows} rows × {} columns; at most {MAX_GRID_PIXELS} \
             pixels): use fewer images, mask ratios or seeds, or a smaller --tile-size",
            plan.columns.len()
        );
    }
    Ok(())
}

/// The picture format the output's extension names.
pub fn output_format(out: &Path) -> Result<ImageFormat> {
    let extension = out.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "png" => Ok(ImageFormat::Png),
        "jpg" | "jpeg" => Ok(ImageFormat::Jpeg),
        "webp" => Ok(ImageFormat::WebP),
        _ => bail!("{}: unsupported output format (use a .png, .jpg or .webp file name)", out.display()),
    }
}

/// One input picture: where it came from and whether it was named directly (then any problem is an error) or
/// found in a folder (then a problem is reported and the image skipped).
#[derive(Clone, Debug, PartialEq)]
pub struct ImageInput {
    pub path: PathBuf,
    pub from_folder: bool,
}

/// Expands folders into their image files (sorted by name, hidden files left out).
pub fn collect_images(paths: &[PathBuf]) -> Result<Vec<ImageInput>> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{}: cannot list the folder", path.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|file| file.is_file() && is_image_name(file))
                .collect();
            if found.is_empty() {
                bail!("{}: the folder holds no images ({})", path.display(), IMAGE_EXTENSIONS.join(", "));
            }
            found.sort();
            inputs.extend(found.into_iter().map(|path| ImageInput { path, from_folder: true }));
        } else if path.exists() {
            // Devices, pipes and the like are refused by the image reader, which says what they are.
            inputs.push(ImageInput { path: path.clone(), from_folder: false });
        } else {
            bail!("{}: image not found", path.display());
        }
    }
    Ok(inputs)
}

fn is_image_name(path: &Path) -> bool {
    let hidden = path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.'));
    let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    !hidden && IMAGE_EXTENSIONS.contains(&extension.as_str())
}

/// Runs every (image, ratio, seed) and composes the grid. Images from folders that cannot be read are reported on
/// stderr and skipped; if none is left, that is an error.
pub fn render_export(
    loaded: &LoadedModel,
    images: &[ImageInput],
    plan: &ExportPlan,
    tile_size: u32,
) -> Result<RgbaImage> {
    let needs_attention = plan.columns.iter().any(|column| matches!(column, Column::Attention(_)));
    let options = ForwardOptions { attentions: needs_attention };
    let panel_options = PanelOptions { masked_style: plan.masked_style };
    let runs_per_image = (plan.ratios.len() * plan.seeds.len()) as u64;
    let progress = ProgressBar::new(images.len() as u64 * runs_per_image);
    progress.set_style(
        ProgressStyle::with_template("{bar:32} {pos}/{len} rows {msg}")
            .map_err(|e| anyhow!("progress bar template: {e}"))?,
    );

    let mut rows = Vec::new();
    let mut skipped = 0usize;
    let mut uses_target_statistics = false;
    // (height, width) the model actually saw, for the title.
    let mut input_size = None;
    for input in images {
        let name =
            input.path.file_name().map_or_else(|| input.path.display().to_string(), |n| n.to_string_lossy().into());
        progress.set_message(name.clone());
        let pixel_values = match load_rgb_image(&input.path)
            .and_then(|rgb: RgbImage| loaded.preprocessor.pixel_values(&rgb, &Device::Cpu))
        {
            Ok(values) => values,
            Err(error) if input.from_folder => {
                progress.suspend(|| eprintln!("warning: skipped {error}"));
                progress.inc(runs_per_image);
                skipped += 1;
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        for &ratio in &plan.ratios {
            for &seed in &plan.seeds {
                let output = loaded
                    .model
                    .forward(&pixel_values, &MaskSpec::Seed { seed, ratio }, options)
                    .with_context(|| format!("{}: mask ratio {ratio}, seed {seed}", input.path.display()))?;
                let panels = render_panels(&output, &loaded.preprocessor, &panel_options)?;
                uses_target_statistics |= panels.uses_target_statistics;
                input_size.get_or_insert(output.image_size());
                rows.push(grid_row(&name, ratio, seed, &output, &panels, &plan.columns, plan.colormap)?);
                progress.inc(1);
            }
        }
    }
    progress.finish_and_clear();
    if rows.is_empty() {
        bail!("none of the {} images could be read", images.len());
    }
    if skipped > 0 {
        eprintln!("warning: {skipped} of {} images skipped", images.len());
    }
    let config = loaded.model.config();
    let size = input_size.unwrap_or((config.image_size, config.image_size));
    let title = grid_title(&loaded.name, size, config.patch_size, &plan.columns, plan.colormap, uses_target_statistics);
    let column_captions = plan.columns.iter().map(|c| column_caption(c, uses_target_statistics)).collect();
    compose_grid(&GridSpec { title, column_captions, tile_size }, &rows)
}

/// Encodes `picture` (opaque: alpha is dropped so JPEG works too) and writes it atomically, replacing `out`.
pub fn save(picture: &RgbaImage, out: &Path, format: ImageFormat) -> Result<()> {
    let bytes = encode(picture, out, format)?;
    write_output(out, true, |temporary| write_bytes(temporary, &bytes, out))
}

/// `picture` as the bytes of a `format` file (alpha dropped); errors name `out`.
fn encode(picture: &RgbaImage, out: &Path, format: ImageFormat) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    DynamicImage::ImageRgba8(picture.clone())
        .to_rgb8()
        .write_to(&mut Cursor::new(&mut bytes), format)
        .with_context(|| format!("{}: cannot encode the picture", out.display()))?;
    Ok(bytes)
}
