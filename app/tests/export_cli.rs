//! `mae-explorer export` driven as a user would: the real binary, the committed tiny-p16 fixture model and the
//! bundled photo. Exit codes, file contents and stderr are checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mae_integration_tests::assert_folder_holds;

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/models/tiny-p16");
const PHOTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/chelsea.png");

fn export(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
        .arg("export")
        .args(["--model", MODEL, "--device", "cpu"])
        .args(arguments)
        .output()
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn four_columns_two_ratios_two_seeds_make_a_readable_grid_that_is_never_overwritten_silently() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.png");
    let out_text = out.to_str().unwrap();
    let arguments = [
        "--image",
        PHOTO,
        "--mask-ratios",
        "0.5,0.75",
        "--seeds",
        "0,1",
        "--columns",
        "original,masked,reconstruction,pasted",
        "--out",
        out_text,
    ];
    let first = export(&arguments);
    assert!(first.status.success(), "{}", stderr(&first));
    let picture = image::open(&out).expect("a readable PNG").to_rgb8();
    let (width, height) = picture.dimensions();
    // 4 columns × (2 ratios × 2 seeds) rows of 224-pixel tiles, plus caption margins that are far smaller.
    let tile = 224 + mae_explorer::render::grid::GAP;
    assert!(width >= 4 * tile && width - 4 * tile < 300, "{width}");
    assert!(height >= 4 * tile && height - 4 * tile < 100, "{height}");
    let bytes = std::fs::read(&out).unwrap();

    let second = export(&arguments);
    assert_eq!(second.status.code(), Some(2));
    assert!(stderr(&second).contains("--force"), "{}", stderr(&second));
    assert_eq!(std::fs::read(&out).unwrap(), bytes, "the first export must stay byte-for-byte intact");

    // With --force and other columns the file is replaced.
    let mut forced = arguments.to_vec();
    forced[7] = "mask,loss";
    forced.push("--force");
    let third = export(&forced);
    assert!(third.status.success(), "{}", stderr(&third));
    assert_ne!(std::fs::read(&out).unwrap(), bytes);
    assert_folder_holds(dir.path(), &["grid.png"]);
}

#[test]
fn jpeg_and_webp_follow_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    for (name, format) in [("grid.jpg", image::ImageFormat::Jpeg), ("grid.webp", image::ImageFormat::WebP)] {
        let out = dir.path().join(name);
        let arguments = [
            "--image",
            PHOTO,
            "--mask-ratios",
            "0.75",
            "--seeds",
            "2",
            "--tile-size",
            "64",
            "--out",
            out.to_str().unwrap(),
        ];
        let result = export(&arguments);
        assert!(result.status.success(), "{}", stderr(&result));
        assert_eq!(image::ImageFormat::from_path(&out).unwrap(), format);
        let reader = image::ImageReader::open(&out).unwrap().with_guessed_format().unwrap();
        assert_eq!(reader.format(), Some(format));
        reader.decode().expect("decodes");
    }
}

