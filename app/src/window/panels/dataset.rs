//! The Dataset panel: every image of a folder through the model at the current mask (strategy, ratio and seed),
//! one image at a time in the background — a table sortable by any column with thumbnails, a histogram of the masked
//! loss, a click on a row opens that image, and the worst N go to a comparison grid. The measurements are `eval`'s
//! (`jobs::evaluate`), so the window and the command agree.

use std::path::PathBuf;

use eframe::egui::{self, Color32, Sense};
use egui_plot::{AxisHints, Bar, BarChart, Plot};
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
use crate::window::file_request::FileRequest;
use crate::window::files::Purpose;
use crate::window::job::{Job, JobUpdate};
use crate::window::session::Session;
use crate::window::text;
use crate::window::texture::PanelTexture;
use crate::worker::{ModelInfo, Request, Response};

/// Accessible names (and what tests look for).
pub const FOLDER_LABEL: &str = "Folder to evaluate";
pub const EVALUATE_BUTTON: &str = "Evaluate";
pub const WORST_BUTTON: &str = "Export the worst as a grid…";
pub const WORST_COUNT_LABEL: &str = "Worst images:";
/// Most images a worst-N grid takes.
const MAX_WORST: usize = 64;
/// Side of a worst-N grid's tiles, in pixels.
const WORST_TILE_SIZE: u32 = 128;
/// Height of a table row: the thumbnail's side.
const ROW_HEIGHT: f32 = 28.0;
/// The image column (names longer than this are shortened, whole on hover) and each number column: fixed, so the
/// table is as wide at every window size and every column shows in the default layout at 1600 px.
const NAME_WIDTH: f32 = 120.0;
const NUMBER_WIDTH: f32 = 76.0;
const CELL_GAP: f32 = 6.0;
/// Thumbnail and name: the part that stays in place while the numbers scroll sideways.
const FROZEN_WIDTH: f32 = ROW_HEIGHT + CELL_GAP + NAME_WIDTH + CELL_GAP;
/// The whole table; the layout gives the Dataset tab this much while it is in front, where the window has room.
pub const TABLE_WIDTH: f32 = FROZEN_WIDTH + 5.0 * (NUMBER_WIDTH + CELL_GAP);
const HISTOGRAM_HEIGHT: f32 = 110.0;
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

    /// The title as the header shows it: two short lines, so a column stays as narrow as its numbers.
    fn header_lines(self) -> [&'static str; 2] {
        match self {
            SortColumn::Name => ["", "image"],
            SortColumn::MaskedLoss => ["masked", "loss"],
            SortColumn::VisibleLoss => ["visible", "loss"],
            SortColumn::Psnr => ["", "PSNR"],
            SortColumn::PsnrMasked => ["PSNR", "masked"],
            SortColumn::Ssim => ["", "SSIM"],
        }
    }

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
    /// The evaluation in progress.
    #[serde(skip)]
    pub job: Job,
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
    pub export: Job,
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
            job: Job::default(),
            described: String::new(),
            error: None,
            measured_with: None,
            export: Job::default(),
            start_when_ready: false,
        }
    }
}

