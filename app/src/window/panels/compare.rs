//! The Compare panel: the first model (A) and every model compared with it (B, C, D) on the same masked image —
//! each one's reconstruction and pasted-back picture with its measurements, and beside each compared model its
//! per-patch loss difference from A (or, where the two cannot be compared patch by patch, both loss maps and the
//! reason). A compared model is chosen under "Compare with" in the control panel; the worker runs every model for
//! every forward request.

use eframe::egui::{self, Color32, Pos2, Rect, Sense, TextureHandle};
use serde::{Deserialize, Serialize};

use super::Panel;
use super::picture::quality_text;
use crate::render::loss::format_value;
use crate::window::session::Session;
use crate::window::texture::PanelTexture;
use crate::worker::{ForwardResult, ModelResult, model_letter};

/// Accessible name of a model's pasted-back picture in the panel (what tests look for).
pub fn pasted_label(index: usize) -> String {
    format!("Model {} pasted back", model_letter(index))
}

/// Accessible name of a compared model's loss difference from the first.
pub fn difference_label(index: usize) -> String {
    format!("Loss difference {} minus A", model_letter(index))
}

#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ComparePanel {
    /// Per model row: reconstruction, pasted back, and the difference (or the first model's loss map) — plus the
    /// row's own loss map where there is no difference.
    #[serde(skip)]
    textures: Vec<[PanelTexture; 4]>,
}

impl std::fmt::Debug for ComparePanel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComparePanel").finish_non_exhaustive()
    }
}

impl Panel for ComparePanel {
    fn title(&self) -> &'static str {
        "Compare"
    }

    fn description(&self) -> &'static str {
        "Model A against the models compared with it on the same mask: reconstructions, PSNR/SSIM and the per-patch \
         loss difference"
    }

    fn ui(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        if session.models.len() < 2 {
            ui.label(
                "Compare model A with up to three other models: type a hub id, folder, weights file or demo under \
                 \"Compare with\" in the control panel and press Compare.",
            );
            return;
        }
        for (index, slot) in session.compared() {
            if let Some(loading) = &slot.loading {
                ui.label(format!("Loading model {} ({}): {}", model_letter(index), loading.model, loading.progress));
            }
        }
        let Some(result) = session.result() else { return };
        if result.models.len() < 2 {
            ui.label(match session.settings.mask_mode.strategy() {
                Some(_) => "computing the compared models…",
                None => {
                    "Painted and picture masks name patches of model A's grid; a model that cuts the image into \
                     another grid runs only with drawn masks (random, block, grid, centre)."
                }
            });
            return;
        }
        self.draw(ui, session, result);
    }
}

impl ComparePanel {
    fn draw(&mut self, ui: &mut egui::Ui, session: &Session, result: &ForwardResult) {
        for model in &result.models {
            let masked = model.masked_patches().iter().filter(|&&masked| masked).count();
            let quality = quality_text(&model.quality, model.uses_target_statistics);
            ui.label(format!("{}: {} · {masked} masked · {quality}", model_letter(model.index), model.name));
            if let Some(note) = &model.own_input {
                ui.weak(note);
            }
        }
        for model in &result.models[1..] {
            ui.label(caption(model));
        }
        let wins = result.wins();
        if wins.len() > 1 {
            let counts: Vec<String> =
                wins.iter().map(|(index, count)| format!("{} {count}", model_letter(*index))).collect();
            ui.label(format!("Masked patches won: {} (the lowest loss alone; a tie is nobody's).", counts.join(", ")));
        }
        ui.weak(
            "One row per model, A on top: reconstruction, pasted back; right: each compared model's loss difference \
             from A (or its own loss map beside A's).",
        );
        self.textures.resize_with(result.models.len(), Default::default);
        let ctx = ui.ctx().clone();
        let upload = session.upload();
        let available = ui.available_size();
        let rows = result.models.len() as f32;
        let side = (available.x / 3.0 - 6.0).min(available.y / rows - 6.0).max(24.0);
        for (model, textures) in result.models.iter().zip(&mut self.textures) {
            let letter = model_letter(model.index);
            let key = model.texture_key;
            let [reconstruction, pasted, third, fourth] = textures;
            let reconstruction =
                reconstruction.show(&ctx, "reconstruction", key, &model.pictures.reconstruction, upload);
            let reconstruction = reconstruction.clone();
            let pasted = pasted.show(&ctx, "pasted", key, &model.pictures.pasted, upload).clone();
            let (third, fourth) = match &model.difference {
                None => (None, None),
                Some(Ok(difference)) => {
                    let picture = third.show(&ctx, "loss difference", key, &difference.picture, upload).clone();
                    (Some((picture, difference_label(model.index))), None)
                }
                Some(Err(no_difference)) => {
                    let first = third.show(&ctx, "A loss", key, &no_difference.first_loss, upload).clone();
                    let own = fourth.show(&ctx, "own loss", key, &no_difference.own_loss, upload).clone();
                    (Some((first, "Model A loss".to_string())), Some((own, format!("Model {letter} loss"))))
                }
            };
            ui.horizontal_top(|ui| {
                picture(ui, &reconstruction, side, &format!("Model {letter} reconstruction"));
                picture(ui, &pasted, side, &pasted_label(model.index));
                for (texture, label) in third.iter().chain(&fourth) {
                    picture(ui, texture, side, label);
                }
            });
        }
    }
}

/// What a compared model's third picture shows, in a sentence with its win counts.
fn caption(model: &ModelResult) -> String {
    let letter = model_letter(model.index);
    match &model.difference {
        Some(Ok(difference)) => format!(
            "Loss {letter} − A per masked patch, from −{0} (blue: {letter} lower) to +{0} (red: A lower); visible \
             patches grey.",
            format_value(difference.max_abs),
        ),
        Some(Err(no_difference)) => format!("{letter}: each model's own loss map: {}.", no_difference.why),
        None => String::new(),
    }
}

/// A picture in a square of `side` points, keeping its aspect (a picture fed at its own size is not square),
/// named for screen readers and tests.
fn picture(ui: &mut egui::Ui, texture: &TextureHandle, side: f32, label: &str) {
    let (cell, response) = ui.allocate_exact_size(egui::vec2(side, side), Sense::hover());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, label));
    response.on_hover_text(label);
    let size = texture.size_vec2();
    let scale = side / size.x.max(size.y).max(1.0);
    let rect = Rect::from_center_size(cell.center(), size * scale);
    let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
    ui.painter_at(cell).image(texture.id(), rect, uv, Color32::WHITE);
}
