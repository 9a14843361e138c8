//! Mask strategies and reconstruction metrics through the commands: `dump --mask` writes exactly the block mask
//! transformers draws, the metrics it writes follow their definitions on its own pictures, `export --masks` draws
//! the MAE paper's Figure 6 rows with a CSV that equals separate `dump` runs, and bad masks are refused clearly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::Tensor;
use mae_integration_tests::{App, fixtures, read_tensor_file};
use mae_model::metrics::{psnr, ssim};

fn model(name: &str) -> PathBuf {
    fixtures().join("models").join(name)
}

fn image() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("assets/chelsea.png")
}

const APP: App = App(env!("CARGO_BIN_EXE_mae-explorer"));

/// Runs `dump` with `extra` on `model_name` and returns its tensors and metadata.
fn dump(model_name: &str, extra: &[&str], scratch: &Path) -> (HashMap<String, Tensor>, HashMap<String, String>) {
    let out = scratch.join(format!("dump-{}.safetensors", extra.join("_").replace(['/', '.'], "-")));
    let (model, image) = (model(model_name), image());
    let mut arguments = vec!["dump", "--model", model.to_str().unwrap(), "--image", image.to_str().unwrap()];
    arguments.extend_from_slice(extra);
    arguments.extend_from_slice(&["--force", "--out", out.to_str().unwrap()]);
    APP.succeeds(&arguments);
    let file = read_tensor_file(&out);
    (file.tensors, file.metadata)
}

fn values(tensor: &Tensor) -> Vec<f32> {
    tensor.flatten_all().unwrap().to_vec1().unwrap()
}

fn scalar(tensors: &HashMap<String, Tensor>, name: &str) -> Option<f64> {
    tensors.get(name).map(|t| f64::from(values(t)[0]))
}

#[test]
fn dump_writes_the_block_mask_transformers_draws() {
    let scratch = tempfile::tempdir().unwrap();
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("masks/block_masks.json")).unwrap()).unwrap();
    let mut checked = 0;
    for case in cases.as_array().unwrap() {
        let model_name = match (case["grid"][0].as_u64(), case["grid"][1].as_u64()) {
            (Some(4), Some(4)) => "tiny-p8",
            (Some(6), Some(6)) => "tiny-p4-normpix",
            _ => continue,
        };
        let (seed, ratio) = (case["seed"].to_string(), case["ratio"].to_string());
        let extra = ["--mask", "block", "--seed", seed.as_str(), "--mask-ratio", ratio.as_str()];
        let (tensors, metadata) = dump(model_name, &extra, scratch.path());
        let expected: Vec<f32> = case["mask"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(values(&tensors["mask"]), expected, "{model_name} seed {seed} ratio {ratio}");
        assert_eq!(metadata["mask"], "block");
        assert_eq!(metadata["seed"], seed);
        assert_eq!(metadata["masked_patches"], case["masked"].to_string());
        assert_eq!(metadata["requested_masked_patches"], case["total_mask_patches"].to_string());
        checked += 1;
    }
    assert_eq!(checked, 12, "the fixture's 4×4 and 6×6 cases");
    // random stays torch's mask.
    let (tensors, metadata) = dump("tiny-p8", &["--seed", "5"], scratch.path());
    assert_eq!(values(&tensors["noise"]), mae_model::TorchGenerator::rand(5, 16));
    assert_eq!(metadata["mask"], "random");
}

/// `original = clip(pixel_values·std + mean, 0, 1)` with the ImageNet statistics the test models use.
fn original(pixel_values: &[f32], plane: usize) -> Vec<f32> {
    const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
    const STD: [f32; 3] = [0.229, 0.224, 0.225];
    pixel_values.iter().enumerate().map(|(i, v)| (v * STD[i / plane] + MEAN[i / plane]).clamp(0.0, 1.0)).collect()
}