impl std::fmt::Debug for DatasetPanel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetPanel").field("rows", &self.rows.len()).field("job", &self.job).finish()
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
        let job =
            Box::new(EvaluationJob { masks: vec![MaskSource::Strategy(strategy)], items, size: session.settings.size });
        self.job.cancel(session);
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
        self.job.start(session, total, |id| Request::EvaluateFolder { id, job });
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
        // Wrapped, and the field as wide as the row leaves: at 1024×640 a 260-point field pushed Evaluate off-screen.
        ui.horizontal_wrapped(|ui| {
            let buttons = ui.spacing().interact_size.x * 3.0;
            let width = (ui.available_width() - buttons).clamp(80.0, 260.0);
            let field = ui
                .add(egui::TextEdit::singleline(&mut self.folder).hint_text("a folder of images").desired_width(width))
                .on_hover_text("Every image in this folder is measured at the current model, mask, ratio and seed");
            field.widget_info(|| egui::WidgetInfo::labeled(egui::Role::TextInput, true, FOLDER_LABEL));
            let entered = field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
            if ui.button("…").on_hover_text("Choose the folder (then it is evaluated)").clicked() {
                session.files.ask(FileRequest::OpenDatasetFolder, ui.ctx());
            }
            let ready = session.model().info().is_some() && !self.folder.trim().is_empty();
            let clicked = ui.add_enabled(ready, egui::Button::new(EVALUATE_BUTTON)).clicked();
            if (entered || clicked) && ready {
                self.evaluate(session);
            }
            if let Some((done, total)) = self.job.progress() {
                busy::indicator(ui);
                ui.label(format!("{done} of {total}"));
                if ui.button("Cancel").on_hover_text("Stop evaluating the folder").clicked() {
                    self.job.cancel(session);
                }
            }
        });
        let measured = self.rows.iter().filter(|row| row.quality().is_some()).count();
        ui.horizontal_wrapped(|ui| {
            let label = ui.label(WORST_COUNT_LABEL);
            ui.add(egui::DragValue::new(&mut self.worst).range(1..=MAX_WORST))
                .labelled_by(label.id)
                .on_hover_text("How many of the images with the highest masked loss the grid shows");
            let export = ui
                .add_enabled(measured > 0 && !self.export.is_running(), egui::Button::new(WORST_BUTTON))
                .on_hover_text("A comparison grid of the images with the highest masked loss, at this mask");
            if export.clicked() {
                let suggested_name = "worst-images.png".to_string();
                session.files.ask(FileRequest::SaveDatasetGrid { suggested_name }, ui.ctx());
            }
            if self.export.is_running() {
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
            size: session.settings.size,
        };
        match job.check() {
            Ok(job) => {
                let rows = job.row_count();
                let job = Box::new(job);
                self.export.start(session, rows, |id| Request::ExportGrid { id, job, path });
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
        // Tick labels as short as a loss needs: egui_plot's default asks 60 points a label and its decimals come
        // from the step, which left the axis bare on a narrow tile.
        let decimals = (-(width * HISTOGRAM_BINS as f64 / 4.0).log10().floor()).clamp(0.0, 6.0) as usize + 1;
        Plot::new("dataset histogram")
            .height(HISTOGRAM_HEIGHT)
            .allow_scroll(false)
            .allow_drag(false)
            .custom_x_axes(vec![
                AxisHints::new_x()
                    .label("masked loss")
                    .label_spacing(40.0..=60.0)
                    .formatter(move |mark, _| format!("{:.*}", decimals, mark.value)),
            ])
            .y_axis_label("images")
            .show(ui, |plot| plot.bar_chart(BarChart::new("masked loss", bars)));
    }

    /// The header and the rows: the thumbnail and name columns stay in place (and the header on top) while the
    /// numbers scroll sideways under a visible scrollbar when the tile is narrower than the table.
    fn table(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        let header_height = 2.0 * ui.text_style_height(&egui::TextStyle::Button) + 6.0;
        let content = egui::vec2(TABLE_WIDTH, header_height + self.rows.len() as f32 * ROW_HEIGHT);
        let mut open = None;
        // Solid scroll bars, always shown: egui's default floating ones stay invisible until the pointer is over
        // them, and nothing told that the numbers go on to the right.
        ui.style_mut().spacing.scroll = egui::style::ScrollStyle::solid();
        egui::ScrollArea::both()
            .auto_shrink([false, false])
            .scroll_bar_visibility(egui::scroll_area::ScrollBarVisibility::AlwaysVisible)
            .show_viewport(ui, |ui, viewport| {
                // The content's top-left corner on screen; `viewport` is the part of the content in view.
                let origin = ui.max_rect().min;
                ui.allocate_rect(egui::Rect::from_min_size(origin, content), Sense::hover());
                let visible = viewport.translate(origin.to_vec2());
                let frozen_left = visible.left();
                let numbers_clip =
                    egui::Rect::from_min_max(egui::pos2(frozen_left + FROZEN_WIDTH, visible.top()), visible.max);
                let rows_clip =
                    egui::Rect::from_min_max(egui::pos2(visible.left(), visible.top() + header_height), visible.max);
                // The header first: a click on it re-sorts the rows drawn in this same frame.
                self.header_ui(ui, frozen_left, origin.x, visible.top(), header_height, numbers_clip);
                let order = self.order();
                let first = ((viewport.top() / ROW_HEIGHT).floor().max(0.0)) as usize;
                let last =
                    (((viewport.bottom() - header_height) / ROW_HEIGHT).ceil().max(0.0) as usize + 1).min(order.len());
                for (slot, &index) in order.iter().enumerate().take(last).skip(first) {
                    let top = origin.y + header_height + slot as f32 * ROW_HEIGHT;
                    if let Some(path) = self.row_ui(ui, session, index, (frozen_left, top), rows_clip, numbers_clip) {
                        open = Some(path);
                    }
                }
            });
        if let Some(path) = open {
            let ctx = ui.ctx().clone();
            session.files.open_path(path, Purpose::Image, &ctx);
        }
    }

    /// The header row at `top` (it stays there): the image title frozen at `frozen_left`, the number titles at
    /// their columns from `content_left`; a click sorts by that column (again: the other way).
    fn header_ui(
        &mut self,
        ui: &mut egui::Ui,
        frozen_left: f32,
        content_left: f32,
        top: f32,
        height: f32,
        clip: egui::Rect,
    ) {
        let background = ui.visuals().panel_fill;
        ui.painter().rect_filled(
            egui::Rect::from_min_size(egui::pos2(frozen_left, top), egui::vec2(clip.right() - frozen_left, height)),
            0.0,
            background,
        );
        for (position, column) in SortColumn::ALL.into_iter().enumerate() {
            let (rect, align, clip) = if column == SortColumn::Name {
                let rect = egui::Rect::from_min_size(
                    egui::pos2(frozen_left + ROW_HEIGHT + CELL_GAP, top),
                    egui::vec2(NAME_WIDTH, height),
                );
                (rect, egui::Align2::LEFT_CENTER, ui.clip_rect())
            } else {
                let left = content_left + FROZEN_WIDTH + (position - 1) as f32 * (NUMBER_WIDTH + CELL_GAP);
                let rect = egui::Rect::from_min_size(egui::pos2(left, top), egui::vec2(NUMBER_WIDTH, height));
                (rect, egui::Align2::RIGHT_CENTER, clip.intersect(ui.clip_rect()))
            };
            if !clip.intersects(rect) {
                continue;
            }
            let arrow = match (self.sort == column, self.descending) {
                (true, true) => " v",
                (true, false) => " ^",
                (false, _) => "",
            };
            let title = format!("{}{arrow}", column.title());
            let response = ui
                .interact(rect.intersect(clip), ui.scope_id().with(("dataset header", position)), Sense::click())
                .on_hover_text(format!("Sort by {} (again: the other way)", column.title()));
            response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &title));
            let color = if response.hovered() { ui.visuals().strong_text_color() } else { ui.visuals().text_color() };
            let font = egui::TextStyle::Button.resolve(ui.style());
            let painter = ui.painter().with_clip_rect(clip);
            let [first, second] = column.header_lines();
            let (top_half, bottom_half) = rect.split_top_bottom_at_fraction(0.5);
            painter.text(align.pos_in_rect(&top_half), align, first, font.clone(), color);
            painter.text(align.pos_in_rect(&bottom_half), align, format!("{second}{arrow}"), font, color);
            if response.clicked() {
                self.descending = if self.sort == column { !self.descending } else { column != SortColumn::Name };
                self.sort = column;
            }
        }
    }

    /// One row with its top at `top`: thumbnail and name frozen at `frozen_left` (a click on the name opens the
    /// image: returned), the numbers right-aligned in their columns from the content's left, clipped to
    /// `numbers_clip`.
    fn row_ui(
        &mut self,
        ui: &mut egui::Ui,
        session: &mut Session,
        index: usize,
        (frozen_left, top): (f32, f32),
        rows_clip: egui::Rect,
        numbers_clip: egui::Rect,
    ) -> Option<PathBuf> {
        let content_left = ui.max_rect().left();
        let row = &mut self.rows[index];
        let painter = ui.painter().with_clip_rect(rows_clip.intersect(ui.clip_rect()));
        let thumbnail_rect =
            egui::Rect::from_min_size(egui::pos2(frozen_left, top), egui::vec2(ROW_HEIGHT, ROW_HEIGHT));
        if let Some(thumbnail) = row.evaluation.as_ref().and_then(|e| e.thumbnail.as_ref()) {
            let texture = row.texture.show(ui.ctx(), "dataset row", index as u64, thumbnail, session.upload());
            let size = texture.size_vec2();
            let scale = (ROW_HEIGHT / size.x.max(size.y)).min(1.0);
            let shown = egui::Rect::from_center_size(thumbnail_rect.center(), size * scale);
            let uv = egui::Rect::from_min_max(egui::Pos2::ZERO, egui::pos2(1.0, 1.0));
            painter.image(texture.id(), shown, uv, Color32::WHITE);
        }
        let font = egui::TextStyle::Body.resolve(ui.style());
        let text_color = ui.visuals().text_color();
        let name_rect = egui::Rect::from_min_size(
            egui::pos2(thumbnail_rect.right() + CELL_GAP, top),
            egui::vec2(NAME_WIDTH, ROW_HEIGHT),
        );
        let name_response = ui
            .interact(name_rect.intersect(rows_clip), ui.scope_id().with(("dataset row", index)), Sense::click())
            .on_hover_text(format!("{}\nclick: open it", row.path.display()));
        name_response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &row.name));
        let name_color = if name_response.hovered() { ui.visuals().strong_text_color() } else { text_color };
        let shown_name = text::shortened_to_width(ui, &row.name, &font, NAME_WIDTH);
        painter.text(name_rect.left_center(), egui::Align2::LEFT_CENTER, shown_name, font.clone(), name_color);
        let numbers = painter.with_clip_rect(numbers_clip.intersect(rows_clip).intersect(ui.clip_rect()));
        let first_number = content_left + FROZEN_WIDTH;
        match row.evaluation.as_ref().map(|evaluation| &evaluation.quality) {
            Some(Ok(quality)) => {
                for (position, column) in SortColumn::ALL[1..].iter().enumerate() {
                    let right = first_number + position as f32 * (NUMBER_WIDTH + CELL_GAP) + NUMBER_WIDTH;
                    let anchor = egui::pos2(right, top + ROW_HEIGHT / 2.0);
                    numbers.text(anchor, egui::Align2::RIGHT_CENTER, column.text(quality), font.clone(), text_color);
                }
            }
            Some(Err(problem)) => {
                let anchor = egui::pos2(first_number, top + ROW_HEIGHT / 2.0);
                let color = Color32::from_rgb(230, 90, 80);
                numbers.text(anchor, egui::Align2::LEFT_CENTER, problem, font.clone(), color);
                name_response.clone().on_hover_text(problem);
            }
            None => {
                let anchor = egui::pos2(first_number, top + ROW_HEIGHT / 2.0);
                numbers.text(anchor, egui::Align2::LEFT_CENTER, "waiting", font, ui.visuals().weak_text_color());
            }
        }
        name_response.clicked().then(|| row.path.clone())
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
        self.job.is_running() || self.start_when_ready
    }

    fn wanted_width(&self) -> f32 {
        // The table, its vertical scrollbar and the tile's margins.
        TABLE_WIDTH + 24.0
    }

    fn ui(&mut self, ui: &mut egui::Ui, session: &mut Session) {
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
        match self.export.on_response(response) {
            JobUpdate::Answered(Response::Exported { path, .. }) => {
                self.export.finish();
                session.show_info(format!("saved the worst images' grid to {}", path.display()));
            }
            JobUpdate::Failed(error) => self.error = Some(error.to_string()),
            _ => {}
        }
        match self.job.on_response(response) {
            JobUpdate::Answered(Response::DatasetRow { index, evaluation, .. }) => {
                if let Some(row) = self.rows.get_mut(*index) {
                    row.evaluation = Some((**evaluation).clone());
                }
            }
            JobUpdate::Progressed if self.job.progress().is_some_and(|(done, total)| done >= total) => {
                self.job.finish()
            }
            JobUpdate::Failed(error) => self.error = Some(error.to_string()),
            _ => {}
        }
    }

    fn on_model_loaded(&mut self, _info: &ModelInfo, session: &mut Session) {
        // Rows of another model would be mixed with the new one's: start again when asked.
        self.job.forget();
        self.rows.clear();
        // `--evaluate FOLDER` starts here, not when the panel is next drawn: a compared model's Compare tab, opened in
        // front of it, used to keep it waiting for ever (and a screenshot run waiting with it).
        if self.start_when_ready {
            self.start_when_ready = false;
            self.evaluate(session);
        }
    }
}
