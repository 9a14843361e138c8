//! Models from the Hugging Face hub, sharing Python's cache (`models--owner--name/{blobs,snapshots,refs}`).
//!
//! Settings are resolved the way Python's `huggingface_hub` resolves them and handed to hf-hub explicitly (its
//! own environment handling differs between versions and ignores `HF_HUB_OFFLINE`). Offline, we read the cache
//! ourselves and never build a network client at all. Online, hf-hub downloads into `<blob>.incomplete` and renames
//! it only when complete, so an interrupted or cancelled download never leaves a file that loads as if whole.
//!
//! hf-hub's HTTP clients have no timeouts, and the one that sends the first request of every download (a `HEAD`
//! for the file's metadata) cannot be configured from outside, so a server that accepts the connection and never
//! answers would hang a load forever. [`download_file`] therefore watches every download itself: when nothing has
//! arrived for Python's `HF_HUB_ETAG_TIMEOUT` (before the metadata) or `HF_HUB_DOWNLOAD_TIMEOUT` (while the file
//! streams), it stops waiting and, as Python does, uses the cached copy if there is one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hf_hub::progress::{DownloadEvent, ProgressEvent, ProgressHandler};
use hf_hub::{HFClient, HFError};

use crate::error::{MaeError, Result};
use crate::input_file::read_limited;

/// Weights files in order of preference: safetensors is faster to open; vit-mae-large/-huge only have the .bin.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];
pub const CONFIG_FILE: &str = "config.json";
pub const PREPROCESSOR_FILE: &str = "preprocessor_config.json";

/// Where the cache is, who we are, and whether we may use the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    pub cache_dir: PathBuf,
    pub token: Option<String>,
    pub offline: bool,
    /// `HF_ENDPOINT` (mirrors, or a local test server); `None` = huggingface.co.
    pub endpoint: Option<String>,
    /// Longest wait for a file's metadata (`HF_HUB_ETAG_TIMEOUT`, 10 s as in Python).
    pub metadata_timeout: Duration,
    /// Longest silence while a file downloads (`HF_HUB_DOWNLOAD_TIMEOUT`, 10 s as in Python).
    pub download_timeout: Duration,
}

/// Python's default for both `HF_HUB_ETAG_TIMEOUT` and `HF_HUB_DOWNLOAD_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest token file read (a token is ~40 bytes).
const MAX_TOKEN_FILE_BYTES: u64 = 64 << 10;
/// Largest `refs/<branch>` file read (it holds one commit hash).
const MAX_REF_FILE_BYTES: u64 = 1 << 10;

impl HubSettings {
    /// Resolves every setting from the environment exactly as Python's `huggingface_hub` does.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self::from_vars(&var)
    }

    /// The resolution rules, given a way to read variables (so they can be tested without touching the
    /// process environment).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Self {
        let home = || var("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            var("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| home().join(".cache")).join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = if var("HF_HUB_DISABLE_IMPLICIT_TOKEN").is_some_and(|v| is_true(&v)) {
            None
        } else {
            var("HF_TOKEN").or_else(|| {
                let path = var("HF_TOKEN_PATH").map(PathBuf::from).unwrap_or_else(|| hf_home.join("token"));
                let bytes = read_limited(&path, MAX_TOKEN_FILE_BYTES, "a token file").ok()?;
                Some(String::from_utf8_lossy(&bytes).trim().to_string()).filter(|t| !t.is_empty())
            })
        };
        let offline = var("HF_HUB_OFFLINE").or_else(|| var("TRANSFORMERS_OFFLINE")).is_some_and(|v| is_true(&v));
        // Python reads these with int(); fractions are accepted here too (tests use short waits).
        let seconds = |name: &str| {
            var(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64)
        };
        Self {
            cache_dir,
            token,
            offline,
            endpoint: var("HF_ENDPOINT"),
            metadata_timeout: seconds("HF_HUB_ETAG_TIMEOUT"),
            download_timeout: seconds("HF_HUB_DOWNLOAD_TIMEOUT"),
        }
    }

    /// The hub's address, for messages.
    fn endpoint_name(&self) -> &str {
        self.endpoint.as_deref().unwrap_or("https://huggingface.co")
    }
}

