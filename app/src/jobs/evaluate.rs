//! Evaluating many images: every (image, mask, ratio, seed) case through one model or several, each measured as
//! `dump` measures one forward pass (HF's loss, the visible loss, PSNR, masked PSNR, SSIM). `eval` (one model, a
//! folder, a resumable CSV) and `compare` (several models, a table and a win count) run this one job.
//!
//! Decoding and preprocessing run on a reader thread while the forward passes run on the caller's, joined by a
//! queue of [`QUEUE_DEPTH`] images, so however many images there are only a few are in memory at once. An image
//! that cannot be read (or is too large: the reader refuses what PIL would, and what does not fit in memory) is
//! reported as such and the run goes on.

use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

use anyhow::Result;
use candle_core::{Device, Tensor};
use mae_model::preprocess::load_rgb_image;
use mae_model::{DisplayPair, ForwardOptions, LoadedModel, MaeError, Quality, SizeRule};

use super::masks::MaskSource;

/// Images decoded and preprocessed ahead of the forward passes.
const QUEUE_DEPTH: usize = 2;

/// One image to evaluate and the cases still to run on it.
#[derive(Clone, Debug)]
pub struct EvalItem {
    pub path: PathBuf,
    /// What rows call it (the path as found or listed, or the file name).
    pub name: String,
    pub cases: Vec<EvalCase>,
}

/// One mask of the job's list, at one ratio and seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalCase {
    /// Index into [`EvaluationJob::masks`].
    pub mask: usize,
    pub ratio: f64,
    pub seed: u64,
}

/// Images × cases × models.
#[derive(Clone, Debug)]
pub struct EvaluationJob {
    pub masks: Vec<MaskSource>,
    pub items: Vec<EvalItem>,
    /// The size pictures are fed at (`--size`; each model rounds `native` to its own patch size).
    pub size: SizeRule,
}

/// A model and the name its rows carry.
#[derive(Clone, Copy, Debug)]
pub struct EvalModel<'a> {
    pub label: &'a str,
    pub loaded: &'a LoadedModel,
}

/// What one image gave.
#[derive(Debug)]
pub struct ImageResult<'a> {
    pub item: &'a EvalItem,
    /// (width, height) of the decoded picture; `None` when it could not be read.
    pub size: Option<(u32, u32)>,
    /// The measurements, case by case and within a case model by model; or why the image could not be read (without
    /// its path).
    pub outcome: std::result::Result<Vec<CaseResult>, String>,
}

/// One case through one model.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub case: EvalCase,
    /// Index into the models the job ran with.
    pub model: usize,
    /// The measurements, or why this forward pass failed.
    pub quality: std::result::Result<Quality, String>,
    /// (width, height) the model took the picture at.
    pub input_size: (usize, usize),
}

/// What the reader thread hands over for one item: the picture's size and its pixel values for each distinct
/// preprocessor, or why it could not be read.
struct Prepared {
    index: usize,
    size: Option<(u32, u32)>,
    inputs: std::result::Result<Vec<Tensor>, String>,
}

/// Forward passes per batch when the caller does not choose (`eval --batch`'s default): enough rows for the
/// projections to run near the gemm's peak, few enough images in memory.
pub const DEFAULT_BATCH: usize = 8;

/// One forward pass of a model still to run in a chunk: which image of the chunk, which of its cases.
struct Pass {
    image: usize,
    case: usize,
}