#[test]
fn dump_metrics_follow_their_definition_on_its_own_pictures() {
    let scratch = tempfile::tempdir().unwrap();
    for extra in [&["--seed", "1", "--mask-ratio", "0.5"][..], &["--mask", "grid"], &["--mask", "centre"]] {
        let (tensors, _) = dump("tiny-p8", extra, scratch.path());
        let (_, _, height, width) = tensors["pixel_values"].dims4().unwrap();
        let plane = height * width;
        let original = original(&values(&tensors["pixel_values"]), plane);
        let reconstruction = original_of_reconstruction(&values(&tensors["reconstruction"]), plane);
        let mask = values(&tensors["mask"]);
        let patch = 8;
        let masked_pixels: Vec<bool> =
            (0..plane).map(|i| mask[(i / width / patch) * (width / patch) + (i % width) / patch] == 1.0).collect();
        // pasted_back: the original on visible patches, the displayed reconstruction on masked ones.
        let expected_pasted: Vec<f32> =
            (0..3 * plane).map(|i| if masked_pixels[i % plane] { reconstruction[i] } else { original[i] }).collect();
        let pasted = values(&tensors["pasted_back"]);
        assert!(pasted.iter().zip(&expected_pasted).all(|(a, b)| (a - b).abs() <= 1e-6), "{extra:?}: pasted_back");
        let close = |name: &str, expected: f64| {
            let got = scalar(&tensors, name).unwrap();
            assert!((got - expected).abs() <= 1e-4 * expected.abs(), "{extra:?} {name}: {got} vs {expected}");
        };
        close("psnr_db", psnr(&original, &pasted, &vec![true; plane]));
        close("psnr_masked_db", psnr(&original, &pasted, &masked_pixels));
        close("ssim", ssim(&original, &pasted, height, width).unwrap());
        assert!(scalar(&tensors, "visible_loss").unwrap() > 0.0);
    }
    // Nothing masked: the picture is the original (PSNR +inf), and the masked PSNR and loss do not exist.
    let (tensors, _) = dump("tiny-p8", &["--mask-ratio", "0"], scratch.path());
    assert_eq!(scalar(&tensors, "psnr_db"), Some(f64::INFINITY));
    assert_eq!(scalar(&tensors, "ssim"), Some(1.0));
    assert!(!tensors.contains_key("psnr_masked_db") && !tensors.contains_key("loss"));
}

/// The displayed reconstruction of a plain-pixel model: the reconstruction de-normalized and clipped.
fn original_of_reconstruction(reconstruction: &[f32], plane: usize) -> Vec<f32> {
    original(reconstruction, plane)
}

