//! Saving pictures: the four pictures of the current result as one PNG (Ctrl+S), and the Export dialog (Ctrl+E),
//! which describes a comparison grid as the same `jobs::grid::GridJob` the `export` command runs, and an animation
//! of it (File → Export animation…) as the same `jobs::animation::AnimationJob` the `animate` command writes.
//! Files are composed and written off the UI thread, atomically, so a failure never leaves half a file and never
//! freezes the window.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use eframe::egui;
use serde::{Deserialize, Serialize};

use super::busy;
use super::file_request::FileRequest;
use super::job::{Job, JobUpdate};
use super::session::Session;
use crate::atomic_file::write_picture;
use crate::jobs::animation::{AnimationJob, DEFAULT_FPS, FPS};
use crate::jobs::grid::{CheckedGridJob, GridImage, GridImageSource, GridJob, TILE_SIZES};
use crate::jobs::lists::{parse_ratio_frames, parse_ratios, parse_seed_frames, parse_seeds};
use crate::jobs::masks::{list_takes, parse_mask_items};
use crate::render::attention::HeadFusion;
use crate::render::grid::{AttentionColumn, Column};
use crate::render::panels::side_by_side;
use crate::worker::{AttentionView, Request, Response};

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
            stack: crate::render::attention::Stack::Encoder,
            layer: None,
            heads: HeadFusion::Mean,
            rollout: true,
            discard_ratio: 0.0,
        }),
        "attention rollout",
    ),
];

/// The checkbox that puts the compared models' columns beside A's (shown while models are compared).
const ALL_MODELS_LABEL: &str = "every model (A and those compared)";

/// The dialog's choices, remembered between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportSettings {
    /// Masks, mask ratios and seeds as typed.
    pub masks: String,
    pub ratios: String,
    pub seeds: String,
    pub columns: [bool; SIMPLE_COLUMNS.len()],
    /// Add a column with the attention map the Attention panel shows.
    pub current_attention: bool,
    pub tile_size: u32,
    /// While models are compared: repeat the columns for each (as `export --models A,B,...` does).
    #[serde(alias = "both_models")]
    pub all_models: bool,
    /// The animation's mask ratios and seeds as typed (a list, `FROM:TO:STEP` or `A-B`; one of them varies), and
    /// its frame rate; masks, columns, tile size and models are the grid's.
    pub animation_ratios: String,
    pub animation_seeds: String,
    pub animation_fps: u32,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            masks: "random".into(),
            ratios: "0.25, 0.5, 0.75".into(),
            seeds: "0, 1".into(),
            columns: [true, false, true, true, true, false, false],
            current_attention: false,
            tile_size: 224,
            all_models: true,
            animation_ratios: "0.1:0.9:0.05".into(),
            animation_seeds: "0".into(),
            animation_fps: DEFAULT_FPS,
        }
    }
}

impl ExportSettings {
    /// The grid these choices describe for `image`, or the first problem with them.
    pub fn job(&self, session: &Session, attention: &AttentionView) -> Result<CheckedGridJob, String> {
        let ratios = parse_ratios(&self.ratios).map_err(|e| format!("mask ratios: {e}"))?;
        let seeds = parse_seeds(&self.seeds).map_err(|e| format!("seeds: {e}"))?;
        self.grid(session, attention, ratios, seeds)?.check().map_err(|e| format!("{e:#}"))
    }

    /// The animation these choices describe for the open image, or the first problem with them.
    pub fn animation_job(&self, session: &Session, attention: &AttentionView) -> Result<AnimationJob, String> {
        let ratios = parse_ratio_frames(&self.animation_ratios).map_err(|e| format!("animation mask ratios: {e}"))?;
        let seeds = parse_seed_frames(&self.animation_seeds).map_err(|e| format!("animation seeds: {e}"))?;
        let grid = self.grid(session, attention, ratios, seeds)?;
        AnimationJob::new(grid, self.animation_fps).map_err(|e| format!("{e:#}"))
    }

