//! The worker and the forward passes: request ids, the newest forward request sent (so an unchanged screen sends
//! nothing), the result on screen and the last forward error, whether the ratio slider is held (then requests are
//! answered from the sweep cache), where the sweeps stand, and the context the worker wakes.

use std::sync::{Arc, OnceLock};

use eframe::egui;
use mae_model::MaskSpec;

use crate::jobs::sweep::SweepKey;
use crate::worker::{
    ForwardRequest, ForwardResult, ImageInput, Request, Response, SweepReport, ViewOptions, Worker, WorkerConfig,
    WorkerStats,
};

/// What a forward request asks for, compared frame to frame to decide whether to send a new one.
#[derive(Debug, Clone, PartialEq)]
struct SentForward {
    /// The generation of every model loaded, in the list's order: a model loaded or closed asks again.
    model_generations: Vec<u64>,
    image_id: u64,
    mask: MaskSpec,
    view: ViewOptions,
    /// Answered from the sweep cache (the slider is held).
    scrub: bool,
}

pub struct Forwards {
    worker: Worker,
    next_id: u64,
    /// The last forward request sent: what it asked for and its id.
    sent: Option<(SentForward, u64)>,
    /// The result on screen.
    pub result: Option<ForwardResult>,
    pub last_error: Option<String>,
    /// The ratio slider is held by the pointer (the controls set it every frame).
    pub held_by_pointer: bool,
    /// The ratio slider is held by a screenshot run's scripted drag.
    pub held_by_script: bool,
    /// Where the sweeps of the image, strategy and seed on screen stand, as last reported.
    pub sweep: Option<SweepReport>,
    /// Set on the first frame; the worker's wake-up call reads it.
    repaint_target: Arc<OnceLock<egui::Context>>,
}

impl Forwards {
    /// Starts the worker; `worker.notify` is called (besides waking the window) after every response.
    pub fn spawn(worker: WorkerConfig) -> Self {
        let repaint_target: Arc<OnceLock<egui::Context>> = Arc::new(OnceLock::new());
        let target = repaint_target.clone();
        let outer_notify = worker.notify;
        let worker = Worker::spawn(WorkerConfig {
            notify: Arc::new(move || {
                wake(&target);
                outer_notify();
            }),
        });
        Self {
            worker,
            next_id: 1,
            sent: None,
            result: None,
            last_error: None,
            held_by_pointer: false,
            held_by_script: false,
            sweep: None,
            repaint_target,
        }
    }

    /// Remembers the window's context so the worker and file threads can wake it.
    pub fn attach(&self, ctx: &egui::Context) {
        let _ = self.repaint_target.set(ctx.clone());
    }

    pub fn repaint_context(&self) -> Option<egui::Context> {
        self.repaint_target.get().cloned()
    }

    /// A call that wakes the window once it is attached (for threads other than the worker).
    pub fn waker(&self) -> impl Fn() + Send + Sync + 'static {
        let target = self.repaint_target.clone();
        move || wake(&target)
    }

    pub fn stats(&self) -> &Arc<WorkerStats> {
        self.worker.stats()
    }

    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends a request to the worker and returns its id (the id inside `make`'s request).
    pub fn request(&mut self, make: impl FnOnce(u64) -> Request) -> u64 {
        let id = self.next_id();
        self.worker.send(make(id));
        id
    }

    /// Sends a request that makes the worker panic (Help → "Test crash recovery" and tests).
    pub fn crash_worker(&mut self) {
        self.worker.send(Request::Crash);
    }

    /// Whether the ratio slider is held: results then come from the sweep cache, and the exact forward pass
    /// runs when it is let go.
    pub fn is_scrubbing(&self) -> bool {
        self.held_by_pointer || self.held_by_script
    }

    /// Sends the forward request for these models (by generation, in the list's order), image, mask and view,
    /// unless it was the last one sent; while the slider is held, a mask the ratio changes is asked of the sweep
    /// cache instead.
    pub fn send_if_changed(
        &mut self,
        model_generations: Vec<u64>,
        image: ImageInput,
        mask: MaskSpec,
        view: ViewOptions,
    ) {
        let scrub = self.is_scrubbing() && SweepKey::of(image.id, &mask).is_some();
        let key = SentForward { model_generations, image_id: image.id, mask: mask.clone(), view, scrub };
        if self.sent.as_ref().is_some_and(|(sent, _)| *sent == key) {
            return;
        }
        let view = key.view.clone();
        let id = self.request(|id| {
            let request = Box::new(ForwardRequest { id, image, mask, view });
            if scrub { Request::Scrub(request) } else { Request::Forward(request) }
        });
        self.sent = Some((key, id));
    }

    /// Stops the sweeps in progress.
    pub fn stop_sweep(&mut self) {
        self.worker.send(Request::StopSweep);
    }

    /// The worker restarted and lost what was in flight: the next frame asks again.
    pub fn forget_sent(&mut self) {
        self.sent = None;
    }

    /// The id of the newest forward request sent, if any.
    pub fn last_sent_id(&self) -> Option<u64> {
        self.sent.as_ref().map(|(_, id)| *id)
    }

    /// Whether the picture on screen answers the newest request.
    pub fn is_up_to_date(&self) -> bool {
        match (&self.result, self.last_sent_id()) {
            (Some(result), Some(sent)) => result.id == sent,
            _ => false,
        }
    }

    /// Shows `result` unless a newer one is already on screen; returns whether it is shown. Results can only be
    /// older than what is shown if the worker answered out of order: never step backwards. Newer ones are shown
    /// even if a still newer request is pending, so dragging keeps the picture at most one forward pass behind.
    pub fn take_result(&mut self, result: ForwardResult) -> bool {
        if self.result.as_ref().is_some_and(|shown| shown.id >= result.id) {
            return false;
        }
        self.last_error = None;
        self.result = Some(result);
        true
    }

    /// A response that has arrived from the worker, if any.
    pub fn next_response(&mut self) -> Option<Response> {
        self.worker.try_recv()
    }
}

/// Wakes the window, once it is attached.
fn wake(target: &OnceLock<egui::Context>) {
    if let Some(ctx) = target.get() {
        ctx.request_repaint();
    }
}
