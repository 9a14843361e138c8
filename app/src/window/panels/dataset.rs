//! The Dataset panel: every image of a folder through the model at the current mask (strategy, ratio and seed),
//! one image at a time in the background — a table sortable by any column with thumbnails, a histogram of the masked
//! loss, a click on a row opens that image, and the worst N go to a comparison grid. The measurements are `eval`'s
//! (`jobs::evaluate`), so the window and the command agree.

use std::path::PathBuf;

use eframe::egui::{self, Color32, Sense};
use egui_plot::{Bar, BarChart, Plot};
use mae_model::{MaskStrategy, Quality};
use serde::{Deserialize, Serialize};

use super::Panel;
use crate::jobs::evaluate::{EvalCase, EvalItem, EvaluationJob, ItemEvaluation};
use crate::jobs::grid::{GridImage, GridImageSource, GridJob};
use crate::jobs::image_files::images_argument;
use crate::jobs::masks::{MaskItem, MaskSource};
use crate::render::Colormap;
use crate::render::grid::{Column, format_psnr};
use crate::window::busy;
use crate::window::files::{FileRequest, Purpose};
use crate::window::session::Session;
use crate::window::texture::PanelTexture;
use crate::worker::{ModelInfo, Request, Response};

/// Accessible names (and what tests look for).
pub const FOLDER_LABEL: &str = "Folder to evaluate";
pub const EVALUATE_BUTTON: &str = "Evaluate";
pub const WORST_BUTTON: &str = "Export the worst as a grid…";
/// Most images a worst-N grid takes.
const MAX_WORST: usize = 64;
/// Side of a worst-N grid's tiles, in pixels.
const WORST_TILE_SIZE: u32 = 128;
/// Height of a table row: the thumbnail's side.
const ROW_HEIGHT: f32 = 40.0;
const HISTOGRAM_HEIGHT: f32 = 90.0;
const HISTOGRAM_BINS: usize = 20;

/// The table's columns, in order; any of them sorts the rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortColumn {
    Name,
    MaskedLoss,
    VisibleLoss,
    Psnr,
    PsnrMasked,
    Ssim,
}

impl SortColumn {
    const ALL: [SortColumn; 6] = [
        SortColumn::Name,
        SortColumn::MaskedLoss,
        SortColumn::VisibleLoss,
        SortColumn::Psnr,
        SortColumn::PsnrMasked,
        SortColumn::Ssim,
    ];

    pub fn title(self) -> &'static str {
        match self {
            SortColumn::Name => "image",
            SortColumn::MaskedLoss => "masked loss",
            SortColumn::VisibleLoss => "visible loss",
            SortColumn::Psnr => "PSNR",
            SortColumn::PsnrMasked => "PSNR masked",
            SortColumn::Ssim => "SSIM",
        }
    }

    fn width(self) -> f32 {
        if self == SortColumn::Name { 180.0 } else { 82.0 }
    }

    /// The value rows are sorted by (errors and missing values last).
    fn value(self, quality: &Quality) -> Option<f64> {
        match self {
            SortColumn::Name => None,
            SortColumn::MaskedLoss => quality.masked_loss.map(f64::from),
            SortColumn::VisibleLoss => quality.visible_loss.map(f64::from),
            SortColumn::Psnr => Some(quality.psnr_db),
            SortColumn::PsnrMasked => quality.psnr_masked_db,
            SortColumn::Ssim => quality.ssim,
        }
    }

    fn text(self, quality: &Quality) -> String {
        match self {
            SortColumn::Psnr | SortColumn::PsnrMasked => self.value(quality).map_or("–".into(), format_psnr),
            _ => self.value(quality).map_or("–".into(), |value| format!("{value:.4}")),
        }
    }
}

/// One evaluated image.
#[derive(Debug)]
pub struct DatasetRow {
    pub path: PathBuf,
    pub name: String,
    /// `None` until the worker has measured it.
    pub evaluation: Option<ItemEvaluation>,
    texture: PanelTexture,
}

