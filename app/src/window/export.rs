//! Saving pictures: the four panels as one PNG (Ctrl+S) and the Export dialog (Ctrl+E). Files are composed
//! and written on a thread, atomically, so a failure never leaves half a file and never freezes the window.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, Sender};
use eframe::egui::{self, ColorImage};
use image::{Rgba, RgbaImage};

use super::app::MaeApp;
use crate::atomic_file::write_atomically;

/// Gap between panels in the saved picture, in pixels.
const GAP: u32 = 8;
const BACKGROUND: Rgba<u8> = Rgba([255, 255, 255, 255]);

#[derive(Debug)]
pub struct ExportDialog {
    pub open: bool,
    finished: (Sender<SaveOutcome>, Receiver<SaveOutcome>),
    pub saving: usize,
}

impl Default for ExportDialog {
    fn default() -> Self {
        Self { open: false, finished: crossbeam_channel::unbounded(), saving: 0 }
    }
}

#[derive(Debug)]
struct SaveOutcome {
    path: PathBuf,
    result: Result<(), String>,
}

/// The panels side by side, at model resolution, on a white background.
pub fn compose_panels(panels: &[&ColorImage]) -> RgbaImage {
    let width: u32 = panels.iter().map(|p| p.size[0] as u32).sum::<u32>() + GAP * panels.len().saturating_sub(1) as u32;
    let height = panels.iter().map(|p| p.size[1] as u32).max().unwrap_or(0);
    let mut out = RgbaImage::from_pixel(width.max(1), height.max(1), BACKGROUND);
    let mut left = 0;
    for panel in panels {
        for (index, pixel) in panel.pixels.iter().enumerate() {
            let (x, y) = ((index % panel.size[0]) as u32, (index / panel.size[0]) as u32);
            out.put_pixel(left + x, y, Rgba(pixel.to_srgba_unmultiplied()));
        }
        left += panel.size[0] as u32 + GAP;
    }
    out
}

/// Writes a PNG atomically; the error names the file and the problem.
pub fn write_png(path: &Path, image: &RgbaImage) -> Result<()> {
    write_atomically(path, |temporary| {
        image
            .save_with_format(temporary, image::ImageFormat::Png)
            .with_context(|| format!("{}: cannot write the PNG", path.display()))
    })
}

/// Saves the four panels on screen to `path` (on a thread; the outcome shows up as a message).
pub fn save_panels(app: &mut MaeApp, path: PathBuf) {
    let Some(shown) = app.shown.as_ref() else {
        app.show_error("nothing to save yet: no reconstruction is on screen");
        return;
    };
    let panels = shown.panels.clone();
    let sender = app.export_dialog.finished.0.clone();
    app.export_dialog.saving += 1;
    std::thread::spawn(move || {
        let image = compose_panels(&[&panels.original, &panels.masked, &panels.reconstruction, &panels.pasted]);
        let result = write_png(&path, &image).map_err(|error| format!("{error:#}"));
        let _ = sender.send(SaveOutcome { path, result });
    });
}

pub fn receive_saves(app: &mut MaeApp) {
    while let Ok(outcome) = app.export_dialog.finished.1.try_recv() {
        app.export_dialog.saving = app.export_dialog.saving.saturating_sub(1);
        match outcome.result {
            Ok(()) => app.show_info(format!("saved {}", outcome.path.display())),
            Err(error) => app.show_error(format!("could not save: {error}")),
        }
    }
    if app.export_dialog.saving > 0 {
        // The thread's answer wakes nobody: look again shortly.
        if let Some(ctx) = app.repaint_context() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }
}

pub fn export_window(app: &mut MaeApp, ctx: &egui::Context) {
    let mut open = app.export_dialog.open;
    egui::Window::new("Export").open(&mut open).resizable(false).collapsible(false).show(ctx, |ui| {
        ui.label("Save pictures of the current result.");
        ui.add_enabled_ui(app.shown.is_some(), |ui| {
            if ui
                .button("Four panels as one PNG…")
                .on_hover_text("Original, masked, reconstruction and pasted side by side (Ctrl+S)")
                .on_disabled_hover_text("Nothing is on screen yet")
                .clicked()
            {
                app.request_save_panels(ctx);
            }
        });
        if app.export_dialog.saving > 0 {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("saving…");
            });
        }
    });
    app.export_dialog.open = open;
}
