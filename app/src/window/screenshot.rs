//! `--screenshot PNG`: run until the first reconstruction is on screen, save a picture of the whole window, and
//! close; the outcome becomes the exit status, and the time of the forward pass whose result is in the picture is
//! reported. A time limit makes sure it never hangs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eframe::egui;

use super::app::MaeApp;
use super::session::ModelState;
use crate::atomic_file::write_picture;

/// Frames drawn with the result before the picture is taken, so layout and textures have settled.
const SETTLE_FRAMES: usize = 3;
/// How often a waiting screenshot run looks at its time limit.
const TIMEOUT_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// What a successful screenshot run reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Captured {
    /// The forward pass whose result is in the picture, in milliseconds.
    pub forward_ms: Option<f64>,
}

/// The outcome, shared between the app, the screenshot callback and `window::run`.
pub type Outcome = Arc<Mutex<Option<Result<Captured, String>>>>;

#[derive(Debug, Clone)]
pub struct ScreenshotPlan {
    pub path: PathBuf,
    pub timeout: Duration,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub struct ScreenshotState {
    plan: ScreenshotPlan,
    started: Instant,
    settled_frames: usize,
    requested: bool,
    closing: bool,
}

impl ScreenshotState {
    pub fn new(plan: ScreenshotPlan) -> Self {
        Self { plan, started: Instant::now(), settled_frames: 0, requested: false, closing: false }
    }

    fn finish(&self, result: Result<Captured, String>) {
        let mut outcome = self.plan.outcome.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if outcome.is_none() {
            *outcome = Some(result);
        }
    }

    fn is_finished(&self) -> bool {
        self.plan.outcome.lock().map_or(true, |outcome| outcome.is_some())
    }
}

pub fn advance(app: &mut MaeApp, ctx: &egui::Context) {
    let session = &app.session;
    let failure = match &session.model {
        ModelState::Failed(error) if session.loading.is_none() => {
            Some(format!("the model could not be loaded: {error}"))
        }
        _ => session
            .startup_image_error
            .clone()
            .or_else(|| session.last_forward_error.as_ref().map(|error| format!("the model could not run: {error}"))),
    };
    // The result is on screen, and a loss curve being computed for a visible Loss panel has arrived.
    let ready = session.is_up_to_date() && app.panels.loss.curve.request_id.is_none();
    let forward_ms = session.result.as_ref().and_then(|result| result.forward_ms);
    let Some(state) = app.screenshot.as_mut() else { return };
    if state.closing {
        return;
    }
    if let Some(failure) = failure {
        state.finish(Err(failure));
    } else if state.started.elapsed() > state.plan.timeout {
        state.finish(Err(format!("no reconstruction was on screen after {} s", state.plan.timeout.as_secs())));
    } else if ready && !state.requested {
        state.settled_frames += 1;
        if state.settled_frames > SETTLE_FRAMES {
            state.requested = true;
            let path = state.plan.path.clone();
            let outcome = state.plan.outcome.clone();
            let repaint = ctx.clone();
            ctx.request_screenshot(move |image| {
                let captured = Captured { forward_ms };
                let [width, height] = image.size;
                let rgba: Vec<u8> = image.pixels.iter().flat_map(|pixel| pixel.to_srgba_unmultiplied()).collect();
                let result = match image::RgbaImage::from_raw(width as u32, height as u32, rgba) {
                    Some(picture) if width > 0 && height > 0 => {
                        write_picture(&picture, &path).map(|()| captured).map_err(|error| format!("{error:#}"))
                    }
                    _ => Err("the screenshot came back empty".to_string()),
                };
                let mut outcome = outcome.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                outcome.get_or_insert(result);
                repaint.request_repaint();
            });
        }
    }
    if state.is_finished() {
        state.closing = true;
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    } else if ready {
        // Settling takes a few frames in a row; otherwise the worker's answer wakes the window, and this only
        // makes sure the time limit is noticed.
        ctx.request_repaint();
    } else {
        ctx.request_repaint_after(TIMEOUT_CHECK_INTERVAL);
    }
}
