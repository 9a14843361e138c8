//! `mae-explorer loss-curve`: the mean masked loss of one image at a range of mask ratios, as CSV — the data of
//! the window's loss-vs-ratio plot, for a paper's own plotting; with `--models`, one loss column per model.

use anyhow::{Context, Result, anyhow};
use candle_core::Device;
use mae_model::preprocess::load_rgb_image;
use mae_model::{MaskStrategy, SizeRule};

use super::model_arg::{load_model_on, naming, selected_device};
use crate::atomic_file::{check_output_folder, check_overwrite, write_output};
use crate::cli::LossCurveArgs;
use crate::jobs::loss_curve::{LossCurve, check_strategy, default_ratios, write_columns_csv, write_csv};

pub fn run(args: &LossCurveArgs) -> Result<()> {
    let ratios = match &args.mask_ratios {
        Some(list) => list.0.clone(),
        None => default_ratios(),
    };
    let strategy: MaskStrategy = args.mask.parse().map_err(|e| anyhow!("--mask: {e}"))?;
    check_strategy(strategy).context("--mask")?;
    let models = args.model.names()?;
    check_output_folder(&args.out)?;
    check_overwrite(&args.out, args.force)?;
    let image = load_rgb_image(&args.image)?;
    let selected = selected_device(&args.engine)?;
    // One model in memory at a time, each loaded once.
    let mut curves = Vec::with_capacity(models.len());
    for model in &models {
        let loaded = load_model_on(model, &selected).map_err(|error| naming(error, model))?;
        let (pixel_values, fed) = loaded.pixel_values_at(&image, args.size.size, &Device::Cpu)?;
        if args.size.size != SizeRule::Model {
            eprintln!("{}: {}", loaded.name, fed.describe());
        }
        curves.push(LossCurve::new(pixel_values, strategy, args.seed, ratios.clone())?.finish(&loaded.model)?);
    }
    write_output(&args.out, args.force, |temporary| {
        let writer = std::io::BufWriter::new(std::fs::File::create(temporary)?);
        let written = match args.model.models {
            Some(_) => write_columns_csv(&models, &curves, writer),
            None => write_csv(&curves[0], writer),
        };
        written.with_context(|| format!("{}: cannot write the CSV", args.out.display()))
    })
}
