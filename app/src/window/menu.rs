//! The menu bar, the status line and the banners (messages, model problems).

use eframe::egui::{self, Color32, RichText};

use super::app::{EXPORT_SHORTCUT, MaeApp, ModelState, OPEN_SHORTCUT, SAVE_PANELS_SHORTCUT};

pub fn menu_bar(app: &mut MaeApp, ui: &mut egui::Ui) {
    let ctx = ui.ctx().clone();
    egui::Panel::top("menu_bar").show(ui, |ui| {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui
                    .add(egui::Button::new("Open image…").shortcut_text(ctx.format_shortcut(&OPEN_SHORTCUT)))
                    .on_hover_text("Open a photo (PNG, JPEG, WebP, …). You can also drop a file or paste an image.")
                    .clicked()
                {
                    app.open_image_dialog(&ctx);
                    ui.close();
                }
                ui.add_enabled_ui(!app.settings.recent_files.is_empty(), |ui| {
                    ui.menu_button("Open recent", |ui| {
                        for path in app.settings.recent_files.clone() {
                            if ui.button(path.display().to_string()).on_hover_text("Open this file again").clicked() {
                                app.open_recent(path, &ctx);
                                ui.close();
                            }
                        }
                    });
                });
                if ui
                    .button("Open model folder…")
                    .on_hover_text("A folder with config.json and model.safetensors (a ViTMAE checkpoint)")
                    .clicked()
                {
                    app.open_model_dialog(&ctx);
                    ui.close();
                }
                let cached_menu = ui.menu_button("Models in the Hugging Face cache", |ui| {
                    let cached = app.cached_models.get_or_insert_with(mae_model::cached_models).clone();
                    if cached.is_empty() {
                        ui.label("The cache holds no ViTMAE models");
                    }
                    for model in cached {
                        let size = format!("{:.0} MB", model.size_bytes as f64 / 1e6);
                        if ui.button(format!("{} ({size})", model.repo)).on_hover_text("Load this model").clicked() {
                            let device = app.device_arg.clone();
                            app.load_model(model.repo.clone(), device);
                            ui.close();
                        }
                    }
                });
                cached_menu.response.on_hover_text("Models already downloaded: no network needed");
                ui.separator();
                if ui
                    .add(
                        egui::Button::new("Save the four panels as PNG…")
                            .shortcut_text(ctx.format_shortcut(&SAVE_PANELS_SHORTCUT)),
                    )
                    .on_hover_text("Original, masked, reconstruction and pasted side by side in one picture")
                    .clicked()
                {
                    app.request_save_panels(&ctx);
                    ui.close();
                }
                if ui
                    .add(egui::Button::new("Export…").shortcut_text(ctx.format_shortcut(&EXPORT_SHORTCUT)))
                    .on_hover_text("Export pictures of the current result")
                    .clicked()
                {
                    app.export_dialog.open = true;
                    ui.close();
                }
                ui.separator();
                if ui.button("Quit").on_hover_text("Close the window (settings are saved)").clicked() {
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                ui.checkbox(&mut app.settings.dark_theme, "Dark theme").on_hover_text("Switch dark/light colours");
                super::controls::panel_toggles(app, ui);
            });
            ui.menu_button("Help", |ui| {
                ui.label("Shortcuts: Ctrl+O open · Ctrl+V paste · Ctrl+S save panels · Ctrl+E export");
                ui.label("R new random seed · ←/→ change the mask ratio by 0.01");
                ui.label("Painted mode: click or drag over the original/masked picture to toggle patches.");
                ui.separator();
                if ui
                    .button("Test crash recovery")
                    .on_hover_text("Make the model worker panic on purpose: the window reports it and carries on")
                    .clicked()
                {
                    app.crash_worker();
                    ui.close();
                }
            });
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let label = if app.settings.dark_theme { "Light theme" } else { "Dark theme" };
                if ui.button(label).on_hover_text("Toggle the dark/light theme").clicked() {
                    app.settings.dark_theme = !app.settings.dark_theme;
                }
            });
        });
    });
}

