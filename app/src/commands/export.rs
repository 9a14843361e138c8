//! `mae-explorer export`: comparison grids as picture files (the grid itself is `jobs::grid`'s, shared with the
//! window's Export dialog).
//!
//! Everything that can be checked without the model (columns, colormap, ratios, seeds, tile size, output path) is
//! checked first, so a typo costs no model load; the picture is written to a temporary file beside the target and
//! renamed into place, and an existing file is only replaced with `--force`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::model_arg::load_model;
use crate::atomic_file::{check_output_folder, check_overwrite, picture_format, write_picture_output};
use crate::cli::ExportArgs;
use crate::jobs::grid::{GridImage, GridImageSource, GridJob, GridProgress, check_tile_size};
use crate::jobs::lists::{parse_ratios, parse_seeds};
use crate::render::Colormap;
use crate::render::grid::parse_columns;
use crate::render::panels::MaskedStyle;

/// File extensions taken from a folder given to `--image` (other files there are ignored).
pub const IMAGE_EXTENSIONS: &[&str] =
    &["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "ppm", "pgm", "pnm", "tga", "ico", "qoi"];

pub fn run(args: &ExportArgs) -> Result<()> {
    let job = plan(args)?;
    let loaded = load_model(&args.model, &args.device)?;
    let bar = ProgressBar::new(job.row_count() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:32} {pos}/{len} rows").map_err(|e| anyhow!("progress bar template: {e}"))?,
    );
    let mut skipped = 0;
    let picture = job.run(&loaded, &mut |progress| match progress {
        GridProgress::Rows { done, .. } => bar.set_position(done as u64),
        GridProgress::Skipped { problem } => {
            skipped += 1;
            bar.suspend(|| eprintln!("warning: skipped {problem}"));
        }
    });
    bar.finish_and_clear();
    let picture = picture?;
    if skipped > 0 {
        eprintln!("warning: {skipped} of {} images skipped", job.images.len());
    }
    // Without --force, a file that appeared while the model ran is not replaced either.
    write_picture_output(&picture, &args.out, args.force)
}

/// The grid the arguments describe, with every option that needs no model checked, naming the first bad one.
pub fn plan(args: &ExportArgs) -> Result<GridJob> {
    let columns = parse_columns(&args.columns).map_err(|e| anyhow!("--columns: {e}"))?;
    let colormap: Colormap = args.colormap.parse().map_err(|e| anyhow!("--colormap: {e}"))?;
    let masked_style: MaskedStyle = args.masked_style.parse().map_err(|e| anyhow!("--masked-style: {e}"))?;
    let ratios = parse_ratios(&args.mask_ratios).map_err(|e| anyhow!("--mask-ratios: {e}"))?;
    let seeds = parse_seeds(&args.seeds).map_err(|e| anyhow!("--seeds: {e}"))?;
    check_tile_size(args.tile_size).map_err(|e| anyhow!("--tile-size: {e}"))?;
    picture_format(&args.out)?;
    check_output_folder(&args.out)?;
    check_overwrite(&args.out, args.force)?;
    let images = collect_images(&args.image)?;
    let job = GridJob { images, ratios, seeds, columns, colormap, masked_style, tile_size: args.tile_size };
    job.check()?;
    Ok(job)
}

/// Expands folders into their image files (sorted by name, hidden files left out).
pub fn collect_images(paths: &[PathBuf]) -> Result<Vec<GridImage>> {
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
            inputs.extend(found.into_iter().map(|path| grid_image(path, true)));
        } else if path.exists() {
            // Devices, pipes and the like are refused by the image reader, which says what they are.
            inputs.push(grid_image(path.clone(), false));
        } else {
            bail!("{}: image not found", path.display());
        }
    }
    Ok(inputs)
}

/// Rows are captioned with the file name, as the window captions the picture it opened.
fn grid_image(path: PathBuf, skip_if_unreadable: bool) -> GridImage {
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    GridImage { name, source: GridImageSource::File { path, skip_if_unreadable } }
}

fn is_image_name(path: &Path) -> bool {
    let hidden = path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.'));
    let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    !hidden && IMAGE_EXTENSIONS.contains(&extension.as_str())
}