impl DatasetRow {
    fn quality(&self) -> Option<&Quality> {
        self.evaluation.as_ref()?.quality.as_ref().ok()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct DatasetPanel {
    /// The folder as typed (remembered).
    pub folder: String,
    pub sort: SortColumn,
    pub descending: bool,
    /// How many of the worst images "Export the worst" puts in a grid.
    pub worst: usize,
    #[serde(skip)]
    pub rows: Vec<DatasetRow>,
    /// The evaluation in progress and how far it is.
    #[serde(skip)]
    pub running: Option<(u64, (usize, usize))>,
    /// What the rows were measured with, for the line above the table.
    #[serde(skip)]
    pub described: String,
    #[serde(skip)]
    pub error: Option<String>,
    /// The mask the rows were measured with: (strategy, ratio, seed).
    #[serde(skip)]
    measured_with: Option<(MaskStrategy, f64, u64)>,
    /// The grid export in progress.
    #[serde(skip)]
    pub exporting: Option<u64>,
    /// Evaluate the folder as soon as a model is ready (`--evaluate FOLDER`).
    #[serde(skip)]
    pub start_when_ready: bool,
}

impl Default for DatasetPanel {
    fn default() -> Self {
        Self {
            folder: String::new(),
            sort: SortColumn::MaskedLoss,
            descending: true,
            worst: 8,
            rows: Vec::new(),
            running: None,
            described: String::new(),
            error: None,
            measured_with: None,
            exporting: None,
            start_when_ready: false,
        }
    }
}

impl std::fmt::Debug for DatasetPanel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetPanel").field("rows", &self.rows.len()).field("running", &self.running).finish()
    }
}

