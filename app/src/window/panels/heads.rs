//! The Heads panel: every head of the chosen stack at once (the head gallery, layers × heads, for the current
//! query), and every head's mean attention distance against its depth in the network, encoder and decoder. Hover a
//! thumbnail for its statistics; click a thumbnail or a point to study that head in the Attention panel.

use eframe::egui::{self, Color32, Pos2, Sense, Vec2};
use egui_plot::{MarkerShape, Plot, PlotPoint, Points};
use serde::{Deserialize, Serialize};

use super::widgets::{colormap_combo, model_switch, shown_model};
use super::{Panel, PanelCommand};
use crate::head_stats::HeadStats;
use crate::render::Colormap;
use crate::render::attention::Stack;
use crate::render::gallery::GalleryScale;
use crate::window::session::Session;
use crate::window::texture::PanelTexture;
use crate::worker::{HeadsView, Slot, ViewOptions};

const ENCODER_COLOR: Color32 = Color32::from_rgb(240, 160, 60);
const DECODER_COLOR: Color32 = Color32::from_rgb(90, 170, 240);
/// A click this close (in screen points) to a plotted head selects it.
const POINT_PICK_RADIUS: f32 = 8.0;

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct HeadsPanel {
    /// The stack whose heads the gallery shows.
    pub stack: Stack,
    pub scale: GalleryScale,
    pub colormap: Colormap,
    /// Which compared model's heads the panel shows.
    #[serde(skip)]
    pub model: Slot,
    /// Where each head was plotted on screen last frame (for clicks, and tests).
    #[serde(skip)]
    pub plotted: Vec<(Pos2, (Stack, usize, usize))>,
    /// Where the gallery picture was drawn last frame.
    #[serde(skip)]
    pub gallery_rect: Option<egui::Rect>,
    #[serde(skip)]
    texture: PanelTexture,
}

impl Default for HeadsPanel {
    fn default() -> Self {
        Self {
            stack: Stack::Encoder,
            scale: GalleryScale::Shared,
            colormap: Colormap::Inferno,
            model: Slot::A,
            plotted: Vec::new(),
            gallery_rect: None,
            texture: PanelTexture::default(),
        }
    }
}

/// Asks the Attention panel to show this head (delivering the command brings it forward).
fn focus(session: &mut Session, model: Slot, (stack, layer, head): (Stack, usize, usize)) {
    let model = shown_model(model, session);
    session.messages.send(PanelCommand::FocusHead { stack, layer, head, model });
}

fn describe(stats: &HeadStats) -> String {
    format!(
        "{} layer {} head {}\nmean attention distance {:.1} px\nentropy {:.3} nats\nCLS share {:.3}\nclick: show it in the \
         Attention panel",
        stats.stack, stats.layer, stats.head, stats.mean_distance_px, stats.entropy, stats.cls_share
    )
}