    /// The grid of the open image at `ratios` and `seeds` with the rest of these choices, unchecked.
    fn grid(
        &self,
        session: &Session,
        attention: &AttentionView,
        ratios: Vec<f64>,
        seeds: Vec<u64>,
    ) -> Result<GridJob, String> {
        let image = session.image.input.as_ref().ok_or("nothing to export: no image is open")?;
        let masks = parse_mask_items(&self.masks).map_err(|e| format!("masks: {e:#}"))?;
        let mut columns: Vec<Column> =
            SIMPLE_COLUMNS.iter().zip(self.columns).filter(|(_, on)| *on).map(|((column, _), _)| *column).collect();
        if self.current_attention {
            columns.push(Column::Attention(AttentionColumn::of(&attention.selection)));
        }
        Ok(GridJob {
            images: vec![GridImage { name: image.name.clone(), source: GridImageSource::Decoded(image.rgb.clone()) }],
            masks,
            ratios,
            seeds,
            columns,
            colormap: attention.colormap,
            masked_style: session.settings.masked_style,
            tile_size: self.tile_size,
            models: if self.all_models { session.model_names().len().max(1) } else { 1 },
            size: session.settings.size,
        })
    }
}

#[derive(Debug)]
struct SaveOutcome {
    path: PathBuf,
    result: Result<(), String>,
}

/// The Export dialog and the saves in flight.
#[derive(Debug)]
pub struct ExportDialog {
    pub settings: ExportSettings,
    pub open: bool,
    /// The grid export the worker is computing.
    pub job: Job,
    /// The animation the worker is computing.
    pub animation: Job,
    pub error: Option<String>,
    /// Four-picture saves being written.
    pub saving: usize,
    finished: (Sender<SaveOutcome>, Receiver<SaveOutcome>),
}

impl ExportDialog {
    pub fn new(settings: ExportSettings) -> Self {
        Self {
            settings,
            open: false,
            job: Job::default(),
            animation: Job::default(),
            error: None,
            saving: 0,
            finished: crossbeam_channel::unbounded(),
        }
    }

    /// Sends the grid export to the worker once the user chose a file.
    pub fn export_grid_to(&mut self, path: PathBuf, session: &mut Session, attention: &AttentionView) {
        match self.settings.job(session, attention) {
            Ok(job) => {
                self.error = None;
                let rows = job.row_count();
                let job = Box::new(job);
                self.job.start(session, rows, |id| Request::ExportGrid { id, job, path });
            }
            Err(error) => self.error = Some(error),
        }
    }

    /// Sends the animation to the worker once the user chose a file.
    pub fn export_animation_to(&mut self, path: PathBuf, session: &mut Session, attention: &AttentionView) {
        match self.settings.animation_job(session, attention) {
            Ok(job) => {
                self.error = None;
                let rows = job.row_count();
                let job = Box::new(job);
                self.animation.start(session, rows, |id| Request::ExportAnimation { id, job, path });
            }
            Err(error) => self.error = Some(error),
        }
    }

    /// Saves the four pictures on screen to `path` (on a thread; the outcome shows up as a message).
    pub fn save_pictures(&mut self, path: PathBuf, session: &mut Session) {
        let Some(result) = session.result() else {
            session.show_error("nothing to save yet: no reconstruction is on screen");
            return;
        };
        let pictures = Arc::new(result.first().pictures.clone());
        let sender = self.finished.0.clone();
        let ctx = session.forwards.repaint_context();
        self.saving += 1;
        std::thread::spawn(move || {
            let row = side_by_side(&[&pictures.original, &pictures.masked, &pictures.reconstruction, &pictures.pasted]);
            let result = write_picture(&row, &path).map_err(|error| format!("{error:#}"));
            let _ = sender.send(SaveOutcome { path, result });
            if let Some(ctx) = ctx {
                ctx.request_repaint();
            }
        });
    }

    /// Writes the mask on screen as a picture (white = masked) at the model's input size, off the UI thread.
    pub fn save_mask(&mut self, path: PathBuf, session: &mut Session) {
        let Some(mask) = session.mask_on_screen_picture() else {
            session.show_error("nothing to save yet: no mask is on screen");
            return;
        };
        let sender = self.finished.0.clone();
        let ctx = session.forwards.repaint_context();
        self.saving += 1;
        std::thread::spawn(move || {
            let picture = image::DynamicImage::ImageLuma8(mask).to_rgba8();
            let result = write_picture(&picture, &path).map_err(|error| format!("{error:#}"));
            let _ = sender.send(SaveOutcome { path, result });
            if let Some(ctx) = ctx {
                ctx.request_repaint();
            }
        });
    }

