//! `--screenshot PNG`: run until the first reconstruction is on screen, save a picture of the whole window, and
//! close; the outcome becomes the exit status, and the time of the forward pass whose result is in the picture is
//! reported, with the time from launch to the first picture. With `--ratio-steps N` the run first moves the mask
//! ratio N times as a slow drag does (+0.01 each, −0.01 past 0.95, each picture awaited before the next move) and
//! reports the median warm forward pass and the median latency from a move to its picture. With `--scrub N` it
//! waits for the mask-ratio sweep to be cached, then drags the slider across N steps (held, each picture awaited),
//! reports the sweep's fill time, forward passes and memory, the frames' and the steps' medians and the forward
//! passes run meanwhile, and lets go, so the picture shows the exact result. A time limit on waiting without
//! progress makes sure it never hangs, however long the work.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eframe::egui;

use super::session::{ModelState, Session};
use crate::atomic_file::write_picture;
use crate::worker::ForwardResult;

/// Frames drawn with the result before the picture is taken, so layout and textures have settled.
const SETTLE_FRAMES: usize = 3;
/// How often a waiting screenshot run looks at its time limit.
const TIMEOUT_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// Asks egui for exactly one more frame. `request_repaint()` (a zero delay) gets two, "to give some things time to
/// settle", and after a ratio move the second, showing nothing new, would be drawn while the model computes
/// (measured on a 2-core VM under Xvfb, base-shaped model, 30 moves: Mesa's threads 1.98 s of CPU with that frame,
/// 1.43 s without; `warm_forward_ms` over `bench`'s median 1.118x with it, 1.092x without).
const ONE_MORE_FRAME: Duration = Duration::from_millis(1);

/// What a successful screenshot run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    /// The forward pass whose result is in the picture (both passes of a pair), in milliseconds: the time of the
    /// pass that made it, also when the picture was re-drawn from the worker's cache.
    pub forward_ms: f64,
    /// The models on screen, the first counted.
    pub models: usize,
    /// With models compared patch by patch: the masked patches where each one's loss is the lowest, by letter.
    pub wins: Option<String>,
    /// From launch to the first picture on screen.
    pub first_picture_ms: f64,
    /// Medians over the ratio steps: the forward passes, and each move's wait for its picture.
    pub warm_forward_ms: Option<f64>,
    pub latency_ms: Option<f64>,
    /// What `--scrub` measured.
    pub scrub: Option<ScrubFigures>,
}

/// What a `--scrub N` run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrubFigures {
    /// From the first picture on screen to the sweeps' last entry cached.
    pub sweep_fill_ms: f64,
    /// Per model, by letter: the sweep's forward passes.
    pub sweep_forwards: Vec<(char, usize)>,
    /// Per model, by letter: the memory its sweep's entries hold.
    pub sweep_cache_bytes: Vec<(char, u64)>,
    /// Median UI-thread time of the frames drawn during the moves.
    pub frame_ms: f64,
    /// Median time from a move to its picture on screen.
    pub step_ms: f64,
    /// Forward passes (the sweeps' included) between the first move and the last move's picture.
    pub forwards: usize,
}

/// Ratio moves stay inside this range (a step past its top goes down instead).
const RATIO_STEP_TOP: f64 = 0.95;
const RATIO_STEP: f64 = 0.01;

/// The outcome, shared between the app, the screenshot callback and `window::run`.
type Outcome = Arc<Mutex<Option<Result<Captured, String>>>>;

#[derive(Debug, Clone)]
pub struct ScreenshotPlan {
    pub path: PathBuf,
    pub timeout: Duration,
    pub outcome: Outcome,
    /// When the program started (the first picture is timed from here).
    pub launched: Instant,
    /// Ratio moves after the first picture, before the screenshot.
    pub ratio_steps: usize,
    /// Scrubbed slider moves once the sweep is cached, before the screenshot.
    pub scrub_steps: usize,
}

