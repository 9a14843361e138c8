//! The menu bar. The View menu is built from the one list of panels (`panels::PanelId::ALL`).

use eframe::egui;

use super::app::{EXPORT_SHORTCUT, MaeApp, OPEN_SHORTCUT, SAVE_PICTURES_SHORTCUT};
use super::panels::PanelId;

pub fn menu_bar(app: &mut MaeApp, ui: &mut egui::Ui) {
    let ctx = ui.ctx().clone();
    egui::Panel::top("menu_bar").show(ui, |ui| {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| file_menu(app, ui, &ctx));
            ui.menu_button("View", |ui| view_menu(app, ui));
            ui.menu_button("Help", |ui| {
                ui.label("Shortcuts: Ctrl+O open · Ctrl+V paste · Ctrl+S save pictures · Ctrl+E export");
                ui.label("R new random seed · ←/→ change the mask ratio by 0.01");
                ui.label("Painted mode: click or drag over the original/masked picture to toggle patches.");
                ui.label("Tiles: drag a tab to move it, drag an edge to resize, × to close (View reopens).");
                ui.separator();
                if ui
                    .button("Test crash recovery")
                    .on_hover_text("Make the model worker panic on purpose: the window reports it and carries on")
                    .clicked()
                {
                    app.session.crash_worker();
                    ui.close();
                }
            });
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let settings = &mut app.session.settings;
                let label = if settings.dark_theme { "Light theme" } else { "Dark theme" };
                if ui.button(label).on_hover_text("Toggle the dark/light theme").clicked() {
                    settings.dark_theme = !settings.dark_theme;
                }
            });
        });
    });
}

fn file_menu(app: &mut MaeApp, ui: &mut egui::Ui, ctx: &egui::Context) {
    let session = &mut app.session;
    if ui
        .add(egui::Button::new("Open image…").shortcut_text(ctx.format_shortcut(&OPEN_SHORTCUT)))
        .on_hover_text("Open a photo (PNG, JPEG, WebP, …). You can also drop a file or paste an image.")
        .clicked()
    {
        session.files.pick_image(ctx);
        ui.close();
    }
    ui.add_enabled_ui(!session.settings.recent_files.is_empty(), |ui| {
        ui.menu_button("Open recent", |ui| {
            for path in session.settings.recent_files.clone() {
                if ui.button(path.display().to_string()).on_hover_text("Open this file again").clicked() {
                    session.files.open_path(path, ctx);
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
        session.files.pick_model_folder(ctx);
        ui.close();
    }
    let cached_menu = ui.menu_button("Models in the Hugging Face cache", |ui| {
        let cached = session.cached_models.get_or_insert_with(mae_model::cached_models).clone();
        if cached.is_empty() {
            ui.label("The cache holds no ViTMAE models");
        }
        for model in cached {
            let size = format!("{:.0} MB", model.size_bytes as f64 / 1e6);
            if ui.button(format!("{} ({size})", model.repo)).on_hover_text("Load this model").clicked() {
                let (device, dtype) = (session.device, session.dtype);
                session.load_model(model.repo.clone(), device, dtype);
                ui.close();
            }
        }
    });
    cached_menu.response.on_hover_text("Models already downloaded: no network needed");
    ui.separator();
    if ui
        .add(
            egui::Button::new("Save the four pictures as PNG…")
                .shortcut_text(ctx.format_shortcut(&SAVE_PICTURES_SHORTCUT)),
        )
        .on_hover_text("Original, masked, reconstruction and pasted side by side in one picture")
        .clicked()
    {
        app.export.ask_where_to_save_pictures(&mut app.session, ctx);
        ui.close();
    }
    if ui
        .add(egui::Button::new("Export…").shortcut_text(ctx.format_shortcut(&EXPORT_SHORTCUT)))
        .on_hover_text("Comparison grids of several ratios and seeds, and the current result")
        .clicked()
    {
        app.export.open = true;
        ui.close();
    }
    ui.separator();
    if ui.button("Quit").on_hover_text("Close the window (settings and layout are saved)").clicked() {
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }
}

/// A checkbox per panel (open/closed), the control panel, the theme and "Reset layout".
fn view_menu(app: &mut MaeApp, ui: &mut egui::Ui) {
    for &panel in PanelId::ALL {
        let mut open = app.layout.is_open(panel);
        let entry = app.panels.get(panel);
        if ui.checkbox(&mut open, entry.title()).on_hover_text(entry.description()).changed() {
            app.layout.set_open(panel, open);
        }
    }
    ui.separator();
    let settings = &mut app.session.settings;
    ui.checkbox(&mut settings.show_controls, "Controls").on_hover_text("The model, masking and display controls");
    ui.checkbox(&mut settings.dark_theme, "Dark theme").on_hover_text("Switch dark/light colours");
    if ui.button("Reset layout").on_hover_text("Every panel back to where it starts").clicked() {
        app.layout.reset();
        ui.close();
    }
}
