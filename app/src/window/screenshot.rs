//! `--screenshot PNG`: run until the first reconstruction is on screen, save a picture of the whole window, and
//! close; the outcome becomes the exit status. A time limit makes sure it never hangs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eframe::egui;

use super::app::{MaeApp, ModelState};

/// Frames drawn with the result before the picture is taken, so layout and textures have settled.
const SETTLE_FRAMES: usize = 3;

/// The outcome, shared between the app, the screenshot callback and `window::run`.
pub type Outcome = Arc<Mutex<Option<Result<(), String>>>>;

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

    fn finish(&self, result: Result<(), String>) {
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
    let failure = match &app.model {
        ModelState::Failed(error) if !error.is_empty() => Some(format!("the model could not be loaded: {error}")),
        _ => app
            .startup_image_error
            .clone()
            .or_else(|| app.last_forward_error.as_ref().map(|error| format!("the model could not run: {error}"))),
    };
    let ready = app.is_up_to_date()
        && app.textures.get(super::textures::RECONSTRUCTION).is_some()
        && (!app.settings.show_loss || (app.loss_curve.request_id.is_none() && app.loss_curve.key.is_some()));
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
                let [width, height] = image.size;
                let rgba: Vec<u8> = image.pixels.iter().flat_map(|pixel| pixel.to_srgba_unmultiplied()).collect();
                let result = match image::RgbaImage::from_raw(width as u32, height as u32, rgba) {
                    Some(picture) if width > 0 && height > 0 => {
                        super::export::write_png(&path, &picture).map_err(|error| format!("{error:#}"))
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
    }
    ctx.request_repaint_after(Duration::from_millis(50));
}