/// A `--scrub` run in progress.
#[derive(Debug, Default)]
struct Scrub {
    /// When the first picture was on screen, and how long after it the sweeps were over.
    first_picture: Option<Instant>,
    sweep_fill_ms: Option<f64>,
    /// Every forward pass run when the first move was made.
    forwards_at_first_move: usize,
    moving: Option<(Instant, Option<u64>)>,
    step_ms: Vec<f64>,
    frame_ms: Vec<f64>,
    figures: Option<ScrubFigures>,
}

#[derive(Debug)]
pub struct ScreenshotState {
    plan: ScreenshotPlan,
    settled_frames: usize,
    requested: bool,
    closing: bool,
    first_picture_ms: Option<f64>,
    /// The move in progress: when it was made and the forward request that was newest before it.
    moving: Option<(Instant, Option<u64>)>,
    warm_forward_ms: Vec<f64>,
    latency_ms: Vec<f64>,
    scrub: Scrub,
    /// The time limit counts from the last sign of progress (a new result, a sweep report).
    last_progress: (Instant, Option<u64>, usize),
}

impl ScreenshotState {
    pub fn new(plan: ScreenshotPlan) -> Self {
        Self {
            plan,
            settled_frames: 0,
            requested: false,
            closing: false,
            first_picture_ms: None,
            moving: None,
            warm_forward_ms: Vec::new(),
            latency_ms: Vec::new(),
            scrub: Scrub::default(),
            last_progress: (Instant::now(), None, 0),
        }
    }

    /// The window drew a frame that took `time` on the UI thread: counted while the slider is scrubbed.
    pub fn frame_drawn(&mut self, time: Duration) {
        if self.scrub.moving.is_some() {
            self.scrub.frame_ms.push(time.as_secs_f64() * 1e3);
        }
    }

    /// Waits for the sweeps, then drags the slider (held) across the scrub steps, each picture awaited, and lets go.
    fn step_scrub(&mut self, session: &mut Session) -> Result<Step, String> {
        if self.plan.scrub_steps == 0 || self.scrub.figures.is_some() {
            return Ok(Step::Done);
        }
        let scrub = &mut self.scrub;
        let first_picture = *scrub.first_picture.get_or_insert_with(Instant::now);
        let report = session.forwards.sweep.as_ref().filter(|report| Some(report.image_id) == session.image.id());
        if scrub.sweep_fill_ms.is_none() {
            let mask = session.mask_spec();
            let sweepable = session
                .image
                .input
                .as_ref()
                .zip(mask.as_ref())
                .is_some_and(|(image, mask)| crate::jobs::sweep::SweepKey::of(image.id, mask).is_some());
            if !sweepable {
                return Err("--scrub needs a mask the ratio changes (random, block or centre)".to_string());
            }
            match report {
                Some(report) if report.is_over() => {
                    if let Some(why) = report.models.iter().find_map(|model| model.stopped.clone()) {
                        return Err(format!("the sweep {why}"));
                    }
                    scrub.sweep_fill_ms = Some(first_picture.elapsed().as_secs_f64() * 1e3);
                }
                _ => return Ok(Step::Waiting),
            }
        }
        let stats = session.forwards.stats().clone();
        if let Some((moved, sent_before)) = scrub.moving {
            if session.forwards.last_sent_id() == sent_before || !session.is_up_to_date() {
                return Ok(Step::Waiting);
            }
            scrub.step_ms.push(moved.elapsed().as_secs_f64() * 1e3);
            scrub.moving = None;
        }
        if scrub.step_ms.len() >= self.plan.scrub_steps {
            fn letters<T>(values: Vec<(usize, T)>) -> Vec<(char, T)> {
                values.into_iter().map(|(index, value)| (crate::worker::model_letter(index), value)).collect()
            }
            let models = report.map(|report| report.models.clone()).unwrap_or_default();
            scrub.figures = Some(ScrubFigures {
                sweep_fill_ms: scrub.sweep_fill_ms.unwrap_or_default(),
                sweep_forwards: letters(models.iter().map(|model| (model.index, model.forwards)).collect()),
                sweep_cache_bytes: letters(models.iter().map(|model| (model.index, model.bytes)).collect()),
                frame_ms: median(&scrub.frame_ms).unwrap_or_default(),
                step_ms: median(&scrub.step_ms).unwrap_or_default(),
                forwards: stats.all_forwards() - scrub.forwards_at_first_move,
            });
            // Let go: the exact forward pass runs, and the screenshot shows its result.
            session.forwards.held_by_script = false;
            return Ok(Step::Moved);
        }
        if scrub.step_ms.is_empty() {
            scrub.forwards_at_first_move = stats.all_forwards();
        }
        session.forwards.held_by_script = true;
        let up = session.settings.mask_ratio + RATIO_STEP <= RATIO_STEP_TOP;
        scrub.moving = Some((Instant::now(), session.forwards.last_sent_id()));
        session.nudge_ratio(if up { RATIO_STEP } else { -RATIO_STEP });
        Ok(Step::Moved)
    }

