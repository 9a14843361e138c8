//! The Attention panel: one attention map (a layer's head, or its heads fused; optionally rolled out) over the
//! original picture, for the CLS token or a clicked query patch.

use eframe::egui::{self, Color32, Sense, Stroke};
use serde::{Deserialize, Serialize};

use super::widgets::{Part, colormap_combo, model_switch, picture_and_controls, shown_model};
use super::{Panel, PanelCommand, fit_picture, patch_rect, patch_under};
use crate::render::attention::{HeadFusion, Query, Stack};
use crate::window::session::Session;
use crate::window::texture::PanelTexture;
use crate::worker::{AttentionView, ModelInfo, ViewOptions};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttentionPanel {
    pub view: AttentionView,
    /// Which compared model's attention the panel shows.
    #[serde(skip)]
    pub model: usize,
    #[serde(skip)]
    texture: PanelTexture,
}

/// How the heads of a layer can be shown, in the drop-down's order after the single heads.
const FUSIONS: [HeadFusion; 3] = [HeadFusion::Mean, HeadFusion::Max, HeadFusion::Min];

impl AttentionPanel {
    /// Keeps the layer and head inside the model's ranges.
    fn fit_selection(&mut self, info: &ModelInfo) {
        let (layers, heads) = self.stack_size(info);
        let selection = &mut self.view.selection;
        selection.layer = selection.layer.min(layers.saturating_sub(1));
        if matches!(selection.heads, HeadFusion::Head(head) if head >= heads) {
            selection.heads = HeadFusion::Mean;
        }
    }

    /// (layers, heads) of the chosen stack.
    fn stack_size(&self, info: &ModelInfo) -> (usize, usize) {
        match self.view.selection.stack {
            Stack::Encoder => (info.encoder_layers, info.encoder_heads),
            Stack::Decoder => (info.decoder_layers, info.decoder_heads),
        }
    }

    fn picture(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        let shown = shown_model(self.model, session);
        let texture = session.result().and_then(|result| result.model(shown)).and_then(|side| {
            let overlay = side.pictures.attention.as_ref()?;
            Some(self.texture.show(ui.ctx(), "attention", side.texture_key, overlay, session.upload()).clone())
        });
        let (rect, response) = fit_picture(ui, texture.as_ref(), session, Sense::click(), "attention overlay");
        let response = response.on_hover_text("Click a patch to see where it looks; right-click for CLS");
        let Some(grid) = session.grid() else { return };
        if let Query::Patch(patch) = session.settings.query {
            let outline = Stroke::new(2.0, Color32::from_rgb(80, 220, 255));
            ui.painter_at(rect).rect_stroke(patch_rect(rect, grid, patch), 0.0, outline, egui::StrokeKind::Inside);
        }
        if response.clicked()
            && let Some(pointer) = response.interact_pointer_pos()
        {
            session.settings.query = Query::Patch(patch_under(pointer, rect, grid));
        } else if response.secondary_clicked() {
            session.settings.query = Query::Cls;
        }
    }

    fn controls(&mut self, ui: &mut egui::Ui, session: &mut Session, info: &ModelInfo) {
        model_switch(ui, &mut self.model, session);
        let (layers, heads) = self.stack_size(info);
        let selection = &mut self.view.selection;
        ui.horizontal(|ui| {
            ui.label("Stack");
            let before = selection.stack;
            ui.selectable_value(&mut selection.stack, Stack::Encoder, "Encoder")
                .on_hover_text("Attention among the CLS token and the visible patches");
            ui.selectable_value(&mut selection.stack, Stack::Decoder, "Decoder")
                .on_hover_text("Attention among all patches (mask tokens included)");
            if before != selection.stack {
                selection.layer = 0;
                selection.heads = HeadFusion::Mean;
            }
        });
        ui.add(egui::Slider::new(&mut selection.layer, 0..=layers.saturating_sub(1)).text("Layer"))
            .on_hover_text("Which transformer layer (0 = first). With rollout: the last layer multiplied in.");
        let heads_text = |heads: HeadFusion| match heads {
            HeadFusion::Head(head) => format!("head {head}"),
            fusion => format!("all heads ({fusion})"),
        };
        egui::ComboBox::from_label("Heads")
            .selected_text(heads_text(selection.heads))
            .show_ui(ui, |ui| {
                for choice in FUSIONS.into_iter().chain((0..heads).map(HeadFusion::Head)) {
                    ui.selectable_value(&mut selection.heads, choice, heads_text(choice));
                }
            })
            .response
            .on_hover_text("One head, or all heads fused by mean, max or min");
        ui.checkbox(&mut selection.rollout, "Rollout")
            .on_hover_text("Attention rollout: (A+I)/2 multiplied over the layers up to this one");
        ui.add_enabled(selection.rollout, egui::Slider::new(&mut selection.discard_ratio, 0.0..=0.99).text("Discard"))
            .on_hover_text("Rollout drops this fraction of the weakest attention weights per layer");
        ui.horizontal(|ui| {
            ui.label(format!("Query: {}", session.settings.query));
            if ui.small_button("Use CLS").on_hover_text("Show the CLS token's attention (or right-click)").clicked() {
                session.settings.query = Query::Cls;
            }
        });
        ui.add(egui::Slider::new(&mut self.view.alpha, 0.0..=1.0).text("Opacity"))
            .on_hover_text("How strongly the heatmap covers the picture");
        colormap_combo(ui, "attention colormap", "Colormap", &mut self.view.colormap);
        ui.weak("Colours span this map's own lowest to highest weight. Encoder maps leave masked patches empty.");
    }
}

impl Panel for AttentionPanel {
    fn title(&self) -> &'static str {
        "Attention"
    }

    fn description(&self) -> &'static str {
        "Attention maps: encoder or decoder, layer, head, rollout, query patch"
    }

    fn ui(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        // The layer and head ranges are those of the model shown.
        let shown = session.model_info(shown_model(self.model, session));
        let Some(info) = shown.cloned() else {
            ui.label("Attention maps appear once a model is loaded.");
            return;
        };
        // The A/B switch may have changed the model shown.
        self.fit_selection(&info);
        picture_and_controls(ui, |ui, part| match part {
            Part::Picture => self.picture(ui, session),
            Part::Controls => self.controls(ui, session, &info),
        });
    }

    fn add_view(&self, view: &mut ViewOptions, session: &Session) {
        let mut attention = self.view.clone();
        attention.selection.query = session.settings.query;
        view.for_model(shown_model(self.model, session)).attention = Some(attention);
    }

    fn on_model_loaded(&mut self, info: &ModelInfo, _session: &mut Session) {
        self.fit_selection(info);
    }

    fn on_command(&mut self, command: &PanelCommand) {
        let PanelCommand::FocusHead { stack, layer, head, model } = *command;
        self.model = model;
        let selection = &mut self.view.selection;
        selection.stack = stack;
        selection.layer = layer;
        selection.heads = HeadFusion::Head(head);
        selection.rollout = false;
    }
}
