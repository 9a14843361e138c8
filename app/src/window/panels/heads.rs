//! The Heads panel: every head of the chosen stack at once (the head gallery, layers × heads, for the current
//! query), and every head's mean attention distance against its depth in the network, encoder and decoder. Hover a
//! thumbnail for its statistics; click a thumbnail or a point to study that head in the Attention panel.

use eframe::egui::{self, Color32, Pos2, Sense, Vec2};
use egui_plot::{AxisHints, MarkerShape, Plot, PlotPoint, Points};
use serde::{Deserialize, Serialize};

use super::widgets::{colormap_combo, model_switch, shown_model};
use super::{Panel, PanelCommand};
use crate::head_stats::HeadStats;
use crate::render::Colormap;
use crate::render::attention::Stack;
use crate::render::gallery::{GalleryScale, row_label};
use crate::window::session::Session;
use crate::window::texture::PanelTexture;
use crate::worker::{HeadsView, ViewOptions};

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
    pub model: usize,
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
            model: 0,
            plotted: Vec::new(),
            gallery_rect: None,
            texture: PanelTexture::default(),
        }
    }
}

/// Asks the Attention panel to show this head (delivering the command brings it forward).
fn focus(session: &mut Session, model: usize, (stack, layer, head): (Stack, usize, usize)) {
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
        let Some(result) = session.result().and_then(|result| result.model(shown_model(self.model, session))) else {
            ui.label("The head gallery appears with the first reconstruction.");
            return;
        };
        let Some(heads) = &result.heads else {
            ui.label("computing the head gallery…");
            return;
        };
        let (key, picture) = (result.texture_key, &heads.gallery.picture);
        let texture = self.texture.show(ui.ctx(), "head gallery", key, picture, session.upload()).clone();
        let geometry = heads.gallery.geometry.clone();
        let stats = heads.stats.clone();
        // The title and labels as text of the window's own size: the picture is scaled to the tile, and text drawn
        // into it shrank past reading.
        let title_height =
            ui.add(egui::Label::new(egui::RichText::new(&heads.gallery.title).small()).wrap()).rect.height();
        let font = egui::TextStyle::Small.resolve(ui.style());
        // Rows come stack by stack.
        let mut stacks: Vec<Stack> = geometry.rows.iter().map(|(stack, _)| *stack).collect();
        stacks.dedup();
        let row_labels: Vec<String> =
            geometry.rows.iter().map(|&(stack, layer)| row_label(&stacks, stack, layer)).collect();
        let text_width = |text: &str| {
            ui.fonts_mut(|fonts| fonts.layout_no_wrap(text.to_string(), font.clone(), Color32::WHITE)).size().x
        };
        let label_margin = row_labels.iter().map(|label| text_width(label)).fold(0.0, f32::max) + 4.0;
        let column_label_width = text_width("h15") + 4.0;
        let label_height = font.size + 2.0;
        let size = Vec2::new(ui.available_width(), (height - title_height).max(40.0));
        let aspect = geometry.height as f32 / geometry.width.max(1) as f32;
        let room = Vec2::new(size.x - label_margin, size.y - label_height);
        let side = room.x.min(room.y / aspect.max(1e-3)).max(8.0);
        let (outer, _) = ui.allocate_exact_size(size, Sense::hover());
        let centre = outer.center() + Vec2::new(label_margin, label_height) / 2.0;
        let rect = egui::Rect::from_center_size(centre, Vec2::new(side, side * aspect));
        let response = ui.interact(rect, ui.make_persistent_id("head gallery"), Sense::click());
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "head gallery"));
        let uv = egui::Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
        ui.painter_at(rect).image(texture.id(), rect, uv, Color32::WHITE);
        self.gallery_rect = Some(rect);
        let to_screen = rect.width() / geometry.width.max(1) as f32;
        let color = ui.visuals().text_color();
        let pitch = (geometry.thumbnail.0 + 2) as f32 * to_screen;
        // Column labels where they fit (every head, else every 2nd or 4th), row labels beside their rows.
        let every = [1, 2, 4, 8].into_iter().find(|&n| pitch * n as f32 >= column_label_width).unwrap_or(16);
        let most_heads = geometry.heads.iter().copied().max().unwrap_or(0);
        if let Some(&(stack, layer)) = geometry.rows.first() {
            for head in (0..most_heads).step_by(every) {
                let Some((x, _)) = geometry.centre_of(stack, layer, head) else { continue };
                let position = Pos2::new(rect.left() + x * to_screen, rect.top() - 1.0);
                ui.painter().text(position, egui::Align2::CENTER_BOTTOM, format!("h{head}"), font.clone(), color);
            }
        }
        let row_pitch = (geometry.thumbnail.1 + 2) as f32 * to_screen;
        let every_row = [1, 2, 4, 8].into_iter().find(|&n| row_pitch * n as f32 >= label_height).unwrap_or(16);
        for (index, (&(stack, layer), label)) in geometry.rows.iter().zip(&row_labels).enumerate() {
            let Some((_, y)) = geometry.centre_of(stack, layer, 0).filter(|_| index % every_row == 0) else { continue };
            let position = Pos2::new(rect.left() - 4.0, rect.top() + y * to_screen);
            ui.painter().text(position, egui::Align2::RIGHT_CENTER, label, font.clone(), color);
        }
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
        let side = session.result().and_then(|result| result.model(shown));
        let Some(stats) = side.and_then(|side| side.heads.as_ref()).map(|heads| heads.stats.clone()) else {
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
        let highest = stats.iter().map(|s| s.mean_distance_px).filter(|d| d.is_finite()).fold(0.0, f64::max);
        let plot = Plot::new("mean_attention_distance")
            .height(ui.available_height().max(80.0))
            .y_axis_label("mean attention distance (px)")
            // Marks on whole layers only (the default spacer put one at 0 and none between), and labels as short
            // as "E3" need less room than egui_plot's 60 points, which left only "E0".
            .x_grid_spacer(layer_marks)
            .custom_x_axes(vec![
                AxisHints::new_x()
                    .label("layer (encoder E0…, then decoder D0…)")
                    .label_spacing(LAYER_LABEL_SPACING..=LAYER_LABEL_SPACING + 8.0)
                    .formatter(move |mark, _| {
                        let layer = mark.value.round();
                        if (mark.value - layer).abs() > 1e-6 || layer < 0.0 {
                            return String::new();
                        }
                        let layer = layer as usize;
                        if layer < encoder_layers {
                            format!("E{layer}")
                        } else {
                            format!("D{}", layer - encoder_layers)
                        }
                    }),
            ])
            // Headroom above the highest head, where the legend sits without covering a point.
            .include_y(0.0)
            .include_y(highest * 1.3 + 1.0)
            .legend(egui_plot::Legend::default().position(egui_plot::Corner::LeftTop))
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

/// Screen points a layer label ("E11", "D7") needs beside the next one.
const LAYER_LABEL_SPACING: f32 = 28.0;

/// Grid marks at whole layers: every layer where the axis has room for its label, else every 2nd, 4th, …
fn layer_marks(input: egui_plot::GridInput) -> Vec<egui_plot::GridMark> {
    let (low, high) = input.bounds;
    // `base_step_size` is the plot's smallest grid spacing (8 points) in plot units.
    let per_point = input.base_step_size / 8.0;
    let wanted = f64::from(LAYER_LABEL_SPACING + 4.0) * per_point;
    let step = [1.0, 2.0, 4.0, 8.0, 16.0].into_iter().find(|step| *step >= wanted).unwrap_or(32.0);
    let first = low.max(0.0).ceil() as i64;
    let last = high.floor() as i64;
    (first..=last)
        .filter(|layer| (*layer as f64) % step == 0.0)
        .map(|layer| egui_plot::GridMark { value: layer as f64, step_size: step })
        .collect()
}

impl Panel for HeadsPanel {
    fn title(&self) -> &'static str {
        "Heads"
    }

    fn description(&self) -> &'static str {
        "Every head at once (the head gallery) and each head's mean attention distance, entropy and CLS share"
    }

    fn ui(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        if session.model().info().is_none() {
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
        view.for_model(shown_model(self.model, session)).heads = Some(HeadsView {
            stack: self.stack,
            query: session.settings.query,
            scale: self.scale,
            colormap: self.colormap,
        });
    }
}
