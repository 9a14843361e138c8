//! `compare`'s table: one row per image × mask × ratio × seed × model from an [`EvaluationJob`] run with several
//! models, each model's mean measurements, and how many cases each model wins (the lower masked loss).
//!
//! [`EvaluationJob`]: super::evaluate::EvaluationJob

use std::io::Write;

use anyhow::{Result, bail};

use super::csv;
use super::evaluate::{ImageResult, MetricSummary, metric_values};
use super::masks::MaskSource;

/// The columns of `compare.csv`.
pub const COMPARE_HEADER: [&str; 13] = [
    "image",
    "model",
    "mask",
    "mask_ratio",
    "seed",
    "masked_loss",
    "visible_loss",
    "psnr_db",
    "psnr_masked_db",
    "ssim",
    "masked_fraction",
    "input_width",
    "input_height",
];

/// The running tally of a comparison.
#[derive(Debug)]
pub struct CompareTally {
    pub models: Vec<String>,
    pub summaries: Vec<MetricSummary>,
    /// Cases each model had the lowest masked loss in, alone.
    pub wins: Vec<usize>,
    /// Cases where the lowest masked loss was shared.
    pub ties: usize,
    /// Cases where some model had no masked loss (nothing masked): nobody wins.
    pub undecided: usize,
}

impl CompareTally {
    pub fn new(models: Vec<String>) -> Self {
        let count = models.len();
        Self { models, summaries: vec![MetricSummary::default(); count], wins: vec![0; count], ties: 0, undecided: 0 }
    }

    /// Writes one image's rows (after the header [`write_header`] wrote) and counts its cases. A forward pass
    /// that failed is an error: a comparison row without numbers compares nothing.
    pub fn add_image(&mut self, image: &ImageResult, masks: &[MaskSource], writer: &mut impl Write) -> Result<()> {
        let results = match &image.outcome {
            Ok(results) => results,
            Err(problem) => bail!("{}: {problem}", image.item.path.display()),
        };
        for case_results in results.chunks(self.models.len()) {
            let mut losses = Vec::with_capacity(self.models.len());
            for result in case_results {
                let quality = match &result.quality {
                    Ok(quality) => quality,
                    Err(problem) => bail!(
                        "{}: model {}, mask {}, ratio {}, seed {}: {problem}",
                        image.item.name,
                        self.models[result.model],
                        masks[result.case.mask].name(),
                        result.case.ratio,
                        result.case.seed
                    ),
                };
                let values = metric_values(quality);
                self.summaries[result.model].add(&values);
                losses.push(quality.masked_loss);
                let mut fields = vec![
                    image.item.name.clone(),
                    self.models[result.model].clone(),
                    masks[result.case.mask].name(),
                    result.case.ratio.to_string(),
                    result.case.seed.to_string(),
                ];
                fields.extend(values.map(csv::number));
                fields.push(quality.masked_fraction.to_string());
                fields.extend([result.input_size.0.to_string(), result.input_size.1.to_string()]);
                writer.write_all(csv::line(&fields).as_bytes())?;
            }
            self.count_winner(&losses);
        }
        Ok(())
    }

    fn count_winner(&mut self, losses: &[Option<f32>]) {
        let Some(losses) = losses.iter().copied().collect::<Option<Vec<f32>>>() else {
            self.undecided += 1;
            return;
        };
        let lowest = losses.iter().copied().fold(f32::INFINITY, f32::min);
        let winners: Vec<usize> = (0..losses.len()).filter(|&model| losses[model] == lowest).collect();
        match winners.as_slice() {
            [winner] => self.wins[*winner] += 1,
            _ => self.ties += 1,
        }
    }

    /// What `compare` prints: each model's means, then the win count.
    pub fn report(&self) -> String {
        let mut text = String::new();
        for (model, summary) in self.models.iter().zip(&self.summaries) {
            text.push_str(&format!("model {model}\n"));
            for line in summary.lines() {
                text.push_str(&format!("  {line}\n"));
            }
        }
        let cases: usize = self.wins.iter().sum::<usize>() + self.ties + self.undecided;
        text.push_str(&format!("wins (lower masked loss) over {cases} image × mask × ratio × seed cases:\n"));
        for (model, wins) in self.models.iter().zip(&self.wins) {
            text.push_str(&format!("  {model}: {wins}\n"));
        }
        text.push_str(&format!("  ties: {}\n", self.ties));
        if self.undecided > 0 {
            text.push_str(&format!("  without a masked loss (nothing masked): {}\n", self.undecided));
        }
        text
    }
}

/// The header line of `compare.csv`.
pub fn write_header(writer: &mut impl Write) -> std::io::Result<()> {
    writer.write_all(csv::line(&COMPARE_HEADER).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_single_lowest_loss_wins_and_shared_ones_tie() {
        let mut tally = CompareTally::new(vec!["a".into(), "b".into()]);
        tally.count_winner(&[Some(0.5), Some(0.25)]);
        tally.count_winner(&[Some(0.5), Some(0.75)]);
        tally.count_winner(&[Some(0.5), Some(0.125)]);
        tally.count_winner(&[Some(0.5), Some(0.5)]);
        tally.count_winner(&[None, Some(0.5)]);
        assert_eq!((tally.wins.as_slice(), tally.ties, tally.undecided), (&[1, 2][..], 1, 1));
        assert!(tally.report().contains("over 5 image"), "{}", tally.report());
    }
}
