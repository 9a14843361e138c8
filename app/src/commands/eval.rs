//! `mae-explorer eval`: a folder (or list) of images through one model, one CSV row per image × seed, written and
//! flushed image by image so a stopped run can be resumed, and split into shards for several machines. The work is
//! `jobs::evaluate`'s (shared with `compare`), the file format `jobs::eval_csv`'s.
//!
//! Every argument is checked, and an existing output refused or its settings compared, before the model loads.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use mae_model::SizeRule;
use mae_model::masking::check_ratio;

use super::model_arg::{hub_revision, load_model_on, selected_device};
use crate::atomic_file::{check_output_folder, write_bytes, write_output};
use crate::cli::EvalArgs;
use crate::jobs::eval_csv::{EvalSettings, EvalSummary, ExistingRows, header_line, row_line};
use crate::jobs::evaluate::{EvalCase, EvalItem, EvalModel, EvaluationJob, metric_values};
use crate::jobs::image_files::images_argument;
use crate::jobs::masks::MaskSource;

/// Images the summary lists by their masked loss.
const WORST_SHOWN: usize = 10;

pub fn run(args: &EvalArgs) -> Result<()> {
    check_ratio(args.mask_ratio).context("--mask-ratio")?;
    let seeds = args.seeds.0.clone();
    let mask = MaskSource::parse(&args.mask).context("--mask")?;
    check_output_folder(&args.out)?;
    if args.out.is_dir() {
        bail!("{}: is a folder; --out names the CSV file to write", args.out.display());
    }
    let paths = shard(images_argument(&args.images, args.recursive).context("--images")?, args.shard);
    let selected = selected_device(&args.engine)?;
    let mut settings = EvalSettings {
        model: args.model.location.clone(),
        revision: None,
        strategy: match &mask {
            MaskSource::Strategy(_) => mask.name(),
            MaskSource::Picture(_) => args.mask.clone(),
        },
        mask_ratio: args.mask_ratio,
        seeds: seeds.clone(),
        device: selected.name().to_string(),
        dtype: args.engine.dtype.name().to_string(),
        kernels: args.engine.kernels.name().to_string(),
        images: args.images.display().to_string(),
        recursive: args.recursive,
        shard: args.shard.map(|(part, parts)| format!("{part}/{parts}")),
        size: args.size.size.to_string(),
    };
    let sidecar = EvalSettings::path_beside(&args.out);
    let resumed = match (args.out.exists(), args.resume, args.force) {
        (false, _, _) | (true, false, true) => None,
        (true, true, _) => {
            let recorded = recorded_settings(&args.out, &sidecar)?;
            refuse_other_settings(&recorded, &settings, false, &args.out)?;
            Some((recorded, ExistingRows::read(&args.out)?))
        }
        (true, false, false) => {
            bail!("{} already exists; pass --resume to continue it or --force to start over", args.out.display())
        }
    };

    let loaded = load_model_on(&args.model.location, &selected)?;
    settings.revision = hub_revision(&loaded);
    let (mut file, mut summary, done) = match resumed {
        Some((recorded, existing)) => {
            refuse_other_settings(&recorded, &settings, true, &args.out)?;
            let file = continue_file(&args.out, &existing)?;
            (file, existing.summary, existing.done)
        }
        None => {
            // The CSV is emptied before the settings are replaced: a run stopped in between leaves an empty CSV
            // beside the old settings, never old rows beside new settings.
            let file = new_file(&args.out, args.force)?;
            write_output(&sidecar, true, |temporary| write_bytes(temporary, settings.to_json().as_bytes(), &sidecar))?;
            (file, EvalSummary::default(), HashSet::new())
        }
    };

    let items: Vec<EvalItem> = paths
        .into_iter()
        .filter_map(|path| {
            let name = path.to_string_lossy().into_owned();
            let cases: Vec<EvalCase> = seeds
                .iter()
                .filter(|&&seed| !done.contains(&(name.clone(), seed)))
                .map(|&seed| EvalCase { mask: 0, ratio: args.mask_ratio, seed })
                .collect();
            (!cases.is_empty()).then_some(EvalItem { path, name, cases })
        })
        .collect();
    eprintln!(
        "evaluating {} images with {} on {}{}{}",
        items.len(),
        loaded.name,
        selected.description,
        size_words(args.size.size, loaded.model.config().patch_size),
        if done.is_empty() {
            String::new()
        } else {
            format!(" ({} rows already in {})", done.len(), args.out.display())
        }
    );
    let bar = ProgressBar::new(items.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:32} {pos}/{len} images {per_sec} eta {eta}")
            .map_err(|e| anyhow!("progress bar template: {e}"))?,
    );
    let job = EvaluationJob { masks: vec![mask], items, size: args.size.size };
    let models = [EvalModel { label: &args.model.location, loaded: &loaded }];
    let ran = job.run(&models, args.batch, &mut |result| {
        let name = &result.item.name;
        let mut rows = String::new();
        match &result.outcome {
            Ok(cases) => {
                for case in cases {
                    let measured = case.quality.as_ref().map_err(String::as_str);
                    summary.add(name, measured.ok().map(metric_values).as_ref());
                    rows.push_str(&row_line(name, result.size, case.case.seed, measured, Some(case.input_size)));
                }
            }
            Err(problem) => {
                for case in &result.item.cases {
                    summary.add(name, None);
                    rows.push_str(&row_line(name, result.size, case.seed, Err(problem), None));
                }
            }
        }
        // Unbuffered: an image's rows reach the file before the next image starts.
        file.write_all(rows.as_bytes()).with_context(|| format!("{}: cannot write", args.out.display()))?;
        bar.inc(1);
        Ok(())
    });
    bar.finish_and_clear();
    ran?;
    print!("{}", summary.report(WORST_SHOWN));
    Ok(())
}