impl HeadsPanel {
    fn controls(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut self.stack, Stack::Encoder, "Encoder")
                .on_hover_text("Gallery of the encoder's heads");
            ui.selectable_value(&mut self.stack, Stack::Decoder, "Decoder")
                .on_hover_text("Gallery of the decoder's heads");
            ui.separator();
            ui.selectable_value(&mut self.scale, GalleryScale::Shared, "Shared scale")
                .on_hover_text("One colour scale over all heads: their weights compare colour for colour");
            ui.selectable_value(&mut self.scale, GalleryScale::PerHead, "Per-head scale")
                .on_hover_text("Each thumbnail over its own lowest..highest weight: every head's pattern shows");
        });
        // On a line of its own: a nested horizontal row does not wrap, and one that runs past the tile's edge
        // widens everything drawn after it.
        colormap_combo(ui, "heads colormap", "Colormap", &mut self.colormap);
    }

    fn gallery(&mut self, ui: &mut egui::Ui, session: &mut Session, height: f32) {
        self.gallery_rect = None;
        let Some(result) = session.result().and_then(|result| result.side(shown_model(self.model, session))) else {
            ui.label("The head gallery appears with the first reconstruction.");
            return;
        };
        let Some(heads) = result.heads else {
            ui.label("computing the head gallery…");
            return;
        };
        let (key, picture) = (result.texture_key, &heads.gallery.picture);
        let texture = self.texture.show(ui.ctx(), "head gallery", key, picture, session.upload()).clone();
        let geometry = heads.gallery.geometry.clone();
        let stats = heads.stats.clone();
        let size = Vec2::new(ui.available_width(), height);
        let aspect = geometry.height as f32 / geometry.width.max(1) as f32;
        let side = size.x.min(size.y / aspect.max(1e-3));
        let (outer, _) = ui.allocate_exact_size(size, Sense::hover());
        let rect = egui::Rect::from_center_size(outer.center(), Vec2::new(side, side * aspect));
        let response = ui.interact(rect, ui.make_persistent_id("head gallery"), Sense::click());
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "head gallery"));
        let uv = egui::Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
        ui.painter_at(rect).image(texture.id(), rect, uv, Color32::WHITE);
        self.gallery_rect = Some(rect);
        let Some(pointer) = response.hover_pos() else { return };
        let scale = geometry.width as f32 / rect.width();
        let Some(head) = geometry.head_at((pointer.x - rect.left()) * scale, (pointer.y - rect.top()) * scale) else {
            return;
        };
        if let Some(found) = stats.iter().find(|s| (s.stack, s.layer, s.head) == head) {
            response.clone().on_hover_text(describe(found));
        }
        if response.clicked() {
            focus(session, self.model, head);
        }
    }

    fn distance_plot(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        self.plotted.clear();
        let shown = shown_model(self.model, session);
        let side = session.result().and_then(|result| result.side(shown));
        let Some(stats) = side.and_then(|side| side.heads).map(|heads| heads.stats.clone()) else {
            return;
        };
        let encoder_layers = stats.iter().filter(|s| s.stack == Stack::Encoder).map(|s| s.layer + 1).max().unwrap_or(0);
        // Depth through the network: the encoder's layers, then the decoder's.
        let depth = |s: &HeadStats| match s.stack {
            Stack::Encoder => s.layer as f64,
            Stack::Decoder => (encoder_layers + s.layer) as f64,
        };
        let series = |stack: Stack| -> Vec<[f64; 2]> {
            stats
                .iter()
                .filter(|s| s.stack == stack && s.mean_distance_px.is_finite())
                .map(|s| [depth(s), s.mean_distance_px])
                .collect()
        };
        let mut plotted = Vec::new();
        let plot = Plot::new("mean_attention_distance")
            .height(ui.available_height().max(80.0))
            .x_axis_label("layer (encoder E, then decoder D)")
            .y_axis_label("mean attention distance (px)")
            .x_axis_formatter(move |mark, _| {
                let layer = mark.value.round() as usize;
                if layer < encoder_layers { format!("E{layer}") } else { format!("D{}", layer - encoder_layers) }
            })
            .legend(egui_plot::Legend::default())
            .allow_scroll(false)
            .allow_drag(false)
            .allow_zoom(false);
        let response = plot.show(ui, |plot_ui| {
            plot_ui.points(
                Points::new("encoder heads", series(Stack::Encoder))
                    .radius(3.5)
                    .color(ENCODER_COLOR)
                    .shape(MarkerShape::Circle),
            );
            plot_ui.points(
                Points::new("decoder heads", series(Stack::Decoder))
                    .radius(3.5)
                    .color(DECODER_COLOR)
                    .shape(MarkerShape::Diamond),
            );
            for s in stats.iter().filter(|s| s.mean_distance_px.is_finite()) {
                let position = plot_ui.screen_from_plot(PlotPoint::new(depth(s), s.mean_distance_px));
                plotted.push((position, (s.stack, s.layer, s.head)));
            }
        });
        self.plotted = plotted;
        let nearest = |pointer: Pos2| {
            self.plotted
                .iter()
                .map(|(position, head)| (position.distance(pointer), *head))
                .filter(|(distance, _)| *distance <= POINT_PICK_RADIUS)
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, head)| head)
        };
        let Some(pointer) = response.response.hover_pos() else { return };
        let Some(head) = nearest(pointer) else { return };
        if let Some(found) = stats.iter().find(|s| (s.stack, s.layer, s.head) == head) {
            response.response.clone().on_hover_text(describe(found));
        }
        if response.response.clicked() {
            focus(session, self.model, head);
        }
    }
}

impl Panel for HeadsPanel {
    fn title(&self) -> &'static str {
        "Heads"
    }

    fn description(&self) -> &'static str {
        "Every head at once (the head gallery) and each head's mean attention distance, entropy and CLS share"
    }

    fn ui(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        if session.model.info().is_none() {
            ui.label("The heads appear once a model is loaded.");
            return;
        }
        model_switch(ui, &mut self.model, session);
        self.controls(ui);
        let gallery_height = (ui.available_height() * 0.6).max(80.0);
        self.gallery(ui, session, gallery_height);
        ui.separator();
        self.distance_plot(ui, session);
    }

    fn add_view(&self, view: &mut ViewOptions, session: &Session) {
        view.for_slot(shown_model(self.model, session)).heads = Some(HeadsView {
            stack: self.stack,
            query: session.settings.query,
            scale: self.scale,
            colormap: self.colormap,
        });
    }
}