impl EvaluationJob {
    /// Runs every case of every item through every model, calling `on_image` once per item, in item order (stop
    /// by returning an error from it). Images are taken a chunk at a time, and each model runs the chunk's forward
    /// passes as batches of up to `batch` (`MaeModel::forward_batch`; each item gives what it gives alone).
    pub fn run(
        &self,
        models: &[EvalModel],
        batch: usize,
        on_image: &mut dyn FnMut(ImageResult) -> Result<()>,
    ) -> Result<()> {
        let batch = batch.max(1);
        // Models that preprocess alike (and, at a size of their own, cut patches alike) share one copy of the pixel
        // values: the first of them prepares it.
        let mut preprocessors: Vec<&LoadedModel> = Vec::new();
        let model_input: Vec<usize> = models
            .iter()
            .map(|model| {
                let alike = |other: &&LoadedModel| {
                    other.preprocessor.config.difference_from(&model.loaded.preprocessor.config).is_none()
                        && (self.size == SizeRule::Model
                            || other.model.config().patch_size == model.loaded.model.config().patch_size)
                };
                preprocessors.iter().position(alike).unwrap_or_else(|| {
                    preprocessors.push(model.loaded);
                    preprocessors.len() - 1
                })
            })
            .collect();
        // Enough images that each model's batch fills with their cases.
        let cases_per_item = self.items.iter().map(|item| item.cases.len()).max().unwrap_or(1).max(1);
        let images_per_chunk = batch.div_ceil(cases_per_item);
        std::thread::scope(|scope| {
            let (sender, receiver) = sync_channel::<Prepared>(QUEUE_DEPTH);
            let (items, preprocessors) = (&self.items, &preprocessors);
            std::thread::Builder::new().name("eval-reader".into()).spawn_scoped(scope, move || {
                for (index, item) in items.iter().enumerate() {
                    // The receiver is gone when the run stopped early.
                    if sender.send(prepare(index, item, preprocessors, self.size)).is_err() {
                        break;
                    }
                }
            })?;
            // Dropped on return, early or not, which ends the reader at its next image.
            let mut receiver = receiver.into_iter().peekable();
            while receiver.peek().is_some() {
                let chunk: Vec<Prepared> = receiver.by_ref().take(images_per_chunk).collect();
                let results = self.run_chunk(&chunk, models, &model_input, batch);
                for (prepared, outcome) in chunk.into_iter().zip(results) {
                    on_image(ImageResult { item: &self.items[prepared.index], size: prepared.size, outcome })?;
                }
            }
            Ok(())
        })
    }

    /// Every case of every readable image of `chunk` through every model, batched; one outcome per image.
    fn run_chunk(
        &self,
        chunk: &[Prepared],
        models: &[EvalModel],
        model_input: &[usize],
        batch: usize,
    ) -> Vec<std::result::Result<Vec<CaseResult>, String>> {
        let mut qualities: Vec<Vec<Option<std::result::Result<Quality, String>>>> =
            chunk.iter().map(|prepared| vec![None; self.items[prepared.index].cases.len() * models.len()]).collect();
        for (model, eval_model) in models.iter().enumerate() {
            let passes: Vec<Pass> = chunk
                .iter()
                .enumerate()
                .filter(|(_, prepared)| prepared.inputs.is_ok())
                .flat_map(|(image, prepared)| {
                    (0..self.items[prepared.index].cases.len()).map(move |case| Pass { image, case })
                })
                .collect();
            for passes in passes.chunks(batch) {
                let inputs: Vec<(&Tensor, EvalCase)> = passes
                    .iter()
                    .map(|pass| {
                        let prepared = &chunk[pass.image];
                        let inputs = prepared.inputs.as_ref().expect("only readable images have passes");
                        (&inputs[model_input[model]], self.items[prepared.index].cases[pass.case])
                    })
                    .collect();
                for (pass, quality) in passes.iter().zip(self.measure_batch(eval_model.loaded, &inputs)) {
                    qualities[pass.image][pass.case * models.len() + model] =
                        Some(quality.map_err(|problem| format!("{problem:#}")));
                }
            }
        }
        chunk
            .iter()
            .zip(qualities)
            .map(|(prepared, qualities)| {
                let item = &self.items[prepared.index];
                prepared.inputs.as_ref().map_err(Clone::clone)?;
                Ok(qualities
                    .into_iter()
                    .enumerate()
                    .map(|(slot, quality)| {
                        let model = slot % models.len();
                        let inputs = prepared.inputs.as_ref().expect("only readable images have results");
                        let (_, _, height, width) = inputs[model_input[model]].dims4().unwrap_or_default();
                        CaseResult {
                            case: item.cases[slot / models.len()],
                            model,
                            quality: quality.expect("every pass of a readable image ran"),
                            input_size: (width, height),
                        }
                    })
                    .collect())
            })
            .collect()
    }

