//! Loss versus mask ratio for one image and seed: how much harder reconstruction gets as more is hidden.

use std::io::Write;

use anyhow::Result;
use candle_core::Tensor;
use mae_model::{ForwardOptions, MaeModel, MaskSpec};

/// 0.05, 0.10, …, 0.95: the ratios the window plots.
pub fn default_ratios() -> Vec<f64> {
    (1..=19).map(|step| f64::from(step) * 0.05).collect()
}

/// The mean masked loss at each ratio (same seed, so the masks are nested prefixes of one noise ordering);
/// `None` where the ratio masks no patch at all.
pub fn loss_vs_ratio(
    model: &MaeModel,
    pixel_values: &Tensor,
    seed: u64,
    ratios: &[f64],
) -> Result<Vec<(f64, Option<f32>)>> {
    ratios
        .iter()
        .map(|&ratio| {
            let output =
                model.forward(pixel_values, &MaskSpec::Seed { seed, ratio }, ForwardOptions { attentions: false })?;
            Ok((ratio, output.loss))
        })
        .collect()
}

/// The points as CSV (`mask_ratio,masked_loss`, empty loss where none was defined).
pub fn write_csv(points: &[(f64, Option<f32>)], mut writer: impl Write) -> std::io::Result<()> {
    writeln!(writer, "mask_ratio,masked_loss")?;
    for (ratio, loss) in points {
        match loss {
            Some(loss) => writeln!(writer, "{ratio},{loss}")?,
            None => writeln!(writer, "{ratio},")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_csv() {
        let ratios = default_ratios();
        assert_eq!(ratios.len(), 19);
        assert!((ratios[0] - 0.05).abs() < 1e-12 && (ratios[18] - 0.95).abs() < 1e-12);
        let mut csv = Vec::new();
        write_csv(&[(0.5, Some(0.25)), (0.0, None)], &mut csv).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), "mask_ratio,masked_loss\n0.5,0.25\n0,\n");
    }
}
