//! The four pictures of a result — original, masked, reconstruction, pasted back — each a panel of its own, drawn
//! as large as its tile allows with crisp patch edges; mask painting on the original and masked ones. Also the
//! picture drawing every other panel uses.

use eframe::egui::{self, Color32, Pos2, Rect, Sense, Stroke, TextureHandle, Vec2};
use image::RgbaImage;
use serde::{Deserialize, Serialize};

use super::Panel;
use crate::render::grid::psnr_line;
use crate::window::session::{MaskMode, Session};
use crate::window::texture::PanelTexture;
use crate::worker::{ForwardResult, ModelResult, ResultPictures};
use mae_model::Quality;

/// Which picture of the result a panel shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Picture {
    Original,
    Masked,
    Reconstruction,
    Pasted,
}

impl Picture {
    fn of(self, pictures: &ResultPictures) -> &RgbaImage {
        match self {
            Picture::Original => &pictures.original,
            Picture::Masked => &pictures.masked,
            Picture::Reconstruction => &pictures.reconstruction,
            Picture::Pasted => &pictures.pasted,
        }
    }

    /// The original and masked pictures take clicks and drags to paint the mask.
    fn paintable(self) -> bool {
        matches!(self, Picture::Original | Picture::Masked)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PicturePanel {
    picture: Picture,
    #[serde(skip)]
    texture: PanelTexture,
    /// The newly opened image before the model has seen it (original panel only).
    #[serde(skip)]
    preview: PanelTexture,
}

impl PicturePanel {
    pub fn new(picture: Picture) -> Self {
        Self { picture, texture: PanelTexture::default(), preview: PanelTexture::default() }
    }

    /// The texture to draw: the result's picture, or for the original panel the preview of an image the model has
    /// not seen yet.
    fn texture(&mut self, ui: &egui::Ui, session: &Session) -> Option<TextureHandle> {
        let ctx = ui.ctx();
        if self.picture == Picture::Original
            && !session.result_is_current()
            && let Some((image_id, preview)) = &session.image.preview
        {
            return Some(
                self.preview.show_with(ctx, "preview", *image_id, session.upload(), || preview.clone()).clone(),
            );
        }
        let result = session.result()?;
        let (name, picture) = (self.title(), self.picture.of(&result.first().pictures));
        Some(self.texture.show(ctx, name, result.id, picture, session.upload()).clone())
    }
}

impl Panel for PicturePanel {
    fn title(&self) -> &'static str {
        match self.picture {
            Picture::Original => "Original",
            Picture::Masked => "Masked",
            Picture::Reconstruction => "Reconstruction",
            Picture::Pasted => "Pasted back",
        }
    }

    fn description(&self) -> &'static str {
        match self.picture {
            Picture::Original => "The model input (resized as its preprocessor says). Click or drag to paint the mask.",
            Picture::Masked => {
                "What the encoder sees: hidden patches drawn as the display options say. Click or drag to paint."
            }
            Picture::Reconstruction => "The decoder's prediction for every patch, visible ones included",
            Picture::Pasted => "Visible patches from the original, masked ones from the reconstruction",
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        let texture = self.texture(ui, session);
        if self.picture == Picture::Reconstruction
            && session.result().is_some_and(|result| result.first().uses_target_statistics)
        {
            ui.colored_label(
                Color32::from_rgb(230, 170, 60),
                "This model predicts per-patch-normalized pixels: shown with each hidden patch's own mean and \
                 variance, which the model never saw.",
            );
        }
        let sense = if self.picture.paintable() { Sense::click_and_drag() } else { Sense::hover() };
        let label = format!("{} picture", self.title());
        let (rect, response) = fit_picture(ui, texture.as_ref(), session, sense, &label);
        if self.picture == Picture::Pasted
            && let Some(result) = &session.result()
        {
            quality_caption(ui, rect, &quality_line(result));
        }
        let response = response.on_hover_text(self.description());
        let Some(grid) = session.grid() else { return };
        if self.picture.paintable() {
            paint_interaction(session, &response, rect, grid);
            let painter = ui.painter_at(rect);
            if session.settings.mask_mode == MaskMode::Painted {
                draw_painted_mask(session, &painter, rect, grid, self.picture == Picture::Original);
            }
            if let Some(pointer) = response.hover_pos() {
                let patch = patch_rect(rect, grid, patch_under(pointer, rect, grid));
                painter.rect_stroke(patch, 0.0, Stroke::new(1.5, Color32::YELLOW), egui::StrokeKind::Inside);
            }
        }
    }
}

/// "PSNR 23.41 dB (masked 21.02 dB) · SSIM 0.812", noting a norm-pix model's use of the target statistics, and
/// led by "≈ 0.70, exact pending" while the picture is the nearest cached one of a slider being dragged.
pub fn quality_line(result: &ForwardResult) -> String {
    let quality = quality_text(&result.first().quality, result.first().uses_target_statistics);
    match scrub_note(result.first()) {
        Some(note) => format!("{note} · {quality}"),
        None => quality,
    }
}

/// "≈ 0.70, exact pending" when `result` is the cached mask nearest to the slider's, shown until the slider's own
/// is cached.
pub fn scrub_note(result: &ModelResult) -> Option<String> {
    let scrubbed = result.scrubbed.filter(|scrubbed| !scrubbed.exact)?;
    Some(format!("≈ {:.2}, exact pending", scrubbed.masked_fraction))
}

/// PSNR (all and masked pixels) and SSIM, saying when a norm-pix model's pictures use the hidden patches' own
/// statistics.
pub fn quality_text(quality: &Quality, uses_target_statistics: bool) -> String {
    let ssim = quality.ssim.map_or("none".to_string(), |ssim| format!("{ssim:.3}"));
    let leak = if uses_target_statistics { " (with the hidden patches' own statistics)" } else { "" };
    format!("{} · SSIM {ssim}{leak}", psnr_line(quality))
}

/// The measurements along the bottom edge of the pasted-back picture, on a dark band (like the tile titles), so the
/// picture keeps the whole tile.
fn quality_caption(ui: &mut egui::Ui, picture: Rect, line: &str) {
    let font = egui::FontId::proportional(13.0);
    let galley = ui.painter().layout(line.to_string(), font, Color32::WHITE, (picture.width() - 8.0).max(16.0));
    let band = Rect::from_min_max(
        egui::pos2(picture.left(), picture.bottom() - galley.size().y - 4.0),
        picture.right_bottom(),
    );
    let painter = ui.painter_at(picture);
    painter.rect_filled(band, 0.0, Color32::from_black_alpha(170));
    painter.galley(band.min + Vec2::new(4.0, 2.0), galley, Color32::WHITE);
    ui.interact(band, ui.make_persistent_id("quality caption"), Sense::hover())
        .on_hover_text(
            "PSNR over all pixels and over the masked ones only (visible pixels are copied), and SSIM (Wang et al. \
             2004, as scikit-image computes it), on the pictures before 8-bit rounding",
        )
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, line));
}

