//! The status line at the bottom and the banners above the tiles (messages, model problems).

use eframe::egui::{self, Color32, RichText};

use super::busy;
use super::file_request::FileRequest;
use super::frame_timer::FrameTimer;
use super::session::{Loading, ModelState, Session};
use super::text;
use crate::worker::LoadProgress;
use mae_model::CachedModel;

const ERROR_COLOR: Color32 = Color32::from_rgb(230, 90, 80);
/// Room kept beside a message for its buttons (More/Less and Dismiss, or Cancel).
const NOTICE_BUTTONS_WIDTH: f32 = 130.0;
/// Narrowest a message is wrapped to, however narrow the window.
const MIN_TEXT_WIDTH: f32 = 60.0;

/// The bottom line: model, load or download progress, the last forward, the worker's counts, frame times (the
/// window's own code, then whole frames) and the image.
pub fn status_bar(session: &mut Session, [ui_frame, whole_frame]: [&FrameTimer; 2], ui: &mut egui::Ui) {
    egui::Panel::bottom("status_bar").show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            match &session.model().state {
                ModelState::Ready(info) => {
                    let dtype = mae_model::dtype_name(info.dtype);
                    let name = text::shortened(&info.name, text::NAME_CHARS);
                    ui.label(format!("model {name} · {} · {dtype}", info.device)).on_hover_text(format!(
                        "{}: {}×{} input, {}×{} patches of {} px, loaded in {:.0} ms",
                        info.name,
                        info.image_size.1,
                        info.image_size.0,
                        info.grid.1,
                        info.grid.0,
                        info.patch_size,
                        info.load_ms
                    ));
                }
                ModelState::Loading => {
                    ui.label("loading a model");
                }
                ModelState::Failed(_) => {
                    ui.colored_label(ERROR_COLOR, "no model");
                }
            }
            let mut cancel = false;
            if let Some(loading) = &session.model().loading {
                ui.separator();
                busy::indicator(ui);
                ui.label(load_progress_line(loading)).on_hover_text(&loading.model);
                if let Some(fraction) = loading.progress.fraction() {
                    ui.add(egui::ProgressBar::new(fraction).desired_width(120.0));
                }
                cancel = matches!(loading.progress, LoadProgress::Downloading(_))
                    && ui.small_button("Cancel").on_hover_text("Stop the download").clicked();
            }
            if let Some(fetch) = &session.model().fetch {
                ui.separator();
                busy::indicator(ui);
                let what = match &fetch.progress {
                    Some(progress) => LoadProgress::Downloading(progress.clone()).to_string(),
                    None => "downloading".to_string(),
                };
                ui.label(format!(
                    "{}: {what} ({:.0} s), the demo model meanwhile",
                    fetch.hub_id,
                    fetch.since.elapsed().as_secs_f64()
                ))
                .on_hover_text("The real model downloads in the background; the window switches to it when it is in");
                if let Some(fraction) = fetch.progress.clone().map(LoadProgress::Downloading).and_then(|p| p.fraction())
                {
                    ui.add(egui::ProgressBar::new(fraction).desired_width(120.0));
                }
                cancel |=
                    ui.small_button("Cancel").on_hover_text("Stop the download and keep the demo model").clicked();
            }
            if cancel {
                session.model().cancel_load();
            }
            ui.separator();
            match session.result() {
                Some(result) => {
                    let forward = result.first().forward_ms.map_or("cached".to_string(), |ms| format!("{ms:.0} ms"));
                    ui.label(format!("last forward {forward} · draw {:.0} ms", result.render_ms))
                        .on_hover_text("Time of the last forward pass on the worker, and of drawing its pictures");
                }
                None => {
                    ui.label("no result yet");
                }
            }
            if !session.is_up_to_date() && session.result().is_some() {
                // A still word, not a spinner: a forward pass is under a second, its answer wakes the window, and
                // every frame drawn meanwhile (a software renderer's) is CPU taken from that very forward pass.
                ui.weak("computing…").on_hover_text("A newer request is being computed");
            }
            ui.separator();
            let stats = session.forwards.stats();
            ui.label(format!("forwards {}", stats.forwards())).on_hover_text(format!(
                "{} forward requests, {} skipped because a newer one was waiting; {} more forward passes for the \
                 mask-ratio sweeps",
                stats.forward_requests(),
                stats.superseded(),
                stats.sweep_forwards()
            ));
            sweep_status(session, ui);
            if let (Some(mean), Some(max)) = (ui_frame.mean_ms(), ui_frame.max_ms()) {
                ui.separator();
                ui.label(format!("UI frame {mean:.1} ms (max {max:.1})"))
                    .on_hover_text("Time the window's own code takes per frame, over the last frames");
            }
            if let (Some(mean), Some(max)) = (whole_frame.mean_ms(), whole_frame.max_ms()) {
                ui.label(format!("whole frame {mean:.1} ms (max {max:.1})")).on_hover_text(
                    "Whole frames as eframe measures them: the window's code, tessellation and rendering \
                     (without waiting for the display)",
                );
            }
            if session.files.decoding > 0 {
                ui.separator();
                busy::indicator(ui);
                ui.label("opening an image…");
            }
            if let Some(image) = &session.image.input {
                ui.separator();
                let size = format!(" ({}×{})", image.rgb.width(), image.rgb.height());
                let name = text::shortened(&image.name, text::NAME_CHARS);
                ui.label(format!("{name}{size}")).on_hover_text(&image.name);
            }
        });
    });
}