    /// Forward passes of one model as one batch, each measured as `dump` measures it. Passes whose input size
    /// differs from the first's, or whose mask cannot be drawn, run alone, so a problem stays with its own image.
    fn measure_batch(&self, loaded: &LoadedModel, inputs: &[(&Tensor, EvalCase)]) -> Vec<Result<Quality>> {
        let mut results: Vec<Option<Result<Quality>>> = inputs.iter().map(|_| None).collect();
        let mut batched = Vec::new();
        let first_dims = inputs.first().map(|(values, _)| values.dims().to_vec());
        for (slot, &(values, case)) in inputs.iter().enumerate() {
            match self.spec(loaded, values, case) {
                Ok(spec) if Some(values.dims().to_vec()) == first_dims => batched.push((slot, spec)),
                Ok(_) => results[slot] = Some(self.measure(loaded, values, case)),
                Err(problem) => results[slot] = Some(Err(problem)),
            }
        }
        let outputs = (|| {
            let values: Vec<&Tensor> = batched.iter().map(|&(slot, _)| inputs[slot].0).collect();
            let specs: Vec<mae_model::MaskSpec> = batched.iter().map(|(_, spec)| spec.clone()).collect();
            let batch = Tensor::cat(&values, 0)?;
            Ok::<_, anyhow::Error>(loaded.model.forward_batch(&batch, &specs, ForwardOptions { attentions: false })?)
        })();
        match outputs {
            Ok(outputs) => {
                for (&(slot, _), output) in batched.iter().zip(outputs) {
                    results[slot] = Some(
                        DisplayPair::of(&output, &loaded.preprocessor)
                            .map(|pair| pair.quality(&output))
                            .map_err(anyhow::Error::from),
                    );
                }
            }
            // A batch that fails as a whole (too large for memory, say) is retried pass by pass, so each image gets
            // its own answer.
            Err(_) => {
                for &(slot, _) in &batched {
                    let (values, case) = inputs[slot];
                    results[slot] = Some(self.measure(loaded, values, case));
                }
            }
        }
        results.into_iter().map(|result| result.expect("every pass has a result")).collect()
    }

    /// The mask of `case` on the patch grid of `pixel_values`.
    fn spec(&self, loaded: &LoadedModel, pixel_values: &Tensor, case: EvalCase) -> Result<mae_model::MaskSpec> {
        let (_, _, height, width) = pixel_values.dims4()?;
        let patch = loaded.model.config().patch_size;
        self.masks[case.mask].spec(case.seed, case.ratio, (height, width), patch)
    }

    /// One forward pass and its measurements, as `dump` computes them.
    fn measure(&self, loaded: &LoadedModel, pixel_values: &Tensor, case: EvalCase) -> Result<Quality> {
        let spec = self.spec(loaded, pixel_values, case)?;
        let output = loaded.model.forward(pixel_values, &spec, ForwardOptions { attentions: false })?;
        Ok(DisplayPair::of(&output, &loaded.preprocessor)?.quality(&output))
    }
}

/// What one image of a folder gave the window's Dataset panel: its size and a small copy for the table, and the
/// measurements of its first case (or why it could not be read or run).
#[derive(Clone, Debug)]
pub struct ItemEvaluation {
    pub size: Option<(u32, u32)>,
    pub thumbnail: Option<image::RgbaImage>,
    pub quality: std::result::Result<Quality, String>,
}

impl EvaluationJob {
    /// Item `index`'s first case through `loaded`, on the caller's thread: the window's worker steps a folder an
    /// image at a time, so a forward request never waits behind a whole folder.
    pub fn evaluate_item(&self, index: usize, loaded: &LoadedModel, thumbnail_side: u32) -> ItemEvaluation {
        let item = &self.items[index];
        let rgb = match load_rgb_image(&item.path) {
            Ok(rgb) => rgb,
            Err(MaeError::Image { problem, .. }) => {
                return ItemEvaluation { size: None, thumbnail: None, quality: Err(problem) };
            }
            Err(problem) => return ItemEvaluation { size: None, thumbnail: None, quality: Err(problem.to_string()) },
        };
        let thumbnail = image::imageops::thumbnail(&rgb, thumbnail_side, thumbnail_side);
        let thumbnail = Some(image::DynamicImage::ImageRgb8(thumbnail).to_rgba8());
        let size = Some(rgb.dimensions());
        let quality = match (item.cases.first(), loaded.pixel_values_at(&rgb, self.size, &Device::Cpu)) {
            (Some(&case), Ok((values, _))) => {
                self.measure(loaded, &values, case).map_err(|problem| format!("{problem:#}"))
            }
            (None, _) => Err("no case to run".to_string()),
            (_, Err(problem)) => Err(problem.to_string()),
        };
        ItemEvaluation { size, thumbnail, quality }
    }
}