impl DatasetPanel {
    /// Starts evaluating the folder at the current model, strategy, ratio and seed (replacing a run in progress).
    pub fn evaluate(&mut self, session: &mut Session) {
        self.error = None;
        let Some(strategy) = session.settings.mask_mode.strategy() else {
            self.error = Some(
                "choose a drawn mask (random, block, grid or centre): painted and picture masks name \
                               patches of one image"
                    .into(),
            );
            return;
        };
        let paths = match images_argument(std::path::Path::new(self.folder.trim()), false) {
            Ok(paths) => paths,
            Err(problem) => {
                self.error = Some(format!("{problem:#}"));
                return;
            }
        };
        let (ratio, seed) = (session.settings.mask_ratio, session.settings.seed);
        let case = EvalCase { mask: 0, ratio, seed };
        let items = paths
            .iter()
            .map(|path| {
                let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into());
                EvalItem { path: path.clone(), name, cases: vec![case] }
            })
            .collect();
        let job = Box::new(EvaluationJob { masks: vec![MaskSource::Strategy(strategy)], items });
        if let Some((previous, _)) = self.running.take() {
            session.forwards.request(|_| Request::Cancel { id: previous });
        }
        self.rows = paths
            .into_iter()
            .map(|path| DatasetRow {
                name: path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into()),
                path,
                evaluation: None,
                texture: PanelTexture::default(),
            })
            .collect();
        self.described = format!("{} mask at ratio {ratio:.3}, seed {seed}", strategy.name());
        self.measured_with = Some((strategy, ratio, seed));
        let total = self.rows.len();
        self.running = Some((session.forwards.request(|id| Request::EvaluateFolder { id, job }), (0, total)));
    }

    fn cancel(&mut self, session: &mut Session) {
        if let Some((id, _)) = self.running.take() {
            session.forwards.request(|_| Request::Cancel { id });
        }
    }

    /// The rows in the chosen order: measured ones by the sort column, then the failed and the waiting ones.
    pub fn order(&self) -> Vec<usize> {
        // Each row's key once (names borrowed, not copied), then the indices sorted by them.
        let keys: Vec<(u8, f64, &str)> = self
            .rows
            .iter()
            .map(|row| match (row.quality(), self.sort) {
                (Some(_), SortColumn::Name) => (0, 0.0, row.name.as_str()),
                (Some(quality), column) => match column.value(quality) {
                    Some(value) => (0, if self.descending { -value } else { value }, ""),
                    None => (1, 0.0, row.name.as_str()),
                },
                (None, _) => (2, 0.0, row.name.as_str()),
            })
            .collect();
        let names_descending = self.sort == SortColumn::Name && self.descending;
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        order.sort_by(|&a, &b| {
            let (ka, kb) = (keys[a], keys[b]);
            let names = if names_descending { kb.2.cmp(ka.2) } else { ka.2.cmp(kb.2) };
            ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(names)
        });
        order
    }

    fn controls(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        ui.horizontal(|ui| {
            let field = ui
                .add(egui::TextEdit::singleline(&mut self.folder).hint_text("a folder of images").desired_width(260.0))
                .on_hover_text("Every image in this folder is measured at the current model, mask, ratio and seed");
            field.widget_info(|| egui::WidgetInfo::labeled(egui::Role::TextInput, true, FOLDER_LABEL));
            let entered = field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
            if ui.button("…").on_hover_text("Choose the folder (then it is evaluated)").clicked() {
                session.files.ask(FileRequest::OpenDatasetFolder, ui.ctx());
            }
            let ready = session.model.info().is_some() && !self.folder.trim().is_empty();
            let clicked = ui.add_enabled(ready, egui::Button::new(EVALUATE_BUTTON)).clicked();
            if (entered || clicked) && ready {
                self.evaluate(session);
            }
            if let Some((_, (done, total))) = self.running {
                busy::indicator(ui);
                ui.label(format!("{done} of {total}"));
                if ui.button("Cancel").on_hover_text("Stop evaluating the folder").clicked() {
                    self.cancel(session);
                }
            }
        });
        let measured = self.rows.iter().filter(|row| row.quality().is_some()).count();
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut self.worst).range(1..=MAX_WORST)).on_hover_text("How many images");
            let export = ui
                .add_enabled(measured > 0 && self.exporting.is_none(), egui::Button::new(WORST_BUTTON))
                .on_hover_text("A comparison grid of the images with the highest masked loss, at this mask");
            if export.clicked() {
                let suggested_name = "worst-images.png".to_string();
                session.files.ask(FileRequest::SaveDatasetGrid { suggested_name }, ui.ctx());
            }
            if self.exporting.is_some() {
                busy::indicator(ui);
            }
        });
        if let Some(error) = &self.error {
            ui.colored_label(Color32::from_rgb(230, 90, 80), error);
        }
    }

    /// The grid of the `worst` images by masked loss, at the mask they were measured with, written to `path` by the
    /// worker (the same grid job as `export`).
    pub fn export_worst(&mut self, path: PathBuf, session: &mut Session) {
        let mut measured: Vec<&DatasetRow> = self.rows.iter().filter(|row| row.quality().is_some()).collect();
        measured.sort_by(|a, b| {
            let loss = |row: &DatasetRow| row.quality().and_then(|q| q.masked_loss).unwrap_or(f32::NEG_INFINITY);
            loss(b).total_cmp(&loss(a))
        });
        let images = measured
            .iter()
            .take(self.worst)
            .map(|row| GridImage {
                name: row.name.clone(),
                source: GridImageSource::File { path: row.path.clone(), skip_if_unreadable: true },
            })
            .collect();
        let Some((strategy, ratio, seed)) = self.measured_with else { return };
        let job = GridJob {
            images,
            masks: vec![MaskItem { source: MaskSource::Strategy(strategy), ratio: None }],
            ratios: vec![ratio],
            seeds: vec![seed],
            columns: vec![Column::Original, Column::Masked, Column::Reconstruction, Column::Pasted, Column::Loss],
            colormap: Colormap::Viridis,
            masked_style: session.settings.masked_style,
            tile_size: WORST_TILE_SIZE,
            models: 1,
        };
        match job.check() {
            Ok(job) => {
                let job = Box::new(job);
                self.exporting = Some(session.forwards.request(|id| Request::ExportGrid { id, job, path }));
            }
            Err(problem) => self.error = Some(format!("{problem:#}")),
        }
    }

    fn histogram(&self, ui: &mut egui::Ui) {
        let losses: Vec<f64> = self
            .rows
            .iter()
            .filter_map(|row| row.quality()?.masked_loss.map(f64::from))
            .filter(|loss| loss.is_finite())
            .collect();
        let (Some(low), Some(high)) =
            (losses.iter().copied().reduce(f64::min), losses.iter().copied().reduce(f64::max))
        else {
            return;
        };
        let width = ((high - low) / HISTOGRAM_BINS as f64).max(1e-9);
        let mut counts = [0usize; HISTOGRAM_BINS];
        for loss in &losses {
            counts[(((loss - low) / width) as usize).min(HISTOGRAM_BINS - 1)] += 1;
        }
        let bars = counts
            .iter()
            .enumerate()
            .map(|(bin, &count)| Bar::new(low + (bin as f64 + 0.5) * width, count as f64).width(width))
            .collect();
        Plot::new("dataset histogram")
            .height(HISTOGRAM_HEIGHT)
            .allow_scroll(false)
            .allow_drag(false)
            .x_axis_label("masked loss")
            .y_axis_label("images")
            .show(ui, |plot| plot.bar_chart(BarChart::new("masked loss", bars)));
    }

    /// The header and the rows, scrolled sideways together when the tile is narrower than the columns.
    fn table(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        egui::ScrollArea::horizontal().auto_shrink([false, false]).show(ui, |ui| self.rows_with_header(ui, session));
    }

    fn rows_with_header(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        ui.horizontal(|ui| {
            ui.add_space(ROW_HEIGHT + ui.spacing().item_spacing.x);
            for column in SortColumn::ALL {
                let arrow = match (self.sort == column, self.descending) {
                    (true, true) => " v",
                    (true, false) => " ^",
                    (false, _) => "",
                };
                let header =
                    egui::Button::new(format!("{}{arrow}", column.title())).min_size(egui::vec2(column.width(), 0.0));
                if ui.add(header).on_hover_text("Sort by this column (again: the other way)").clicked() {
                    self.descending = if self.sort == column { !self.descending } else { column != SortColumn::Name };
                    self.sort = column;
                }
            }
        });
        let order = self.order();
        let mut open = None;
        egui::ScrollArea::vertical().auto_shrink([false, false]).show_rows(ui, ROW_HEIGHT, order.len(), |ui, range| {
            for &index in &order[range] {
                let row = &mut self.rows[index];
                ui.horizontal(|ui| {
                    let (rect, _) = ui.allocate_exact_size(egui::vec2(ROW_HEIGHT, ROW_HEIGHT), Sense::hover());
                    if let Some(thumbnail) = row.evaluation.as_ref().and_then(|e| e.thumbnail.as_ref()) {
                        let texture =
                            row.texture.show(ui.ctx(), "dataset row", index as u64, thumbnail, session.upload());
                        let size = texture.size_vec2();
                        let scale = (ROW_HEIGHT / size.x.max(size.y)).min(1.0);
                        let shown = egui::Rect::from_center_size(rect.center(), size * scale);
                        let uv = egui::Rect::from_min_max(egui::Pos2::ZERO, egui::pos2(1.0, 1.0));
                        ui.painter_at(rect).image(texture.id(), shown, uv, Color32::WHITE);
                    }
                    let name = egui::Button::new(&row.name).min_size(egui::vec2(SortColumn::Name.width(), 0.0));
                    if ui.add(name).on_hover_text(format!("Open {}", row.path.display())).clicked() {
                        open = Some(row.path.clone());
                    }
                    match row.evaluation.as_ref().map(|evaluation| &evaluation.quality) {
                        Some(Ok(quality)) => {
                            for column in &SortColumn::ALL[1..] {
                                ui.add_sized([column.width(), ROW_HEIGHT], egui::Label::new(column.text(quality)));
                            }
                        }
                        Some(Err(problem)) => {
                            ui.colored_label(Color32::from_rgb(230, 90, 80), problem);
                        }
                        None => {
                            ui.weak("waiting");
                        }
                    }
                });
            }
        });
        if let Some(path) = open {
            let ctx = ui.ctx().clone();
            session.files.open_path(path, Purpose::Image, &ctx);
        }
    }
}