/// How far the mask-ratio sweep of the image on screen has come ("sweep 64/197"), with a button that stops it, or
/// why it stopped early.
fn sweep_status(session: &mut Session, ui: &mut egui::Ui) {
    let current = session.image.id();
    let Some(report) = session.forwards.sweep.as_ref().filter(|report| Some(report.image_id) == current) else {
        return;
    };
    let (done, total) =
        report.models.iter().fold((0, 0), |(done, total), model| (done + model.done, total + model.total));
    let stopped = report.models.iter().find_map(|model| model.stopped.clone());
    if report.is_over() && stopped.is_none() {
        return;
    }
    ui.separator();
    let hover = "Every distinct mask of the ratio slider (this image, strategy and seed) computed in the background, \
                 so dragging the slider shows them at once; a request of yours always goes first";
    match stopped {
        Some(why) => {
            ui.label(format!("sweep {done}/{total} {why}")).on_hover_text(hover);
        }
        None => {
            ui.label(format!("sweep {done}/{total}")).on_hover_text(hover);
            if ui.small_button("Stop").on_hover_text("Stop computing the sweep of this image").clicked() {
                session.forwards.stop_sweep();
            }
        }
    }
}

/// The message banner and, when there is no model, why and the way out.
pub fn banners(session: &mut Session, ui: &mut egui::Ui) {
    if session.messages.notice.is_none() && !session.model().in_trouble() {
        return;
    }
    egui::Frame::new().inner_margin(egui::Margin::symmetric(8, 4)).show(ui, |ui| {
        notice_banner(session, ui);
        model_banner(session, ui);
    });
}

fn notice_banner(session: &mut Session, ui: &mut egui::Ui) {
    let Some(notice) = session.messages.notice.as_mut() else { return };
    let color = if notice.is_error { ERROR_COLOR } else { ui.visuals().text_color() };
    let mut dismissed = false;
    ui.horizontal_top(|ui| {
        let text_width = (ui.available_width() - NOTICE_BUTTONS_WIDTH).max(MIN_TEXT_WIDTH);
        let max_rows = (!notice.expanded).then_some(text::MESSAGE_ROWS);
        let cut = ui
            .allocate_ui(egui::vec2(text_width, 0.0), |ui| {
                text::wrapped_message(ui, &notice.text, color, text_width, max_rows)
            })
            .inner;
        if (cut || notice.expanded)
            && ui
                .small_button(if notice.expanded { "Less" } else { "More" })
                .on_hover_text(if notice.expanded { "Show the first lines only" } else { "Show the whole message" })
                .clicked()
        {
            notice.expanded = !notice.expanded;
        }
        dismissed = ui.small_button("Dismiss").on_hover_text("Hide this message").clicked();
    });
    if dismissed {
        session.messages.notice = None;
    }
    ui.add_space(4.0);
}