/// Python's `_is_true`: "1", "ON", "YES", "TRUE" in any case.
fn is_true(value: &str) -> bool {
    matches!(value.trim().to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE")
}

/// How far a download has come (for progress bars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadProgress {
    pub file: String,
    pub downloaded: u64,
    pub total: Option<u64>,
}

/// The files of one snapshot of a model repository, all inside `snapshot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubFiles {
    pub snapshot: PathBuf,
    pub config: PathBuf,
    pub weights: PathBuf,
}

/// Checks a hub id (`owner/name` or a bare `name`) and splits it into owner and name.
pub fn split_repo_id(repo: &str) -> std::result::Result<(&str, &str), String> {
    let valid_part = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part.len() <= 96
            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let (owner, name) = match repo.split_once('/') {
        Some((owner, name)) => (owner, name),
        None => ("", repo),
    };
    if (owner.is_empty() && repo.contains('/')) || (!owner.is_empty() && !valid_part(owner)) || !valid_part(name) {
        return Err(format!("`{repo}` is not a Hugging Face model id (expected owner/name) nor an existing path"));
    }
    Ok((owner, name))
}

/// Checks a revision (branch, tag or commit) so it cannot walk out of the cache folder.
pub fn check_revision(revision: &str) -> std::result::Result<(), String> {
    let valid = !revision.is_empty()
        && !revision.starts_with('/')
        && !revision.split('/').any(|part| part.is_empty() || part == "." || part == "..")
        && revision.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid { Ok(()) } else { Err(format!("`{revision}` is not a valid revision (branch, tag or commit)")) }
}

