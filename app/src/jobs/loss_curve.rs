//! Loss versus mask ratio for one image and seed: how much harder reconstruction gets as more is hidden.
//! One forward pass per ratio, taken a step at a time so the worker can answer other requests in between; the
//! `loss-curve` command runs the same steps to the end.

use std::io::Write;

use anyhow::Result;
use candle_core::Tensor;
use mae_model::{ForwardOptions, MaeModel, MaskSpec};

/// 0.05, 0.10, …, 0.95: the ratios of the window's curve and the command's default. (At 0 nothing is masked,
/// so there is no loss to plot.)
pub fn default_ratios() -> Vec<f64> {
    (1..=19).map(|step| f64::from(step) * 0.05).collect()
}

/// A loss curve in progress. Every ratio uses the same seed, so the masks are nested prefixes of one noise order.
#[derive(Debug)]
pub struct LossCurve {
    pixel_values: Tensor,
    seed: u64,
    ratios: Vec<f64>,
    /// (ratio, mean masked loss), `None` where the ratio masks no patch.
    points: Vec<(f64, Option<f32>)>,
}

impl LossCurve {
    pub fn new(pixel_values: Tensor, seed: u64, ratios: Vec<f64>) -> Self {
        Self { pixel_values, seed, points: Vec::with_capacity(ratios.len()), ratios }
    }

    /// Computes the next point (one forward pass); does nothing once finished.
    pub fn step(&mut self, model: &MaeModel) -> Result<()> {
        let Some(&ratio) = self.ratios.get(self.points.len()) else { return Ok(()) };
        let spec = MaskSpec::Seed { seed: self.seed, ratio };
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
