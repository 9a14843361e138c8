//! The menu bar. The View menu is built from the one list of panels (`panels::PanelId::ALL`).

use eframe::egui;

use eframe::egui::{Key, KeyboardShortcut, Modifiers};

use super::export::ExportDialog;
use super::file_request::FileRequest;
use super::files::Purpose;
use super::layout::Layout;
use super::panels::{PanelId, Panels};
use super::session::Session;
use super::status::cached_model_button;
use super::text;

pub const OPEN_SHORTCUT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);
pub const EXPORT_SHORTCUT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::E);
pub const SAVE_PICTURES_SHORTCUT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::S);

/// What the menus act on.
pub struct MenuTargets<'a> {
    pub session: &'a mut Session,
    pub export: &'a mut ExportDialog,
    pub layout: &'a mut Layout,
    pub panels: &'a Panels,
}

pub fn menu_bar(mut app: MenuTargets<'_>, ui: &mut egui::Ui) {
    let ctx = ui.ctx().clone();
    egui::Panel::top("menu_bar").show(ui, |ui| {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| file_menu(&mut app, ui, &ctx));
            ui.menu_button("View", |ui| view_menu(&mut app, ui));
            ui.menu_button("Help", |ui| {
                ui.label("Shortcuts: Ctrl+O open · Ctrl+V paste · Ctrl+S save pictures · Ctrl+E export");
                ui.label("R new random seed · Left/Right arrow keys change the mask ratio by 0.01");
                ui.label("Painted mode: click or drag over the original/masked picture to toggle patches.");
                ui.label("Tiles: drag a tab to move it, drag an edge to resize, × to close (View reopens).");
                ui.separator();
                if ui
                    .button("Test crash recovery")
                    .on_hover_text("Make the model worker panic on purpose: the window reports it and carries on")
                    .clicked()
                {
                    app.session.forwards.crash_worker();
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

fn file_menu(app: &mut MenuTargets<'_>, ui: &mut egui::Ui, ctx: &egui::Context) {
    let session = &mut *app.session;
    if ui
        .add(egui::Button::new("Open image…").shortcut_text(ctx.format_shortcut(&OPEN_SHORTCUT)))
        .on_hover_text("Open a photo (PNG, JPEG, WebP, …). You can also drop a file or paste an image.")
        .clicked()
    {
        session.files.ask(FileRequest::OpenImage, ctx);
        ui.close();
    }
    if ui
        .button("Browse files in the window…")
        .on_hover_text("Open an image with the window's own file browser instead of the system's dialog")
        .clicked()
    {
        session.files.browse_in_window(FileRequest::OpenImage, None);
        ui.close();
    }
    ui.add_enabled_ui(!session.settings.recent_files.is_empty(), |ui| {
        ui.menu_button("Open recent", |ui| {
            for path in session.settings.recent_files.clone() {
                let full = path.display().to_string();
                if ui
                    .button(text::shortened(&full, text::NAME_CHARS))
                    .on_hover_text(format!("Open {full} again"))
                    .clicked()
                {
                    session.files.open_path(path, Purpose::Image, ctx);
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
        session.files.ask(FileRequest::OpenModel, ctx);
        ui.close();
    }
    if ui
        .button("Open mask…")
        .on_hover_text("A picture whose white areas are masked (any size; cut into the model's patches)")
        .clicked()
    {
        session.files.ask(FileRequest::OpenMask, ctx);
        ui.close();
    }
    let cached_menu = ui.menu_button("Models in the Hugging Face cache", |ui| {
        let cached = session.model_mut().cached_models().to_vec();
        if cached.is_empty() {
            ui.label("The cache holds no ViTMAE models");
        }
        for model in cached {
            if cached_model_button(ui, &model).clicked() {
                session.load_model(model.repo);
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
        app.export.ask_where_to_save_pictures(app.session, ctx);
        ui.close();
    }
    let session = &mut *app.session;
    let has_mask = session.result().is_some();
    if ui
        .add_enabled(has_mask, egui::Button::new("Save mask…"))
        .on_hover_text("The mask on screen as a picture (white = masked) that File > Open mask… reads back")
        .clicked()
    {
        let name = format!("{}-mask.png", super::export::file_stem(session, "mask"));
        session.files.ask(FileRequest::SaveMask { suggested_name: name }, ctx);
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
    if ui
        .button("Export animation…")
        .on_hover_text("The comparison grid as a GIF or animated PNG, one frame per mask ratio or per seed")
        .clicked()
    {
        // The Export dialog holds the animation's settings beside the grid's, which it shares.
        app.export.open = true;
        ui.close();
    }
    ui.separator();
    if ui.button("Quit").on_hover_text("Close the window (settings and layout are saved)").clicked() {
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }
}

/// A checkbox per panel (open/closed), the control panel, the theme and "Reset layout".
fn view_menu(app: &mut MenuTargets<'_>, ui: &mut egui::Ui) {
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