#[test]
fn export_draws_figure_six_rows_and_its_csv_equals_dump() {
    let scratch = tempfile::tempdir().unwrap();
    let (grid, csv) = (scratch.path().join("fig6.png"), scratch.path().join("fig6.csv"));
    // A 6×6 grid (tiny-p8's 4×4 is too small for BEiT's blocks of at least 16 patches), norm-pix too.
    let model = model("tiny-p4-normpix");
    APP.succeeds(&[
        "export",
        "--model",
        model.to_str().unwrap(),
        "--image",
        image().to_str().unwrap(),
        "--masks",
        "random:0.75,block:0.5,grid,centre",
        "--mask-ratios",
        "0.6,0.9",
        "--seeds",
        "0,3",
        "--device",
        "cpu",
        "--metrics-csv",
        csv.to_str().unwrap(),
        "--out",
        grid.to_str().unwrap(),
    ]);
    assert!(image::open(&grid).is_ok());
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "image,model,mask,mask_ratio,seed,masked_patches,masked_loss,visible_loss,psnr_db,psnr_masked_db,ssim,\
         masked_fraction"
    );
    // Every row is the one model's; the rest is read without the model column.
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|line| {
            let mut row: Vec<&str> = line.split(',').collect();
            assert_eq!(row.remove(1), "tiny-p4-normpix", "{line}");
            row
        })
        .collect();
    let keys: Vec<(&str, &str, &str)> = rows.iter().map(|row| (row[1], row[2], row[3])).collect();
    assert_eq!(
        keys,
        [
            ("random", "0.75", "0"),
            ("random", "0.75", "3"),
            ("block", "0.5", "0"),
            ("block", "0.5", "3"),
            // The ratio does not change a grid mask, nor the seed a centred hole: no row repeats another.
            ("grid", "0.6", "0"),
            ("grid", "0.6", "3"),
            ("centre", "0.6", "0"),
            ("centre", "0.9", "0")
        ]
    );
    for row in &rows {
        let extra = ["--mask", row[1], "--mask-ratio", row[2], "--seed", row[3]];
        let (tensors, _) = dump("tiny-p4-normpix", &extra, scratch.path());
        let mask = values(&tensors["mask"]);
        let masked = mask.iter().filter(|&&m| m == 1.0).count();
        assert_eq!(row[4], masked.to_string(), "{row:?}");
        // `mask_ratio` is the ratio asked, `masked_fraction` what the mask did: a grid mask's 27 of 36 at 0.6.
        assert_eq!(row[10].parse::<f64>().unwrap(), masked as f64 / 36.0, "{row:?}");
        if row[1] == "grid" {
            assert_eq!((row[2], row[10]), ("0.6", "0.75"), "{row:?}");
        }
        for (column, name) in [(5, "loss"), (6, "visible_loss"), (7, "psnr_db"), (8, "psnr_masked_db"), (9, "ssim")] {
            let expected = scalar(&tensors, name).unwrap_or_else(|| panic!("{row:?}: dump wrote no {name}"));
            let got: f64 = row[column].parse().unwrap();
            assert!((got - expected).abs() <= 1e-5 * expected.abs(), "{row:?} {name}: {got} vs {expected}");
        }
    }
}

#[test]
fn picture_masks_round_trip_and_bad_masks_are_refused() {
    let scratch = tempfile::tempdir().unwrap();
    // A mask picture from the fixtures: dump masks exactly what PIL's reading of it says for a 32×32 input.
    let picture = fixtures().join("masks/mask_picture.png");
    let (tensors, metadata) = dump("tiny-p8", &["--mask", picture.to_str().unwrap()], scratch.path());
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("masks/mask_picture.json")).unwrap()).unwrap();
    let expected: Vec<f32> =
        expected["32x32/8"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(values(&tensors["mask"]), expected);
    assert_eq!(metadata["mask"], "mask_picture.png");
    // `./grid` is a file, `grid` the strategy.
    let here = scratch.path();
    std::fs::copy(&picture, here.join("grid")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
        .current_dir(here)
        .args(["dump", "--model", model("tiny-p8").to_str().unwrap(), "--image", image().to_str().unwrap()])
        .args(["--mask", "./grid", "--out", "from-file.safetensors"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(values(&read_tensor_file(&here.join("from-file.safetensors")).tensors["mask"]), expected);

    let (model, image) = (model("tiny-p8"), image());
    let base = ["dump", "--model", model.to_str().unwrap(), "--image", image.to_str().unwrap()];
    let refuse = |extra: &[&str], must_mention: &str| {
        let out = here.join("refused.safetensors");
        let mut arguments = base.to_vec();
        arguments.extend_from_slice(extra);
        arguments.extend_from_slice(&["--out", out.to_str().unwrap()]);
        let output = APP.run(&arguments);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(must_mention), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !out.exists(), "{extra:?}");
    };
    refuse(&["--mask", "blocky"], "neither a mask strategy");
    let text = here.join("notes.txt");
    std::fs::write(&text, "not a picture").unwrap();
    refuse(&["--mask", text.to_str().unwrap()], "mask must be a picture");
    let noise = here.join("noise.npy");
    refuse(&["--mask", "block", "--noise", noise.to_str().unwrap()], "cannot be used with");
    let curve = here.join("curve.csv");
    let output = APP.run(&[
        "loss-curve",
        "--model",
        model.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
        "--mask",
        "grid",
        "--out",
        curve.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("do not change with the mask ratio"));
    assert!(!curve.exists());
}