    /// Moves the ratio while steps remain, timing each move's picture.
    fn step_ratio(&mut self, session: &mut Session, forward_ms: Option<f64>) -> Step {
        if let Some((moved, sent_before)) = self.moving {
            if session.forwards.last_sent_id() == sent_before || !session.is_up_to_date() {
                return Step::Waiting;
            }
            self.latency_ms.push(moved.elapsed().as_secs_f64() * 1e3);
            self.warm_forward_ms.extend(forward_ms);
            self.moving = None;
        }
        if self.latency_ms.len() >= self.plan.ratio_steps {
            return Step::Done;
        }
        let up = session.settings.mask_ratio + RATIO_STEP <= RATIO_STEP_TOP;
        self.moving = Some((Instant::now(), session.forwards.last_sent_id()));
        session.nudge_ratio(if up { RATIO_STEP } else { -RATIO_STEP });
        Step::Moved
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

/// Where the ratio moves of a screenshot run stand.
enum Step {
    /// The ratio just moved: the next frame sends its forward request.
    Moved,
    /// The moved ratio's picture is not on screen yet (the worker's answer wakes the window).
    Waiting,
    Done,
}

/// The middle value (the mean of the two middle ones for an even count); `None` for no values.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

/// A screenshot run shows the window as nobody points at it. Under Xvfb the pointer rests at the screen's centre,
/// over a picture tile, and a long run (the dataset screenshot) used to catch that tile's hover tooltip half faded in.
/// Pointer events are dropped before egui sees them and the pointer is reported gone from the window.
pub fn ignore_pointer(raw_input: &mut egui::RawInput) {
    raw_input.events.retain(|event| {
        !matches!(
            event,
            egui::Event::PointerMoved(_)
                | egui::Event::MouseMoved(_)
                | egui::Event::PointerButton { .. }
                | egui::Event::MouseWheel { .. }
                | egui::Event::Touch { .. }
        )
    });
    raw_input.events.push(egui::Event::PointerGone);
}

/// Takes the screenshot once the result is on screen and no panel's background job is still running (the loss
/// curve of a visible Loss panel, say); exits with the failure when the model or the image could not be used.
pub fn advance(state: &mut Option<ScreenshotState>, session: &mut Session, panels_busy: bool, ctx: &egui::Context) {
    let failure =
        match &session.model().state {
            ModelState::Failed(error) if session.model().loading.is_none() => {
                Some(format!("the model could not be loaded: {error}"))
            }
            _ => session.image.startup_error.clone().or_else(|| session.compare_failure.clone()).or_else(|| {
                session.forwards.last_error.as_ref().map(|error| format!("the model could not run: {error}"))
            }),
        };
    // With compared models, the picture waits for every model's result and its time is all their passes.
    let all_ready = session.compared().all(|(_, slot)| slot.loading.is_none())
        && session.result().is_some_and(|result| result.models.len() == session.model_names().len());
    let ready = session.is_up_to_date() && !panels_busy && all_ready;
    let forward_ms = session.result().map_or(0.0, |result| result.models.iter().map(|model| model.made_in_ms).sum());
    // A ratio step's own passes (`None` when a picture was re-drawn from the cache: no pass to time).
    let fresh_forward_ms =
        session.result().and_then(|result| result.models.iter().map(|model| model.forward_ms).sum::<Option<f64>>());
    let models = session.result().map_or(0, |result| result.models.len());
    let wins = session.result().map(ForwardResult::wins).filter(|wins| wins.len() > 1).map(|wins| {
        let counts: Vec<String> =
            wins.iter().map(|(index, count)| format!("{}:{count}", crate::worker::model_letter(*index))).collect();
        counts.join(",")
    });
    let Some(state) = state.as_mut() else { return };
    if state.closing {
        return;
    }
    let progress = (
        session.result().map(|result| result.id),
        session.forwards.sweep.as_ref().map_or(0, |report| report.models.iter().map(|model| model.done).sum()),
    );
    if (progress.0, progress.1) != (state.last_progress.1, state.last_progress.2) {
        state.last_progress = (Instant::now(), progress.0, progress.1);
    }
    if let Some(failure) = failure {
        state.finish(Err(failure));
    } else if state.last_progress.0.elapsed() > state.plan.timeout {
        let what = if session.result().is_none() {
            "no reconstruction was on screen"
        } else {
            "nothing changed on screen or in the sweep"
        };
        state.finish(Err(format!("{what} for {} s", state.plan.timeout.as_secs())));
    } else if ready && !state.requested {
        let first_picture_ms = *state.first_picture_ms.get_or_insert(state.plan.launched.elapsed().as_secs_f64() * 1e3);
        let step = state.step_ratio(session, fresh_forward_ms);
        let step = match step {
            Step::Done => state.step_scrub(session),
            other => Ok(other),
        };
        let step = match step {
            Ok(step) => step,
            Err(failure) => {
                state.finish(Err(failure));
                Step::Done
            }
        };
        match step {
            Step::Moved => {
                // The next frame draws the slider where it moved and sends the forward pass.
                ctx.request_repaint_after(ONE_MORE_FRAME);
                return;
            }
            Step::Waiting => {
                // Frames meanwhile would take the CPU the model needs; this only keeps the time limit noticed.
                ctx.request_repaint_after(TIMEOUT_CHECK_INTERVAL);
                return;
            }
            Step::Done => {}
        }
        state.settled_frames += 1;
        if state.settled_frames > SETTLE_FRAMES {
            state.requested = true;
            let path = state.plan.path.clone();
            let outcome = state.plan.outcome.clone();
            let repaint = ctx.clone();
            let (warm_forward_ms, latency_ms) = (median(&state.warm_forward_ms), median(&state.latency_ms));
            let scrub = state.scrub.figures.clone();
            ctx.request_screenshot(move |image| {
                let captured =
                    Captured { forward_ms, models, wins, first_picture_ms, warm_forward_ms, latency_ms, scrub };
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

#[cfg(test)]
mod tests {
    use eframe::egui;

    use super::{ignore_pointer, median};

    #[test]
    fn a_screenshot_run_sees_no_pointer_and_keeps_other_input() {
        let events = vec![
            egui::Event::PointerMoved(egui::pos2(640.0, 400.0)),
            egui::Event::Text("a".to_string()),
            egui::Event::PointerButton {
                pos: egui::pos2(640.0, 400.0),
                button: egui::PointerButton::Primary,
                pressed: true,
                modifiers: egui::Modifiers::NONE,
            },
        ];
        let mut raw_input = egui::RawInput { events, ..Default::default() };
        ignore_pointer(&mut raw_input);
        assert_eq!(raw_input.events, vec![egui::Event::Text("a".to_string()), egui::Event::PointerGone]);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
