//! Saving pictures: the four panels as one PNG (Ctrl+S) and the Export dialog (Ctrl+E). Files are composed
//! and written on a thread, atomically, so a failure never leaves half a file and never freezes the window.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, Sender};
use eframe::egui::{self, ColorImage};
use image::{Rgba, RgbaImage};

use super::app::MaeApp;
use super::settings::Settings;
use crate::atomic_file::write_atomically;
use crate::render::attention::{HeadFusion, Stack};
use crate::render::grid::{AttentionColumn, Column};
use crate::worker::{Fusion, GridExport, ImageInput};

/// Gap between panels in the saved picture, in pixels.
const GAP: u32 = 8;
const BACKGROUND: Rgba<u8> = Rgba([255, 255, 255, 255]);

/// Simple columns offered as checkboxes (the attention column follows the Attention panel's settings).
const SIMPLE_COLUMNS: [(Column, &str); 7] = [
    (Column::Original, "original"),
    (Column::Mask, "mask"),
    (Column::Masked, "masked"),
    (Column::Reconstruction, "reconstruction"),
    (Column::Pasted, "pasted"),
    (Column::Loss, "loss heatmap"),
    (
        Column::Attention(AttentionColumn {
            stack: Stack::Encoder,
            layer: None,
            heads: HeadFusion::Mean,
            rollout: true,
            discard_ratio: 0.0,
        }),
        "attention rollout",
    ),
];

#[derive(Debug)]
pub struct ExportDialog {
    pub open: bool,
    finished: (Sender<SaveOutcome>, Receiver<SaveOutcome>),
    pub saving: usize,
    /// Grid options as typed.
    pub ratios: String,
    pub seeds: String,
    pub columns: [bool; SIMPLE_COLUMNS.len()],
    /// Add a column with the attention map the Attention panel shows.
    pub current_attention: bool,
    pub tile_size: u32,
    /// The grid export the worker is computing, and how far it is.
    pub running: Option<u64>,
    pub progress: (usize, usize),
    pub error: Option<String>,
}

impl Default for ExportDialog {
    fn default() -> Self {
        Self {
            open: false,
            finished: crossbeam_channel::unbounded(),
            saving: 0,
            ratios: "0.25, 0.5, 0.75".into(),
            seeds: "0, 1".into(),
            columns: [true, false, true, true, true, false, false],
            current_attention: false,
            tile_size: 224,
            running: None,
            progress: (0, 0),
            error: None,
        }
    }
}

/// Parses "0.25, 0.5 0.75" into ratios in [0, 1].
pub fn parse_ratios(text: &str) -> Result<Vec<f64>, String> {
    let ratios = split_list(text)
        .map(|item| match item.parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
            _ => Err(format!("\"{item}\" is not a mask ratio between 0 and 1")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ratios.is_empty() { Err("give at least one mask ratio".into()) } else { Ok(ratios) }
}

/// Parses "0, 1, 2" into seeds.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let seeds = split_list(text)
        .map(|item| item.parse::<u64>().map_err(|_| format!("\"{item}\" is not a seed (a whole number ≥ 0)")))
        .collect::<Result<Vec<_>, _>>()?;
    if seeds.is_empty() { Err("give at least one seed".into()) } else { Ok(seeds) }
}

fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c.is_whitespace()).filter(|item| !item.is_empty())
}

impl ExportDialog {
    /// The export the dialog describes, or the first problem with it.
    pub fn grid_export(&self, image: ImageInput, settings: &Settings, path: PathBuf) -> Result<GridExport, String> {
        let ratios = parse_ratios(&self.ratios)?;
        let seeds = parse_seeds(&self.seeds)?;
        let mut columns: Vec<Column> =
            SIMPLE_COLUMNS.iter().zip(self.columns).filter(|(_, on)| *on).map(|((column, _), _)| *column).collect();
        if self.current_attention {
            let view = &settings.attention;
            columns.push(Column::Attention(AttentionColumn {
                stack: if view.decoder { Stack::Decoder } else { Stack::Encoder },
                layer: Some(view.layer),
                heads: match (view.head, view.fusion) {
                    (Some(head), _) => HeadFusion::Head(head),
                    (None, Fusion::Mean) => HeadFusion::Mean,
                    (None, Fusion::Max) => HeadFusion::Max,
                    (None, Fusion::Min) => HeadFusion::Min,
                },
                rollout: view.rollout,
                discard_ratio: view.discard_ratio,
            }));
        }
        if columns.is_empty() {
            return Err("choose at least one column".into());
        }
        Ok(GridExport {
            image,
            ratios,
            seeds,
            columns,
            colormap: settings.attention.colormap,
            masked_style: settings.masked_style,
            tile_size: self.tile_size.clamp(32, 1024),
            path,
        })
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
        ui.heading("Comparison grid");
        ui.label("One row per mask ratio and seed, one column per view, with captions.");
        let dialog = &mut app.export_dialog;
        egui::Grid::new("export_grid_options").num_columns(2).show(ui, |ui| {
            ui.label("Mask ratios");
            ui.text_edit_singleline(&mut dialog.ratios).on_hover_text("Comma-separated values between 0 and 1");
            ui.end_row();
            ui.label("Seeds");
            ui.text_edit_singleline(&mut dialog.seeds).on_hover_text("Comma-separated whole numbers");
            ui.end_row();
            ui.label("Tile size");
            ui.add(egui::DragValue::new(&mut dialog.tile_size).range(32..=1024).suffix(" px"))
                .on_hover_text("Side of each picture in the grid (patches stay crisp)");
            ui.end_row();
        });
        ui.label("Columns");
        ui.horizontal_wrapped(|ui| {
            for ((_, name), on) in SIMPLE_COLUMNS.iter().zip(dialog.columns.iter_mut()) {
                ui.checkbox(on, *name).on_hover_text(format!("Add a {name} column"));
            }
            ui.checkbox(&mut dialog.current_attention, "attention as in the Attention panel")
                .on_hover_text("The stack, layer, heads and rollout chosen in the Attention panel (CLS query)");
        });
        if let Some(error) = &dialog.error {
            ui.colored_label(egui::Color32::from_rgb(230, 90, 80), error);
        }
        let running = dialog.running.is_some();
        let (done, total) = dialog.progress;
        ui.horizontal(|ui| {
            let button = ui
                .add_enabled(
                    !running && app.image.is_some() && app.model_info().is_some(),
                    egui::Button::new("Export grid…"),
                )
                .on_hover_text("Choose a file, then the grid is computed in the background")
                .on_disabled_hover_text("Needs a model, an image, and no export in progress");
            if button.clicked() {
                let name = app.image.as_ref().map_or("grid".to_string(), |image| {
                    image.name.split('.').next().unwrap_or("grid").replace(' ', "_")
                });
                let problem = app
                    .image
                    .clone()
                    .map(|image| app.export_dialog.grid_export(image, &app.settings, PathBuf::new()).err())
                    .unwrap_or(None);
                match problem {
                    Some(problem) => app.export_dialog.error = Some(problem),
                    None => {
                        app.export_dialog.error = None;
                        app.files.pick_grid_destination(ctx, format!("{name}-grid.png"));
                    }
                }
            }
            if running {
                ui.spinner();
                ui.label(format!("{done} of {total} rows"));
            }
        });
        ui.separator();
        ui.heading("Current result");
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
