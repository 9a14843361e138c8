//! The Compare panel: model A and model B on the same masked image — each one's reconstruction and pasted-back
//! picture with its measurements, and between them the per-patch loss difference B − A (or, where the two cannot
//! be compared patch by patch, each one's loss map and the reason). Model B is chosen under "Compare with" in the
//! control panel; the worker runs both for every forward request.

use eframe::egui::{self, Color32, Pos2, Rect, Sense, TextureHandle};
use serde::{Deserialize, Serialize};

use super::Panel;
use super::picture::{quality_line, quality_text};
use crate::render::loss::format_value;
use crate::window::session::Session;
use crate::window::texture::PanelTexture;
use crate::worker::{CompareResult, ForwardResult};

/// Accessible names of the panel's pictures (and what tests look for).
pub const A_PASTED_LABEL: &str = "Model A pasted back";
pub const B_PASTED_LABEL: &str = "Model B pasted back";
pub const DIFFERENCE_LABEL: &str = "Loss difference B minus A";

#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ComparePanel {
    #[serde(skip)]
    textures: [PanelTexture; 6],
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
        "Model A against model B on the same mask: reconstructions, PSNR/SSIM and the per-patch loss difference"
    }

    fn ui(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        let Some(slot) = session.compare.as_ref() else {
            ui.label(
                "Compare model A with a second model: type a hub id, folder, weights file or demo under \
                 \"Compare with\" in the control panel and press Compare.",
            );
            return;
        };
        if let Some(loading) = &slot.loading {
            ui.label(format!("Loading model B ({}): {}", loading.model, loading.progress));
            return;
        }
        let Some(result) = session.result() else { return };
        let Some(pair) = result.compare.as_deref() else {
            ui.label(match session.settings.mask_mode.strategy() {
                Some(_) => "computing model B…",
                None => {
                    "Painted and picture masks name patches of model A's grid; model B cuts the image into another \
                     grid, so it runs only with drawn masks (random, block, grid, centre)."
                }
            });
            return;
        };
        self.draw_pair(ui, session, result, pair);
    }
}

impl ComparePanel {
    fn draw_pair(&mut self, ui: &mut egui::Ui, session: &Session, result: &ForwardResult, pair: &CompareResult) {
        let a_name = session.model.info().map_or("model A", |info| info.name.as_str());
        let a_masked = result.masked_patches().iter().filter(|&&masked| masked).count();
        ui.label(format!("A: {a_name} · {a_masked} masked · {}", quality_line(result)));
        ui.label(format!(
            "B: {} · {} masked · {}",
            pair.name,
            pair.masked_patches,
            quality_text(&pair.quality, pair.uses_target_statistics)
        ));
        if let Some(note) = &pair.own_input {
            ui.weak(note);
        }
        let ctx = ui.ctx().clone();
        let key = result.id;
        let upload = session.upload();
        let [a_rec, a_pasted, b_rec, b_pasted, third_a, third_b] = &mut self.textures;
        let a_rec = a_rec.show(&ctx, "A reconstruction", key, &result.pictures.reconstruction, upload).clone();
        let a_pasted = a_pasted.show(&ctx, "A pasted", key, &result.pictures.pasted, upload).clone();
        let b_rec = b_rec.show(&ctx, "B reconstruction", key, &pair.pictures.reconstruction, upload).clone();
        let b_pasted = b_pasted.show(&ctx, "B pasted", key, &pair.pictures.pasted, upload).clone();
        let (third_top, third_bottom, caption) = match &pair.difference {
            Ok(difference) => {
                let picture = third_a.show(&ctx, "loss difference", key, &difference.picture, upload).clone();
                let caption = format!(
                    "Loss B − A per masked patch, from −{0} (blue: B lower) to +{0} (red: A lower); visible patches \
                     grey. Masked patches won: A {1}, B {2}.",
                    format_value(difference.max_abs),
                    difference.a_wins,
                    difference.b_wins
                );
                ((picture, DIFFERENCE_LABEL), None, caption)
            }
            Err(no_difference) => {
                let a_loss = third_a.show(&ctx, "A loss", key, &no_difference.a_loss, upload).clone();
                let b_loss = third_b.show(&ctx, "B loss", key, &no_difference.b_loss, upload).clone();
                let caption = format!("Each model's own loss map: {}.", no_difference.why);
                ((a_loss, "Model A loss"), Some((b_loss, "Model B loss")), caption)
            }
        };
        ui.label(caption);
        ui.weak(match third_bottom {
            None => "Top row model A, bottom row model B: reconstruction, pasted back; right: the loss difference.",
            Some(_) => "Top row model A, bottom row model B: reconstruction, pasted back, loss map.",
        });
        let available = ui.available_size();
        let side = (available.x / 3.0 - 6.0).min(available.y / 2.0 - 6.0).max(24.0);
        ui.horizontal_top(|ui| {
            picture(ui, &a_rec, side, "Model A reconstruction");
            picture(ui, &a_pasted, side, A_PASTED_LABEL);
            picture(ui, &third_top.0, side, third_top.1);
        });
        ui.horizontal_top(|ui| {
            picture(ui, &b_rec, side, "Model B reconstruction");
            picture(ui, &b_pasted, side, B_PASTED_LABEL);
            if let Some((texture, label)) = &third_bottom {
                picture(ui, texture, side, label);
            }
        });
    }
}

/// A square picture of `side` points, named for screen readers and tests.
fn picture(ui: &mut egui::Ui, texture: &TextureHandle, side: f32, label: &str) {
    let (rect, response) = ui.allocate_exact_size(egui::vec2(side, side), Sense::hover());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, label));
    response.on_hover_text(label);
    let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
    ui.painter_at(rect).image(texture.id(), rect, uv, Color32::WHITE);
}
