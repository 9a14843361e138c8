//! `mae-explorer heads` against per-head statistics computed with numpy from the attention probabilities
//! transformers itself produced (`tools/head_stats_reference.py` over the fixture cases, written to
//! `tests/fixtures/heads/<model>/<case>.csv`).
//!
//! Tolerance: 1e-4 relative (|ours − reference| ≤ 1e-4·|reference| + 1e-9) for every statistic of every head;
//! NaN (no visible patch to average over) must be NaN on both sides.

use std::path::Path;

use mae_explorer::cli::{EngineArgs, ForwardInputArgs, HeadsArgs, ModelArgs, ScaleChoice, StackChoice};
use mae_explorer::render::Colormap;
use mae_integration_tests::{fixtures, read_tensor_file};
use mae_model::DeviceChoice;

const TOLERANCE: f64 = 1e-4;

/// (stack, layer, head) → (mean_distance_px, entropy, cls_share), in file order.
type Rows = Vec<((String, usize, usize), [f64; 3])>;

fn read_rows(csv: &Path) -> Rows {
    let text = std::fs::read_to_string(csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("stack,layer,head,mean_distance_px,entropy,cls_share"), "{}", csv.display());
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 6, "{line}");
            let number = |text: &str| text.parse::<f64>().unwrap_or_else(|_| panic!("{line}: {text}"));
            let key = (fields[0].to_string(), fields[1].parse().unwrap(), fields[2].parse().unwrap());
            (key, [number(fields[3]), number(fields[4]), number(fields[5])])
        })
        .collect()
}

fn agrees(ours: f64, reference: f64) -> bool {
    (ours.is_nan() && reference.is_nan()) || (ours - reference).abs() <= TOLERANCE * reference.abs() + 1e-9
}

#[test]
fn head_statistics_match_the_ones_from_transformers_attentions() {
    let references = fixtures().join("heads");
    let mut checked_heads = 0;
    let mut failures = Vec::new();
    let mut models: Vec<_> = std::fs::read_dir(&references).unwrap().map(|e| e.unwrap().path()).collect();
    models.sort();
    for reference_dir in &models {
        let name = reference_dir.file_name().unwrap();
        let model = fixtures().join("models").join(name);
        let mut cases: Vec<_> = std::fs::read_dir(reference_dir).unwrap().map(|e| e.unwrap().path()).collect();
        cases.sort();
        for reference_csv in cases {
            let case_path = fixtures()
                .join("cases")
                .join(name)
                .join(reference_csv.with_extension("safetensors").file_name().unwrap());
            let case = read_tensor_file(&case_path);
            let scratch = tempfile::tempdir().unwrap();
            let (pixel_values, noise) = (scratch.path().join("pixel_values.npy"), scratch.path().join("noise.npy"));
            case.tensors["pixel_values"].write_npy(&pixel_values).unwrap();
            case.tensors["noise"].write_npy(&noise).unwrap();
            let out = scratch.path().join("heads.csv");
            let args = HeadsArgs {
                model: ModelArgs { location: model.display().to_string() },
                engine: EngineArgs { device: DeviceChoice::Cpu, ..EngineArgs::default() },
                input: ForwardInputArgs {
                    image: None,
                    pixel_values: Some(pixel_values),
                    mask: "random".into(),
                    noise: Some(noise),
                    seed: None,
                    mask_ratio: Some(case.metadata["mask_ratio"].parse().unwrap()),
                    size: Default::default(),
                },
                out: out.clone(),
                gallery: None,
                stack: StackChoice::Both,
                query: "cls".into(),
                scale: ScaleChoice::Shared,
                colormap: Colormap::Inferno,
                force: false,
            };
            mae_explorer::commands::heads::run(&args).unwrap();
            let (ours, reference) = (read_rows(&out), read_rows(&reference_csv));
            assert_eq!(ours.len(), reference.len(), "{}: rows", reference_csv.display());
            for ((key, values), (reference_key, reference_values)) in ours.iter().zip(&reference) {
                assert_eq!(key, reference_key, "{}", reference_csv.display());
                for (name, (&value, &expected)) in
                    ["mean_distance_px", "entropy", "cls_share"].iter().zip(values.iter().zip(reference_values))
                {
                    if !agrees(value, expected) {
                        failures.push(format!("{}: {key:?} {name} {value} vs {expected}", reference_csv.display()));
                    }
                }
                checked_heads += 1;
            }
        }
    }
    assert!(checked_heads > 300, "only {checked_heads} heads checked");
    assert!(failures.is_empty(), "{} of {checked_heads} heads differ:\n{}", failures.len(), failures.join("\n"));
}
