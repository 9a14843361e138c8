//! `mae-explorer heads`: the CSV's shape and the gallery picture, and bad input refused as `dump` refuses it
//! (one line naming the problem, exit code 2, no file left, an existing file untouched).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn heads(arguments: &[&str], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
        .args(["heads", "--model"])
        .arg(repo().join("tests/fixtures/models/tiny-p16"))
        .args(["--image"])
        .arg(repo().join("assets/chelsea.png"))
        .args(arguments)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn one_row_per_head_and_a_labelled_gallery() {
    let scratch = tempfile::tempdir().unwrap();
    let (csv, gallery) = (scratch.path().join("heads.csv"), scratch.path().join("gallery.png"));
    let output = heads(&["--seed", "2", "--gallery", gallery.to_str().unwrap(), "--query", "5"], &csv);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "stack,layer,head,mean_distance_px,entropy,cls_share");
    // tiny-p16: encoder 2 layers × 5 heads, decoder 3 layers × 2 heads.
    assert_eq!(lines.len(), 1 + 10 + 6);
    assert!(lines[1].starts_with("encoder,0,0,") && lines[16].starts_with("decoder,2,1,"), "{text}");
    let picture = image::open(&gallery).unwrap().to_rgb8();
    // 5 layer rows (2 encoder + 3 decoder) of 5 thumbnails at 64 px, with labels: wider than the thumbnails alone.
    assert!(picture.width() > 5 * 64 && picture.height() > 5 * 64, "{}×{}", picture.width(), picture.height());

    // One stack only.
    let decoder_csv = scratch.path().join("decoder.csv");
    assert!(heads(&["--stack", "decoder"], &decoder_csv).status.success());
    let decoder_rows =
        std::fs::read_to_string(&decoder_csv).unwrap().lines().skip(1).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(decoder_rows.len(), 6);
    assert!(decoder_rows.iter().all(|row| row.starts_with("decoder,")));
}

#[test]
fn bad_input_gets_one_line_exit_2_and_leaves_no_file() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("heads.csv");
    let bmp = scratch.path().join("g.bmp").display().to_string();
    let same = out.display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--query", "nose"], "--query"),
        (vec!["--query", "16"], "patch 16"),
        (vec!["--mask-ratio", "1.5"], "1.5"),
        (vec!["--colormap", "jet"], "--colormap"),
        (vec!["--gallery", "/no/such/folder/g.png"], "/no/such/folder"),
        (vec!["--gallery", &bmp], "g.bmp"),
        (vec!["--gallery", &same], "same file"),
    ];
    for (arguments, named) in cases {
        let output = heads(&arguments, &out);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{arguments:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{arguments:?}: {stderr}");
        assert!(stderr.contains(named), "{arguments:?} should name {named}: {stderr}");
        assert!(names_in(scratch.path()).is_empty(), "{arguments:?} left {:?}", names_in(scratch.path()));
    }
    // An existing output stays as it was without --force, and is replaced with it.
    std::fs::write(&out, "keep me").unwrap();
    let output = heads(&[], &out);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    assert!(heads(&["--force"], &out).status.success());
    assert!(std::fs::read_to_string(&out).unwrap().starts_with("stack,layer,head"));
    assert_eq!(names_in(scratch.path()), vec!["heads.csv"]);
}

/// `key=value` fields of one printed line.
fn fields(line: &str) -> std::collections::HashMap<&str, &str> {
    line.split_whitespace().filter_map(|field| field.split_once('=')).collect()
}

#[test]
fn bench_with_heads_times_the_heads_work_and_says_what_it_ran() {
    let bench = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
            .args(["bench", "--model"])
            .arg(repo().join("tests/fixtures/models/tiny-p16"))
            .args(["--device", "cpu", "--runs", "3", "--warmup", "1", "--threads", "1"])
            .args(extra)
            .output()
            .unwrap()
    };
    let output = bench(&["--heads"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    // The heads line: a median time (its value is not checked: speed is for people reading benchmarks).
    assert!(lines[0].starts_with("mae-explorer bench heads_ms="), "{}", lines[0]);
    let heads_ms: f64 = fields(lines[0])["heads_ms"].parse().unwrap();
    assert!(heads_ms.is_finite() && heads_ms >= 0.0);
    assert!(lines[0].ends_with("(statistics of every head + both galleries, median)"), "{}", lines[0]);
    // The forward line: what ran, exactly.
    let forward = fields(lines[1]);
    let expected = [
        ("model", "tiny-p16"),
        ("device", "cpu"),
        ("dtype", "f32"),
        ("kernels", "fused"),
        ("attentions", "true"),
        ("threads", "1"),
        ("mask", "random"),
        ("mask_ratio", "0.75"),
        // tiny-p16 has 16 patches; int(16 · 0.25) = 4 stay visible.
        ("masked_patches", "12"),
        ("runs", "3"),
    ];
    for (key, value) in expected {
        assert_eq!(forward.get(key).copied(), Some(value), "{key} in {}", lines[1]);
    }
    for key in ["median_ms", "min_ms", "load_ms", "first_forward_ms"] {
        assert!(forward[key].parse::<f64>().is_ok_and(|ms| ms.is_finite() && ms >= 0.0), "{key} in {}", lines[1]);
    }
    // Without --heads there is no heads line; with --no-attentions there is nothing to compute the heads from.
    let plain = bench(&[]);
    assert!(plain.status.success());
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("heads_ms"));
    let refused = bench(&["--heads", "--no-attentions"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--no-attentions"));
}