    /// Reports finished saves.
    pub fn receive_saves(&mut self, session: &mut Session) {
        while let Ok(outcome) = self.finished.1.try_recv() {
            self.saving = self.saving.saturating_sub(1);
            match outcome.result {
                Ok(()) => session.show_info(format!("saved {}", outcome.path.display())),
                Err(error) => session.show_error(format!("could not save: {error}")),
            }
        }
    }

    /// Takes the worker's answers about the grid export and the animation in flight.
    pub fn on_response(&mut self, response: &Response, session: &mut Session) {
        for job in [&mut self.job, &mut self.animation] {
            match job.on_response(response) {
                JobUpdate::Answered(Response::Exported { path, .. }) => {
                    job.finish();
                    session.show_info(format!("exported {}", path.display()));
                }
                JobUpdate::Failed(error) => {
                    self.error = Some(error.to_string());
                    session.show_error(format!("could not export: {error}"));
                }
                _ => {}
            }
        }
    }

    /// Asks where to save the four pictures (File → Save, Ctrl+S).
    pub fn ask_where_to_save_pictures(&self, session: &mut Session, ctx: &egui::Context) {
        if session.result().is_none() {
            session.show_error("nothing to save yet: no reconstruction is on screen");
            return;
        }
        let name = format!(
            "{}-ratio{:.2}-seed{}.png",
            file_stem(session, "panels"),
            session.settings.mask_ratio,
            session.settings.seed
        );
        session.files.ask(FileRequest::SavePanels { suggested_name: name }, ctx);
    }

    pub fn window(&mut self, ctx: &egui::Context, session: &mut Session, attention: &AttentionView) {
        let mut open = self.open;
        egui::Window::new("Export").open(&mut open).resizable(false).collapsible(false).show(ctx, |ui| {
            self.grid_section(ui, session, attention);
            ui.separator();
            self.animation_section(ui, session, attention);
            ui.separator();
            ui.heading("Current result");
            ui.add_enabled_ui(session.result().is_some(), |ui| {
                if ui
                    .button("Four pictures as one PNG…")
                    .on_hover_text("Original, masked, reconstruction and pasted side by side (Ctrl+S)")
                    .on_disabled_hover_text("Nothing is on screen yet")
                    .clicked()
                {
                    self.ask_where_to_save_pictures(session, ctx);
                }
            });
            if self.saving > 0 {
                ui.horizontal(|ui| {
                    busy::indicator(ui);
                    ui.label("saving…");
                });
            }
        });
        self.open = open;
    }

