//! The model worker: one thread owns the model and does every slow thing (loading, forward passes, drawing the
//! pictures), so the window thread only uploads finished pictures and never waits.
//!
//! The window sends [`Request`]s over a channel and reads [`Response`]s from another (`protocol.rs`); after every
//! response the worker wakes the window through [`WorkerConfig::notify`], so the window needs no polling. When
//! several forward requests are waiting (a slider being dragged), only the newest runs: the others are answered by
//! it, so the picture is at most one forward pass behind the pointer. Seed ensembles, folder evaluations and the
//! mask-ratio sweeps run one forward pass at a time between requests (`state.rs`); while the ratio slider is held,
//! the window's requests are answered from the sweeps (`Request::Scrub`). A panic while serving a request is caught, reported as
//! [`Response::Restarted`], and the worker continues with its caches cleared; the model survives because it is
//! never mutated.

mod protocol;
mod state;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

pub use protocol::{
    AttentionView, EnsembleResult, ForwardRequest, ForwardResult, HeadsResult, HeadsView, ImageInput, LoadProgress,
    LoadRequest, LossView, MAX_MODELS, ModelInfo, ModelResult, ModelSweep, ModelView, NoDifference, Request, Response,
    ResultPictures, Scrubbed, SweepReport, ViewOptions, model_letter,
};
use state::WorkerState;

/// Counters the window shows and tests assert on.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Forward passes actually run for requests and background jobs (the sweeps' are counted apart).
    pub forwards: AtomicUsize,
    /// Forward passes the mask-ratio sweeps ran.
    pub sweep_forwards: AtomicUsize,
    /// Forward requests received (run, re-drawn from cache, or skipped as superseded).
    pub forward_requests: AtomicUsize,
    /// Forward requests skipped because a newer one was already waiting.
    pub superseded: AtomicUsize,
    pub restarts: AtomicUsize,
    /// Responses of any kind, counted before each is sent (so a test that has received one sees it counted).
    pub responses: AtomicUsize,
}

impl WorkerStats {
    pub fn forwards(&self) -> usize {
        self.forwards.load(Ordering::Relaxed)
    }

    pub fn sweep_forwards(&self) -> usize {
        self.sweep_forwards.load(Ordering::Relaxed)
    }

    /// Every forward pass run, the sweeps' included.
    pub fn all_forwards(&self) -> usize {
        self.forwards() + self.sweep_forwards()
    }

    pub fn forward_requests(&self) -> usize {
        self.forward_requests.load(Ordering::Relaxed)
    }

    pub fn superseded(&self) -> usize {
        self.superseded.load(Ordering::Relaxed)
    }

    pub fn restarts(&self) -> usize {
        self.restarts.load(Ordering::Relaxed)
    }

    pub fn responses(&self) -> usize {
        self.responses.load(Ordering::SeqCst)
    }
}

/// Called after every response so the window wakes up (`egui::Context::request_repaint`).
type Notify = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
pub struct WorkerConfig {
    /// Called after every response (the window's `request_repaint`).
    pub notify: Notify,
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig").finish_non_exhaustive()
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self { notify: Arc::new(|| {}) }
    }
}

/// The window's end of the worker. Dropping it closes the request channel, which ends the thread.
#[derive(Debug)]
pub struct Worker {
    requests: Option<Sender<Request>>,
    responses: Receiver<Response>,
    stats: Arc<WorkerStats>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(config: WorkerConfig) -> Self {
        let (request_sender, request_receiver) = crossbeam_channel::unbounded();
        let (response_sender, response_receiver) = crossbeam_channel::unbounded();
        let stats = Arc::new(WorkerStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("mae-worker".into())
            .spawn(move || run(request_receiver, response_sender, config, thread_stats))
            .expect("the operating system refused to start the worker thread");
        Self { requests: Some(request_sender), responses: response_receiver, stats, thread: Some(thread) }
    }

    /// Queues a request; never blocks. Returns false when the worker is gone (it never should be).
    pub fn send(&self, request: Request) -> bool {
        self.requests.as_ref().is_some_and(|sender| sender.send(request).is_ok())
    }

    /// A response that has arrived since the last call; never blocks.
    pub fn try_recv(&self) -> Option<Response> {
        self.responses.try_recv().ok()
    }

    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.requests.take();
        // A forward pass in flight finishes within a second or so; don't make the window wait for it on exit.
        if let Some(thread) = self.thread.take()
            && thread.is_finished()
        {
            let _ = thread.join();
        }
    }
}

/// Sends a response and wakes the window.
struct Responder {
    sender: Sender<Response>,
    notify: Notify,
    stats: Arc<WorkerStats>,
}

impl Responder {
    fn send(&self, response: Response) {
        self.stats.responses.fetch_add(1, Ordering::SeqCst);
        let _ = self.sender.send(response);
        (self.notify)();
    }
}

fn run(requests: Receiver<Request>, responses: Sender<Response>, config: WorkerConfig, stats: Arc<WorkerStats>) {
    let responder = Responder { sender: responses, notify: config.notify, stats: stats.clone() };
    let mut state = WorkerState::new(stats);
    loop {
        // Background jobs advance one forward pass at a time between requests, so they never hold up the picture.
        let first = if state.has_background_work() {
            match requests.try_recv() {
                Ok(request) => Some(request),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return,
            }
        } else {
            match requests.recv() {
                Ok(request) => Some(request),
                Err(_) => return,
            }
        };
        let Some(first) = first else {
            guarded(&mut state, &responder, |state, responder| state.background_step(responder));
            continue;
        };
        // Everything that queued up while we were busy: only the newest forward request is worth running.
        let mut batch = vec![first];
        batch.extend(requests.try_iter());
        let newest_forward = batch.iter().rposition(|request| matches!(request, Request::Forward(_)));
        for (index, request) in batch.into_iter().enumerate() {
            if let Request::Forward(_) = request {
                state.stats.forward_requests.fetch_add(1, Ordering::Relaxed);
                if Some(index) != newest_forward {
                    state.stats.superseded.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            guarded(&mut state, &responder, |state, responder| state.handle(request, responder));
        }
    }
}

/// Runs one piece of work; a panic in it is reported and the worker goes on with fresh caches ("restarted").
fn guarded(state: &mut WorkerState, responder: &Responder, work: impl FnOnce(&mut WorkerState, &Responder)) {
    let outcome = catch_unwind(AssertUnwindSafe(|| work(state, responder)));
    if let Err(panic) = outcome {
        state.stats.restarts.fetch_add(1, Ordering::Relaxed);
        state.forget_work();
        let message = format!("the model worker crashed ({}) and was restarted", panic_message(&panic));
        responder.send(Response::Restarted { message });
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".into()
    }
}

#[cfg(test)]
mod tests;
