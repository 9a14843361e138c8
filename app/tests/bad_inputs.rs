//! Every bad input in `tests/fixtures/bad/cases.json` (written by `tools/make_bad_inputs.py`) through every CLI
//! command that takes it, plus inputs that cannot be committed (a device, a named pipe, a silent hub). The promise
//! checked each time: exit code 2, one short line on stderr naming the file and the problem, no hang, no output or
//! temporary file left behind, and an existing output file untouched.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mae_integration_tests::fake_hub::silent_hub;

/// Far beyond any refusal here (they take well under a second); only a hang gets near it.
const HANG: Duration = Duration::from_secs(60);
const SENTINEL: &[u8] = b"an earlier output that must survive";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn bad() -> PathBuf {
    repo().join("tests/fixtures/bad")
}

fn tiny_model() -> PathBuf {
    repo().join("tests/fixtures/models/tiny-p8")
}

fn good_image() -> PathBuf {
    repo().join("assets/chelsea.png")
}

/// What a finished run left: exit code (None if it was killed as hung), stderr, wall time.
struct Run {
    code: Option<i32>,
    stderr: String,
    elapsed: Duration,
}

fn run(arguments: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mae-explorer"));
    command.args(arguments).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    for name in ["HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > HANG {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    Run { code, stderr, elapsed: started.elapsed() }
}

/// One command's arguments for a bad input given `as` (image, model, pixel_values, noise), writing to `out`.
fn command_lines(role: &str, input: &Path, out_dir: &Path) -> Vec<(String, Vec<std::ffi::OsString>, PathBuf)> {
    let s = |v: &str| std::ffi::OsString::from(v);
    let p = |v: &Path| v.as_os_str().to_owned();
    let (model, image) = match role {
        "model" => (input.to_owned(), good_image()),
        _ => (tiny_model(), if role == "image" { input.to_owned() } else { good_image() }),
    };
    let mut lines = Vec::new();
    let dump_out = out_dir.join("out.safetensors");
    let mut dump = vec![s("dump"), s("--model"), p(&model), s("--force"), s("--out"), p(&dump_out)];
    match role {
        "pixel_values" => dump.extend([s("--pixel-values"), p(input)]),
        "noise" => dump.extend([s("--image"), p(&image), s("--noise"), p(input)]),
        _ => dump.extend([s("--image"), p(&image)]),
    }
    lines.push(("dump".to_string(), dump, dump_out));
    if role == "image" || role == "model" {
        let grid = out_dir.join("grid.png");
        let export = vec![
            s("export"),
            s("--model"),
            p(&model),
            s("--image"),
            p(&image),
            s("--device"),
            s("cpu"),
            s("--mask-ratios"),
            s("0.5"),
            s("--seeds"),
            s("0"),
            s("--force"),
            s("--out"),
            p(&grid),
        ];
        lines.push(("export".to_string(), export, grid));
        let csv = out_dir.join("curve.csv");
        let curve = vec![
            s("loss-curve"),
            s("--model"),
            p(&model),
            s("--image"),
            p(&image),
            s("--device"),
            s("cpu"),
            s("--mask-ratios"),
            s("0.5"),
            s("--force"),
            s("--out"),
            p(&csv),
        ];
        lines.push(("loss-curve".to_string(), curve, csv));
    }
    if role == "model" {
        let bench = vec![s("bench"), s("--model"), p(&model), s("--runs"), s("1"), s("--warmup"), s("1")];
        lines.push(("bench".to_string(), bench, out_dir.join("nothing-written")));
    }
    lines
}

/// Checks the refusal contract for one run; returns a description of each broken promise.
fn broken_promises(what: &str, result: &Run, names: &[&str], out: &Path, out_dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let line = result.stderr.trim_end();
    if result.code != Some(2) {
        problems.push(format!("{what}: exit code {:?} (after {:?}), stderr: {line}", result.code, result.elapsed));
    }
    if line.lines().count() != 1 || line.len() > 600 || line.contains("panicked") {
        problems.push(format!("{what}: not one short line: {line}"));
    }
    for name in names {
        if !line.contains(name) {
            problems.push(format!("{what}: `{name}` not in: {line}"));
        }
    }
    if out.exists() && std::fs::read(out).unwrap() != SENTINEL {
        problems.push(format!("{what}: the existing output was changed"));
    }
    let leftovers: Vec<String> = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| out.file_name().is_none_or(|o| o.to_string_lossy() != *name))
        .collect();
    if !leftovers.is_empty() {
        problems.push(format!("{what}: files left behind: {leftovers:?}"));
    }
    problems
}

#[derive(serde::Deserialize)]
struct Case {
    path: String,
    #[serde(rename = "as")]
    role: String,
    expect: Vec<String>,
    /// What the reference stack (PIL through transformers' `load_image`, transformers' config loading, numpy's
    /// `np.load`) raised for this input, where it refuses it too.
    #[serde(default)]
    reference: Option<String>,
}

