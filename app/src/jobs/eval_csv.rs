//! `eval`'s output: one CSV row per image × seed, written and flushed as each image finishes, the settings file
//! beside it (`eval.csv.json`), and what `--resume` reads back — the complete rows (keyed by path and seed), where
//! the last of them ends (a line a killed run left half-written is dropped), and the recorded settings.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mae_model::Quality;
use serde::{Deserialize, Serialize};

use super::csv::{self, Record, complete_records};
use super::evaluate::{MetricSummary, Spread, metric_values};

/// The columns of `eval.csv`.
pub const EVAL_HEADER: [&str; 13] = [
    "path",
    "width",
    "height",
    "seed",
    "masked_loss",
    "visible_loss",
    "psnr_db",
    "psnr_masked_db",
    "ssim",
    "error",
    "masked_fraction",
    "input_width",
    "input_height",
];

/// The header line.
pub fn header_line() -> String {
    csv::line(&EVAL_HEADER)
}

/// One row: the measurements, or empty cells and the reason in `error`. `size` is the decoded picture's
/// (width, height) where it was read, `input` the (width, height) the model took it at (`--size`) where it ran.
pub fn row_line(
    path: &str,
    size: Option<(u32, u32)>,
    seed: u64,
    measured: Result<&Quality, &str>,
    input: Option<(usize, usize)>,
) -> String {
    let (width, height) = size.map_or((String::new(), String::new()), |(w, h)| (w.to_string(), h.to_string()));
    let mut fields = vec![path.to_string(), width, height, seed.to_string()];
    match measured {
        Ok(quality) => {
            fields.extend(metric_values(quality).map(csv::number));
            fields.push(String::new());
            fields.push(quality.masked_fraction.to_string());
        }
        Err(problem) => {
            fields.extend(std::iter::repeat_n(String::new(), 5));
            // One line per row, whatever the reason says.
            fields.push(problem.replace(['\n', '\r'], " "));
            fields.push(String::new());
        }
    }
    let (input_width, input_height) =
        input.map_or((String::new(), String::new()), |(w, h)| (w.to_string(), h.to_string()));
    fields.extend([input_width, input_height]);
    csv::line(&fields)
}

/// The settings an evaluation ran with, as `eval.csv.json` records them; `--resume` refuses to continue a file
/// written with other settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSettings {
    /// `--model` as given.
    pub model: String,
    /// The hub commit the weights came from, where known.
    pub revision: Option<String>,
    /// The mask strategy's name, or the mask picture as given.
    pub strategy: String,
    pub mask_ratio: f64,
    pub seeds: Vec<u64>,
    pub device: String,
    pub dtype: String,
    pub kernels: String,
    /// `--images` as given, and whether subfolders were read.
    pub images: String,
    pub recursive: bool,
    /// `K/N`, or `None` for every image.
    pub shard: Option<String>,
    /// `--size` (`model`, `native` or `WxH`); a file written before sizes existed reads as `model`.
    #[serde(default = "model_size")]
    pub size: String,
}

fn model_size() -> String {
    "model".into()
}

impl EvalSettings {
    /// The sidecar's path: the CSV's with `.json` appended (`eval.csv.json`).
    pub fn path_beside(csv: &Path) -> PathBuf {
        let mut name = csv.as_os_str().to_owned();
        name.push(".json");
        PathBuf::from(name)
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not the settings file an evaluation writes", path.display()))
    }

    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Each setting that differs, as "name: recorded X, now Y"; `revision` only when `with_revision` (it is
    /// known once the model is loaded).
    pub fn differences(&self, now: &Self, with_revision: bool) -> Vec<String> {
        let (Ok(serde_json::Value::Object(recorded)), Ok(serde_json::Value::Object(current))) =
            (serde_json::to_value(self), serde_json::to_value(now))
        else {
            return vec!["the settings cannot be compared".into()];
        };
        recorded
            .iter()
            .filter(|(name, _)| with_revision || name.as_str() != "revision")
            .filter(|(name, value)| current.get(name.as_str()) != Some(value))
            .map(|(name, value)| {
                let now = current.get(name.as_str()).map_or_else(|| "nothing".into(), ToString::to_string);
                format!("{name}: recorded {value}, now {now}")
            })
            .collect()
    }
}

/// What an existing `eval.csv` holds for `--resume`.
#[derive(Debug, Default)]
pub struct ExistingRows {
    /// (path, seed) of every complete row.
    pub done: HashSet<(String, u64)>,
    /// Bytes to keep: the header and the complete rows; anything after (a half-written line) is cut off.
    pub keep_bytes: u64,
    /// Whether the kept part starts with the header (an empty file does not).
    pub has_header: bool,
    pub summary: EvalSummary,
}

impl ExistingRows {
    /// Reads `path`; a file whose first line is not the header `eval` writes is refused (it is not ours to
    /// append to).
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let records = complete_records(&text);
        let mut existing = ExistingRows::default();
        let Some((header, rows)) = records.split_first() else { return Ok(existing) };
        if header.fields != EVAL_HEADER {
            bail!(
                "{}: its first line is not the header eval writes ({}); pass --force to replace the file",
                path.display(),
                EVAL_HEADER.join(",")
            );
        }
        existing.has_header = true;
        existing.keep_bytes = header.end as u64;
        for record in rows {
            // A row of another length is not one of ours: it and everything after it are computed again.
            let Some((key, values)) = parse_row(record) else { break };
            existing.summary.add(&key.0, values.as_ref());
            existing.done.insert(key);
            existing.keep_bytes = record.end as u64;
        }
        Ok(existing)
    }
}

