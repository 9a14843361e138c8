//! `mae-explorer loss-curve`: the mean masked loss of one image at a range of mask ratios, as CSV — the data of
//! the window's loss-vs-ratio plot, for a paper's own plotting.

use anyhow::{Context, Result, anyhow};
use candle_core::Device;
use mae_model::preprocess::load_rgb_image;

use super::model_arg::load_model;
use crate::atomic_file::{check_output_folder, check_overwrite, write_output};
use crate::cli::LossCurveArgs;
use crate::jobs::lists::parse_ratios;
use crate::jobs::loss_curve::{LossCurve, default_ratios, write_csv};

pub fn run(args: &LossCurveArgs) -> Result<()> {
    let ratios = match &args.mask_ratios {
        Some(list) => parse_ratios(list).map_err(|e| anyhow!("--mask-ratios: {e}"))?,
        None => default_ratios(),
    };
    check_output_folder(&args.out)?;
    check_overwrite(&args.out, args.force)?;
    let image = load_rgb_image(&args.image)?;
    let loaded = load_model(&args.model, &args.device)?;
    let pixel_values = loaded.preprocessor.pixel_values(&image, &Device::Cpu)?;
    let points = LossCurve::new(pixel_values, args.seed, ratios).finish(&loaded.model)?;
    write_output(&args.out, args.force, |temporary| {
        let file = std::fs::File::create(temporary)?;
        write_csv(&points, std::io::BufWriter::new(file))
            .with_context(|| format!("{}: cannot write the CSV", args.out.display()))
    })
}
