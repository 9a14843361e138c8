//! `eval` and `compare` through the built binary on the tiny fixture models: every number they write equals what a
//! separate `dump` run writes for that model, image, mask, ratio and seed; bad images become error rows without
//! ending the run; `--resume` after a cut gives exactly the uninterrupted file; shards cover every image once;
//! existing outputs and changed settings are refused; compare's means and win counts follow from its rows;
//! `loss-curve --models` writes the single-model curves side by side.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use mae_integration_tests::{App, fixtures, read_tensor_file, repo_root};

const EVAL_HEADER: &str = "path,width,height,seed,masked_loss,visible_loss,psnr_db,psnr_masked_db,ssim,error,masked_fraction,input_width,\
     input_height";
const COMPARE_HEADER: &str = "image,model,mask,mask_ratio,seed,masked_loss,visible_loss,psnr_db,psnr_masked_db,ssim,masked_fraction,\
     input_width,input_height";
/// dump's names for the five measurements, in CSV column order.
const DUMP_NAMES: [&str; 5] = ["loss", "visible_loss", "psnr_db", "psnr_masked_db", "ssim"];

fn model(name: &str) -> String {
    fixtures().join("models").join(name).to_str().unwrap().to_string()
}

const APP: App = App(env!("CARGO_BIN_EXE_mae-explorer"));

/// Fails with exit code 2, one line, no panic; returns the line.
fn refused(arguments: &[&str], must_mention: &str) -> String {
    let output = APP.run(arguments);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{arguments:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{arguments:?}: {stderr}");
    assert!(stderr.contains(must_mention), "{arguments:?}: expected `{must_mention}` in {stderr}");
    stderr
}

/// The records of a CSV (quoted fields may hold commas, quotes and line breaks), written independently of the
/// app's own reader.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut fields, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut fields));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(fields.is_empty() && field.is_empty(), "the file does not end with a whole line: {text:?}");
    records
}

/// Header checked, rows returned.
fn rows(path: &Path, header: &str) -> Vec<Vec<String>> {
    let records = csv_records(&std::fs::read_to_string(path).unwrap());
    assert_eq!(records[0].join(","), header, "{}", path.display());
    records[1..].to_vec()
}

/// The five measurements `dump` writes for one forward pass (`None` where it leaves one out), cached.
struct Dumps {
    scratch: tempfile::TempDir,
    seen: HashMap<Vec<String>, [Option<f64>; 5]>,
}

impl Dumps {
    fn new() -> Self {
        Self { scratch: tempfile::tempdir().unwrap(), seen: HashMap::new() }
    }

    fn get(&mut self, model: &str, image: &Path, mask: &str, ratio: &str, seed: &str) -> [Option<f64>; 5] {
        let key = [model, image.to_str().unwrap(), mask, ratio, seed].map(String::from).to_vec();
        let out = self.scratch.path().join(format!("dump-{}.safetensors", self.seen.len()));
        if let Some(values) = self.seen.get(&key) {
            return *values;
        }
        let out_text = out.to_str().unwrap();
        let image_text = image.to_str().unwrap();
        APP.succeeds(&[
            "dump",
            "--model",
            model,
            "--image",
            image_text,
            "--mask",
            mask,
            "--mask-ratio",
            ratio,
            "--seed",
            seed,
            "--device",
            "cpu",
            "--out",
            out_text,
        ]);
        let tensors = read_tensor_file(&out).tensors;
        let scalar = |t: &Tensor| f64::from(t.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0]);
        let values = DUMP_NAMES.map(|name| tensors.get(name).map(scalar));
        self.seen.insert(key, values);
        values
    }
}

/// Each CSV cell equals dump's value to 1e-5 relative (both empty where one does not exist).
fn assert_equals_dump(cells: &[String], dumped: &[Option<f64>; 5], what: &str) {
    for ((cell, expected), name) in cells.iter().zip(dumped).zip(DUMP_NAMES) {
        match expected {
            None => assert_eq!(cell, "", "{what} {name}: dump has none"),
            Some(expected) => {
                let got: f64 = cell.parse().unwrap_or_else(|_| panic!("{what} {name}: {cell:?}"));
                let close = got == *expected || (got - expected).abs() <= 1e-5 * expected.abs();
                assert!(close, "{what} {name}: {got} vs dump's {expected}");
            }
        }
    }
}