pub fn status_bar(app: &mut MaeApp, ui: &mut egui::Ui) {
    egui::Panel::bottom("status_bar").show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            match &app.model {
                ModelState::Ready(info) => {
                    ui.label(format!("model {} · {}", info.name, info.device)).on_hover_text(format!(
                        "{}×{} input, {}×{} patches of {} px, loaded in {:.0} ms",
                        info.image_size.1, info.image_size.0, info.grid.1, info.grid.0, info.patch_size, info.load_ms
                    ));
                }
                ModelState::Loading { what, since } => {
                    ui.spinner();
                    ui.label(format!("{what} ({:.0} s)", since.elapsed().as_secs_f64()));
                }
                ModelState::Failed(_) => {
                    ui.colored_label(Color32::from_rgb(230, 90, 80), "no model");
                }
            }
            if let Some((_, what, since)) = &app.loading_model
                && matches!(app.model, ModelState::Ready(_))
            {
                ui.separator();
                ui.spinner();
                ui.label(format!("{what} ({:.0} s)", since.elapsed().as_secs_f64()));
                if let Some(fraction) = app.download_fraction {
                    ui.add(egui::ProgressBar::new(fraction).desired_width(120.0));
                }
            }
            ui.separator();
            match app.shown.as_ref() {
                Some(shown) => {
                    let forward = shown.forward_ms.map_or("cached".to_string(), |ms| format!("{ms:.0} ms"));
                    ui.label(format!("last forward {forward} · draw {:.0} ms", shown.render_ms))
                        .on_hover_text("Time of the last forward pass on the worker, and of drawing its panels");
                }
                None => {
                    ui.label("no result yet");
                }
            }
            if !app.is_up_to_date() && app.shown.is_some() {
                ui.spinner().on_hover_text("A newer request is being computed");
            }
            ui.separator();
            let stats = app.worker_stats();
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
            if app.files.decoding > 0 {
                ui.separator();
                ui.spinner();
                ui.label("opening an image…");
            }
            if let Some(image) = &app.image {
                ui.separator();
                ui.label(format!("{} ({}×{})", image.name, image.rgb.width(), image.rgb.height()));
            }
        });
    });
}

pub fn notice_banner(app: &mut MaeApp, ui: &mut egui::Ui) {
    let Some(notice) = app.notice.clone() else { return };
    let color = if notice.is_error { Color32::from_rgb(230, 90, 80) } else { ui.visuals().text_color() };
    ui.horizontal(|ui| {
        ui.label(RichText::new(&notice.text).color(color));
        if ui.small_button("Dismiss").on_hover_text("Hide this message").clicked() {
            app.notice = None;
        }
    });
    ui.add_space(4.0);
}

/// When there is no model, say why in plain words and offer the way out.
pub fn model_banner(app: &mut MaeApp, ui: &mut egui::Ui) {
    let ctx = ui.ctx().clone();
    match &app.model {
        ModelState::Failed(error) if !error.is_empty() => {
            let error = error.clone();
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.label(RichText::new("No model is loaded").strong().size(16.0));
                ui.label(format!("{} could not be loaded: {error}", app.model_arg));
                let hub_id = mae_model::hub::split_repo_id(&app.model_arg).is_ok()
                    && !std::path::Path::new(&app.model_arg).exists();
                if hub_id {
                    ui.label(
                        "Without a network connection, a hub model must already be in the Hugging Face cache. \
                         You can open a local model folder instead (config.json + model.safetensors).",
                    );
                } else {
                    ui.label("A model folder holds config.json and model.safetensors (or pytorch_model.bin).");
                }
                if let Some(cached) = app.cached_models.clone().filter(|models| !models.is_empty()) {
                    ui.label("Models in your Hugging Face cache:");
                    ui.horizontal_wrapped(|ui| {
                        for model in cached {
                            let size = format!("{:.0} MB", model.size_bytes as f64 / 1e6);
                            if ui.button(&model.repo).on_hover_text(format!("Load {} ({size})", model.repo)).clicked() {
                                let device = app.device_arg.clone();
                                app.load_model(model.repo.clone(), device);
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
                        app.open_model_dialog(&ctx);
                    }
                    if ui.button("Try again").on_hover_text(format!("Load {} again", app.model_arg)).clicked() {
                        let (model, device) = (app.model_arg.clone(), app.device_arg.clone());
                        app.load_model(model, device);
                    }
                });
            });
            ui.add_space(6.0);
        }
        ModelState::Loading { what, since } => {
            let downloading = what.starts_with("downloading");
            let text = format!("{what} ({:.0} s) — you can open an image meanwhile", since.elapsed().as_secs_f64());
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(text);
                if downloading && ui.button("Cancel").on_hover_text("Stop the download").clicked() {
                    app.cancel_model_load();
                }
            });
            if let Some(fraction) = app.download_fraction {
                ui.add(egui::ProgressBar::new(fraction).show_percentage().desired_width(400.0));
            }
            ui.add_space(6.0);
        }
        _ => {}
    }
}