/// Decodes an image (through the bounded reader, which refuses what PIL would refuse and what would not fit in
/// memory) and preprocesses it at `size` as each of `preprocessors` (a model standing for those alike) does.
fn prepare(index: usize, item: &EvalItem, preprocessors: &[&LoadedModel], size: SizeRule) -> Prepared {
    let rgb = match load_rgb_image(&item.path) {
        Ok(rgb) => rgb,
        // The problem alone: rows name the image already.
        Err(MaeError::Image { problem, .. }) => return Prepared { index, size: None, inputs: Err(problem) },
        Err(problem) => return Prepared { index, size: None, inputs: Err(problem.to_string()) },
    };
    let inputs = preprocessors
        .iter()
        .map(|loaded| {
            let prepared = loaded.pixel_values_at(&rgb, size, &Device::Cpu);
            prepared.map(|(values, _)| values).map_err(|problem| problem.to_string())
        })
        .collect();
    Prepared { index, size: Some(rgb.dimensions()), inputs }
}

/// Mean and standard deviation of a stream of numbers (Welford's), in constant memory.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spread {
    pub count: usize,
    mean: f64,
    squares: f64,
}

impl Spread {
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.squares += delta * (value - self.mean);
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// The sample standard deviation (n − 1, as pandas' `std()`); 0 for one value.
    pub fn std(&self) -> Option<f64> {
        match self.count {
            0 => None,
            1 => Some(0.0),
            n => Some((self.squares / (n - 1) as f64).sqrt()),
        }
    }

    /// "0.1234 ± 0.0100 (n = 20)", or "no values".
    pub fn describe(&self) -> String {
        match (self.mean(), self.std()) {
            (Some(mean), Some(std)) => format!("{mean:.6} ± {std:.6} (n = {})", self.count),
            _ => "no values".to_string(),
        }
    }
}

/// The five measurements a row holds, by the names the CSVs give them.
const METRICS: [&str; 5] = ["masked_loss", "visible_loss", "psnr_db", "psnr_masked_db", "ssim"];

/// [`METRICS`]' values of one result (`None` where a value does not exist).
pub fn metric_values(quality: &Quality) -> [Option<f64>; 5] {
    [
        quality.masked_loss.map(f64::from),
        quality.visible_loss.map(f64::from),
        Some(quality.psnr_db),
        quality.psnr_masked_db,
        quality.ssim,
    ]
}

/// The spread of each of [`METRICS`] over many rows; infinite values (a perfect PSNR) are counted apart.
#[derive(Clone, Debug, Default)]
pub struct MetricSummary {
    pub spreads: [Spread; 5],
    pub infinite: [usize; 5],
}

impl MetricSummary {
    pub fn add(&mut self, values: &[Option<f64>; 5]) {
        for (index, value) in values.iter().enumerate() {
            match value {
                Some(value) if value.is_finite() => self.spreads[index].add(*value),
                Some(_) => self.infinite[index] += 1,
                None => {}
            }
        }
    }

    /// One line per metric: `name: mean ± std (n = …)`, with the infinite values counted.
    pub fn lines(&self) -> Vec<String> {
        METRICS
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let infinite = match self.infinite[index] {
                    0 => String::new(),
                    n => format!(", {n} infinite (identical) left out"),
                };
                format!("{name}: {}{infinite}", self.spreads[index].describe())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_the_sample_mean_and_std() {
        let mut spread = Spread::default();
        assert_eq!((spread.mean(), spread.std()), (None, None));
        for value in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            spread.add(value);
        }
        assert!((spread.mean().unwrap() - 5.0).abs() < 1e-12);
        // Sum of squared deviations 32 over n − 1 = 7.
        assert!((spread.std().unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        let mut summary = MetricSummary::default();
        summary.add(&[Some(1.0), None, Some(f64::INFINITY), None, Some(0.5)]);
        assert_eq!((summary.spreads[0].count, summary.spreads[1].count, summary.infinite[2]), (1, 0, 1));
        assert!(summary.lines()[2].contains("1 infinite"), "{:?}", summary.lines());
    }
}