#[test]
fn every_bad_input_in_the_corpus_is_one_line_exit_2_and_leaves_outputs_alone() {
    let cases: Vec<Case> = serde_json::from_slice(&std::fs::read(bad().join("cases.json")).unwrap()).unwrap();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut problems = Vec::new();
    let mut runs = 0;
    let mut slowest = (Duration::ZERO, String::new());
    for case in &cases {
        let input = bad().join(&case.path);
        let file_name = input.file_name().unwrap().to_string_lossy().into_owned();
        let out_dir = tempfile::tempdir().unwrap().keep();
        for (command, arguments, out) in command_lines(&case.role, &input, &out_dir) {
            std::fs::create_dir_all(&out_dir).unwrap();
            // Half the runs find an earlier output (which must survive, even with --force), half find none.
            if runs % 2 == 0 && command != "bench" {
                std::fs::write(&out, SENTINEL).unwrap();
            }
            let arguments: Vec<&std::ffi::OsStr> = arguments.iter().map(|a| a.as_os_str()).collect();
            let result = run(&arguments, &[]);
            let what = format!("{command} with {} as {}", case.path, case.role);
            let mut names: Vec<&str> = case.expect.iter().map(String::as_str).collect();
            names.push(&file_name);
            problems.extend(broken_promises(&what, &result, &names, &out, &out_dir));
            if result.elapsed > slowest.0 {
                slowest = (result.elapsed, what);
            }
            runs += 1;
            std::fs::remove_dir_all(&out_dir).unwrap();
        }
    }
    eprintln!("{runs} refusals, slowest {:?} ({})", slowest.0, slowest.1);
    assert!(problems.is_empty(), "{} broken promises:\n{}", problems.len(), problems.join("\n"));
}

/// The text between `start` and the next `end` in `text`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// What our refusal must say for it to be the refusal the reference stack gives: groups of phrases, each group
/// needing one of its phrases. The numbers the reference names (pixel counts and limits, shapes, sizes) must be ours
/// too. Panics on a reference no rule knows, so a new corpus case gets classified here.
fn corresponding_refusal(reference: &str, input: &str) -> Vec<Vec<String>> {
    let one = |phrase: String| vec![phrase];
    let (kind, message) = reference.split_once(": ").unwrap_or((reference, ""));
    match kind {
        // PIL: the decoder ran out of data, or could not start on it. For JPEGs we use PIL's own decoder
        // (libjpeg-turbo), so ours says PIL's words; other formats are cut off too, said our decoders' way.
        "OSError" if message.starts_with("image file is truncated") && input.ends_with(".jpg") => {
            vec![one("image file is truncated".into())]
        }
        "OSError" if message.starts_with("image file is truncated") || message == "could not create decoder object" => {
            vec![vec!["image file is truncated".into(), "cannot decode the image".into()]]
        }
        "DecompressionBombError" => {
            let pixels = between(message, "Image size (", " pixels)").expect(reference);
            let limit = between(message, "limit of ", " pixels").expect(reference);
            vec![one("too large".into()), one(format!("= {pixels} pixels")), one(format!("at most {limit}"))]
        }
        "UnidentifiedImageError" => vec![one("not an image".into())],
        // transformers: `Config(**list)` / `dict.update(list)`: the JSON holds an array where an object belongs.
        "TypeError" | "AttributeError" if message.contains("list") => {
            vec![one("holds an array".into()), one("JSON object".into())]
        }
        "OSError" if message.contains("is not a valid JSON file") => {
            let named = between(message, "file at '", "'").expect(reference);
            let file = Path::new(named).file_name().unwrap().to_string_lossy().into_owned();
            vec![one(file), one("malformed".into())]
        }
        // numpy: np.load trusts the header and tries to allocate what it declares.
        "MemoryError" => {
            let values = between(message, "with shape (", ",)").expect(reference);
            vec![one(format!("{values} values")), one("truncated or not written by numpy".into())]
        }
        "ValueError" if message.starts_with("Failed to read all data for array") => {
            let shape = between(message, "Expected (", ")").expect(reference);
            let values = between(message, ") = ", " elements").expect(reference);
            vec![one(format!("[{shape}]")), one(format!("({values} values")), one("truncated".into())]
        }
        "ValueError" if message.starts_with("EOF: reading array header") => {
            let bytes = between(message, "expected ", " bytes").expect(reference);
            vec![one(format!("header is {bytes} bytes")), one("numpy itself refuses".into())]
        }
        _ => panic!("no rule says which refusal of ours corresponds to the reference's {reference:?}"),
    }
}