fn model_banner(session: &mut Session, ui: &mut egui::Ui) {
    let ctx = ui.ctx().clone();
    match &session.model().state {
        ModelState::Failed(error) if session.model().loading.is_none() => {
            let error = error.clone();
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.label(RichText::new("No model is loaded").strong().size(16.0));
                ui.label(format!("{} could not be loaded: {error}", session.model().arg));
                let hub_id = mae_model::hub::split_repo_id(&session.model().arg).is_ok()
                    && !std::path::Path::new(&session.model().arg).exists();
                if hub_id {
                    ui.label(
                        "Without a network connection, a hub model must already be in the Hugging Face cache. \
                         You can open a local model folder instead (config.json + model.safetensors).",
                    );
                } else {
                    ui.label("A model folder holds config.json and model.safetensors (or pytorch_model.bin).");
                }
                if let Some(cached) = session.model().cached_models.clone().filter(|models| !models.is_empty()) {
                    ui.label("Models in your Hugging Face cache:");
                    ui.horizontal_wrapped(|ui| {
                        for model in cached {
                            if cached_model_button(ui, &model).clicked() {
                                session.load_model(model.repo);
                            }
                        }
                    });
                }
                ui.horizontal(|ui| {
                    if ui
                        .button("Open model folder…")
                        .on_hover_text("Pick a folder with config.json and model.safetensors")
                        .clicked()
                    {
                        session.files.ask(FileRequest::OpenModel, &ctx);
                    }
                    let model = session.model().arg.clone();
                    if ui.button("Try again").on_hover_text(format!("Load {model} again")).clicked() {
                        session.load_model(model);
                    }
                });
            });
            ui.add_space(6.0);
        }
        ModelState::Loading | ModelState::Failed(_) => {
            let Some(loading) = &session.model().loading else { return };
            let downloading = matches!(loading.progress, LoadProgress::Downloading(_));
            let fraction = loading.progress.fraction();
            let line = format!("{} — you can open an image meanwhile", load_progress_line(loading));
            let cancel = ui
                .horizontal_top(|ui| {
                    busy::indicator(ui);
                    let text_width = (ui.available_width() - NOTICE_BUTTONS_WIDTH).max(MIN_TEXT_WIDTH);
                    let color = ui.visuals().text_color();
                    ui.allocate_ui(egui::vec2(text_width, 0.0), |ui| {
                        text::wrapped_message(ui, &line, color, text_width, Some(text::MESSAGE_ROWS))
                    });
                    downloading && ui.button("Cancel").on_hover_text("Stop the download").clicked()
                })
                .inner;
            if cancel {
                session.model().cancel_load();
            }
            if let Some(fraction) = fraction {
                ui.add(egui::ProgressBar::new(fraction).show_percentage().desired_width(400.0));
            }
            ui.add_space(6.0);
        }
        ModelState::Ready(_) => {}
    }
}

/// "model: what the load is doing (seconds so far)", the model's name shortened.
fn load_progress_line(loading: &Loading) -> String {
    let model = text::shortened(&loading.model, text::NAME_CHARS);
    format!("{model}: {} ({:.0} s)", loading.progress, loading.since.elapsed().as_secs_f64())
}

/// A button that loads a model of the Hugging Face cache (in the File menu and the no-model banner).
pub fn cached_model_button(ui: &mut egui::Ui, model: &CachedModel) -> egui::Response {
    let size = format!("{:.0} MB", model.size_bytes as f64 / 1e6);
    ui.button(format!("{} ({size})", text::shortened(&model.repo, text::NAME_CHARS)))
        .on_hover_text(format!("Load {} (already downloaded: no network needed)", model.repo))
}