fn good_images() -> [PathBuf; 2] {
    [repo_root().join("assets/chelsea.png"), fixtures().join("photos/rocket.jpg")]
}

/// A folder of the two good images and the bad ones the issue names: truncated, text, oversized.
fn mixed_folder(root: &Path) -> PathBuf {
    let folder = root.join("images");
    std::fs::create_dir_all(&folder).unwrap();
    for image in good_images() {
        std::fs::copy(&image, folder.join(image.file_name().unwrap())).unwrap();
    }
    for bad in ["truncated.png", "truncated_baseline.jpg", "not_an_image.png", "declares_10G_pixels.png"] {
        std::fs::copy(fixtures().join("bad/images").join(bad), folder.join(bad)).unwrap();
    }
    folder
}

fn eval_arguments<'a>(model: &'a str, images: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut arguments = vec!["eval", "--model", model, "--images", images, "--device", "cpu", "--out", out];
    arguments.extend_from_slice(extra);
    arguments
}

#[test]
fn eval_rows_equal_dump_and_bad_images_are_error_rows() {
    let scratch = tempfile::tempdir().unwrap();
    let folder = mixed_folder(scratch.path());
    let out = scratch.path().join("eval.csv");
    let (normpix, folder_text, out_text) = (model("tiny-p4-normpix"), folder.to_str().unwrap(), out.to_str().unwrap());
    let extra = ["--mask-ratio", "0.6", "--seeds", "0,3", "--mask", "block"];
    let output = APP.succeeds(&eval_arguments(&normpix, folder_text, out_text, &extra));
    let rows = rows(&out, EVAL_HEADER);
    let keys: BTreeSet<(String, String)> = rows.iter().map(|row| (row[0].clone(), row[3].clone())).collect();
    assert_eq!((rows.len(), keys.len()), (12, 12), "one row per image and seed, none twice");
    let mut dumps = Dumps::new();
    let sizes: HashMap<&str, &str> = HashMap::from([("chelsea.png", "451x300"), ("rocket.jpg", "640x427")]);
    for row in &rows {
        let path = Path::new(&row[0]);
        assert!(path.starts_with(&folder), "paths as found under the folder: {row:?}");
        let name = path.file_name().unwrap().to_str().unwrap();
        match sizes.get(name) {
            Some(size) => {
                assert_eq!(format!("{}x{}", row[1], row[2]), *size, "{row:?}");
                assert_eq!(row[9], "", "{row:?}");
                // What the block mask did, in 36ths (a 6×6 grid): at most the 21 patches ratio 0.6 aims for.
                let masked = row[10].parse::<f64>().unwrap() * 36.0;
                assert_eq!(&row[11..], ["24", "24"], "the model's own 24×24 input: {row:?}");
                assert!((masked - masked.round()).abs() < 1e-9 && masked > 0.0 && masked <= 22.0, "{row:?}");
                let dumped = dumps.get(&normpix, path, "block", "0.6", &row[3]);
                assert_equals_dump(&row[4..9], &dumped, &format!("{row:?}"));
            }
            None => {
                assert!(row[1..3].iter().chain(&row[4..9]).chain(&row[10..]).all(String::is_empty), "{row:?}");
                let reason = match name {
                    "not_an_image.png" => "not an image",
                    "declares_10G_pixels.png" => "too large",
                    "truncated_baseline.jpg" => "truncated",
                    _ => "cannot decode",
                };
                assert!(row[9].contains(reason), "{row:?}");
            }
        }
    }
    // The summary: 4 of 12 rows are measured, 8 errors, and the worst image first.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("12 rows, 8 with an error"), "{stdout}");
    assert!(stdout.contains("masked_loss:") && stdout.contains("(n = 4)"), "{stdout}");
    let losses: BTreeMap<String, f64> = ["chelsea.png", "rocket.jpg"]
        .iter()
        .map(|name| {
            let of_image: Vec<f64> =
                rows.iter().filter(|r| r[0].ends_with(name)).map(|r| r[4].parse().unwrap()).collect();
            (name.to_string(), of_image.iter().sum::<f64>() / of_image.len() as f64)
        })
        .collect();
    let worst = losses.iter().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    let listed: Vec<&str> = stdout.lines().skip_while(|line| !line.contains("worst images")).skip(1).collect();
    assert_eq!(listed.len(), 2, "{stdout}");
    assert!(listed[0].contains(worst.as_str()), "{stdout}");
    // The settings file beside it.
    let settings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.path().join("eval.csv.json")).unwrap()).unwrap();
    assert_eq!(settings["model"], normpix.as_str());
    assert_eq!((settings["strategy"].as_str(), settings["mask_ratio"].as_f64()), (Some("block"), Some(0.6)));
    assert_eq!(settings["seeds"], serde_json::json!([0, 3]));
    assert_eq!((settings["device"].as_str(), settings["dtype"].as_str()), (Some("cpu"), Some("f32")));
    assert!(settings["revision"].is_null(), "a local folder has no hub revision");
}

