//! Preprocessing against PIL (via HF's ViTImageProcessor): every resized pixel equal to PIL's.

use candle_core::{DType, Device};
use mae_integration_tests::{fixtures, read_tensor_file, repo_root, to_f64};
use mae_model::preprocess::load_rgb_image;
use mae_model::{Preprocessor, PreprocessorConfig};

// The issue asks for 2 grey levels; decoding (libjpeg-turbo) and resizing (Pillow's own arithmetic) are bit-exact,
// so the test demands equality.
const MAX_GREY_LEVELS: f64 = 0.0;

fn max_difference(ours: &image::RgbImage, expected: &candle_core::Tensor) -> f64 {
    let want = to_f64(expected);
    assert_eq!(want.len(), ours.as_raw().len(), "size differs");
    ours.as_raw().iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max)
}

#[test]
fn resize_matches_pil_on_awkward_formats_and_photos() {
    let dir = fixtures().join("preprocess");
    let expected = read_tensor_file(&dir.join("expected.safetensors"));
    let preprocessor = Preprocessor::new(PreprocessorConfig::default());
    let mut report = Vec::new();
    let mut checked = 0;
    let mut worst = 0f64;
    for (name, want) in &expected.tensors {
        let source = if dir.join(name).is_file() {
            dir.join(name)
        } else if name == "resized.chelsea" {
            repo_root().join("assets/chelsea.png")
        } else if name == "resized.rocket" {
            fixtures().join("photos/rocket.jpg")
        } else {
            continue;
        };
        let ours = preprocessor.resize(&load_rgb_image(&source).unwrap()).unwrap();
        let difference = max_difference(&ours, want);
        if difference > MAX_GREY_LEVELS {
            report.push(format!("{name}: max difference {difference} grey levels"));
        }
        worst = worst.max(difference);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} images checked");
    assert!(report.is_empty(), "{}", report.join("\n"));
    eprintln!("{checked} images, largest difference from PIL: {worst} grey levels");
}

/// `decoded.F`: what PIL's `load_image` (EXIF transpose + `convert("RGB")`) gives before any resizing. Decoding and
/// conversion are checked on their own, byte for byte and in size, so a fault there is not hidden (or blamed on the
/// resampler) by the resize.
#[test]
fn decoded_pictures_equal_pil_before_resizing() {
    let dir = fixtures().join("preprocess");
    let expected = read_tensor_file(&dir.join("expected.safetensors"));
    let mut report = Vec::new();
    let mut checked = 0;
    for (name, want) in &expected.tensors {
        let Some(file) = name.strip_prefix("decoded.") else { continue };
        let ours = load_rgb_image(&dir.join(file)).unwrap();
        let (height, width, channels) = want.dims3().unwrap();
        assert_eq!(channels, 3, "{name}");
        if (ours.width() as usize, ours.height() as usize) != (width, height) {
            report.push(format!("{file}: ours {}×{}, PIL {width}×{height}", ours.width(), ours.height()));
        } else if let Some(index) = ours.as_raw().iter().zip(to_f64(want)).position(|(a, b)| f64::from(*a) != b) {
            let pixel = index / 3;
            report.push(format!(
                "{file}: first difference at x {} y {} channel {}",
                pixel % width,
                pixel / width,
                index % 3
            ));
        }
        checked += 1;
    }
    // Every picture but the four larger lossless PNGs (tests/fixtures/README.md).
    assert_eq!(checked, 11, "decoded pictures in the fixture");
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn normalized_pixel_values_match_the_image_processor() {
    let expected = read_tensor_file(&fixtures().join("preprocess/expected.safetensors"));
    let want = &expected.tensors["pixel_values.chelsea"];
    let preprocessor = Preprocessor::new(PreprocessorConfig::default());
    let image = load_rgb_image(&repo_root().join("assets/chelsea.png")).unwrap();
    let ours = preprocessor.pixel_values(&image, &Device::Cpu).unwrap();
    assert_eq!(ours.dims(), want.dims());
    // 2 grey levels in normalized units (the smallest std is 0.224).
    let limit = MAX_GREY_LEVELS / 255.0 / 0.224 + 1e-6;
    let diff = (ours.to_dtype(DType::F64).unwrap() - want.to_dtype(DType::F64).unwrap()).unwrap();
    let max: f64 = diff.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
    assert!(max <= limit, "max difference {max} > {limit}");
}
