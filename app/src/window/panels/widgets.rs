//! Small pieces the analysis panels share: how a panel splits its tile between picture and controls, the
//! colormap chooser, and the A/B switch of the panels that can show either compared model.

use eframe::egui::{self, Color32, Rect, Vec2};

use crate::render::Colormap;
use crate::window::session::Session;
use crate::worker::model_letter;

/// Controls need about this much width to be usable.
const CONTROLS_WIDTH: f32 = 290.0;
/// A stacked picture leaves at least this much of the tile's height to the controls below it.
const STACKED_CONTROLS_SHARE: f32 = 0.35;

/// The two parts of an analysis panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Picture,
    Controls,
}

/// Picture and controls side by side when the tile is wide, stacked (and scrollable) when it is narrow: whichever
/// shows the picture larger.
pub fn picture_and_controls(ui: &mut egui::Ui, mut draw: impl FnMut(&mut egui::Ui, Part)) {
    let available = ui.available_size();
    // Whichever arrangement gives the bigger picture.
    let beside = (available.x - CONTROLS_WIDTH).min(available.y);
    let stacked = available.x.min(available.y * (1.0 - STACKED_CONTROLS_SHARE));
    if beside >= stacked {
        let side = beside.max(64.0);
        ui.horizontal_top(|ui| {
            ui.allocate_ui(Vec2::new(side, available.y), |ui| draw(ui, Part::Picture));
            ui.vertical(|ui| {
                egui::ScrollArea::vertical()
                    .id_salt("controls")
                    .auto_shrink([false; 2])
                    .show(ui, |ui| draw(ui, Part::Controls));
            });
        });
    } else {
        egui::ScrollArea::vertical().id_salt("stacked").auto_shrink([false; 2]).show(ui, |ui| {
            ui.allocate_ui(Vec2::new(ui.available_width(), stacked.max(64.0)), |ui| draw(ui, Part::Picture));
            draw(ui, Part::Controls);
        });
    }
}

/// A colormap drop-down; `id` keeps several apart.
pub fn colormap_combo(ui: &mut egui::Ui, id: &str, label: &str, colormap: &mut Colormap) {
    ui.horizontal(|ui| {
        ui.label(label);
        egui::ComboBox::from_id_salt(id)
            .selected_text(colormap.name())
            .show_ui(ui, |ui| {
                for choice in Colormap::ALL {
                    ui.selectable_value(colormap, choice, choice.name());
                }
            })
            .response
            .on_hover_text(format!("{label}: the colours of the heatmap (low to high)"));
    });
}

/// A horizontal colour bar from `low` (left) to `high` (right) with the two values written at its ends.
pub fn colormap_legend(ui: &mut egui::Ui, colormap: Colormap, low: f32, high: f32, what: &str) {
    const SEGMENTS: usize = 64;
    ui.horizontal(|ui| {
        ui.label(crate::render::loss::format_value(low));
        let width = (ui.available_width() - 60.0).max(40.0);
        let (rect, response) = ui.allocate_exact_size(Vec2::new(width, 12.0), egui::Sense::hover());
        let painter = ui.painter_at(rect);
        for segment in 0..SEGMENTS {
            let [r, g, b] = colormap.color(segment as f32 / (SEGMENTS - 1) as f32);
            let left = rect.left() + rect.width() * segment as f32 / SEGMENTS as f32;
            let right = rect.left() + rect.width() * (segment + 1) as f32 / SEGMENTS as f32;
            let cell = Rect::from_x_y_ranges(left..=right + 0.5, rect.y_range());
            painter.rect_filled(cell, 0.0, Color32::from_rgb(r, g, b));
        }
        ui.label(crate::render::loss::format_value(high));
        response.on_hover_text(format!("{what}: {colormap} from {low} (left) to {high} (right)"));
    });
}

/// The model a panel with a model switch shows (its place in the list): its choice while that model is loaded,
/// else the first.
pub fn shown_model(choice: usize, session: &Session) -> usize {
    if session.model_info(choice).is_some() { choice } else { 0 }
}

/// The model switch of the Attention, Loss and Heads panels (A, B, …), shown while models are compared.
pub fn model_switch(ui: &mut egui::Ui, choice: &mut usize, session: &Session) {
    let names = session.model_names();
    if names.len() < 2 {
        return;
    }
    ui.horizontal(|ui| {
        ui.label("Model");
        for (index, name) in names.iter().enumerate() {
            let letter = model_letter(index);
            ui.selectable_value(choice, index, letter.to_string())
                .on_hover_text(format!("Show {name} (model {letter})"));
        }
    });
}
