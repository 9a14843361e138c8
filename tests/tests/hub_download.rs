//! The online path against a fake hub on 127.0.0.1 (no network): downloads land in Python's cache layout with
//! progress reported, unknown ids and revisions are named, and an interrupted or cancelled download never leaves a
//! file that later loads as if whole.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mae_integration_tests::fake_hub::{COMMIT, FakeHub, REPO, RefusingPort, Weights, silent_hub};
use mae_integration_tests::fixtures;
use mae_model::hub::{DEFAULT_TIMEOUT, HubSettings};
use mae_model::source::{DownloadProgress, LoadOptions, ModelLocation, load_model_with_settings};
use mae_model::{DeviceChoice, LoadedModel, select_device};

fn load(model: &str, settings: &HubSettings, options: &LoadOptions) -> mae_model::Result<LoadedModel> {
    let device = select_device(DeviceChoice::Cpu).unwrap();
    load_model_with_settings(&model.parse::<ModelLocation>()?, &device, options, settings)
}

fn repo_dir(cache: &Path) -> PathBuf {
    cache.join("models--facebook--vit-mae-base")
}

/// Files under `blobs/` that a later load could pick up (complete blobs, not `.incomplete` ones).
fn complete_blobs(cache: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(repo_dir(cache).join("blobs")) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".incomplete"))
        .collect();
    names.sort();
    names
}

#[test]
fn download_fills_pythons_cache_layout_and_reports_progress() {
    let hub = FakeHub::start(Weights::Whole);
    let cache = tempfile::tempdir().unwrap();
    let events = Mutex::new(Vec::<DownloadProgress>::new());
    let record = |p: DownloadProgress| events.lock().unwrap().push(p);
    let options = LoadOptions { progress: Some(&record), cancel: None, alongside: None };
    let loaded = load(REPO, &hub.settings(cache.path()), &options).unwrap();
    assert_eq!(loaded.name, REPO);

    let weights_size = std::fs::metadata(fixtures().join("models/tiny-p8/model.safetensors")).unwrap().len();
    let events = events.into_inner().unwrap();
    let last = events.iter().rev().find(|p| p.file == "model.safetensors").expect("no progress for the weights");
    assert_eq!((last.downloaded, last.total), (weights_size, Some(weights_size)), "{events:?}");

    let repo = repo_dir(cache.path());
    assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap().trim(), COMMIT);
    let snapshot = repo.join("snapshots").join(COMMIT);
    for file in ["config.json", "model.safetensors", "preprocessor_config.json"] {
        let expected = std::fs::read(fixtures().join("models/tiny-p8").join(file)).unwrap();
        assert_eq!(std::fs::read(snapshot.join(file)).unwrap(), expected, "{file}");
    }
    assert_eq!(complete_blobs(cache.path()).len(), 3);

    // What we wrote is what Python reads: offline resolution of the same cache.
    let offline = HubSettings { offline: true, ..hub.settings(cache.path()) };
    let before = hub.requests().len();
    load(REPO, &offline, &LoadOptions::default()).unwrap();
    assert_eq!(hub.requests().len(), before, "offline load talked to the hub");

    // Online again: the blobs are reused (only HEAD requests, no second GET of a file).
    load(REPO, &hub.settings(cache.path()), &LoadOptions::default()).unwrap();
    assert_eq!(hub.file_downloads().len(), 3, "{:?}", hub.requests());
}

#[test]
fn unknown_ids_and_revisions_are_named() {
    let hub = FakeHub::start(Weights::Whole);
    let cache = tempfile::tempdir().unwrap();
    let settings = hub.settings(cache.path());
    let error = load("facebook/vit-mae-nope", &settings, &LoadOptions::default()).unwrap_err().to_string();
    assert!(error.contains("facebook/vit-mae-nope was not found on the Hugging Face hub"), "{error}");
    let error = load(&format!("{REPO}@no-such-branch"), &settings, &LoadOptions::default()).unwrap_err().to_string();
    assert!(error.contains("has no revision `no-such-branch`"), "{error}");
}

#[test]
fn an_unreachable_hub_falls_back_to_the_cache() {
    let hub = FakeHub::start(Weights::Whole);
    let cache = tempfile::tempdir().unwrap();
    load(REPO, &hub.settings(cache.path()), &LoadOptions::default()).unwrap();
    // A port nobody listens on: connection refused is transient, so the cached snapshot is used.
    let closed = RefusingPort::bind();
    let unreachable = HubSettings { endpoint: Some(closed.address.clone()), ..hub.settings(cache.path()) };
    load(REPO, &unreachable, &LoadOptions::default()).unwrap();
}

#[test]
fn a_cut_off_download_leaves_nothing_loadable() {
    let hub = FakeHub::start(Weights::CutOff);
    let cache = tempfile::tempdir().unwrap();
    let error = load(REPO, &hub.settings(cache.path()), &LoadOptions::default()).unwrap_err().to_string();
    assert!(error.contains("model.safetensors"), "{error}");
    assert!(!repo_dir(cache.path()).join("snapshots").join(COMMIT).join("model.safetensors").exists());
    // Only config.json became a blob; the weights stayed `.incomplete`.
    assert_eq!(complete_blobs(cache.path()).len(), 1);
    let offline = HubSettings { offline: true, ..hub.settings(cache.path()) };
    let error = load(REPO, &offline, &LoadOptions::default()).unwrap_err().to_string();
    assert!(error.contains("neither model.safetensors nor pytorch_model.bin"), "{error}");
}

