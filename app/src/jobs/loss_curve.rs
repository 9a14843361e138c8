//! Loss versus mask ratio for one image, mask strategy and seed: how much harder reconstruction gets as more is
//! hidden.
//! One forward pass per ratio, taken a step at a time so the worker can answer other requests in between; the
//! `loss-curve` command runs the same steps to the end.

use std::io::Write;

use anyhow::{Result, bail};
use candle_core::Tensor;
use mae_model::{ForwardOptions, MaeModel, MaskSpec, MaskStrategy};

/// 0.05, 0.10, …, 0.95: the ratios of the window's curve and the command's default. (At 0 nothing is masked,
/// so there is no loss to plot.)
pub fn default_ratios() -> Vec<f64> {
    (1..=19).map(|step| f64::from(step) / 20.0).collect()
}

/// A curve needs a mask the ratio changes: a grid mask always hides 75%.
pub fn check_strategy(strategy: MaskStrategy) -> Result<()> {
    if !strategy.uses_ratio() {
        bail!(
            "{} masks do not change with the mask ratio: a loss curve needs random, block or centre",
            strategy.name()
        );
    }
    Ok(())
}

/// A loss curve in progress. Every ratio uses the same seed: random masks are then nested prefixes of one noise
/// order; block and centre masks are drawn afresh at each ratio (they are not nested).
#[derive(Debug)]
pub struct LossCurve {
    pixel_values: Tensor,
    strategy: MaskStrategy,
    seed: u64,
    ratios: Vec<f64>,
    /// (ratio, mean masked loss), `None` where the ratio masks no patch.
    points: Vec<(f64, Option<f32>)>,
}

impl LossCurve {
    /// Refuses a strategy the ratio does not change ([`check_strategy`]).
    pub fn new(pixel_values: Tensor, strategy: MaskStrategy, seed: u64, ratios: Vec<f64>) -> Result<Self> {
        check_strategy(strategy)?;
        Ok(Self { pixel_values, strategy, seed, points: Vec::with_capacity(ratios.len()), ratios })
    }

    /// Computes the next point (one forward pass); does nothing once finished.
    pub fn step(&mut self, model: &MaeModel) -> Result<()> {
        let Some(&ratio) = self.ratios.get(self.points.len()) else { return Ok(()) };
        let spec = MaskSpec::Drawn { strategy: self.strategy, seed: self.seed, ratio };
        let output = model.forward(&self.pixel_values, &spec, ForwardOptions { attentions: false })?;
        self.points.push((ratio, output.loss));
        Ok(())
    }

    pub fn is_finished(&self) -> bool {
        self.points.len() == self.ratios.len()
    }

    /// (points done, points in all).
    pub fn progress(&self) -> (usize, usize) {
        (self.points.len(), self.ratios.len())
    }

    pub fn points(&self) -> &[(f64, Option<f32>)] {
        &self.points
    }

    /// Runs every remaining step.
    pub fn finish(mut self, model: &MaeModel) -> Result<Vec<(f64, Option<f32>)>> {
        while !self.is_finished() {
            self.step(model)?;
        }
        Ok(self.points)
    }
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
    writer.flush()
}

/// Curves of several models at the same ratios as one CSV: `mask_ratio` and one column per model, named by
/// `models` (empty cells where a ratio masks no patch).
pub fn write_columns_csv(
    models: &[String],
    curves: &[Vec<(f64, Option<f32>)>],
    mut writer: impl Write,
) -> std::io::Result<()> {
    let header: Vec<&str> = std::iter::once("mask_ratio").chain(models.iter().map(String::as_str)).collect();
    writer.write_all(super::csv::line(&header).as_bytes())?;
    let ratios = curves.first().map_or(&[][..], Vec::as_slice);
    for (row, (ratio, _)) in ratios.iter().enumerate() {
        // As write_csv writes them: the f32 loss's own shortest form.
        let losses = curves.iter().map(|curve| curve[row].1.map_or_else(String::new, |loss| loss.to_string()));
        let fields: Vec<String> = std::iter::once(ratio.to_string()).chain(losses).collect();
        writer.write_all(super::csv::line(&fields).as_bytes())?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_csv() {
        let ratios = default_ratios();
        assert_eq!(ratios.len(), 19);
        // Each at its decimal, as a person types it: 0.15, not 3 × 0.05 = 0.15000000000000002.
        let printed: Vec<String> = ratios.iter().map(f64::to_string).collect();
        let expected: Vec<String> = (1..=19).map(|step| format!("{:.2}", step as f64 / 20.0)).collect();
        let expected: Vec<&str> =
            expected.iter().map(|text| text.trim_end_matches('0').trim_end_matches('.')).collect();
        assert_eq!(printed, expected);
        let mut csv = Vec::new();
        write_csv(&[(0.5, Some(0.25)), (0.0, None)], &mut csv).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), "mask_ratio,masked_loss\n0.5,0.25\n0,\n");
        let mut csv = Vec::new();
        let curves = [vec![(0.5, Some(0.25)), (0.0, None)], vec![(0.5, Some(0.5)), (0.0, None)]];
        write_columns_csv(&["a".into(), "b,c".into()], &curves, &mut csv).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), "mask_ratio,a,\"b,c\"\n0.5,0.25,0.5\n0,,\n");
    }
}
