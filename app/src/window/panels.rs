//! The four pictures side by side (original, masked, reconstruction, pasted-back) and mask painting on them.

use eframe::egui::{self, Color32, Pos2, Rect, Sense, Stroke, Vec2};

use super::app::MaeApp;
use super::settings::MaskMode;
use super::textures;

const TITLES: [(&str, &str, &str); 4] = [
    (
        textures::ORIGINAL,
        "Original",
        "The model input (resized as its preprocessor says). Click or drag to paint the mask.",
    ),
    (
        textures::MASKED,
        "Masked",
        "What the encoder sees: hidden patches drawn as the display options say. Click or drag to paint.",
    ),
    (textures::RECONSTRUCTION, "Reconstruction", "The decoder's prediction for every patch, visible ones included"),
    (textures::PASTED, "Pasted back", "Visible patches from the original, masked ones from the reconstruction"),
];

/// Below this panel width the pictures stop shrinking and the row scrolls instead.
const MIN_PANEL_SIDE: f32 = 96.0;

pub fn four_panels(app: &mut MaeApp, ui: &mut egui::Ui) {
    let spacing = ui.spacing().item_spacing.x;
    let (height, width) = app.model_info().map_or((224, 224), |info| info.image_size);
    let aspect = height as f32 / width.max(1) as f32;
    let panel_width = ((ui.available_width() - 3.0 * spacing) / 4.0).max(MIN_PANEL_SIDE);
    // Keep the row from pushing the analysis sections off screen on wide, short windows.
    let panel_width = panel_width.min((ui.available_height() * 0.7 - 30.0).max(MIN_PANEL_SIDE) / aspect.max(0.1));
    let size = Vec2::new(panel_width, panel_width * aspect);

    if let Some(shown) = &app.shown
        && shown.uses_target_statistics
    {
        ui.colored_label(
            Color32::from_rgb(230, 170, 60),
            "This model predicts per-patch-normalized pixels: the reconstruction is shown with each hidden \
             patch's own mean and variance, which the model never saw.",
        );
    }
    ui.horizontal(|ui| {
        for (texture, title, tooltip) in TITLES {
            ui.vertical(|ui| {
                ui.label(egui::RichText::new(title).strong()).on_hover_text(tooltip);
                picture(app, ui, texture, &format!("{title} picture"), size, tooltip);
            });
        }
    });
}

/// One picture; the original and masked ones take clicks and drags to paint the mask.
fn picture(app: &mut MaeApp, ui: &mut egui::Ui, texture: &str, label: &str, size: Vec2, tooltip: &str) {
    let paintable = texture == textures::ORIGINAL || texture == textures::MASKED;
    let sense = if paintable { Sense::click_and_drag() } else { Sense::hover() };
    let (rect, response) = ui.allocate_exact_size(size, sense);
    // A name for screen readers (and for tests, which find the picture by it).
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, label));
    let response = response.on_hover_text(tooltip);
    let painter = ui.painter_at(rect);
    // Until the model has seen the picture, the original panel shows the picture itself.
    let result_is_current = app.shown.as_ref().map(|shown| shown.image_id) == app.image.as_ref().map(|image| image.id);
    let drawn = if texture == textures::ORIGINAL && !result_is_current { textures::PREVIEW } else { texture };
    match app.textures.get(drawn) {
        Some(handle) => {
            painter.image(handle.id(), rect, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
        }
        None => {
            painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
            let text = if app.model_info().is_some() { "computing…" } else { "waiting for a model" };
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                text,
                egui::FontId::proportional(13.0),
                ui.visuals().weak_text_color(),
            );
        }
    }
    let Some(grid) = app.grid() else { return };
    if paintable {
        paint_interaction(app, &response, rect, grid);
        if app.settings.mask_mode == MaskMode::Painted {
            draw_painted_mask(app, &painter, rect, grid, texture == textures::ORIGINAL);
        }
        if let Some(pointer) = response.hover_pos() {
            let patch = patch_under(pointer, rect, grid);
            painter.rect_stroke(
                patch_rect(rect, grid, patch),
                0.0,
                Stroke::new(1.5, Color32::YELLOW),
                egui::StrokeKind::Inside,
            );
        }
    }
}

/// The spatial patch index under a point of a picture of the given grid.
pub fn patch_under(pointer: Pos2, rect: Rect, (rows, cols): (usize, usize)) -> usize {
    let x = ((pointer.x - rect.left()) / rect.width()).clamp(0.0, 0.999_999);
    let y = ((pointer.y - rect.top()) / rect.height()).clamp(0.0, 0.999_999);
    let row = ((y * rows as f32) as usize).min(rows - 1);
    let col = ((x * cols as f32) as usize).min(cols - 1);
    row * cols + col
}

pub fn patch_rect(rect: Rect, (rows, cols): (usize, usize), patch: usize) -> Rect {
    let (row, col) = (patch / cols, patch % cols);
    let cell = Vec2::new(rect.width() / cols as f32, rect.height() / rows as f32);
    Rect::from_min_size(rect.min + Vec2::new(col as f32 * cell.x, row as f32 * cell.y), cell)
}

/// Click toggles a patch; a drag paints every patch it crosses with the value of the first one it toggled.
fn paint_interaction(app: &mut MaeApp, response: &egui::Response, rect: Rect, grid: (usize, usize)) {
    if response.drag_started() || response.clicked() {
        if let Some(pointer) = response.interact_pointer_pos() {
            let patch = patch_under(pointer, rect, grid);
            app.toggle_patch(patch);
            app.paint_stroke = app.painted_mask.get(patch).copied();
        }
    } else if response.dragged()
        && let (Some(pointer), Some(value)) = (response.interact_pointer_pos(), app.paint_stroke)
        && rect.contains(pointer)
    {
        let patch = patch_under(pointer, rect, grid);
        if let Some(masked) = app.painted_mask.get_mut(patch) {
            *masked = value;
        }
    }
    if response.drag_stopped() || response.clicked() {
        app.paint_stroke = None;
    }
}

/// Immediate feedback while painting: the worker's pictures follow one forward pass later.
fn draw_painted_mask(app: &MaeApp, painter: &egui::Painter, rect: Rect, grid: (usize, usize), shade: bool) {
    let line = Stroke::new(0.5, Color32::from_white_alpha(60));
    for row in 1..grid.0 {
        let y = rect.top() + rect.height() * row as f32 / grid.0 as f32;
        painter.hline(rect.x_range(), y, line);
    }
    for col in 1..grid.1 {
        let x = rect.left() + rect.width() * col as f32 / grid.1 as f32;
        painter.vline(x, rect.y_range(), line);
    }
    if shade {
        for (patch, _) in app.painted_mask.iter().enumerate().filter(|(_, masked)| **masked) {
            painter.rect_filled(patch_rect(rect, grid, patch), 0.0, Color32::from_black_alpha(150));
        }
    }
}