/// ", each at its own size (...)" for the line `eval` starts with, when pictures are not fed at the model's size.
pub fn size_words(size: SizeRule, patch: usize) -> String {
    match size {
        SizeRule::Model => String::new(),
        SizeRule::Native => format!(
            ", each at its own size (the longer side at most {} px, sides floored to multiples of {patch}; the \
             input_width and input_height columns say which)",
            mae_model::size::NATIVE_LONGEST_SIDE
        ),
        SizeRule::Exact { width, height } => format!(", each at size {width}x{height}"),
    }
}

/// Every N-th path from the K-th, of paths already in sorted order.
fn shard(paths: Vec<PathBuf>, shard: Option<(usize, usize)>) -> Vec<PathBuf> {
    match shard {
        None => paths,
        Some((part, parts)) => paths.into_iter().skip(part).step_by(parts).collect(),
    }
}

fn recorded_settings(out: &Path, sidecar: &Path) -> Result<EvalSettings> {
    if !sidecar.exists() {
        bail!(
            "cannot resume {}: {}, which records the settings it was written with, is missing; pass --force to start \
             over",
            out.display(),
            sidecar.display()
        );
    }
    EvalSettings::read(sidecar)
}

fn refuse_other_settings(recorded: &EvalSettings, now: &EvalSettings, with_revision: bool, out: &Path) -> Result<()> {
    let differences = recorded.differences(now, with_revision);
    if !differences.is_empty() {
        bail!(
            "cannot resume {}: it was written with other settings ({}); run with those, or pass --force to start over",
            out.display(),
            differences.join("; ")
        );
    }
    Ok(())
}

/// A new CSV with its header; an existing one is replaced only with `force`.
fn new_file(out: &Path, force: bool) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(out).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            anyhow!("{} already exists; pass --resume to continue it or --force to start over", out.display())
        }
        _ => anyhow!("{}: cannot create the file ({e})", out.display()),
    })?;
    file.write_all(header_line().as_bytes()).with_context(|| format!("{}: cannot write", out.display()))?;
    Ok(file)
}

/// The existing CSV cut after its last complete row, ready to append to.
fn continue_file(out: &Path, existing: &ExistingRows) -> Result<File> {
    let cannot = |e: std::io::Error| anyhow!("{}: cannot continue the file ({e})", out.display());
    let mut file = OpenOptions::new().write(true).open(out).map_err(cannot)?;
    file.set_len(existing.keep_bytes).map_err(cannot)?;
    file.seek(SeekFrom::End(0)).map_err(cannot)?;
    if !existing.has_header {
        file.write_all(header_line().as_bytes()).map_err(cannot)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_in_order() {
        let paths: Vec<PathBuf> = (0..7).map(|i| PathBuf::from(format!("{i}.png"))).collect();
        let parts: Vec<Vec<PathBuf>> = (0..3).map(|k| shard(paths.clone(), Some((k, 3)))).collect();
        assert_eq!(parts[0], [PathBuf::from("0.png"), "3.png".into(), "6.png".into()]);
        let mut all: Vec<PathBuf> = parts.concat();
        all.sort();
        assert_eq!(all, paths);
    }
}