#[test]
fn existing_outputs_are_refused_and_resume_after_a_cut_gives_the_uninterrupted_rows() {
    let scratch = tempfile::tempdir().unwrap();
    let folder = mixed_folder(scratch.path());
    let p8 = model("tiny-p8");
    let folder_text = folder.to_str().unwrap();
    let full = scratch.path().join("full.csv");
    let extra = ["--seeds", "0,1,5"];
    APP.succeeds(&eval_arguments(&p8, folder_text, full.to_str().unwrap(), &extra));
    let whole = std::fs::read(&full).unwrap();
    let settings = std::fs::read(scratch.path().join("full.csv.json")).unwrap();

    // Not replaced without --force or --resume; --force starts over.
    let before = std::fs::metadata(&full).unwrap().modified().unwrap();
    refused(&eval_arguments(&p8, folder_text, full.to_str().unwrap(), &extra), "--resume");
    assert_eq!(std::fs::metadata(&full).unwrap().modified().unwrap(), before);
    std::fs::write(&full, b"stale").unwrap();
    APP.succeeds(&eval_arguments(&p8, folder_text, full.to_str().unwrap(), &["--seeds", "0,1,5", "--force"]));
    assert_eq!(std::fs::read(&full).unwrap(), whole);

    // Cut anywhere: inside the header, right after a line, in the middle of a row, inside a quoted error.
    let text = String::from_utf8(whole.clone()).unwrap();
    let third_line = text.match_indices('\n').nth(2).unwrap().0 + 1;
    let in_quotes = text.find("\"not an image").unwrap() + 5;
    let cuts = [0, 7, EVAL_HEADER.len() + 1, third_line, third_line + 20, in_quotes, whole.len() - 3];
    for cut in cuts {
        let partial = scratch.path().join(format!("cut-{cut}.csv"));
        std::fs::write(&partial, &whole[..cut]).unwrap();
        std::fs::write(scratch.path().join(format!("cut-{cut}.csv.json")), &settings).unwrap();
        let resumed = eval_arguments(&p8, folder_text, partial.to_str().unwrap(), &["--seeds", "0,1,5", "--resume"]);
        APP.succeeds(&resumed);
        assert_eq!(std::fs::read_to_string(&partial).unwrap(), text, "resumed after a cut at byte {cut}");
    }

    // Resuming with other settings, or without the settings file, is refused and changes nothing.
    let partial = scratch.path().join("cut-7.csv");
    std::fs::write(&partial, &whole[..third_line + 20]).unwrap();
    let partial_text = partial.to_str().unwrap();
    for (other, what) in [
        (&["--seeds", "0,1", "--resume"][..], "seeds"),
        (&["--seeds", "0,1,5", "--mask-ratio", "0.5", "--resume"], "mask_ratio"),
        (&["--seeds", "0,1,5", "--mask", "grid", "--resume"], "strategy"),
    ] {
        let message = refused(&eval_arguments(&p8, folder_text, partial_text, other), "other settings");
        assert!(message.contains(what), "{message}");
        assert_eq!(std::fs::read(&partial).unwrap(), &whole[..third_line + 20]);
    }
    let other_model = model("tiny-p16");
    refused(&eval_arguments(&other_model, folder_text, partial_text, &["--seeds", "0,1,5", "--resume"]), "model");
    std::fs::remove_file(scratch.path().join("cut-7.csv.json")).unwrap();
    refused(&eval_arguments(&p8, folder_text, partial_text, &["--seeds", "0,1,5", "--resume"]), "is missing");
    assert_eq!(std::fs::read(&partial).unwrap(), &whole[..third_line + 20]);
    // Another program's CSV is not appended to.
    std::fs::write(&partial, "a,b\n1,2\n").unwrap();
    std::fs::write(scratch.path().join("cut-7.csv.json"), &settings).unwrap();
    refused(&eval_arguments(&p8, folder_text, partial_text, &["--seeds", "0,1,5", "--resume"]), "header");
}

