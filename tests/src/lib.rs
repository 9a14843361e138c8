//! Shared helpers for the cross-crate tests: fixture paths, reading fixture files, comparing tensors.

pub mod fake_hub;
pub mod gate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

/// `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// A safetensors file's tensors and its `__metadata__` strings.
pub struct TensorFile {
    pub tensors: HashMap<String, Tensor>,
    pub metadata: HashMap<String, String>,
}

pub fn read_tensor_file(path: &Path) -> TensorFile {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().clone().unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap();
    TensorFile { tensors, metadata }
}

pub fn to_f64(tensor: &Tensor) -> Vec<f64> {
    tensor.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

/// ‖a − b‖₂ / ‖b‖₂ (absolute when b is all zero).
pub fn relative_l2(actual: &Tensor, expected: &Tensor) -> f64 {
    let (a, b) = (to_f64(actual), to_f64(expected));
    let diff: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    if norm > 0.0 { diff / norm } else { diff }
}

/// What `dump` writes beyond Hugging Face's outputs (the pictures' quality; issue 16): not in HF's fixtures.
pub const DUMP_ONLY: &[&str] = &["pasted_back", "psnr_db", "psnr_masked_db", "ssim", "visible_loss"];

/// Compares two dump-format files tensor by tensor; returns one line per problem. HF's `loss` is NaN when nothing
/// is masked, where `dump` leaves it out.
pub fn compare_outputs(
    actual: &HashMap<String, Tensor>,
    expected: &HashMap<String, Tensor>,
    tolerance: f64,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names: Vec<&String> = expected.keys().collect();
    names.sort();
    for name in names {
        let want = &expected[name];
        if name == "loss" && to_f64(want)[0].is_nan() {
            if actual.contains_key(name) {
                problems.push("loss: written, but nothing is masked (HF gives NaN; dump must leave it out)".into());
            }
            continue;
        }
        let Some(got) = actual.get(name) else {
            problems.push(format!("{name}: missing"));
            continue;
        };
        if got.dims() != want.dims() {
            problems.push(format!("{name}: shape {:?}, expected {:?}", got.dims(), want.dims()));
            continue;
        }
        let exact = matches!(name.as_str(), "mask" | "ids_restore" | "noise" | "pixel_values");
        if exact {
            if to_f64(got) != to_f64(want) {
                problems.push(format!("{name}: differs (must be exact)"));
            }
            continue;
        }
        if name == "loss" {
            let (g, w) = (to_f64(got)[0], to_f64(want)[0]);
            if g.is_nan() || (g - w).abs() > tolerance * w.abs().max(1e-12) {
                problems.push(format!("loss: {g} vs {w}"));
            }
            continue;
        }
        let error = relative_l2(got, want);
        // Written so that a NaN error counts as a failure.
        if error.is_nan() || error > tolerance {
            problems.push(format!("{name}: relative L2 error {error:.3e} > {tolerance:.0e}"));
        }
    }
    for name in actual.keys().filter(|k| !expected.contains_key(*k) && !DUMP_ONLY.contains(&k.as_str())) {
        problems.push(format!("{name}: not in the reference"));
    }
    problems
}

/// Writes into `folder` a copy of the `tiny-p8` fixture model whose decoder prediction weights are scaled by 1.5:
/// the same shapes and preprocessing, another model (for comparing two models patch by patch).
pub fn perturbed_tiny_p8(folder: &Path) -> PathBuf {
    let source = fixtures().join("models/tiny-p8");
    for file in ["config.json", "preprocessor_config.json"] {
        std::fs::copy(source.join(file), folder.join(file)).unwrap();
    }
    let mut tensors = candle_core::safetensors::load(source.join("model.safetensors"), &Device::Cpu).unwrap();
    let key = "decoder.decoder_pred.weight";
    let scaled = (tensors[key].clone() * 1.5).unwrap();
    tensors.insert(key.to_string(), scaled);
    candle_core::safetensors::save(&tensors, folder.join("model.safetensors")).unwrap();
    folder.to_path_buf()
}

/// A copy of the embedded demo model (`assets/demo-model/`) with its decoder's prediction scaled by `scale`, as a
/// model to compare with `--model demo`, whose `preprocessor_config.json` is spelled as the hub's vit-mae-* files
/// are (`"size": 224`): the pairing a newcomer tries first.
pub fn perturbed_demo_hub_spelled(folder: &Path, scale: f64) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo-model");
    std::fs::copy(source.join("config.json"), folder.join("config.json")).unwrap();
    let hub_spelled = r#"{"do_normalize": true, "do_resize": true, "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225], "resample": 2, "size": 224}"#;
    std::fs::write(folder.join("preprocessor_config.json"), hub_spelled).unwrap();
    let mut tensors = candle_core::safetensors::load(source.join("model.safetensors"), &Device::Cpu).unwrap();
    let key = "decoder.decoder_pred.weight";
    let scaled = (tensors[key].clone() * scale).unwrap();
    tensors.insert(key.to_string(), scaled);
    candle_core::safetensors::save(&tensors, folder.join("model.safetensors")).unwrap();
    folder.to_path_buf()
}

/// As [`perturbed_tiny_p8`], with a config that claims 4096 layers with MLPs of a million units: the weights file
/// stays tiny, but loading the model would take about a terabyte (refused before the weights become tensors).
pub fn oversized_tiny_p8(folder: &Path) -> PathBuf {
    perturbed_tiny_p8(folder);
    let path = folder.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["intermediate_size"] = serde_json::json!(1 << 20);
    config["num_hidden_layers"] = serde_json::json!(4096);
    std::fs::write(&path, config.to_string()).unwrap();
    folder.to_path_buf()
}

/// A built binary the tests run (`App(env!("CARGO_BIN_EXE_mae-explorer"))`: the path is known only to the crate
/// that builds it).
pub struct App(pub &'static str);

impl App {
    /// Runs it with `arguments` and returns what it did.
    pub fn run(&self, arguments: &[&str]) -> std::process::Output {
        std::process::Command::new(self.0).args(arguments).output().unwrap()
    }

    /// Runs it and fails the test, with its error output, unless it succeeded.
    pub fn succeeds(&self, arguments: &[&str]) -> std::process::Output {
        let output = self.run(arguments);
        assert!(output.status.success(), "{arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
        output
    }
}

/// Leaves only `expected` file names in `dir` (no temporary or partial files).
pub fn assert_folder_holds(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, expected);
}