#[test]
fn where_the_reference_stack_refuses_too_our_refusal_is_the_same_refusal() {
    let cases: Vec<Case> = serde_json::from_slice(&std::fs::read(bad().join("cases.json")).unwrap()).unwrap();
    let mut problems = Vec::new();
    let mut compared = 0;
    for case in cases.iter().filter(|case| case.reference.is_some()) {
        let reference = case.reference.as_deref().unwrap();
        let input = bad().join(&case.path);
        let out_dir = tempfile::tempdir().unwrap();
        // dump takes every role; the other commands share its loading code (the corpus test runs them all).
        let (_, arguments, _) = command_lines(&case.role, &input, out_dir.path()).remove(0);
        let arguments: Vec<&std::ffi::OsStr> = arguments.iter().map(|a| a.as_os_str()).collect();
        let result = run(&arguments, &[]);
        let ours = result.stderr.trim_end();
        if result.code != Some(2) {
            problems.push(format!(
                "{}: not refused (exit {:?}) where the reference raised {reference}",
                case.path, result.code
            ));
        }
        for group in corresponding_refusal(reference, &case.path) {
            if !group.iter().any(|phrase| ours.contains(phrase.as_str())) {
                problems.push(format!("{}: none of {group:?} in ours: {ours}\n    reference: {reference}", case.path));
            }
        }
        compared += 1;
    }
    // Images (PIL), configs (transformers) and arrays (numpy) all have references.
    assert!(compared >= 15, "only {compared} cases carry a reference");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[cfg(unix)]
#[test]
fn devices_and_named_pipes_are_refused_at_once_without_reading_them() {
    let scratch = tempfile::tempdir().unwrap();
    let fifo = scratch.path().join("photo.jpg");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let out_dir = scratch.path().join("out");
    let mut problems = Vec::new();
    for input in [Path::new("/dev/zero"), Path::new("/dev/urandom"), fifo.as_path()] {
        for role in ["image", "pixel_values", "noise"] {
            for (command, arguments, out) in command_lines(role, input, &out_dir) {
                std::fs::create_dir_all(&out_dir).unwrap();
                let arguments: Vec<&std::ffi::OsStr> = arguments.iter().map(|a| a.as_os_str()).collect();
                let result = run(&arguments, &[]);
                let what = format!("{command} with {} as {role}", input.display());
                let name = input.file_name().unwrap().to_string_lossy().into_owned();
                problems.extend(broken_promises(&what, &result, &[&name, "not a regular file"], &out, &out_dir));
                std::fs::remove_dir_all(&out_dir).unwrap();
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_hub_that_never_answers_ends_in_a_one_line_error_after_the_timeout() {
    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().join("cache");
    let out_dir = scratch.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("out.safetensors");
    let hub = silent_hub();
    let arguments: Vec<std::ffi::OsString> = ["dump", "--model", "facebook/vit-mae-base", "--image"]
        .into_iter()
        .map(Into::into)
        .chain([good_image().into_os_string(), "--out".into(), out.clone().into_os_string()])
        .collect();
    let arguments: Vec<&std::ffi::OsStr> = arguments.iter().map(|a| a.as_os_str()).collect();
    let env = [("HF_ENDPOINT", hub.as_str()), ("HF_HUB_CACHE", cache.to_str().unwrap()), ("HF_HUB_ETAG_TIMEOUT", "1")];
    let result = run(&arguments, &env);
    let problems = broken_promises(
        "dump from a silent hub",
        &result,
        &["facebook/vit-mae-base", "sent nothing for 1 s", "config.json", "HF_HUB_ETAG_TIMEOUT", &hub],
        &out,
        &out_dir,
    );
    // "sent nothing for 1 s": the HF_HUB_ETAG_TIMEOUT given ended the wait, not Python's 10 s default (and `run`
    // fails a hang); no clock needed.
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn dump_refuses_an_existing_output_without_force_like_export_and_loss_curve() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out.safetensors");
    std::fs::write(&out, SENTINEL).unwrap();
    let dump = |extra: &[&str]| {
        let mut arguments: Vec<std::ffi::OsString> = vec!["dump".into(), "--model".into(), tiny_model().into()];
        arguments.extend(["--image".into(), good_image().into(), "--out".into(), out.clone().into()]);
        arguments.extend(extra.iter().map(Into::into));
        let arguments: Vec<&std::ffi::OsStr> = arguments.iter().map(|a| a.as_os_str()).collect();
        run(&arguments, &[])
    };
    let refused = dump(&[]);
    let problems =
        broken_promises("dump onto an existing file", &refused, &["out.safetensors", "--force"], &out, scratch.path());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let forced = dump(&["--force"]);
    assert_eq!(forced.code, Some(0), "{}", forced.stderr);
    assert!(candle_core::safetensors::load(&out, &candle_core::Device::Cpu).unwrap().contains_key("logits"));
}

#[test]
fn outputs_take_any_name_the_file_system_allows_and_the_usual_permissions() {
    let scratch = tempfile::tempdir().unwrap();
    let long = scratch.path().join(format!("{}.safetensors", "d".repeat(255 - ".safetensors".len())));
    let mut arguments: Vec<std::ffi::OsString> = vec!["dump".into(), "--model".into(), tiny_model().into()];
    arguments.extend(["--image".into(), good_image().into(), "--out".into(), long.clone().into()]);
    let arguments: Vec<&std::ffi::OsStr> = arguments.iter().map(|a| a.as_os_str()).collect();
    let result = run(&arguments, &[]);
    assert_eq!(result.code, Some(0), "{}", result.stderr);
    assert!(long.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let plain = scratch.path().join("plain");
        std::fs::write(&plain, b"").unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&long), mode(&plain), "dump's output is not created like any other new file");
    }
}
