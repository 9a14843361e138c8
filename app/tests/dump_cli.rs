//! `mae-explorer dump` on bad input: one line naming the file and the problem, exit code 2, no panic, and no
//! output file left behind.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn fixture_model() -> PathBuf {
    repo().join("tests/fixtures/models/tiny-p8")
}

/// A copy of the tiny model in a scratch folder, for breaking it.
fn model_copy(scratch: &Path) -> PathBuf {
    let dir = scratch.join("model");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["config.json", "model.safetensors", "preprocessor_config.json"] {
        std::fs::copy(fixture_model().join(file), dir.join(file)).unwrap();
    }
    dir
}

/// Runs dump and checks the failure contract; returns the error line.
fn dump_fails(model: &Path, extra: &[&str], scratch: &Path, must_mention: &[&str]) -> String {
    let out = scratch.join("out.safetensors");
    let output = Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
        .arg("dump")
        .arg("--model")
        .arg(model)
        .args(extra)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "exit code for {extra:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "panic for {extra:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "not one line: {stderr}");
    for word in must_mention {
        assert!(stderr.contains(word), "{extra:?}: expected `{word}` in: {stderr}");
    }
    assert!(!out.exists(), "an output file was left behind for {extra:?}");
    let leftovers: Vec<_> = std::fs::read_dir(scratch)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("out.safetensors"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    stderr
}

#[test]
fn broken_models_are_named_with_their_problem() {
    let scratch = tempfile::tempdir().unwrap();
    let image = repo().join("assets/chelsea.png");
    let image_args = ["--image", image.to_str().unwrap()];

    let model = model_copy(scratch.path());
    std::fs::remove_file(model.join("config.json")).unwrap();
    dump_fails(&model, &image_args, scratch.path(), &["config.json"]);

    std::fs::write(model.join("config.json"), "{ this is not json").unwrap();
    dump_fails(&model, &image_args, scratch.path(), &["config.json", "malformed"]);

    std::fs::write(model.join("config.json"), r#"{"hidden_size": 30, "num_attention_heads": 4}"#).unwrap();
    dump_fails(&model, &image_args, scratch.path(), &["config.json", "divisible"]);

    // A config that disagrees with the weights: the tensor is named with both shapes.
    let config = std::fs::read_to_string(fixture_model().join("config.json")).unwrap();
    std::fs::write(model.join("config.json"), config.replace("\"intermediate_size\": 64", "\"intermediate_size\": 65"))
        .unwrap();
    dump_fails(&model, &image_args, scratch.path(), &["model.safetensors", "intermediate.dense.weight", "shape"]);

    std::fs::write(model.join("config.json"), &config).unwrap();
    let weights = std::fs::read(fixture_model().join("model.safetensors")).unwrap();
    std::fs::write(model.join("model.safetensors"), &weights[..weights.len() / 2]).unwrap();
    dump_fails(&model, &image_args, scratch.path(), &["model.safetensors"]);

    std::fs::remove_file(model.join("model.safetensors")).unwrap();
    dump_fails(&model, &image_args, scratch.path(), &["model.safetensors"]);
}

#[test]
fn a_weights_file_without_one_tensor_names_the_missing_key() {
    let scratch = tempfile::tempdir().unwrap();
    let model = model_copy(scratch.path());
    let mut tensors =
        candle_core::safetensors::load(fixture_model().join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    tensors.remove("decoder.decoder_norm.weight").unwrap();
    candle_core::safetensors::save(&tensors, model.join("model.safetensors")).unwrap();
    let image = repo().join("assets/chelsea.png");
    dump_fails(
        &model,
        &["--image", image.to_str().unwrap()],
        scratch.path(),
        &["decoder.decoder_norm.weight", "missing"],
    );
}

#[test]
fn bad_inputs_are_named_with_their_problem() {
    let scratch = tempfile::tempdir().unwrap();
    let model = fixture_model();
    let not_an_image = scratch.path().join("notes.png");
    std::fs::write(&not_an_image, "just some text").unwrap();
    dump_fails(&model, &["--image", not_an_image.to_str().unwrap()], scratch.path(), &["notes.png", "not an image"]);

    let missing = scratch.path().join("missing.png");
    dump_fails(&model, &["--image", missing.to_str().unwrap()], scratch.path(), &["missing.png"]);

    let image = repo().join("assets/chelsea.png");
    for ratio in ["1.5", "-0.25"] {
        dump_fails(
            &model,
            &["--image", image.to_str().unwrap(), "--mask-ratio", ratio],
            scratch.path(),
            &["outside [0, 1]"],
        );
    }

    // Half precision is for GPUs; on the CPU it is refused before any work.
    dump_fails(
        &model,
        &["--image", image.to_str().unwrap(), "--dtype", "bf16"],
        scratch.path(),
        &["not supported on the CPU"],
    );

    // .npy inputs of the wrong shape.
    let pixels = scratch.path().join("pixels.npy");
    candle_core::Tensor::zeros((1, 3, 32), candle_core::DType::F32, &candle_core::Device::Cpu)
        .unwrap()
        .write_npy(&pixels)
        .unwrap();
    dump_fails(&model, &["--pixel-values", pixels.to_str().unwrap()], scratch.path(), &["pixels.npy", "[1, 3, H, W]"]);

    let good_pixels = scratch.path().join("good.npy");
    candle_core::Tensor::zeros((1, 3, 32, 32), candle_core::DType::F32, &candle_core::Device::Cpu)
        .unwrap()
        .write_npy(&good_pixels)
        .unwrap();
    let noise = scratch.path().join("noise.npy");
    candle_core::Tensor::zeros((1, 15), candle_core::DType::F32, &candle_core::Device::Cpu)
        .unwrap()
        .write_npy(&noise)
        .unwrap();
    dump_fails(
        &model,
        &["--pixel-values", good_pixels.to_str().unwrap(), "--noise", noise.to_str().unwrap()],
        scratch.path(),
        &["noise.npy", "[1, 16]"],
    );

    let garbage = scratch.path().join("garbage.npy");
    std::fs::write(&garbage, b"\x93NUMPY garbage").unwrap();
    dump_fails(&model, &["--pixel-values", garbage.to_str().unwrap()], scratch.path(), &["garbage.npy"]);

    // A pixel grid that is not a whole number of patches.
    let odd = scratch.path().join("odd.npy");
    candle_core::Tensor::zeros((1, 3, 30, 32), candle_core::DType::F32, &candle_core::Device::Cpu)
        .unwrap()
        .write_npy(&odd)
        .unwrap();
    dump_fails(&model, &["--pixel-values", odd.to_str().unwrap()], scratch.path(), &["patches"]);

    // An output folder that does not exist.
    let output = Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
        .args(["dump", "--model"])
        .arg(&model)
        .args(["--image", image.to_str().unwrap(), "--out"])
        .arg(scratch.path().join("no/such/folder/out.safetensors"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not exist"));
}

#[test]
fn a_good_dump_writes_every_promised_tensor() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out.safetensors");
    let image = repo().join("assets/chelsea.png");
    let status = Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
        .args(["dump", "--model"])
        .arg(fixture_model())
        .args(["--image", image.to_str().unwrap(), "--seed", "2", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let tensors = candle_core::safetensors::load(&out, &candle_core::Device::Cpu).unwrap();
    for name in [
        "pixel_values",
        "noise",
        "logits",
        "mask",
        "ids_restore",
        "loss",
        "patch_loss",
        "last_hidden_state",
        "reconstruction",
        "encoder_attentions.0",
        "encoder_attentions.1",
        "decoder_attentions.0",
        "decoder_attentions.1",
    ] {
        assert!(tensors.contains_key(name), "{name} missing");
    }
    // Default ratio is the config's (0.75 of 16 patches → 4 kept); seed 2's noise is torch's stream.
    assert_eq!(tensors["encoder_attentions.0"].dims(), &[1, 4, 5, 5]);
    assert_eq!(tensors["ids_restore"].dtype(), candle_core::DType::I64);
    let noise: Vec<f32> = tensors["noise"].flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(noise, mae_model::TorchGenerator::rand(2, 16));
}

/// `loss-curve` writes the loss-vs-ratio data as CSV, equal to running `dump` at each ratio, and keeps the
/// output contract of the other commands.
#[test]
fn loss_curve_writes_the_masked_loss_at_each_ratio() {
    let scratch = tempfile::tempdir().unwrap();
    let image = repo().join("assets/chelsea.png");
    let out = scratch.path().join("curve.csv");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
            .args(["loss-curve", "--model"])
            .arg(fixture_model())
            .args(["--image", image.to_str().unwrap(), "--seed", "3", "--device", "cpu", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let output = run(&["--mask-ratios", "0,0.5,0.75"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "mask_ratio,masked_loss");
    assert_eq!(lines[1], "0,", "nothing masked: no loss");
    for (line, ratio) in lines[2..].iter().zip(["0.5", "0.75"]) {
        let (csv_ratio, loss) = line.split_once(',').unwrap();
        assert_eq!(csv_ratio, ratio);
        let dumped = scratch.path().join(format!("dump-{ratio}.safetensors"));
        let status = Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
            .args(["dump", "--model"])
            .arg(fixture_model())
            .args(["--image", image.to_str().unwrap(), "--seed", "3", "--mask-ratio", ratio, "--out"])
            .arg(&dumped)
            .status()
            .unwrap();
        assert!(status.success());
        let tensors = candle_core::safetensors::load(&dumped, &candle_core::Device::Cpu).unwrap();
        let expected: f32 = tensors["loss"].to_scalar().unwrap();
        assert_eq!(loss.parse::<f32>().unwrap(), expected, "ratio {ratio}");
    }
    let before = std::fs::read(&out).unwrap();
    let again = run(&[]);
    assert_eq!(again.status.code(), Some(2), "an existing file is not replaced without --force");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(&out).unwrap(), before);
    let bad = run(&["--force", "--mask-ratios", "0.5,2"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("outside [0, 1]"));
    assert!(run(&["--force"]).status.success(), "default ratios 0.05..0.95");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 20);
}
