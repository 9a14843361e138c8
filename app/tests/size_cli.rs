//! `--size model|native|WxH` on the commands: pictures fed at their own shape or a given size (the values against
//! transformers are `tests/tests/parity.rs`'s), the one line saying so, and every bad size refused in one line with
//! exit code 2 and nothing written.

use std::path::{Path, PathBuf};

use mae_integration_tests::{App, read_tensor_file};

const APP: App = App(env!("CARGO_BIN_EXE_mae-explorer"));

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The sample photo stretched to `width`×`height`, written into `folder`.
fn photo(folder: &Path, width: u32, height: u32) -> PathBuf {
    let sample = image::open(repo().join("assets/chelsea.png")).unwrap();
    let path = folder.join(format!("photo-{width}x{height}.png"));
    sample.resize_exact(width, height, image::imageops::FilterType::Triangle).save(&path).unwrap();
    path
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn native_runs_a_wide_photo_at_1024_by_576_and_says_so() {
    let scratch = tempfile::tempdir().unwrap();
    let wide = photo(scratch.path(), 1920, 1080);
    let out = scratch.path().join("wide.safetensors");
    let arguments = ["dump", "--model", "demo", "--image", wide.to_str().unwrap(), "--size", "native"];
    let output = APP.succeeds(&[&arguments[..], &["--out", out.to_str().unwrap()]].concat());
    assert_eq!(stderr(&output).trim(), "size 1024x576 (the 1920×1080 picture scaled to at most 1024 px)");
    let dumped = read_tensor_file(&out).tensors;
    assert_eq!(dumped["pixel_values"].dims(), [1, 3, 576, 1024]);
    assert_eq!(dumped["mask"].dims(), [1, 64 * 36], "a 64×36 grid");
    // The model's own size says nothing and runs at 224×224, as it always did.
    let square = scratch.path().join("square.safetensors");
    let output = APP.succeeds(&[
        "dump",
        "--model",
        "demo",
        "--image",
        wide.to_str().unwrap(),
        "--out",
        square.to_str().unwrap(),
    ]);
    assert_eq!(stderr(&output), "");
    assert_eq!(read_tensor_file(&square).tensors["pixel_values"].dims(), [1, 3, 224, 224]);
}

#[test]
fn every_bad_size_is_one_line_exit_2_and_nothing_written() {
    let scratch = tempfile::tempdir().unwrap();
    let picture = photo(scratch.path(), 320, 240);
    let huge = scratch.path().join("huge.png");
    image::RgbImage::from_pixel(6000, 4000, image::Rgb([120, 80, 40])).save(&huge).unwrap();
    let pixel_values = scratch.path().join("pixel_values.npy");
    let case = read_tensor_file(&repo().join("tests/fixtures/sizes/demo_320x240.safetensors"));
    case.tensors["pixel_values"].write_npy(&pixel_values).unwrap();
    let out = scratch.path().join("out.safetensors");
    let cases: [(&Path, &str, &str, &[&str]); 7] = [
        (&picture, "--image", "0x224", &["0x224", "at least 1 pixel"]),
        (&picture, "--image", "100x100", &["multiples of 16", "96x96 and 112x112"]),
        (&picture, "--image", "224", &["did you mean 224x224?"]),
        (&picture, "--image", "-16x32", &["-16", "at least 1 pixel"]),
        (&picture, "--image", "99999x99999", &["of memory", "available"]),
        (&huge, "--image", "6000x4000", &["4000×6000 pixels", "of memory", "available"]),
        (&pixel_values, "--pixel-values", "native", &["refused with --pixel-values", "leave --size out"]),
    ];
    for (input, flag, size, mentions) in cases {
        let arguments =
            ["dump", "--model", "demo", flag, input.to_str().unwrap(), "--size", size, "--out", out.to_str().unwrap()];
        let output = APP.run(&arguments);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "--size {size}: {text}");
        assert_eq!(text.trim_end().lines().count(), 1, "--size {size}: not one line: {text}");
        for mention in mentions {
            assert!(text.contains(mention), "--size {size}: {text} does not say {mention:?}");
        }
        assert!(!out.exists(), "--size {size} wrote a file");
    }
}