#[test]
fn a_cancelled_download_stops_promptly_and_leaves_nothing_loadable() {
    let hub = FakeHub::start(Weights::Stall);
    let cache = tempfile::tempdir().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    // Cancel as soon as the weights start arriving, as the window's Cancel button would.
    let flag = Arc::clone(&cancel);
    let on_progress = move |p: DownloadProgress| {
        if p.file == "model.safetensors" && p.downloaded > 0 {
            flag.store(true, Ordering::Relaxed);
        }
    };
    let options = LoadOptions { progress: Some(&on_progress), cancel: Some(Arc::clone(&cancel)), alongside: None };
    let error = load(REPO, &hub.settings(cache.path()), &options).unwrap_err().to_string();
    // The stalled server sends nothing more and hangs up only after 20 s: without the cancel, only the download
    // timeout (10 s of silence, "sent nothing for 10 s") or the hang-up could end this, and each says otherwise.
    assert!(error.contains("download cancelled") && !error.contains("sent nothing"), "{error}");
    assert!(!repo_dir(cache.path()).join("snapshots").join(COMMIT).join("model.safetensors").exists());
    assert_eq!(complete_blobs(cache.path()).len(), 1);
}

#[test]
fn an_unreachable_hub_with_an_empty_cache_says_both() {
    let cache = tempfile::tempdir().unwrap();
    let closed = RefusingPort::bind();
    let settings = HubSettings {
        cache_dir: cache.path().to_owned(),
        token: None,
        offline: false,
        endpoint: Some(closed.address.clone()),
        metadata_timeout: DEFAULT_TIMEOUT,
        download_timeout: DEFAULT_TIMEOUT,
    };
    let error = load_without_hanging(settings).unwrap_err();
    assert!(error.contains("cannot reach the Hugging Face hub"), "{error}");
    assert!(error.contains(&cache.path().display().to_string()), "{error}");
}

/// Loads `REPO` on a thread of its own and returns the model's name or the error. The promises below are about which
/// timeout ends a wait, and the messages say which one did; the minute is only there so that a load that never ends
/// fails the test instead of hanging it (no answer here comes anywhere near it).
fn load_without_hanging(settings: HubSettings) -> Result<String, String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = load(REPO, &settings, &LoadOptions::default());
        let _ = sender.send(result.map(|loaded| loaded.name).map_err(|error| error.to_string()));
    });
    receiver.recv_timeout(Duration::from_secs(60)).expect("the load hung")
}

fn impatient(settings: HubSettings) -> HubSettings {
    HubSettings { metadata_timeout: Duration::from_secs(1), download_timeout: Duration::from_secs(1), ..settings }
}

#[test]
fn a_hub_that_accepts_and_never_answers_is_given_up_on_after_the_metadata_timeout() {
    let cache = tempfile::tempdir().unwrap();
    let settings = impatient(HubSettings {
        cache_dir: cache.path().to_owned(),
        token: None,
        offline: false,
        endpoint: Some(silent_hub()),
        metadata_timeout: DEFAULT_TIMEOUT,
        download_timeout: DEFAULT_TIMEOUT,
    });
    // "1 s": the metadata timeout given ended the wait (the silent hub never answers, so nothing else could).
    let error = load_without_hanging(settings).unwrap_err();
    assert!(error.contains("sent nothing for 1 s when asked for config.json"), "{error}");
    assert!(error.contains("HF_HUB_ETAG_TIMEOUT") && error.contains(&cache.path().display().to_string()), "{error}");
}

#[test]
fn a_silent_hub_falls_back_to_the_cache_as_python_does() {
    let hub = FakeHub::start(Weights::Whole);
    let cache = tempfile::tempdir().unwrap();
    load(REPO, &hub.settings(cache.path()), &LoadOptions::default()).unwrap();
    let silent = impatient(HubSettings { endpoint: Some(silent_hub()), ..hub.settings(cache.path()) });
    // The silent hub never answers: only the metadata timeout lets the load go on to the cache.
    assert_eq!(load_without_hanging(silent), Ok(REPO.to_string()));
}

#[test]
fn a_download_that_goes_silent_midway_ends_after_the_download_timeout() {
    let hub = FakeHub::start(Weights::Stall);
    let cache = tempfile::tempdir().unwrap();
    // The stalled server holds the connection for 20 s, then hangs up (a cut-off download, said otherwise): "sent
    // nothing for 1 s" means the download timeout ended it.
    let error = load_without_hanging(impatient(hub.settings(cache.path()))).unwrap_err();
    assert!(error.contains("sent nothing for 1 s when asked for model.safetensors"), "{error}");
    assert!(error.contains("HF_HUB_DOWNLOAD_TIMEOUT"), "{error}");
    assert!(!repo_dir(cache.path()).join("snapshots").join(COMMIT).join("model.safetensors").exists());
    assert_eq!(complete_blobs(cache.path()).len(), 1);
}