/// `models--owner--name`, Python's folder name for a model repository.
fn repo_folder(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

/// Finds a model in the cache without any network access (what `HF_HUB_OFFLINE=1` means).
pub fn resolve_cached(repo: &str, revision: Option<&str>, cache_dir: &Path) -> Result<HubFiles> {
    split_repo_id(repo).map_err(MaeError::Hub)?;
    let revision = revision.unwrap_or("main");
    check_revision(revision).map_err(MaeError::Hub)?;
    let repo_dir = cache_dir.join(repo_folder(repo));
    let offline_hint = "HF_HUB_OFFLINE is set, so nothing was downloaded; run once without it to download";
    if !repo_dir.is_dir() {
        return Err(MaeError::Hub(format!(
            "{repo} is not in the Hugging Face cache (searched {}); {offline_hint}",
            repo_dir.display()
        )));
    }
    let commit = if is_commit_hash(revision) {
        revision.to_string()
    } else {
        let ref_path = repo_dir.join("refs").join(revision);
        match read_limited(&ref_path, MAX_REF_FILE_BYTES, "a cache ref") {
            Ok(commit) => String::from_utf8_lossy(&commit).trim().to_string(),
            Err(_) => {
                return Err(MaeError::Hub(format!(
                    "{repo}: revision `{revision}` is not in the Hugging Face cache (no {}); {offline_hint}",
                    ref_path.display()
                )));
            }
        }
    };
    if !is_commit_hash(&commit) {
        return Err(MaeError::Hub(format!(
            "{repo}: the cache's ref for `{revision}` holds `{commit}`, which is not a commit hash"
        )));
    }
    let snapshot = repo_dir.join("snapshots").join(&commit);
    // `exists()` follows the symlink: a link whose blob is gone counts as missing.
    let present = |file: &str| Some(snapshot.join(file)).filter(|p| p.exists());
    let config = present(CONFIG_FILE).ok_or_else(|| {
        MaeError::Hub(format!(
            "{repo}@{revision}: {} is not in the Hugging Face cache (searched {}); {offline_hint}",
            CONFIG_FILE,
            snapshot.display()
        ))
    })?;
    let weights = WEIGHT_FILES.iter().find_map(|f| present(f)).ok_or_else(|| {
        MaeError::Hub(format!(
            "{repo}@{revision}: neither {} is in the Hugging Face cache (searched {}); {offline_hint}",
            WEIGHT_FILES.join(" nor "),
            snapshot.display()
        ))
    })?;
    Ok(HubFiles { snapshot, config, weights })
}

/// What the window and the CLI hand to a download: progress callback and a cancel flag.
pub struct DownloadControl<'a> {
    pub progress: Option<&'a (dyn Fn(DownloadProgress) + Sync)>,
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Fetches config and weights (hf-hub reuses what the cache already holds, checking the hub for newer commits),
/// or reads the cache only when `settings.offline`.
pub fn fetch(
    repo: &str,
    revision: Option<&str>,
    settings: &HubSettings,
    control: &DownloadControl,
) -> Result<HubFiles> {
    if settings.offline {
        return resolve_cached(repo, revision, &settings.cache_dir);
    }
    let (owner, name) = split_repo_id(repo).map_err(MaeError::Hub)?;
    if let Some(revision) = revision {
        check_revision(revision).map_err(MaeError::Hub)?;
    }
    // Fewer retries than hf-hub's default 5: with the network down each file would otherwise spend ~3 s retrying
    // before hf-hub falls back to the cached copy.
    let mut builder = HFClient::builder().cache_dir(&settings.cache_dir).retry_max_attempts(1);
    if let Some(token) = &settings.token {
        builder = builder.token(token.clone());
    }
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.endpoint(endpoint.clone());
    }
    let client = builder.build().map_err(|e| MaeError::Hub(format!("cannot set up the hub client: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| MaeError::Hub(format!("cannot start the download runtime: {e}")))?;
    let model = client.model(owner, name);
    let result = fetch_online(&runtime, &model, repo, revision, settings, control);
    // A cancelled download may leave a task blocked on I/O; do not wait for it.
    runtime.shutdown_background();
    result
}

fn fetch_online(
    runtime: &tokio::runtime::Runtime,
    model: &hf_hub::HFRepository<hf_hub::RepoTypeModel>,
    repo: &str,
    revision: Option<&str>,
    settings: &HubSettings,
    control: &DownloadControl,
) -> Result<HubFiles> {
    let download = |file: &str| match download_file(runtime, model, file, revision, settings, control) {
        // Python's rule for a hub that does not answer: use the cached copy when there is one.
        Err(silent @ DownloadFailure::Silent { .. }) => cached_file(runtime, model, file, revision).ok_or(silent),
        other => other,
    };
    let describe = |failure: DownloadFailure, file: &str| match failure {
        DownloadFailure::Hub(error) => explain(error, runtime, model, repo, revision, file, settings),
        DownloadFailure::Cancelled => MaeError::Hub(format!("{repo}: download cancelled")),
        DownloadFailure::Silent { waited, variable } => MaeError::Hub(format!(
            "{repo}{}: the hub at {} sent nothing for {} s when asked for {file}, and {file} is not in the cache at \
             {}; check the network (the wait is {variable}), or set HF_HUB_OFFLINE=1 to use only cached models",
            revision.map(|r| format!("@{r}")).unwrap_or_default(),
            settings.endpoint_name(),
            waited.as_secs_f64(),
            settings.cache_dir.display()
        )),
    };

    let config = download(CONFIG_FILE).map_err(|e| describe(e, CONFIG_FILE))?;
    let mut weights = None;
    for file in WEIGHT_FILES {
        match download(file) {
            Ok(path) => {
                weights = Some(path);
                break;
            }
            Err(DownloadFailure::Hub(HFError::EntryNotFound { .. })) => continue,
            Err(failure) => return Err(describe(failure, file)),
        }
    }
    let weights = weights.ok_or_else(|| {
        MaeError::Hub(format!("{repo} has neither {} on the hub; it is not a ViTMAE model", WEIGHT_FILES.join(" nor ")))
    })?;
    // Optional: without it the hub models' defaults apply.
    match download(PREPROCESSOR_FILE) {
        Ok(_) | Err(DownloadFailure::Hub(HFError::EntryNotFound { .. })) => {}
        Err(failure) => return Err(describe(failure, PREPROCESSOR_FILE)),
    }
    let snapshot = config.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(HubFiles { snapshot, config, weights })
}

/// Why one file's download ended without the file.
enum DownloadFailure {
    Hub(HFError),
    Cancelled,
    /// Nothing arrived for `waited`, the limit the environment `variable` sets.
    Silent {
        waited: Duration,
        variable: &'static str,
    },
}

/// The cached copy of `file` at `revision`, without touching the network.
fn cached_file(
    runtime: &tokio::runtime::Runtime,
    model: &hf_hub::HFRepository<hf_hub::RepoTypeModel>,
    file: &str,
    revision: Option<&str>,
) -> Option<PathBuf> {
    let lookup =
        model.download_file().filename(file).maybe_revision(revision.map(str::to_string)).local_files_only(true).send();
    runtime.block_on(lookup).ok()
}

/// One file through hf-hub, while relaying progress, watching the cancel flag, and ending the wait when the hub
/// stays silent longer than the settings allow. Ending it drops the download future: hf-hub's `.incomplete` file
/// stays behind and is never renamed into the cache.
fn download_file(
    runtime: &tokio::runtime::Runtime,
    model: &hf_hub::HFRepository<hf_hub::RepoTypeModel>,
    file: &str,
    revision: Option<&str>,
    settings: &HubSettings,
    control: &DownloadControl,
) -> std::result::Result<PathBuf, DownloadFailure> {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let handler = ChannelHandler { file: file.to_string(), sender };
    let cancelled = || control.cancel.as_ref().is_some_and(|flag| flag.load(Ordering::Relaxed));
    let report = |progress: DownloadProgress| {
        if let Some(callback) = control.progress {
            callback(progress);
        }
    };
    runtime.block_on(async {
        let download =
            model.download_file().filename(file).maybe_revision(revision.map(str::to_string)).progress(handler).send();
        tokio::pin!(download);
        let mut ticker = tokio::time::interval(Duration::from_millis(100));
        let mut last_heard = Instant::now();
        // hf-hub announces `Start` once the metadata request is answered; from then on the body streams.
        let mut metadata_answered = false;
        loop {
            tokio::select! {
                result = &mut download => {
                    while let Ok(event) = receiver.try_recv() {
                        if let HubEvent::Progress(progress) = event {
                            report(progress);
                        }
                    }
                    // The flag is otherwise looked at on the ticker: a Cancel pressed in the last 100 ms before the
                    // file completed would have been lost, and the model loaded after all.
                    if cancelled() {
                        return Err(DownloadFailure::Cancelled);
                    }
                    return result.map_err(DownloadFailure::Hub);
                }
                Some(event) = receiver.recv() => {
                    last_heard = Instant::now();
                    match event {
                        HubEvent::MetadataAnswered => metadata_answered = true,
                        HubEvent::Progress(progress) => report(progress),
                    }
                }
                _ = ticker.tick() => {
                    if cancelled() {
                        return Err(DownloadFailure::Cancelled);
                    }
                    let (waited, variable) = if metadata_answered {
                        (settings.download_timeout, "HF_HUB_DOWNLOAD_TIMEOUT")
                    } else {
                        (settings.metadata_timeout, "HF_HUB_ETAG_TIMEOUT")
                    };
                    if last_heard.elapsed() > waited {
                        return Err(DownloadFailure::Silent { waited, variable });
                    }
                }
            }
        }
    })
}

/// What hf-hub's progress handler tells the download loop.
enum HubEvent {
    MetadataAnswered,
    Progress(DownloadProgress),
}

/// Forwards hf-hub's events; it must not block, so it only sends on an unbounded channel.
struct ChannelHandler {
    file: String,
    sender: tokio::sync::mpsc::UnboundedSender<HubEvent>,
}

impl ProgressHandler for ChannelHandler {
    fn on_progress(&self, event: &ProgressEvent) {
        let ProgressEvent::Download(event) = event else { return };
        let total = |bytes: u64| (bytes > 0).then_some(bytes);
        match event {
            DownloadEvent::Progress { files } => {
                for file in files {
                    let _ = self.sender.send(HubEvent::Progress(DownloadProgress {
                        file: file.filename.clone(),
                        downloaded: file.bytes_completed,
                        total: total(file.total_bytes),
                    }));
                }
            }
            DownloadEvent::AggregateProgress { bytes_completed, total_bytes, .. } => {
                let _ = self.sender.send(HubEvent::Progress(DownloadProgress {
                    file: self.file.clone(),
                    downloaded: *bytes_completed,
                    total: total(*total_bytes),
                }));
            }
            DownloadEvent::Start { .. } => {
                let _ = self.sender.send(HubEvent::MetadataAnswered);
            }
            DownloadEvent::Complete => {}
        }
    }
}

/// Turns hf-hub's error into one sentence that names the model and says what to do.
fn explain(
    error: HFError,
    runtime: &tokio::runtime::Runtime,
    model: &hf_hub::HFRepository<hf_hub::RepoTypeModel>,
    repo: &str,
    revision: Option<&str>,
    file: &str,
    settings: &HubSettings,
) -> MaeError {
    let at = revision.map(|r| format!("@{r}")).unwrap_or_default();
    let message = match error {
        HFError::RepoNotFound { .. } => not_found_message(repo),
        HFError::RevisionNotFound { .. } => {
            format!("{repo} has no revision `{}` on the hub", revision.unwrap_or("main"))
        }
        // hf-hub reports every 404 of a file download as a missing file: ask the hub which part is missing.
        HFError::EntryNotFound { .. } => {
            // Bounded like every other request: a hub that stops answering here leaves the generic message.
            let limit = settings.metadata_timeout;
            let repo_exists = answer_within(runtime, limit, model.exists().send());
            let revision_exists = match revision {
                Some(r) => answer_within(runtime, limit, model.revision_exists().revision(r).send()),
                None => Some(Ok(true)),
            };
            match (repo_exists, revision_exists) {
                (Some(Ok(false)), _) => not_found_message(repo),
                (Some(Ok(true)), Some(Ok(false))) => {
                    format!("{repo} has no revision `{}` on the hub", revision.unwrap_or("main"))
                }
                _ => {
                    format!("{repo}{at} has no {file} on the hub; it is not a ViTMAE model in the transformers layout")
                }
            }
        }
        HFError::AuthRequired { .. } | HFError::Forbidden { .. } => format!(
            "{repo}{at}: the hub refused access; for a private or gated model set HF_TOKEN or log in with `hf auth \
             login`"
        ),
        HFError::LocalEntryNotFound { .. } => format!(
            "{repo}{at}: cannot reach the hub and {file} is not in the cache at {}",
            settings.cache_dir.display()
        ),
        // hf-hub has already fallen back to the cache for connection failures, so the file is not there either.
        HFError::Request { source, .. } => format!(
            "{repo}{at}: cannot reach the Hugging Face hub ({}) and {file} is not in the cache at {}",
            innermost(&source),
            settings.cache_dir.display()
        ),
        other => format!(
            "{repo}{at}: downloading {file} failed ({other}); to use only what is cached, set HF_HUB_OFFLINE=1 \
             (cache: {})",
            settings.cache_dir.display()
        ),
    };
    MaeError::Hub(message)
}

/// The answer to `question`, or `None` when the hub takes longer than `limit` to give it.
fn answer_within<T>(
    runtime: &tokio::runtime::Runtime,
    limit: Duration,
    question: impl std::future::Future<Output = T>,
) -> Option<T> {
    // The timer must be made inside the runtime, hence the async block.
    runtime.block_on(async move { tokio::time::timeout(limit, question).await }).ok()
}

/// reqwest's message chain ends in the useful part ("Connection refused", "dns error: ...").
fn innermost(error: &dyn std::error::Error) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

fn not_found_message(repo: &str) -> String {
    format!(
        "{repo} was not found on the Hugging Face hub (nor as a local path); check the spelling, and for a private \
         model set HF_TOKEN"
    )
}

/// A model repository the cache holds, for the window's model picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedModel {
    /// `owner/name`.
    pub repo: String,
    /// Bytes of its blobs (every revision together), as `hf cache scan` counts them.
    pub size_bytes: u64,
}

/// Model repositories in `cache_dir` that have at least one snapshot with a config.json.
pub fn cached_models_in(cache_dir: &Path) -> Vec<CachedModel> {
    let Ok(entries) = std::fs::read_dir(cache_dir) else { return Vec::new() };
    let mut models: Vec<CachedModel> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let folder = entry.file_name().to_string_lossy().into_owned();
            let repo = folder.strip_prefix("models--")?.replacen("--", "/", 1);
            let snapshots = std::fs::read_dir(entry.path().join("snapshots")).ok()?;
            let usable = snapshots.filter_map(|s| s.ok()).any(|s| s.path().join(CONFIG_FILE).exists());
            usable.then(|| CachedModel { repo, size_bytes: blob_bytes(&entry.path()) })
        })
        .collect();
    models.sort_by(|a, b| a.repo.cmp(&b.repo));
    models
}

