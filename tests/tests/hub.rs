//! Hub ids resolved from a fake Hugging Face cache in Python's layout, offline (no network in tests).
//!
//! Settings are passed explicitly (`load_model_with_settings`), so no test touches the process environment; the
//! environment path is exercised through the binary in `app/tests/hub_cli.rs`.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use mae_explorer::commands::dump::output_tensors;
use mae_integration_tests::{compare_outputs, fixtures};
use mae_model::hub::{DEFAULT_TIMEOUT, HubSettings, cached_models_in};
use mae_model::source::{LoadOptions, ModelLocation, load_model_with_settings};
use mae_model::{DeviceChoice, ForwardOptions, LoadedModel, MaskSpec, select_device};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const OTHER_COMMIT: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// Writes `models--owner--name` the way huggingface_hub does: content-named blobs, snapshot symlinks to them,
/// `refs/<branch>` holding the commit. `files` are (name in the repo, source file).
fn add_snapshot(cache: &Path, repo: &str, commit: &str, refs: &[&str], files: &[(&str, PathBuf)]) -> PathBuf {
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let snapshot = repo_dir.join("snapshots").join(commit);
    std::fs::create_dir_all(repo_dir.join("blobs")).unwrap();
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    for (index, (name, source)) in files.iter().enumerate() {
        let blob = format!("{commit}{index:024x}");
        std::fs::copy(source, repo_dir.join("blobs").join(&blob)).unwrap();
        link(&Path::new("../../blobs").join(&blob), &snapshot.join(name));
    }
    for name in refs {
        std::fs::write(repo_dir.join("refs").join(name), commit).unwrap();
    }
    repo_dir
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

#[cfg(not(unix))]
fn link(target: &Path, at: &Path) {
    std::fs::copy(at.parent().unwrap().join(target), at).unwrap();
}

fn tiny(file: &str) -> PathBuf {
    fixtures().join("models/tiny-p8").join(file)
}

fn tiny_files() -> Vec<(&'static str, PathBuf)> {
    ["config.json", "model.safetensors", "preprocessor_config.json"].into_iter().map(|f| (f, tiny(f))).collect()
}

fn offline(cache: &Path) -> HubSettings {
    HubSettings {
        cache_dir: cache.to_owned(),
        token: None,
        offline: true,
        endpoint: None,
        metadata_timeout: DEFAULT_TIMEOUT,
        download_timeout: DEFAULT_TIMEOUT,
    }
}

fn load(model: &str, settings: &HubSettings) -> mae_model::Result<LoadedModel> {
    let device = select_device(DeviceChoice::Cpu).unwrap();
    load_model_with_settings(&model.parse::<ModelLocation>()?, &device, &LoadOptions::default(), settings)
}

fn outputs(loaded: &LoadedModel) -> std::collections::HashMap<String, Tensor> {
    // The same deterministic, varied input for every model.
    let pixel_values = Tensor::arange(0f32, 3.0 * 32.0 * 32.0, &Device::Cpu)
        .and_then(|t| t.affine(0.37, 0.0)?.sin()?.reshape((1, 3, 32, 32)))
        .unwrap();
    let spec = MaskSpec::random(2, 0.5);
    let output = loaded.model.forward(&pixel_values, &spec, ForwardOptions { attentions: true }).unwrap();
    output_tensors(&output).unwrap()
}

fn folder_outputs() -> std::collections::HashMap<String, Tensor> {
    outputs(&load(fixtures().join("models/tiny-p8").to_str().unwrap(), &offline(Path::new("/nonexistent"))).unwrap())
}

#[test]
fn offline_hub_id_loads_the_cached_snapshot_like_the_folder() {
    let cache = tempfile::tempdir().unwrap();
    add_snapshot(cache.path(), "facebook/vit-mae-base", COMMIT, &["main"], &tiny_files());
    let loaded = load("facebook/vit-mae-base", &offline(cache.path())).unwrap();
    assert_eq!(loaded.name, "facebook/vit-mae-base");
    assert!(loaded.source.starts_with(cache.path()), "{}", loaded.source.display());
    let problems = compare_outputs(&outputs(&loaded), &folder_outputs(), 0.0);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn revisions_resolve_through_refs_or_as_commits() {
    let cache = tempfile::tempdir().unwrap();
    add_snapshot(cache.path(), "facebook/vit-mae-base", COMMIT, &["main"], &tiny_files());
    // A tag pointing at a second snapshot that holds only the .bin (as vit-mae-large/-huge do on main).
    let bin_only = vec![
        ("config.json", tiny("config.json")),
        ("pytorch_model.bin", fixtures().join("models/tiny-p8-bin/pytorch_model.bin")),
    ];
    add_snapshot(cache.path(), "facebook/vit-mae-base", OTHER_COMMIT, &["v1"], &bin_only);
    let settings = offline(cache.path());
    let reference = folder_outputs();
    for model in [
        format!("facebook/vit-mae-base@{COMMIT}"),
        "facebook/vit-mae-base@v1".into(),
        format!("facebook/vit-mae-base@{OTHER_COMMIT}"),
    ] {
        let loaded = load(&model, &settings).unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(loaded.name, model);
        let problems = compare_outputs(&outputs(&loaded), &reference, 1e-6);
        assert!(problems.is_empty(), "{model}: {}", problems.join("\n"));
    }
    let from_bin = load("facebook/vit-mae-base@v1", &settings).unwrap();
    assert!(from_bin.source.ends_with("pytorch_model.bin"), "{}", from_bin.source.display());

    let error = load("facebook/vit-mae-base@no-such-branch", &settings).unwrap_err().to_string();
    assert!(error.contains("revision `no-such-branch`"), "{error}");
    assert!(error.contains(&cache.path().display().to_string()), "{error}");
    let missing_commit = "1111111111111111111111111111111111111111";
    let error = load(&format!("facebook/vit-mae-base@{missing_commit}"), &settings).unwrap_err().to_string();
    assert!(error.contains(missing_commit) && error.contains("config.json"), "{error}");
}

#[test]
fn a_model_missing_from_the_cache_names_the_model_and_the_folder_searched() {
    let cache = tempfile::tempdir().unwrap();
    add_snapshot(cache.path(), "facebook/vit-mae-base", COMMIT, &["main"], &tiny_files());
    let error = load("facebook/vit-mae-huge", &offline(cache.path())).unwrap_err().to_string();
    assert!(error.contains("facebook/vit-mae-huge"), "{error}");
    assert!(error.contains(&cache.path().join("models--facebook--vit-mae-huge").display().to_string()), "{error}");
    assert!(error.contains("HF_HUB_OFFLINE"), "{error}");
}

#[test]
fn a_corrupt_cached_blob_is_reported_and_left_alone() {
    let cache = tempfile::tempdir().unwrap();
    let repo_dir = add_snapshot(cache.path(), "facebook/vit-mae-base", COMMIT, &["main"], &tiny_files());
    let blob = repo_dir.join("blobs").join(format!("{COMMIT}{:024x}", 1));
    let bytes = std::fs::read(&blob).unwrap();
    let damaged = &bytes[..bytes.len() / 3];
    std::fs::write(&blob, damaged).unwrap();
    let error = load("facebook/vit-mae-base", &offline(cache.path())).unwrap_err().to_string();
    assert!(error.contains("not a valid safetensors file"), "{error}");
    assert!(error.contains("damaged") && error.contains(&blob.display().to_string()), "{error}");
    assert_eq!(std::fs::read(&blob).unwrap(), damaged, "the cache must not be touched");
}

#[test]
fn an_interrupted_download_is_never_loaded() {
    // hf-hub (like Python) writes `<blob>.incomplete` and links the snapshot only after the rename; a crash in
    // between leaves exactly this: config linked, weights only as an .incomplete blob.
    let cache = tempfile::tempdir().unwrap();
    let repo_dir =
        add_snapshot(cache.path(), "facebook/vit-mae-base", COMMIT, &["main"], &[("config.json", tiny("config.json"))]);
    let partial = repo_dir.join("blobs").join(format!("{}.incomplete", "e".repeat(64)));
    std::fs::copy(tiny("model.safetensors"), &partial).unwrap();
    let error = load("facebook/vit-mae-base", &offline(cache.path())).unwrap_err().to_string();
    assert!(error.contains("neither model.safetensors nor pytorch_model.bin"), "{error}");
    assert!(partial.exists());
    // A snapshot link whose blob is gone counts as missing, not as an unreadable file.
    let snapshot = repo_dir.join("snapshots").join(COMMIT);
    link(Path::new("../../blobs/gone"), &snapshot.join("model.safetensors"));
    let error = load("facebook/vit-mae-base", &offline(cache.path())).unwrap_err().to_string();
    assert!(error.contains("neither model.safetensors nor pytorch_model.bin"), "{error}");
}

#[test]
fn cached_models_lists_what_the_picker_can_offer() {
    let cache = tempfile::tempdir().unwrap();
    add_snapshot(cache.path(), "facebook/vit-mae-base", COMMIT, &["main"], &tiny_files());
    add_snapshot(cache.path(), "someone/mae-tiny", OTHER_COMMIT, &["main"], &[("config.json", tiny("config.json"))]);
    let expected_size: u64 = tiny_files().iter().map(|(_, p)| std::fs::metadata(p).unwrap().len()).sum();
    let listed = cached_models_in(cache.path());
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].repo, "facebook/vit-mae-base");
    assert_eq!(listed[0].size_bytes, expected_size);
    assert_eq!(listed[1].repo, "someone/mae-tiny");
}
