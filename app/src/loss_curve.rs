//! `mae-explorer loss-curve`: the mean masked loss of one image at a range of mask ratios, as CSV — the data of
//! the window's loss-vs-ratio plot, for a paper's own plotting.

use anyhow::{Context, Result, anyhow};
use candle_core::Device;
use mae_model::masking::check_ratio;
use mae_model::preprocess::load_rgb_image;

use crate::atomic_file::{check_output_folder, check_overwrite, write_output};
use crate::cli::LossCurveArgs;
use crate::export::parse_list;
use crate::model_arg::load_model;
use crate::render::curves::{default_ratios, loss_vs_ratio, write_csv};

pub fn run(args: &LossCurveArgs) -> Result<()> {
    let ratios = match &args.mask_ratios {
        Some(list) => parse_list(list, "--mask-ratios", "mask ratio", |text| text.parse::<f64>().ok())?,
        None => default_ratios(),
    };
    for &ratio in &ratios {
        check_ratio(ratio).map_err(|e| anyhow!("--mask-ratios: {e}"))?;
    }
    check_output_folder(&args.out)?;
    check_overwrite(&args.out, args.force)?;
    let image = load_rgb_image(&args.image)?;
    let loaded = load_model(&args.model, &args.device)?;
    let pixel_values = loaded.preprocessor.pixel_values(&image, &Device::Cpu)?;
    let points = loss_vs_ratio(&loaded.model, &pixel_values, args.seed, &ratios)?;
    write_output(&args.out, args.force, |temporary| {
        let file = std::fs::File::create(temporary)?;
        write_csv(&points, std::io::BufWriter::new(file))
            .with_context(|| format!("{}: cannot write the CSV", args.out.display()))
    })
}
