//! Shared helpers for the cross-crate tests: fixture paths, reading fixture files, comparing tensors.

pub mod fake_hub;

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

/// Compares two dump-format files tensor by tensor; returns one line per problem.
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
            if w.is_nan() != g.is_nan() || (!w.is_nan() && (g - w).abs() > tolerance * w.abs().max(1e-12)) {
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
    for name in actual.keys().filter(|k| !expected.contains_key(*k)) {
        problems.push(format!("{name}: not in the reference"));
    }
    problems
}