/// Sum of the complete blobs (`.incomplete` downloads are not counted); falls back to snapshot files for caches
/// written by tools that copy instead of linking.
fn blob_bytes(repo_dir: &Path) -> u64 {
    let sum_files = |dir: &Path| -> u64 {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| !e.file_name().to_string_lossy().ends_with(".incomplete"))
                    .filter_map(|e| std::fs::metadata(e.path()).ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    let blobs = sum_files(&repo_dir.join("blobs"));
    if blobs > 0 {
        return blobs;
    }
    std::fs::read_dir(repo_dir.join("snapshots"))
        .map(|snapshots| snapshots.filter_map(|s| s.ok()).map(|s| sum_files(&s.path())).max().unwrap_or(0))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> HubSettings {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HubSettings::from_vars(&|name| map.get(name).cloned())
    }

    #[test]
    fn cache_dir_follows_pythons_precedence() {
        assert_eq!(settings(&[("HOME", "/h")]).cache_dir, PathBuf::from("/h/.cache/huggingface/hub"));
        assert_eq!(
            settings(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]).cache_dir,
            PathBuf::from("/x/huggingface/hub")
        );
        assert_eq!(
            settings(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x"), ("HF_HOME", "/hf")]).cache_dir,
            PathBuf::from("/hf/hub")
        );
        assert_eq!(settings(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/cache")]).cache_dir, PathBuf::from("/cache"));
    }

    #[test]
    fn token_comes_from_the_variable_or_the_token_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("token"), "hf_file\n").unwrap();
        let hf_home = home.path().to_str().unwrap();
        assert_eq!(settings(&[("HF_HOME", hf_home)]).token.as_deref(), Some("hf_file"));
        assert_eq!(settings(&[("HF_HOME", hf_home), ("HF_TOKEN", "hf_env")]).token.as_deref(), Some("hf_env"));
        assert_eq!(settings(&[("HF_HOME", hf_home), ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")]).token, None);
        assert_eq!(settings(&[("HF_HOME", "/nonexistent")]).token, None);
    }

    #[test]
    fn offline_accepts_pythons_true_spellings() {
        for value in ["1", "true", "YES", "on"] {
            assert!(settings(&[("HF_HUB_OFFLINE", value)]).offline, "{value}");
        }
        for value in ["0", "false", "no"] {
            assert!(!settings(&[("HF_HUB_OFFLINE", value)]).offline, "{value}");
        }
        assert!(settings(&[("TRANSFORMERS_OFFLINE", "1")]).offline);
    }

    #[test]
    fn ids_and_revisions_cannot_escape_the_cache() {
        assert_eq!(split_repo_id("facebook/vit-mae-base").unwrap(), ("facebook", "vit-mae-base"));
        assert_eq!(split_repo_id("gpt2").unwrap(), ("", "gpt2"));
        for bad in ["../etc", "a/b/c", "/abs", "a/..", "", "a b/c"] {
            assert!(split_repo_id(bad).is_err(), "{bad}");
        }
        assert!(check_revision("main").is_ok());
        assert!(check_revision("refs/pr/1").is_ok());
        for bad in ["../../x", "/main", "a//b", ""] {
            assert!(check_revision(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cached_models_lists_usable_repositories_with_blob_sizes() {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--facebook--vit-mae-base");
        let commit = "a".repeat(40);
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots").join(&commit)).unwrap();
        std::fs::write(repo.join("blobs/config"), vec![0u8; 10]).unwrap();
        std::fs::write(repo.join("blobs/weights"), vec![0u8; 1000]).unwrap();
        std::fs::write(repo.join("blobs/partial.incomplete"), vec![0u8; 5]).unwrap();
        std::fs::write(repo.join("snapshots").join(&commit).join("config.json"), "{}").unwrap();
        // A dataset and a model without any snapshot are not offered.
        std::fs::create_dir_all(cache.path().join("datasets--x--y/snapshots")).unwrap();
        std::fs::create_dir_all(cache.path().join("models--x--empty/snapshots")).unwrap();
        assert_eq!(
            cached_models_in(cache.path()),
            vec![CachedModel { repo: "facebook/vit-mae-base".into(), size_bytes: 1010 }]
        );
        assert!(cached_models_in(&cache.path().join("missing")).is_empty());
    }
}