impl Panel for DatasetPanel {
    fn title(&self) -> &'static str {
        "Dataset"
    }

    fn description(&self) -> &'static str {
        "Every image of a folder at the current mask: a sortable table of losses, PSNR and SSIM, and their histogram"
    }

    fn is_busy(&self) -> bool {
        self.running.is_some() || self.start_when_ready
    }

    fn ui(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        if self.start_when_ready && session.model.info().is_some() {
            self.start_when_ready = false;
            self.evaluate(session);
        }
        self.controls(ui, session);
        if self.rows.is_empty() {
            ui.label(
                "Type a folder and press Evaluate: the same numbers `mae-explorer eval` writes, one image at a time.",
            );
            return;
        }
        let failed = self.rows.iter().filter(|row| row.evaluation.as_ref().is_some_and(|e| e.quality.is_err())).count();
        ui.label(format!("{} images, {} · {failed} could not be used", self.rows.len(), self.described));
        self.histogram(ui);
        self.table(ui, session);
    }

    fn on_response(&mut self, response: &Response, session: &mut Session) {
        match response {
            Response::Exported { id, path } if self.exporting == Some(*id) => {
                self.exporting = None;
                session.show_info(format!("saved the worst images' grid to {}", path.display()));
            }
            Response::Failed { id, error } if self.exporting == Some(*id) => {
                self.exporting = None;
                self.error = Some(error.clone());
            }
            _ => {}
        }
        let Some((running, _)) = self.running else { return };
        match response {
            Response::DatasetRow { id, index, evaluation } if *id == running => {
                if let Some(row) = self.rows.get_mut(*index) {
                    row.evaluation = Some((**evaluation).clone());
                }
            }
            Response::Progress { id, done, total } if *id == running => {
                self.running = (done < total).then_some((running, (*done, *total)));
            }
            Response::Failed { id, error } if *id == running => {
                self.error = Some(error.clone());
                self.running = None;
            }
            Response::Restarted { .. } => self.running = None,
            _ => {}
        }
    }

    fn on_model_loaded(&mut self, _info: &ModelInfo) {
        // Rows of another model would be mixed with the new one's: start again when asked.
        self.running = None;
        self.rows.clear();
    }
}