#[test]
fn an_export_row_of_a_wide_picture_is_as_high_as_its_tiles() {
    let scratch = tempfile::tempdir().unwrap();
    let wide = photo(scratch.path(), 1920, 1080);
    let grid = |size: &str| {
        let out = scratch.path().join(format!("grid-{size}.png"));
        let arguments = [
            "export",
            "--model",
            "demo",
            "--image",
            wide.to_str().unwrap(),
            "--columns",
            "original,reconstruction",
            "--tile-size",
            "128",
            "--mask-ratios",
            "0.75",
            "--seeds",
            "0",
            "--size",
            size,
            "--out",
            out.to_str().unwrap(),
        ];
        let output = APP.succeeds(&arguments);
        (image::open(&out).unwrap().to_rgba8(), stderr(&output))
    };
    let (square, said) = grid("model");
    assert_eq!(said, "");
    let (native, said) = grid("native");
    assert!(said.contains("size 1024x576"), "{said}");
    assert_eq!(square.width(), native.width());
    // A 16:9 row: 128 × 72 cells (its seven caption lines taller still) instead of 128 × 128.
    let difference = square.height() - native.height();
    assert!(difference > 0 && difference < 128 - 72, "{} against {}", native.height(), square.height());
}

#[test]
fn eval_native_records_each_pictures_own_size_and_heads_runs_at_it() {
    let scratch = tempfile::tempdir().unwrap();
    let folder = scratch.path().join("photos");
    std::fs::create_dir(&folder).unwrap();
    photo(&folder, 1920, 1080);
    photo(&folder, 300, 451);
    std::fs::copy(repo().join("assets/chelsea.png"), folder.join("chelsea.png")).unwrap();
    let out = scratch.path().join("eval.csv");
    let arguments = [
        "eval",
        "--model",
        "demo",
        "--images",
        folder.to_str().unwrap(),
        "--size",
        "native",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = APP.succeeds(&arguments);
    assert!(stderr(&output).contains("each at its own size"), "{}", stderr(&output));
    let text = std::fs::read_to_string(&out).unwrap();
    let sizes: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let name = Path::new(fields[0]).file_name().unwrap().to_string_lossy().into_owned();
            (name, format!("{}x{} -> {}x{}", fields[1], fields[2], fields[11], fields[12]))
        })
        .collect();
    assert_eq!(
        sizes,
        [
            ("chelsea.png".to_string(), "451x300 -> 448x288".to_string()),
            ("photo-1920x1080.png".to_string(), "1920x1080 -> 1024x576".to_string()),
            ("photo-300x451.png".to_string(), "300x451 -> 288x448".to_string()),
        ]
    );
    let sidecar = std::fs::read_to_string(scratch.path().join("eval.csv.json")).unwrap();
    assert!(sidecar.contains("\"size\": \"native\""), "{sidecar}");
    // Resuming with another size is refused, naming it.
    let other =
        ["eval", "--model", "demo", "--images", folder.to_str().unwrap(), "--out", out.to_str().unwrap(), "--resume"];
    let refused = APP.run(&other);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("size: recorded \"native\", now \"model\""), "{}", stderr(&refused));
    // heads at a portrait size: one row per head, and a gallery whose thumbnails are portrait.
    let heads = scratch.path().join("heads.csv");
    let gallery = scratch.path().join("gallery.png");
    let portrait = folder.join("photo-300x451.png");
    APP.succeeds(&[
        "heads",
        "--model",
        "demo",
        "--image",
        portrait.to_str().unwrap(),
        "--size",
        "native",
        "--out",
        heads.to_str().unwrap(),
        "--gallery",
        gallery.to_str().unwrap(),
    ]);
    assert!(std::fs::read_to_string(&heads).unwrap().lines().count() > 1);
    assert!(gallery.exists());
}