#[test]
fn bad_options_get_one_line_naming_them_exit_code_2_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.png");
    let out_text = out.to_str().unwrap();
    let missing_folder = dir.path().join("no/such/folder/grid.png");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--columns", "original,recon"], "\"recon\""),
        (vec!["--colormap", "jet"], "'jet'"),
        (vec!["--mask-ratios", "0.5,1.5"], "1.5"),
        (vec!["--mask-ratios", "-0.1"], "-0.1"),
        (vec!["--seeds", ""], "--seeds"),
        (vec!["--seeds", "1,x"], "\"x\""),
        (vec!["--tile-size", "0"], "tile size"),
        (vec!["--tile-size", "4000", "--mask-ratios", "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9"], "pixels"),
        (vec!["--masked-style", "plaid"], "'plaid'"),
        // An empty item between commas is a typo, in every list (a trailing comma is fine).
        (vec!["--seeds", "0,,1"], "\"0,,1\" has an empty item after \"0\" (two commas in a row)"),
        (vec!["--mask-ratios", "0.5,,0.75"], "two commas in a row"),
        (vec!["--masks", "random,,grid"], "two commas in a row"),
        (vec!["--columns", "original,,pasted"], "two commas in a row"),
        (vec!["--seeds", "-1"], "seed -1 is negative"),
    ];
    for (options, named) in cases {
        let mut arguments = vec!["--image", PHOTO, "--out", out_text];
        arguments.extend(options.iter().copied());
        let result = export(&arguments);
        let message = stderr(&result);
        assert_eq!(result.status.code(), Some(2), "{options:?}: {message}");
        assert_eq!(message.trim_end().lines().count(), 1, "{options:?}: {message}");
        assert!(message.contains(named), "{options:?} should name {named}: {message}");
    }
    let bitmap = dir.path().join("grid.bmp");
    let result = export(&["--image", PHOTO, "--out", bitmap.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(2));
    assert!(stderr(&result).contains("grid.bmp"), "{}", stderr(&result));
    let result = export(&["--image", PHOTO, "--out", missing_folder.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(2));
    assert!(stderr(&result).contains("output folder"), "{}", stderr(&result));
    let unreadable = dir.path().join("broken.png");
    std::fs::write(&unreadable, b"not a picture").unwrap();
    let result = export(&["--image", unreadable.to_str().unwrap(), "--out", out_text]);
    assert_eq!(result.status.code(), Some(2));
    assert!(stderr(&result).contains("broken.png"), "{}", stderr(&result));
    assert_folder_holds(dir.path(), &["broken.png"]);
}

#[test]
fn a_folder_run_skips_the_bad_image_and_exports_the_rest() {
    let images = tempfile::tempdir().unwrap();
    std::fs::copy(PHOTO, images.path().join("a_cat.png")).unwrap();
    std::fs::write(images.path().join("b_broken.jpg"), b"\xff\xd8 truncated").unwrap();
    std::fs::copy(PHOTO, images.path().join("c_cat_again.png")).unwrap();
    std::fs::write(images.path().join("notes.txt"), b"not an image, not a candidate").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out: PathBuf = out_dir.path().join("folder.png");
    let arguments = [
        "--image",
        images.path().to_str().unwrap(),
        "--mask-ratios",
        "0.75",
        "--seeds",
        "0",
        "--tile-size",
        "64",
        "--out",
        out.to_str().unwrap(),
    ];
    let result = export(&arguments);
    let message = stderr(&result);
    assert!(result.status.success(), "{message}");
    assert!(message.contains("b_broken.jpg"), "the bad image is reported: {message}");
    assert!(!message.contains("notes.txt"), "{message}");
    // Two readable images × 1 ratio × 1 seed = 2 rows of 64-pixel tiles.
    let height = image::open(&out).unwrap().height();
    let tile = 64 + mae_explorer::render::grid::GAP;
    assert!(height >= 2 * tile && height < 3 * tile + 60, "{height}");

    // A folder of only bad images is an error, and nothing is written.
    let bad_only = tempfile::tempdir().unwrap();
    std::fs::write(bad_only.path().join("x.png"), b"nope").unwrap();
    let out = out_dir.path().join("none.png");
    let result = export(&["--image", bad_only.path().to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(2));
    assert!(!out.exists());
}

/// Runs the binary with `arguments` and returns its one line of refusal, after checking it is one line, exit 2.
fn refusal(arguments: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_mae-explorer")).args(arguments).output().unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{arguments:?}: {message}");
    assert_eq!(message.trim_end().lines().count(), 1, "{arguments:?}: {message}");
    assert!(!message.contains("panicked"), "{arguments:?}: {message}");
    message
}

#[test]
fn negative_seeds_missing_models_and_models_named_twice_are_said_once_and_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let out = out.to_str().unwrap();
    // A negative seed is named as such wherever a seed is taken (not "unexpected argument '-1'").
    for arguments in [
        vec!["dump", "--model", MODEL, "--image", PHOTO, "--seed", "-1", "--out", out],
        vec!["loss-curve", "--model", MODEL, "--image", PHOTO, "--seed", "-1", "--out", out],
        vec!["eval", "--model", MODEL, "--images", PHOTO, "--seeds", "2,-1", "--out", out],
        vec!["--model", MODEL, "--seed", "-1"],
    ] {
        let message = refusal(&arguments);
        assert!(message.contains("seed -1 is negative"), "{arguments:?}: {message}");
    }
    // A missing model is named once.
    let message = refusal(&["compare", "--models", "demo,/nonexistent/model", "--image", PHOTO, "--out", out]);
    assert_eq!(message.matches("/nonexistent/model").count(), 1, "{message}");
    assert!(message.contains("not found"), "{message}");
    // The window's --compare: at most three beside the first, none twice (the first included), no empty entry.
    let window = |compare: &str| refusal(&["--model", MODEL, "--compare", compare, "--screenshot", out]);
    let five = format!("demo,{PHOTO},{MODEL}x,{MODEL}y");
    assert!(window(&five).contains("5 models in all"), "{five}");
    assert!(window(&format!("demo,{MODEL}/")).contains("names the first model"), "A again");
    assert!(window(&format!("demo,,{MODEL}x")).contains("two commas in a row"));
    assert!(window("demo,demo").contains("names one model twice"));
    // One model twice, however it is spelled.
    let twice = format!("{MODEL},{MODEL}/");
    let message = refusal(&["compare", "--models", &twice, "--image", PHOTO, "--out", out]);
    assert!(message.contains("names one model twice"), "{message}");
    assert!(!Path::new(out).exists());
}

#[test]
fn image_and_images_are_one_option_in_every_command_that_reads_images() {
    let dir = tempfile::tempdir().unwrap();
    for (command, spelling) in [("export", "--images"), ("compare", "--images"), ("eval", "--image")] {
        let out = dir.path().join(format!("{command}.out"));
        let extension = if command == "export" { "png" } else { "csv" };
        let out = out.with_extension(extension);
        let model_option = if command == "compare" { "--models" } else { "--model" };
        let mut arguments = vec![command, model_option, MODEL, spelling, PHOTO, "--device", "cpu"];
        arguments.extend(["--out", out.to_str().unwrap()]);
        if command == "export" {
            arguments.extend(["--mask-ratios", "0.75", "--seeds", "0", "--tile-size", "32"]);
        }
        let output = Command::new(env!("CARGO_BIN_EXE_mae-explorer")).args(&arguments).output().unwrap();
        assert!(output.status.success(), "{arguments:?}: {}", stderr(&output));
        assert!(out.is_file(), "{arguments:?}");
    }
}
