//! The status line at the bottom and the banners above the tiles (messages, model problems).

use eframe::egui::{self, Color32, RichText};

use super::app::MaeApp;
use super::busy;
use super::session::{ModelState, Session};
use crate::worker::LoadProgress;

const ERROR_COLOR: Color32 = Color32::from_rgb(230, 90, 80);

pub fn status_bar(app: &mut MaeApp, ui: &mut egui::Ui) {
    egui::Panel::bottom("status_bar").show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            let session = &mut app.session;
            match &session.model {
                ModelState::Ready(info) => {
                    let dtype = mae_model::dtype_name(info.dtype);
                    ui.label(format!("model {} · {} · {dtype}", info.name, info.device)).on_hover_text(format!(
                        "{}×{} input, {}×{} patches of {} px, loaded in {:.0} ms",
                        info.image_size.1, info.image_size.0, info.grid.1, info.grid.0, info.patch_size, info.load_ms
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
            if let Some(loading) = &session.loading {
                ui.separator();
                busy::indicator(ui);
                let what = format!("{}: {}", loading.model, loading.progress);
                ui.label(format!("{what} ({:.0} s)", loading.since.elapsed().as_secs_f64()));
                if let Some(fraction) = loading.progress.fraction() {
                    ui.add(egui::ProgressBar::new(fraction).desired_width(120.0));
                }
                cancel = matches!(loading.progress, LoadProgress::Downloading(_))
                    && ui.small_button("Cancel").on_hover_text("Stop the download").clicked();
            }
            if cancel {
                session.cancel_model_load();
            }
            ui.separator();
            match session.result.as_ref() {
                Some(result) => {
                    let forward = result.forward_ms.map_or("cached".to_string(), |ms| format!("{ms:.0} ms"));
                    ui.label(format!("last forward {forward} · draw {:.0} ms", result.render_ms))
                        .on_hover_text("Time of the last forward pass on the worker, and of drawing its pictures");
                }
                None => {
                    ui.label("no result yet");
                }
            }
            if !session.is_up_to_date() && session.result.is_some() {
                busy::indicator(ui).on_hover_text("A newer request is being computed");
            }
            ui.separator();
            let stats = session.worker_stats();
            ui.label(format!("forwards {}", stats.forwards())).on_hover_text(format!(
                "{} forward requests, {} skipped because a newer one was waiting",
                stats.forward_requests(),
                stats.superseded()
            ));
            if let (Some(mean), Some(max)) = (app.frame_timer.mean_ms(), app.frame_timer.max_ms()) {
                ui.separator();
                ui.label(format!("UI frame {mean:.1} ms (max {max:.1})"))
                    .on_hover_text("Time the window's own code takes per frame, over the last frames");
            }
            if let (Some(mean), Some(max)) = (app.whole_frame_timer.mean_ms(), app.whole_frame_timer.max_ms()) {
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
            if let Some(image) = &session.image {
                ui.separator();
                ui.label(format!("{} ({}×{})", image.name, image.rgb.width(), image.rgb.height()));
            }
        });
    });
}

/// The message banner and, when there is no model, why and the way out.
pub fn banners(session: &mut Session, ui: &mut egui::Ui) {
    let model_trouble = session.loading.is_some() && !matches!(session.model, ModelState::Ready(_))
        || matches!(session.model, ModelState::Failed(_));
    if session.notice.is_none() && !model_trouble {
        return;
    }
    egui::Frame::new().inner_margin(egui::Margin::symmetric(8, 4)).show(ui, |ui| {
        notice_banner(session, ui);
        model_banner(session, ui);
    });
}

fn notice_banner(session: &mut Session, ui: &mut egui::Ui) {
    let Some(notice) = session.notice.clone() else { return };
    let color = if notice.is_error { ERROR_COLOR } else { ui.visuals().text_color() };
    ui.horizontal(|ui| {
        ui.label(RichText::new(&notice.text).color(color));
        if ui.small_button("Dismiss").on_hover_text("Hide this message").clicked() {
            session.notice = None;
        }
    });
    ui.add_space(4.0);
}

fn model_banner(session: &mut Session, ui: &mut egui::Ui) {
    let ctx = ui.ctx().clone();
    match &session.model {
        ModelState::Failed(error) if session.loading.is_none() => {
            let error = error.clone();
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.label(RichText::new("No model is loaded").strong().size(16.0));
                ui.label(format!("{} could not be loaded: {error}", session.model_arg));
                let hub_id = mae_model::hub::split_repo_id(&session.model_arg).is_ok()
                    && !std::path::Path::new(&session.model_arg).exists();
                if hub_id {
                    ui.label(
                        "Without a network connection, a hub model must already be in the Hugging Face cache. \
                         You can open a local model folder instead (config.json + model.safetensors).",
                    );
                } else {
                    ui.label("A model folder holds config.json and model.safetensors (or pytorch_model.bin).");
                }
                let (device, dtype) = (session.device, session.dtype);
                if let Some(cached) = session.cached_models.clone().filter(|models| !models.is_empty()) {
                    ui.label("Models in your Hugging Face cache:");
                    ui.horizontal_wrapped(|ui| {
                        for model in cached {
                            let size = format!("{:.0} MB", model.size_bytes as f64 / 1e6);
                            if ui.button(&model.repo).on_hover_text(format!("Load {} ({size})", model.repo)).clicked() {
                                session.load_model(model.repo.clone(), device, dtype);
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
                        session.files.pick_model_folder(&ctx);
                    }
                    let model = session.model_arg.clone();
                    if ui.button("Try again").on_hover_text(format!("Load {model} again")).clicked() {
                        session.load_model(model, device, dtype);
                    }
                });
            });
            ui.add_space(6.0);
        }
        ModelState::Loading | ModelState::Failed(_) => {
            let Some(loading) = &session.loading else { return };
            let downloading = matches!(loading.progress, LoadProgress::Downloading(_));
            let fraction = loading.progress.fraction();
            let text = format!(
                "{}: {} ({:.0} s) — you can open an image meanwhile",
                loading.model,
                loading.progress,
                loading.since.elapsed().as_secs_f64()
            );
            let cancel = ui
                .horizontal(|ui| {
                    busy::indicator(ui);
                    ui.label(text);
                    downloading && ui.button("Cancel").on_hover_text("Stop the download").clicked()
                })
                .inner;
            if cancel {
                session.cancel_model_load();
            }
            if let Some(fraction) = fraction {
                ui.add(egui::ProgressBar::new(fraction).show_percentage().desired_width(400.0));
            }
            ui.add_space(6.0);
        }
        ModelState::Ready(_) => {}
    }
}