#[test]
fn shards_cover_every_image_once_and_lists_and_subfolders_are_read() {
    let scratch = tempfile::tempdir().unwrap();
    let folder = scratch.path().join("many");
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    let [chelsea, rocket] = good_images();
    for index in 0..7 {
        let source = if index % 2 == 0 { &chelsea } else { &rocket };
        let name = format!("img{index}.{}", source.extension().unwrap().to_str().unwrap());
        std::fs::copy(source, folder.join(name)).unwrap();
    }
    std::fs::copy(fixtures().join("bad/images/truncated.png"), folder.join("img7.png")).unwrap();
    std::fs::copy(&rocket, folder.join("sub/deep.jpg")).unwrap();
    let p8 = model("tiny-p8");
    let folder_text = folder.to_str().unwrap();
    let whole = scratch.path().join("whole.csv");
    APP.succeeds(&eval_arguments(&p8, folder_text, whole.to_str().unwrap(), &["--seeds", "0,2", "--recursive"]));
    let all_rows = rows(&whole, EVAL_HEADER);
    assert_eq!(all_rows.len(), 2 * 9, "8 images and one in a subfolder, two seeds each");
    assert!(all_rows.iter().any(|row| row[0].ends_with("sub/deep.jpg")));

    let mut concatenated = String::new();
    let mut images_seen = Vec::new();
    for part in 0..3 {
        let out = scratch.path().join(format!("shard{part}.csv"));
        let shard = format!("{part}/3");
        let extra = ["--seeds", "0,2", "--recursive", "--shard", shard.as_str()];
        APP.succeeds(&eval_arguments(&p8, folder_text, out.to_str().unwrap(), &extra));
        let text = std::fs::read_to_string(&out).unwrap();
        let (header, body) = text.split_once('\n').unwrap();
        assert_eq!(header, EVAL_HEADER);
        if part == 0 {
            concatenated.push_str(&text);
        } else {
            concatenated.push_str(body);
        }
        let shard_rows = rows(&out, EVAL_HEADER);
        images_seen.extend(shard_rows.iter().map(|row| row[0].clone()).collect::<BTreeSet<_>>());
    }
    let total = images_seen.len();
    let distinct: BTreeSet<String> = images_seen.into_iter().collect();
    assert_eq!((total, distinct.len()), (9, 9), "every image in exactly one shard");
    let sorted = |mut rows: Vec<Vec<String>>| {
        rows.sort();
        rows
    };
    let concatenated_rows = csv_records(&concatenated)[1..].to_vec();
    assert_eq!(sorted(concatenated_rows), sorted(all_rows.clone()), "the shards' rows are one run's rows");

    // A list file: paths as listed, in sorted order, each once.
    let list = scratch.path().join("list.txt");
    let rocket_copy = folder.join("img1.jpg");
    let lines = format!("# two images\n{}\n\n{}\n{}\n", rocket_copy.display(), chelsea.display(), chelsea.display());
    std::fs::write(&list, lines).unwrap();
    let listed = scratch.path().join("listed.csv");
    APP.succeeds(&eval_arguments(&p8, list.to_str().unwrap(), listed.to_str().unwrap(), &["--seeds", "0,2"]));
    let listed_rows = rows(&listed, EVAL_HEADER);
    let mut expected_paths = [chelsea.display().to_string(), rocket_copy.display().to_string()];
    expected_paths.sort();
    let paths: Vec<&str> = listed_rows.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(paths, [&expected_paths[0], &expected_paths[0], &expected_paths[1], &expected_paths[1]]);
    let of = |rows: &[Vec<String>], suffix: &str, seed: &str| {
        rows.iter().find(|row| row[0].ends_with(suffix) && row[3] == seed).unwrap()[4..9].to_vec()
    };
    assert_eq!(of(&listed_rows, "img1.jpg", "2"), of(&all_rows, "img1.jpg", "2"));

    // Bad arguments are refused before any work: nothing is written.
    let never = scratch.path().join("never.csv");
    let never_text = never.to_str().unwrap();
    refused(&eval_arguments(&p8, folder_text, never_text, &["--shard", "3/3"]), "shard");
    refused(&eval_arguments(&p8, folder_text, never_text, &["--seeds", "0,x"]), "\"x\"");
    refused(&eval_arguments(&p8, folder_text, never_text, &["--mask-ratio", "1.5"]), "outside [0, 1]");
    refused(&eval_arguments(&p8, folder_text, never_text, &["--mask", "blocky"]), "blocky");
    refused(&eval_arguments(&p8, folder_text, never_text, &["--force", "--resume"]), "cannot be used with");
    refused(&eval_arguments("no/such-model-here", "/no/such/folder", never_text, &[]), "/no/such/folder");
    assert!(!never.exists() && !scratch.path().join("never.csv.json").exists());
}

