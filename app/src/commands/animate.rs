//! `mae-explorer animate`: one image's comparison grid as an animation, a frame per mask ratio or per seed (the
//! animation itself is `jobs::animation`'s, shared with the window's File → Export animation…).
//!
//! Everything that can be checked without the model (lists, frame count, frame rate, output path) is checked
//! first, so a typo costs no model load; the file is written to a temporary file beside the target and renamed
//! into place, and an existing file is only replaced with `--force`.

use anyhow::{Context, Result, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
use mae_model::{LoadedModel, SizeRule};

use super::model_arg::load_models;
use crate::atomic_file::{check_output_folder, check_overwrite};
use crate::cli::AnimateArgs;
use crate::jobs::animation::{AnimationFormat, AnimationJob};
use crate::jobs::grid::GridJob;
use crate::jobs::image_files::grid_images;

pub fn run(args: &AnimateArgs) -> Result<()> {
    let job = plan(args)?;
    let loaded = load_models(&args.model.names()?, &args.engine)?;
    let models: Vec<&LoadedModel> = loaded.iter().collect();
    if args.size.size != SizeRule::Model
        && let Some(first) = models.first()
    {
        // Every frame feeds the one picture at the same size: said once, for the first model.
        let picture = image::image_dimensions(&args.image).with_context(|| args.image.display().to_string())?;
        let model_size = first.preprocessor.config.target_size();
        let size = args.size.size.check(picture, first.model.config(), model_size, &first.name)?;
        eprintln!("{}", size.describe());
    }
    let bar = ProgressBar::new(job.row_count() as u64);
    let template = format!("{{bar:32}} {{pos}}/{{len}} rows of {} frames", job.frame_count());
    bar.set_style(ProgressStyle::with_template(&template).map_err(|e| anyhow!("progress bar template: {e}"))?);
    // Without --force, a file that appeared while the model ran is not replaced either.
    let written = job.write(&models, &args.out, args.force, &mut |done, _| bar.set_position(done as u64));
    bar.finish_and_clear();
    written
}

/// The animation the arguments describe, with every option that needs no model checked, naming the first bad one.
pub fn plan(args: &AnimateArgs) -> Result<AnimationJob> {
    AnimationFormat::of(&args.out)?;
    check_output_folder(&args.out)?;
    check_overwrite(&args.out, args.force)?;
    let grid = GridJob {
        images: grid_images(std::slice::from_ref(&args.image))?,
        masks: args.masks.0.clone(),
        ratios: args.mask_ratios.0.clone(),
        seeds: args.seeds.0.clone(),
        columns: args.look.columns.0.clone(),
        colormap: args.look.colormap,
        masked_style: args.look.masked_style,
        tile_size: args.look.tile_size,
        models: args.model.names()?.len(),
        size: args.size.size,
    };
    AnimationJob::new(grid, args.fps)
}
