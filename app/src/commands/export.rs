//! `mae-explorer export`: comparison grids as picture files (the grid itself is `jobs::grid`'s, shared with the
//! window's Export dialog).
//!
//! Everything that can be checked without the model (columns, colormap, ratios, seeds, tile size, output path) is
//! checked first, so a typo costs no model load; the picture is written to a temporary file beside the target and
//! renamed into place, and an existing file is only replaced with `--force`.

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use mae_model::LoadedModel;

use super::model_arg::load_models;
use crate::atomic_file::{check_output_folder, check_overwrite, picture_format, write_output, write_picture_output};
use crate::cli::ExportArgs;
use crate::jobs::grid::{CheckedGridJob, GridJob, GridProgress, write_metrics_csv};
use crate::jobs::image_files::grid_images;

pub fn run(args: &ExportArgs) -> Result<()> {
    let job = plan(args)?;
    let loaded = load_models(&args.model.names()?, &args.engine)?;
    let models: Vec<&LoadedModel> = loaded.iter().collect();
    let bar = ProgressBar::new(job.row_count() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:32} {pos}/{len} rows").map_err(|e| anyhow!("progress bar template: {e}"))?,
    );
    let mut skipped = 0;
    let output = job.run(&models, &mut |progress| match progress {
        GridProgress::Rows { done, .. } => bar.set_position(done as u64),
        GridProgress::Skipped { problem } => {
            skipped += 1;
            bar.suspend(|| eprintln!("warning: skipped {problem}"));
        }
        GridProgress::Sized { image, size } => bar.suspend(|| eprintln!("{image}: {}", size.describe())),
    });
    bar.finish_and_clear();
    let output = output?;
    if skipped > 0 {
        eprintln!("warning: {skipped} of {} images skipped", job.images.len());
    }
    // Without --force, a file that appeared while the model ran is not replaced either.
    write_picture_output(&output.picture, &args.out, args.force)?;
    if let Some(csv) = &args.metrics_csv {
        write_output(csv, args.force, |temporary| {
            let file = std::fs::File::create(temporary)?;
            write_metrics_csv(&output.rows, std::io::BufWriter::new(file))
                .with_context(|| format!("{}: cannot write the CSV", csv.display()))
        })?;
    }
    Ok(())
}

/// The grid the arguments describe, with every option that needs no model checked, naming the first bad one.
pub fn plan(args: &ExportArgs) -> Result<CheckedGridJob> {
    let (columns, ratios, seeds) = (args.look.columns.0.clone(), args.mask_ratios.0.clone(), args.seeds.0.clone());
    let masks = args.masks.0.clone();
    let models = args.model.names()?.len();
    picture_format(&args.out)?;
    check_output_folder(&args.out)?;
    check_overwrite(&args.out, args.force)?;
    if let Some(csv) = &args.metrics_csv {
        if *csv == args.out {
            bail!("{}: --metrics-csv and --out name the same file", csv.display());
        }
        check_output_folder(csv)?;
        check_overwrite(csv, args.force)?;
    }
    let images = grid_images(&args.image)?;
    GridJob {
        images,
        masks,
        ratios,
        seeds,
        columns,
        colormap: args.look.colormap,
        masked_style: args.look.masked_style,
        tile_size: args.look.tile_size,
        models,
        size: args.size.size,
    }
    .check()
}
