//! `mae-explorer compare`: the same images and masks through several models — one CSV row per image × mask ×
//! ratio × seed × model, each model's means and the win count printed. The work is `jobs::evaluate`'s, the job
//! `eval` runs with one model; the table is `jobs::compare`'s.

use std::io::{BufWriter, Write};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::model_arg::load_models;
use crate::atomic_file::{check_output_folder, check_overwrite, write_output};
use crate::cli::CompareArgs;
use crate::jobs::compare::{CompareTally, write_header};
use crate::jobs::evaluate::{EvalCase, EvalItem, EvalModel, EvaluationJob};
use crate::jobs::grid::GridImageSource;
use crate::jobs::image_files::grid_images;

pub fn run(args: &CompareArgs) -> Result<()> {
    let labels = args.models.0.clone();
    let (ratios, seeds, masks) = (&args.mask_ratios.0, &args.seeds.0, args.masks.0.clone());
    check_output_folder(&args.out)?;
    check_overwrite(&args.out, args.force)?;
    // Every mask at its ratios and seeds, as export makes grid rows (a grid mask takes one ratio, …).
    let cases: Vec<EvalCase> = masks
        .iter()
        .enumerate()
        .flat_map(|(index, item)| {
            let seeds = item.seeds(seeds);
            item.ratios(ratios)
                .iter()
                .flat_map(move |&ratio| seeds.iter().map(move |&seed| EvalCase { mask: index, ratio, seed }))
        })
        .collect();
    let mut skip_if_unreadable = Vec::new();
    let items: Vec<EvalItem> = grid_images(&args.image)?
        .into_iter()
        .filter_map(|image| match image.source {
            GridImageSource::File { path, skip_if_unreadable: skip } => {
                skip_if_unreadable.push(skip);
                Some(EvalItem { path, name: image.name, cases: cases.clone() })
            }
            GridImageSource::Decoded(_) => None,
        })
        .collect();

    let loaded = load_models(&labels, &args.engine)?;
    if let Some(first) = loaded.first()
        && args.size.size != mae_model::SizeRule::Model
    {
        eprintln!("comparing{}", super::eval::size_words(args.size.size, first.model.config().patch_size));
    }
    let models: Vec<EvalModel> =
        labels.iter().zip(&loaded).map(|(label, loaded)| EvalModel { label, loaded }).collect();
    let job = EvaluationJob { masks: masks.into_iter().map(|item| item.source).collect(), items, size: args.size.size };
    let bar = ProgressBar::new(job.items.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:32} {pos}/{len} images {per_sec} eta {eta}")
            .map_err(|e| anyhow!("progress bar template: {e}"))?,
    );
    let mut tally = CompareTally::new(labels.clone());
    let mut skipped = 0;
    let written = write_output(&args.out, args.force, |temporary| {
        let mut writer = BufWriter::new(std::fs::File::create(temporary)?);
        write_header(&mut writer)?;
        let mut index = 0;
        job.run(&models, args.batch, &mut |result| {
            let skip = skip_if_unreadable[index];
            index += 1;
            bar.inc(1);
            match &result.outcome {
                // As export does: an image found in a folder that cannot be read is left out, one named is an error.
                Err(problem) if skip => {
                    skipped += 1;
                    bar.suspend(|| eprintln!("warning: skipped {}: {problem}", result.item.path.display()));
                    Ok(())
                }
                _ => tally.add_image(&result, &job.masks, &mut writer),
            }
        })?;
        if skipped == job.items.len() {
            bail!("none of the {} images could be read", job.items.len());
        }
        writer.flush().with_context(|| format!("{}: cannot write the CSV", args.out.display()))
    });
    bar.finish_and_clear();
    written?;
    if skipped > 0 {
        eprintln!("warning: {skipped} of {} images skipped", job.items.len());
    }
    print!("{}", tally.report());
    Ok(())
}
