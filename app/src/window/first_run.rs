//! The first run: when the user named no model and the default hub model is not in the cache, the window starts
//! with the built-in demo model (a picture at once, offline too) and fetches the real one in the background —
//! on its own thread, so the demo stays interactive while it downloads. When the files are in, the session
//! switches to the real model, keeping image, ratio, seed and mask. Offline, the demo stays and a line says how
//! to get the real model. A model the user chooses meanwhile is never replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mae_model::hub::{DownloadControl, HubSettings, fetch, resolve_cached};
use mae_model::{DEMO_MODEL_ARG, DownloadProgress};

/// Progress reports are forwarded at most this often (each wakes the window).
const REPORT_INTERVAL: Duration = Duration::from_millis(200);

/// What the window starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartModel {
    /// A model the user named (command line, or the one the last run used).
    Chosen(String),
    /// Nothing named: the default hub model, through the demo if it must be downloaded first.
    Default { hub_id: String },
}

/// How the first model is obtained.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstLoad {
    /// Load this model (named, or the default already in the cache).
    Model(String),
    /// Show the demo now; fetch `hub_id` in the background unless offline.
    DemoWhileFetching { hub_id: String, offline: bool },
}

impl StartModel {
    /// Decides from what the cache holds (a directory lookup, no network).
    pub fn first_load(&self, hub: &HubSettings) -> FirstLoad {
        match self {
            StartModel::Chosen(model) => FirstLoad::Model(model.clone()),
            StartModel::Default { hub_id } if resolve_cached(hub_id, None, &hub.cache_dir).is_ok() => {
                FirstLoad::Model(hub_id.clone())
            }
            StartModel::Default { hub_id } => {
                FirstLoad::DemoWhileFetching { hub_id: hub_id.clone(), offline: hub.offline }
            }
        }
    }
}

/// The demo, as the session loads it.
pub fn demo() -> String {
    DEMO_MODEL_ARG.to_string()
}

/// The one line shown while the demo stands in for the real model offline.
pub fn offline_message(hub_id: &str) -> String {
    format!(
        "Showing the small built-in demo model: {hub_id} (448 MB) is not in the Hugging Face cache and \
         HF_HUB_OFFLINE is set. Connect to the internet and start without HF_HUB_OFFLINE (or run \
         `mae-explorer --model {hub_id}`) to download it."
    )
}

/// What the background fetch reports.
#[derive(Debug)]
pub enum FetchEvent {
    Progress(DownloadProgress),
    /// The files are in the cache: the model can be loaded without the network.
    Done,
    Failed(String),
}

/// The default model downloading in the background.
pub struct Fetch {
    pub hub_id: String,
    pub events: Receiver<FetchEvent>,
    /// The newest progress, for the status line.
    pub progress: Option<DownloadProgress>,
    pub since: Instant,
    cancel: Arc<AtomicBool>,
    _thread: JoinHandle<()>,
}

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetch").field("hub_id", &self.hub_id).field("progress", &self.progress).finish_non_exhaustive()
    }
}

impl Fetch {
    /// Starts downloading `hub_id` into the cache `hub` names; calls `wake` after every event.
    pub fn start(hub_id: String, hub: HubSettings, wake: impl Fn() + Send + Sync + 'static) -> Self {
        let (sender, events) = crossbeam_channel::unbounded();
        let cancel = Arc::new(AtomicBool::new(false));
        let thread_cancel = cancel.clone();
        let repo = hub_id.clone();
        let thread = std::thread::spawn(move || {
            let last_report = std::sync::Mutex::new(None::<Instant>);
            let report = |progress: DownloadProgress| {
                let Ok(mut last) = last_report.lock() else { return };
                if last.is_some_and(|at: Instant| at.elapsed() < REPORT_INTERVAL) {
                    return;
                }
                *last = Some(Instant::now());
                let _ = sender.send(FetchEvent::Progress(progress));
                wake();
            };
            let control = DownloadControl { progress: Some(&report), cancel: Some(thread_cancel) };
            let event = match fetch(&repo, None, &hub, &control) {
                Ok(_) => FetchEvent::Done,
                Err(error) => FetchEvent::Failed(format!("{error:#}")),
            };
            let _ = sender.send(event);
            wake();
        });
        Self { hub_id, events, progress: None, since: Instant::now(), cancel, _thread: thread }
    }

    /// Stops the download (the cache keeps only complete files).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

impl Drop for Fetch {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cache: &std::path::Path, offline: bool) -> HubSettings {
        HubSettings { cache_dir: cache.to_owned(), offline, ..HubSettings::from_vars(&|_| None) }
    }

    #[test]
    fn the_demo_stands_in_only_for_an_uncached_default() {
        let cache = tempfile::tempdir().unwrap();
        let default = StartModel::Default { hub_id: "facebook/vit-mae-base".into() };
        assert_eq!(
            default.first_load(&settings(cache.path(), true)),
            FirstLoad::DemoWhileFetching { hub_id: "facebook/vit-mae-base".into(), offline: true }
        );
        assert_eq!(
            StartModel::Chosen("some/model".into()).first_load(&settings(cache.path(), false)),
            FirstLoad::Model("some/model".into())
        );
        // A cached default (refs/main → a snapshot with config and weights) loads directly.
        let repo = cache.path().join("models--facebook--vit-mae-base");
        let commit = "0123456789abcdef0123456789abcdef01234567";
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), commit).unwrap();
        let snapshot = repo.join("snapshots").join(commit);
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::write(snapshot.join("config.json"), "{}").unwrap();
        std::fs::write(snapshot.join("model.safetensors"), "").unwrap();
        assert_eq!(
            default.first_load(&settings(cache.path(), false)),
            FirstLoad::Model("facebook/vit-mae-base".into())
        );
        assert!(offline_message("facebook/vit-mae-base").contains("HF_HUB_OFFLINE"));
    }
}