/// A row's key and values (`None` for an error row).
type ParsedRow = ((String, u64), Option<[Option<f64>; 5]>);

fn parse_row(record: &Record) -> Option<ParsedRow> {
    let [path, _, _, seed, metrics @ .., error, _masked_fraction, _input_width, _input_height] =
        record.fields.as_slice()
    else {
        return None;
    };
    if metrics.len() != 5 {
        return None;
    }
    let seed = seed.parse().ok()?;
    let mut values = [None; 5];
    for (value, text) in values.iter_mut().zip(metrics) {
        if !text.is_empty() {
            *value = Some(text.parse::<f64>().ok()?);
        }
    }
    Some(((path.clone(), seed), error.is_empty().then_some(values)))
}

/// The summary `eval` prints: each metric's mean ± std over its rows, the error rows, and the worst images by
/// masked loss (averaged over the image's seeds).
#[derive(Debug, Default)]
pub struct EvalSummary {
    pub metrics: MetricSummary,
    pub rows: usize,
    pub errors: usize,
    masked_loss_by_image: HashMap<String, Spread>,
}

impl EvalSummary {
    pub fn add(&mut self, path: &str, values: Option<&[Option<f64>; 5]>) {
        self.rows += 1;
        let Some(values) = values else {
            self.errors += 1;
            return;
        };
        self.metrics.add(values);
        if let Some(loss) = values[0] {
            self.masked_loss_by_image.entry(path.to_string()).or_default().add(loss);
        }
    }

    /// The `count` images with the highest mean masked loss, worst first: (path, mean, seeds).
    pub fn worst(&self, count: usize) -> Vec<(String, f64, usize)> {
        let mut images: Vec<(String, f64, usize)> = self
            .masked_loss_by_image
            .iter()
            .filter_map(|(path, spread)| spread.mean().map(|mean| (path.clone(), mean, spread.count)))
            .collect();
        images.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        images.truncate(count);
        images
    }

    /// The lines printed at the end of a run.
    pub fn report(&self, worst: usize) -> String {
        let mut text = format!("{} rows, {} with an error\n", self.rows, self.errors);
        for line in self.metrics.lines() {
            text.push_str(&format!("{line}\n"));
        }
        let worst = self.worst(worst);
        if !worst.is_empty() {
            text.push_str(&format!("the {} worst images by masked loss (mean over their seeds):\n", worst.len()));
            for (path, mean, seeds) in worst {
                text.push_str(&format!("  {mean:.6}  {path}  ({seeds} seed{})\n", if seeds == 1 { "" } else { "s" }));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quality(loss: f32) -> Quality {
        Quality {
            psnr_db: 20.0,
            psnr_masked_db: Some(15.5),
            ssim: Some(0.5),
            masked_loss: Some(loss),
            visible_loss: None,
            masked_fraction: 0.75,
        }
    }

    #[test]
    fn rows_read_back_and_a_half_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eval.csv");
        let mut text = header_line();
        text.push_str(&row_line("a,1.png", Some((640, 480)), 0, Ok(&quality(0.5)), Some((224, 224))));
        text.push_str(&row_line("b.png", None, 0, Err("b.png: image file is truncated\n(really)"), None));
        let whole = text.len() as u64;
        text.push_str(&row_line("c.png", Some((8, 8)), 1, Ok(&quality(0.25)), Some((224, 224)))[..10]);
        std::fs::write(&path, &text).unwrap();
        let existing = ExistingRows::read(&path).unwrap();
        assert_eq!(existing.keep_bytes, whole);
        let mut done: Vec<_> = existing.done.into_iter().collect();
        done.sort();
        assert_eq!(done, [("a,1.png".to_string(), 0), ("b.png".to_string(), 0)]);
        assert_eq!((existing.summary.rows, existing.summary.errors), (2, 1));
        assert_eq!(existing.summary.worst(10), [("a,1.png".to_string(), 0.5, 1)]);
        assert!(text.lines().nth(1).unwrap().ends_with(",0.5,,20,15.5,0.5,,0.75,224,224"), "{text}");
        assert!(text.lines().nth(2).unwrap().ends_with(",,"), "no input size where the image was not read: {text}");
        // Not our file: refused.
        std::fs::write(&path, "image,model\n").unwrap();
        assert!(ExistingRows::read(&path).unwrap_err().to_string().contains("header"));
        std::fs::write(&path, "path,wid").unwrap();
        assert!(!ExistingRows::read(&path).unwrap().has_header);
    }

    #[test]
    fn settings_name_what_differs() {
        let settings = EvalSettings {
            model: "demo".into(),
            revision: None,
            strategy: "random".into(),
            mask_ratio: 0.75,
            seeds: vec![0, 1],
            device: "cpu".into(),
            dtype: "f32".into(),
            kernels: "fused".into(),
            images: "photos".into(),
            recursive: false,
            shard: None,
            size: "native".into(),
        };
        let json = settings.to_json();
        assert_eq!(serde_json::from_str::<EvalSettings>(&json).unwrap(), settings);
        // A sidecar written before sizes existed reads as the model's size.
        let old = json.replace(",\n  \"size\": \"native\"", "");
        assert!(!old.contains("size"), "{old}");
        assert_eq!(serde_json::from_str::<EvalSettings>(&old).unwrap().size, "model");
        let other = EvalSettings { mask_ratio: 0.5, revision: Some("abc".into()), ..settings.clone() };
        assert_eq!(settings.differences(&other, false), ["mask_ratio: recorded 0.75, now 0.5"]);
        assert_eq!(settings.differences(&other, true).len(), 2);
        assert_eq!(EvalSettings::path_beside(Path::new("out/eval.csv")), Path::new("out/eval.csv.json"));
    }
}
