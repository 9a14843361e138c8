//! `mae-explorer animate` driven as a user would: the real binary, the committed tiny-p16 fixture model and the
//! bundled photo. Each frame is checked against the PNG `export` writes for that frame's one ratio and seed.

use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Output};

use image::AnimationDecoder;
use image::codecs::gif::GifDecoder;
use mae_integration_tests::assert_folder_holds;

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/models/tiny-p16");
const PHOTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/chelsea.png");

/// Small tiles and every kind of column, so a frame is quick to draw and still shows everything a grid can.
const GRID_OPTIONS: [&str; 6] =
    ["--tile-size", "48", "--columns", "original,mask,masked,reconstruction,loss,rollout", "--colormap", "magma"];

fn run(command: &str, model: &str, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
        .arg(command)
        .args(["--model", model, "--device", "cpu", "--image", PHOTO])
        .args(arguments)
        .output()
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn succeeded(output: Output) {
    assert!(output.status.success(), "{}", stderr(&output));
}

/// The RGB picture `export` writes for one ratio and seed with `GRID_OPTIONS`.
fn exported_frame(folder: &Path, ratio: &str, seed: &str) -> image::RgbImage {
    let out = folder.join(format!("export-{ratio}-{seed}.png"));
    let single = ["--mask-ratios", ratio, "--seeds", seed, "--out", out.to_str().unwrap()];
    succeeded(run("export", MODEL, &[&single[..], &GRID_OPTIONS[..]].concat()));
    image::open(&out).unwrap().to_rgb8()
}

/// One frame of an APNG and how long it shows (numerator, denominator in seconds).
type ApngFrame = (image::RgbImage, (u16, u16));

/// How many times an APNG plays (0: forever) and every frame, read with the png crate.
fn apng_frames(path: &Path) -> (u32, Vec<ApngFrame>) {
    let decoder = png::Decoder::new(Cursor::new(std::fs::read(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let control = reader.info().animation_control.expect("an animated PNG");
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let mut frames = Vec::new();
    for _ in 0..control.num_frames {
        let frame = reader.next_frame(&mut buffer).unwrap();
        assert_eq!((frame.color_type, frame.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
        let delay = reader.info().frame_control.map(|control| (control.delay_num, control.delay_den)).unwrap();
        let pixels = buffer[..frame.buffer_size()].to_vec();
        frames.push((image::RgbImage::from_raw(frame.width, frame.height, pixels).unwrap(), delay));
    }
    (control.num_plays, frames)
}

#[test]
fn an_apng_holds_exactly_the_pictures_export_writes_for_each_ratio() {
    let folder = tempfile::tempdir().unwrap();
    let out = folder.path().join("ratios.png");
    let animate = ["--mask-ratios", "0.25:0.75:0.25", "--seeds", "3", "--fps", "5", "--out", out.to_str().unwrap()];
    succeeded(run("animate", MODEL, &[&animate[..], &GRID_OPTIONS[..]].concat()));
    let (plays, frames) = apng_frames(&out);
    assert_eq!(plays, 0, "it loops forever");
    assert_eq!(frames.len(), 3);
    for ((frame, delay), ratio) in frames.iter().zip(["0.25", "0.5", "0.75"]) {
        assert_eq!(*delay, (1, 5), "each frame shows 1/5 s");
        let expected = exported_frame(folder.path(), ratio, "3");
        assert_eq!(frame.dimensions(), expected.dimensions(), "ratio {ratio}");
        assert!(*frame == expected, "the frame at ratio {ratio} differs from export's PNG");
    }
}

/// How far a GIF frame may be from the exact picture. NeuQuant (the quantizer the image crate's GIF encoder uses)
/// learns a 256-colour palette per frame and bounds no single pixel: a colour few pixels use (an anti-aliased text
/// edge, a heatmap extreme) shares an entry with its neighbours and can be 100 levels off. So the bound is on how
/// many pixels are far off, and on the mean; measured on this grid: 0.6% of pixels more than 32 levels off in some
/// channel, a mean of 0.7 levels per channel.
const GIF_FAR_OFF_LEVELS: u8 = 32;
const GIF_MOST_FAR_OFF_PIXELS: f64 = 0.01;
const GIF_MEAN_CHANNEL_ERROR: f64 = 1.5;

#[test]
fn a_gif_has_a_frame_per_seed_at_the_fps_delay_within_its_palette_of_export() {
    let folder = tempfile::tempdir().unwrap();
    let out = folder.path().join("seeds.gif");
    let animate = ["--seeds", "4-6", "--mask-ratios", "0.6", "--out", out.to_str().unwrap()];
    succeeded(run("animate", MODEL, &[&animate[..], &GRID_OPTIONS[..]].concat()));
    let decoder = GifDecoder::new(Cursor::new(std::fs::read(&out).unwrap())).unwrap();
    let frames = decoder.into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), 3);
    for (frame, seed) in frames.iter().zip(["4", "5", "6"]) {
        // The default 8 fps: 12.5 cs, stored as 13.
        assert_eq!(frame.delay().numer_denom_ms(), (130, 1));
        let expected = exported_frame(folder.path(), "0.6", seed);
        let picture = frame.buffer();
        assert_eq!(picture.dimensions(), expected.dimensions(), "seed {seed}");
        let (mut far_off, mut sum) = (0usize, 0u64);
        for (gif, exact) in picture.pixels().zip(expected.pixels()) {
            let differences = [0, 1, 2].map(|channel| gif.0[channel].abs_diff(exact.0[channel]));
            far_off += usize::from(differences.iter().any(|&difference| difference > GIF_FAR_OFF_LEVELS));
            sum += differences.iter().map(|&difference| u64::from(difference)).sum::<u64>();
        }
        let pixels = expected.pixels().len();
        let mean = sum as f64 / (3 * pixels) as f64;
        assert!(mean <= GIF_MEAN_CHANNEL_ERROR, "seed {seed}: off by {mean:.2} levels on average");
        let share = far_off as f64 / pixels as f64;
        assert!(share <= GIF_MOST_FAR_OFF_PIXELS, "seed {seed}: {far_off} of {pixels} pixels far off");
    }
}

#[test]
fn bad_animations_get_one_line_exit_code_2_and_no_file_before_any_model_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("animation.gif");
    let out_text = out.to_str().unwrap();
    let existing = dir.path().join("existing.png");
    std::fs::write(&existing, b"kept").unwrap();
    let (webp, missing) = (dir.path().join("animation.webp"), dir.path().join("no/such/folder/a.gif"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--mask-ratios", "0.5,0.75", "--seeds", "0,1"], "both the mask ratios (2) and the seeds (2)"),
        (vec!["--mask-ratios", "0.1:0.9:0.1", "--seeds", "0-3"], "both the mask ratios (9) and the seeds (4)"),
        (vec![], "nothing to animate"),
        (vec!["--mask-ratios", "0.5"], "nothing to animate"),
        (vec!["--masks", "random:0.75", "--mask-ratios", "0.1:0.9:0.1"], "mask \"random\" has its own ratio"),
        (vec!["--masks", "grid", "--mask-ratios", "0.1:0.9:0.1"], "the grid mask does not change with the mask ratio"),
        (vec!["--masks", "centre", "--seeds", "0-3"], "the centre mask does not change with the seed"),
        (vec!["--seeds", "0-1000"], "1001 frames, more than 1000"),
        (vec!["--seeds", "0-999999"], "1000000 frames, more than 1000"),
        (vec!["--mask-ratios", "0:1:0.0001"], "10001 frames, more than 1000"),
        (vec!["--mask-ratios", "0.1:0.9:0"], "the step must be more than 0"),
        (vec!["--mask-ratios", "0.1:0.9:-0.1"], "the step must be more than 0"),
        (vec!["--mask-ratios", "0.9:0.1:0.1"], "FROM is more than TO"),
        (vec!["--mask-ratios", "0.5:1.5:0.1"], "1.5 is outside [0, 1]"),
        (vec!["--mask-ratios", "0.5,1.5"], "\"1.5\" is outside [0, 1]"),
        (vec!["--seeds", "6-3"], "A is more than B"),
        (vec!["--seeds", "0-3", "--fps", "0"], "the frame rate must be 1 to 50 frames per second, got 0"),
        (vec!["--seeds", "0-3", "--fps", "51"], "the frame rate must be 1 to 50 frames per second, got 51"),
    ];
    // A model that does not exist: had anything tried to load it, the error would say so instead.
    let absent_model = dir.path().join("absent-model");
    let absent_model = absent_model.to_str().unwrap();
    let refused = |arguments: &[&str], named: &str| {
        let result = run("animate", absent_model, arguments);
        let message = stderr(&result);
        assert_eq!(result.status.code(), Some(2), "{arguments:?}: {message}");
        assert_eq!(message.trim_end().lines().count(), 1, "{arguments:?}: {message}");
        assert!(message.contains(named), "{arguments:?} should name {named}: {message}");
        assert!(!message.contains("absent-model"), "{arguments:?}: refused only after a model load: {message}");
    };
    for (options, named) in cases {
        refused(&[&["--out", out_text][..], &options[..]].concat(), named);
    }
    let seeds = ["--seeds", "0-3"];
    refused(&[&seeds[..], &["--out", webp.to_str().unwrap()][..]].concat(), "unsupported animation format");
    refused(&[&seeds[..], &["--out", missing.to_str().unwrap()][..]].concat(), "the output folder does not exist");
    refused(&[&seeds[..], &["--out", existing.to_str().unwrap()][..]].concat(), "already exists; pass --force");
    assert_eq!(std::fs::read(&existing).unwrap(), b"kept");
    assert_folder_holds(dir.path(), &["existing.png"]);
    // With --force the existing file is replaced (by an APNG, from its extension).
    let forced = ["--seeds", "0-1", "--tile-size", "16", "--force", "--out", existing.to_str().unwrap()];
    succeeded(run("animate", MODEL, &forced));
    assert_eq!(apng_frames(&existing).1.len(), 2);
    assert_folder_holds(dir.path(), &["existing.png"]);
}