/// Draws `texture` as large as the available space allows, keeping the model input's aspect, centred. Without a
/// texture it draws a placeholder saying why. `label` names the picture for screen readers (and tests).
pub fn fit_picture(
    ui: &mut egui::Ui,
    texture: Option<&TextureHandle>,
    session: &Session,
    sense: Sense,
    label: &str,
) -> (Rect, egui::Response) {
    // The picture's own aspect (a picture fed at its own size is not square); before it arrives, the input's.
    let aspect = match texture {
        Some(texture) => texture.size_vec2().y / texture.size_vec2().x.max(1.0),
        None => {
            let (height, width) = session.input_size().unwrap_or((224, 224));
            height as f32 / width.max(1) as f32
        }
    };
    let available = ui.available_size().max(Vec2::splat(32.0));
    let side = available.x.min(available.y / aspect.max(1e-3));
    let size = Vec2::new(side, side * aspect);
    let (outer, _) = ui.allocate_exact_size(available, Sense::hover());
    let rect = Rect::from_center_size(outer.center(), size);
    let response = ui.interact(rect, ui.make_persistent_id(label), sense);
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, label));
    let painter = ui.painter_at(rect);
    match texture {
        Some(texture) => {
            painter.image(texture.id(), rect, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
        }
        None => {
            painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
            let text = if session.model().info().is_some() { "computing…" } else { "waiting for a model" };
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                text,
                egui::FontId::proportional(13.0),
                ui.visuals().weak_text_color(),
            );
        }
    }
    (rect, response)
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
fn paint_interaction(session: &mut Session, response: &egui::Response, rect: Rect, grid: (usize, usize)) {
    if response.drag_started() || response.clicked() {
        if let Some(pointer) = response.interact_pointer_pos() {
            let patch = patch_under(pointer, rect, grid);
            session.toggle_patch(patch);
            session.mask.paint_stroke = session.mask.painted.get(patch).copied();
        }
    } else if response.dragged()
        && let (Some(pointer), Some(value)) = (response.interact_pointer_pos(), session.mask.paint_stroke)
        && rect.contains(pointer)
    {
        let patch = patch_under(pointer, rect, grid);
        if let Some(masked) = session.mask.painted.get_mut(patch) {
            *masked = value;
        }
    }
    if response.drag_stopped() || response.clicked() {
        session.mask.paint_stroke = None;
    }
}

/// Immediate feedback while painting: the worker's pictures follow one forward pass later.
fn draw_painted_mask(session: &Session, painter: &egui::Painter, rect: Rect, grid: (usize, usize), shade: bool) {
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
        for (patch, _) in session.mask.painted.iter().enumerate().filter(|(_, masked)| **masked) {
            painter.rect_filled(patch_rect(rect, grid, patch), 0.0, Color32::from_black_alpha(150));
        }
    }
}
