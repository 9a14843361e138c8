//! PyTorch checkpoints (`pytorch_model.bin`, original-MAE `.pth`) against the same weights as safetensors, and the
//! bad checkpoints a loader must refuse without running anything from them.

use std::path::{Path, PathBuf};

use mae_explorer::cli::{DumpArgs, EngineArgs, ForwardInputArgs, ModelArgs};
use mae_integration_tests::{compare_outputs, fixtures, read_tensor_file};
use mae_model::DeviceChoice;

const TOLERANCE: f64 = 1e-5;

fn models() -> PathBuf {
    fixtures().join("models")
}

/// `dump` of `model` on a fixture case's pixel values and noise; the error as text when loading fails.
fn dump(model: &Path, scratch: &Path) -> Result<std::collections::HashMap<String, candle_core::Tensor>, String> {
    let case = read_tensor_file(&fixtures().join("cases/tiny-p8/seed7_r0.6.safetensors"));
    let pixel_values = scratch.join("pixel_values.npy");
    let noise = scratch.join("noise.npy");
    case.tensors["pixel_values"].write_npy(&pixel_values).unwrap();
    case.tensors["noise"].write_npy(&noise).unwrap();
    let out = scratch.join(format!("{}.safetensors", model.file_name().unwrap().to_string_lossy()));
    let args = DumpArgs {
        input: ForwardInputArgs {
            image: None,
            pixel_values: Some(pixel_values),
            mask: "random".into(),
            noise: Some(noise),
            seed: None,
            mask_ratio: Some(case.metadata["mask_ratio"].parse().unwrap()),
            size: Default::default(),
        },
        model: ModelArgs { location: model.to_string_lossy().into_owned() },
        engine: EngineArgs { device: DeviceChoice::Cpu, ..EngineArgs::default() },
        force: false,
        out: out.clone(),
    };
    mae_explorer::commands::dump::run(&args).map_err(|e| format!("{e:#}"))?;
    Ok(read_tensor_file(&out).tensors)
}

#[test]
fn bin_and_original_pth_give_the_safetensors_outputs() {
    let scratch = tempfile::tempdir().unwrap();
    let reference = dump(&models().join("tiny-p8"), scratch.path()).unwrap();
    // The case's HF logits prove the reference itself is right, so equality below means equality with HF.
    let case = read_tensor_file(&fixtures().join("cases/tiny-p8/seed7_r0.6.safetensors"));
    assert!(compare_outputs(&reference, &case.tensors, 1e-4).is_empty());
    for model in [
        models().join("tiny-p8-bin"),
        models().join("tiny-p8-bin/pytorch_model.bin"),
        // Deflate-compressed zip entries, which torch.load reads too.
        models().join("tiny-p8-bin-deflated"),
        models().join("tiny-p8-pth/mae_tiny.pth"),
    ] {
        let ours = dump(&model, scratch.path()).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
        let problems = compare_outputs(&ours, &reference, TOLERANCE);
        assert!(problems.is_empty(), "{}:\n{}", model.display(), problems.join("\n"));
    }
}

/// Copies a checkpoint into a fresh folder with tiny-p8's config.json beside it.
fn beside_tiny_config(checkpoint: &Path, scratch: &Path) -> PathBuf {
    let target = scratch.join(checkpoint.file_name().unwrap());
    std::fs::copy(checkpoint, &target).unwrap();
    std::fs::copy(models().join("tiny-p8/config.json"), scratch.join("config.json")).unwrap();
    target
}

fn load_error(model: &Path) -> String {
    let location = ModelArgs { location: model.to_string_lossy().into_owned() };
    let engine = EngineArgs { device: DeviceChoice::Cpu, ..EngineArgs::default() };
    match mae_explorer::commands::model_arg::load_model(&location, &engine) {
        Ok(_) => panic!("{} loaded, but must be refused", model.display()),
        Err(error) => format!("{error:#}"),
    }
}

#[test]
fn bad_checkpoints_are_refused_with_the_problem_named() {
    let bad = fixtures().join("bad");
    let cases: [(&str, &[&str]); 5] = [
        ("not_a_zip.pth", &["not a PyTorch zip checkpoint"]),
        ("non_tensor.pth", &["not a tensor", "non_tensor.pth"]),
        ("missing_key.pth", &["`blocks.0.attn.qkv.weight`", "missing"]),
        ("wrong_shape.pth", &["`norm.weight`", "[35]", "[32]"]),
        ("evil.pth", &["refusing to load", "posix.system"]),
    ];
    for (file, expected) in cases {
        let scratch = tempfile::tempdir().unwrap();
        let error = load_error(&beside_tiny_config(&bad.join(file), scratch.path()));
        for needle in expected {
            assert!(error.contains(needle), "{file}: `{needle}` not in: {error}");
        }
        assert!(!error.contains('\n'), "{file}: error is not one line: {error}");
    }
}

#[test]
fn evil_pickle_runs_nothing() {
    let marker = Path::new("/tmp/mae_evil_marker");
    let _ = std::fs::remove_file(marker);
    let error = load_error(&fixtures().join("bad/evil.pth"));
    assert!(error.contains("posix.system"), "{error}");
    assert!(!marker.exists(), "loading evil.pth created {}", marker.display());
}

#[test]
fn original_checkpoint_without_config_needs_a_published_width() {
    // The published widths are inferred (unit-tested on shapes); the tiny test width has no known head count.
    let scratch = tempfile::tempdir().unwrap();
    let alone = scratch.path().join("mae_tiny.pth");
    std::fs::copy(models().join("tiny-p8-pth/mae_tiny.pth"), &alone).unwrap();
    let error = load_error(&alone);
    assert!(error.contains("config.json") && error.contains("width 32"), "{error}");
}

#[test]
fn truncated_checkpoint_is_an_error_not_a_partial_model() {
    let scratch = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(models().join("tiny-p8-bin/pytorch_model.bin")).unwrap();
    for keep in [bytes.len() / 2, bytes.len() - 100] {
        let path = scratch.path().join("pytorch_model.bin");
        std::fs::write(&path, &bytes[..keep]).unwrap();
        std::fs::copy(models().join("tiny-p8/config.json"), scratch.path().join("config.json")).unwrap();
        let error = load_error(&path);
        assert!(error.contains("pytorch_model.bin"), "{error}");
    }
}

#[test]
fn safetensors_file_with_config_beside_it_loads() {
    let scratch = tempfile::tempdir().unwrap();
    let reference = dump(&models().join("tiny-p8"), scratch.path()).unwrap();
    let ours = dump(&models().join("tiny-p8/model.safetensors"), scratch.path()).unwrap();
    assert!(compare_outputs(&ours, &reference, 0.0).is_empty());
}