    fn grid_section(&mut self, ui: &mut egui::Ui, session: &mut Session, attention: &AttentionView) {
        ui.heading("Comparison grid");
        ui.label("One row per mask, mask ratio and seed, one column per view, with captions, PSNR and SSIM.");
        let settings = &mut self.settings;
        egui::Grid::new("export_grid_options").num_columns(2).show(ui, |ui| {
            let label = ui.label("Masks");
            ui.text_edit_singleline(&mut settings.masks).labelled_by(label.id).on_hover_text(
                "random, block, grid, centre or a picture file, commas between; a :ratio after one replaces the mask \
                 ratios for it (random:0.75, block:0.5, grid is the MAE paper's Figure 6)",
            );
            ui.end_row();
            // A list no mask takes is disabled, saying why (a grid or a picture ignores the ratio, a centred hole or
            // a picture the seed, and a mask with its own :ratio replaces the list).
            let (takes_ratios, takes_seeds) = list_takes(&settings.masks);
            let label = ui.label("Mask ratios");
            ui.add_enabled(takes_ratios, egui::TextEdit::singleline(&mut settings.ratios))
                .labelled_by(label.id)
                .on_hover_text("Values between 0 and 1, commas or spaces")
                .on_disabled_hover_text("No mask in the list takes these: each has its own :ratio or ignores it");
            ui.end_row();
            let label = ui.label("Seeds");
            ui.add_enabled(takes_seeds, egui::TextEdit::singleline(&mut settings.seeds))
                .labelled_by(label.id)
                .on_hover_text("Whole numbers, commas or spaces")
                .on_disabled_hover_text("No mask in the list depends on a seed (a centred hole or a picture)");
            ui.end_row();
            let label = ui.label("Tile size");
            ui.add(egui::DragValue::new(&mut settings.tile_size).range(TILE_SIZES).suffix(" px"))
                .labelled_by(label.id)
                .on_hover_text("Side of each picture in the grid (patches stay crisp)");
            ui.end_row();
        });
        ui.label("Columns");
        ui.horizontal_wrapped(|ui| {
            for ((_, name), on) in SIMPLE_COLUMNS.iter().zip(settings.columns.iter_mut()) {
                ui.checkbox(on, *name).on_hover_text(format!("Add a {name} column"));
            }
            ui.checkbox(&mut settings.current_attention, "attention as in the Attention panel")
                .on_hover_text("The stack, layer, heads and rollout chosen in the Attention panel (CLS query)");
        });
        if session.model_names().len() > 1 {
            ui.checkbox(&mut settings.all_models, ALL_MODELS_LABEL)
                .on_hover_text("Repeat the columns for every compared model, labelled with each model's name");
        }
        if let Some(error) = &self.error {
            ui.colored_label(egui::Color32::from_rgb(230, 90, 80), error);
        }
        let running = self.job.progress();
        ui.horizontal(|ui| {
            let button = ui
                .add_enabled(
                    running.is_none() && session.image.input.is_some() && session.model().info().is_some(),
                    egui::Button::new("Export grid…"),
                )
                .on_hover_text("Choose a file, then the grid is computed in the background")
                .on_disabled_hover_text("Needs a model, an image, and no export in progress");
            if button.clicked() {
                match self.settings.job(session, attention) {
                    Err(problem) => self.error = Some(problem),
                    Ok(_) => {
                        self.error = None;
                        let name = format!("{}-grid.png", file_stem(session, "grid"));
                        session.files.ask(FileRequest::SaveGrid { suggested_name: name }, ui.ctx());
                    }
                }
            }
            if let Some((done, total)) = running {
                busy::indicator(ui);
                ui.label(format!("{done} of {total} rows"));
            }
        });
    }

    fn animation_section(&mut self, ui: &mut egui::Ui, session: &mut Session, attention: &AttentionView) {
        ui.heading("Animation");
        ui.label("The grid above, one frame per mask ratio or per seed, as a GIF or an animated PNG (.png).");
        let settings = &mut self.settings;
        egui::Grid::new("export_animation_options").num_columns(2).show(ui, |ui| {
            let label = ui.label("Frame mask ratios");
            ui.text_edit_singleline(&mut settings.animation_ratios).labelled_by(label.id).on_hover_text(
                "One ratio, or several for a frame each: a list, or FROM:TO:STEP with both ends included \
                 (0.1:0.9:0.05)",
            );
            ui.end_row();
            let label = ui.label("Frame seeds");
            ui.text_edit_singleline(&mut settings.animation_seeds)
                .labelled_by(label.id)
                .on_hover_text("One seed, or several for a frame each: a list, or A-B with both ends included (0-9)");
            ui.end_row();
            let label = ui.label("Frames per second");
            ui.add(egui::DragValue::new(&mut settings.animation_fps).range(FPS))
                .labelled_by(label.id)
                .on_hover_text("A GIF keeps each frame's time in whole hundredths of a second");
            ui.end_row();
        });
        let running = self.animation.progress();
        ui.horizontal(|ui| {
            let button = ui
                .add_enabled(
                    running.is_none() && session.image.input.is_some() && session.model().info().is_some(),
                    egui::Button::new("Export animation…"),
                )
                .on_hover_text("Choose a .gif or .png file, then the frames are computed in the background")
                .on_disabled_hover_text("Needs a model, an image, and no animation in progress");
            if button.clicked() {
                match self.settings.animation_job(session, attention) {
                    Err(problem) => self.error = Some(problem),
                    Ok(_) => {
                        self.error = None;
                        let name = format!("{}-animation.gif", file_stem(session, "animation"));
                        session.files.ask(FileRequest::SaveAnimation { suggested_name: name }, ui.ctx());
                    }
                }
            }
            if let Some((done, total)) = running {
                busy::indicator(ui);
                ui.label(format!("{done} of {total} rows"));
            }
        });
    }
}

/// The open image's name without extension, for suggested file names.
pub fn file_stem(session: &Session, fallback: &str) -> String {
    session
        .image
        .input
        .as_ref()
        .map_or(fallback.to_string(), |image| image.name.split('.').next().unwrap_or(fallback).replace(' ', "_"))
}