#[test]
fn compare_rows_equal_dump_and_its_means_and_wins_follow_from_the_rows() {
    let scratch = tempfile::tempdir().unwrap();
    let folder = scratch.path().join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    let [chelsea, rocket] = good_images();
    std::fs::copy(&rocket, folder.join("rocket.jpg")).unwrap();
    // Left out with a warning, as export leaves out a folder's unreadable images.
    std::fs::copy(fixtures().join("bad/images/truncated.png"), folder.join("broken.png")).unwrap();
    let (p8, normpix) = (model("tiny-p8"), model("tiny-p4-normpix"));
    let models = format!("{p8},{normpix}");
    let out = scratch.path().join("compare.csv");
    let arguments = [
        "compare",
        "--models",
        models.as_str(),
        "--image",
        chelsea.to_str().unwrap(),
        "--image",
        folder.to_str().unwrap(),
        "--mask-ratios",
        "0.5,0.75",
        "--seeds",
        "0,2",
        "--mask",
        "random,centre",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = APP.succeeds(&arguments);
    assert!(String::from_utf8_lossy(&output.stderr).contains("skipped"), "the broken image is reported");
    let rows = rows(&out, COMPARE_HEADER);
    // 2 images × (random: 2 ratios × 2 seeds + centre: 2 ratios × its first seed) × 2 models.
    assert_eq!(rows.len(), 2 * 6 * 2);
    let mut dumps = Dumps::new();
    let image_paths = HashMap::from([("chelsea.png", chelsea.clone()), ("rocket.jpg", folder.join("rocket.jpg"))]);
    for row in &rows {
        let dumped = dumps.get(&row[1], &image_paths[row[0].as_str()], &row[2], &row[3], &row[4]);
        assert_equals_dump(&row[5..10], &dumped, &format!("{row:?}"));
        let side = if row[1] == p8 { "32" } else { "24" };
        assert_eq!(&row[11..], [side, side], "each model's own input size: {row:?}");
        // What the mask did: a random mask keeps int(L·(1 − r)) of L patches (tiny-p8 4×4, tiny-p4-normpix 6×6).
        if row[2] == "random" {
            let patches = if row[1] == p8 { 16.0 } else { 36.0 };
            let ratio: f64 = row[3].parse().unwrap();
            let expected = (patches - (patches * (1.0 - ratio)).floor()) / patches;
            assert_eq!(row[10].parse::<f64>().unwrap(), expected, "{row:?}");
        }
    }
    // Means and wins, from the rows.
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut cases: BTreeMap<Vec<String>, Vec<(String, f64)>> = BTreeMap::new();
    for row in &rows {
        cases
            .entry(vec![row[0].clone(), row[2].clone(), row[3].clone(), row[4].clone()])
            .or_default()
            .push((row[1].clone(), row[5].parse().unwrap()));
    }
    assert_eq!(cases.len(), 12);
    let mut wins: HashMap<String, usize> = HashMap::new();
    for losses in cases.values() {
        assert_eq!(losses.len(), 2, "each case once per model");
        let winner = if losses[0].1 < losses[1].1 { &losses[0].0 } else { &losses[1].0 };
        assert_ne!(losses[0].1, losses[1].1);
        *wins.entry(winner.clone()).or_default() += 1;
    }
    let model_lines: Vec<&str> = stdout.lines().collect();
    for label in [&p8, &normpix] {
        let won = wins.get(label.as_str()).copied().unwrap_or(0);
        assert!(model_lines.contains(&format!("  {label}: {won}").as_str()), "{label} wins {won}: {stdout}");
        let losses: Vec<f64> = rows.iter().filter(|row| &row[1] == label).map(|row| row[5].parse().unwrap()).collect();
        let mean = losses.iter().sum::<f64>() / losses.len() as f64;
        let block = stdout.split(&format!("model {label}\n")).nth(1).unwrap();
        let printed = block.lines().find(|line| line.contains("masked_loss:")).unwrap();
        assert!(printed.contains(&format!("{mean:.6} ± ")), "{label}: mean {mean:.6}, printed {printed}");
    }
    assert!(stdout.contains("over 12 image"), "{stdout}");

    // Refused before loading anything: an existing output, a model named twice.
    refused(&arguments, "already exists");
    let twice = format!("{p8},{p8}");
    let mut again = arguments.to_vec();
    again[2] = twice.as_str();
    again.push("--force");
    refused(&again, "twice");
    // An image named on its own that cannot be read ends the run, as in export, and leaves no file.
    let broken = folder.join("broken.png");
    let lone = scratch.path().join("lone.csv");
    let mut named = arguments.to_vec();
    named[4] = broken.to_str().unwrap();
    let last = named.len() - 1;
    named[last] = lone.to_str().unwrap();
    refused(&named, "broken.png");
    assert!(!lone.exists());
}

#[test]
fn loss_curve_with_several_models_writes_their_curves_side_by_side() {
    let scratch = tempfile::tempdir().unwrap();
    let image = good_images()[0].clone();
    let (p8, p16) = (model("tiny-p8"), model("tiny-p16"));
    let curve = |models: &[&str], out: &str| -> Vec<Vec<String>> {
        let out = scratch.path().join(out);
        let flag = if models.len() == 1 { "--model" } else { "--models" };
        let joined = models.join(",");
        let ratios = ["--mask-ratios", "0,0.25,0.75", "--seed", "3"];
        let mut arguments = vec!["loss-curve", flag, joined.as_str(), "--image", image.to_str().unwrap()];
        arguments.extend_from_slice(&ratios);
        arguments.extend_from_slice(&["--out", out.to_str().unwrap()]);
        APP.succeeds(&arguments);
        csv_records(&std::fs::read_to_string(&out).unwrap())
    };
    let (one, other, both) = (curve(&[&p8], "a.csv"), curve(&[&p16], "b.csv"), curve(&[&p8, &p16], "ab.csv"));
    assert_eq!(one[0], ["mask_ratio", "masked_loss"], "--model keeps its columns");
    assert_eq!(both[0], ["mask_ratio", p8.as_str(), p16.as_str()]);
    for row in 1..4 {
        assert_eq!(both[row], [one[row][0].clone(), one[row][1].clone(), other[row][1].clone()]);
    }
    assert_eq!(both[1][1], "", "ratio 0 masks nothing: no loss");
}
