//! The Loss panel: per-patch loss over the picture with its colour scale, masked vs visible means, the loss of
//! every patch (sorted, or as a histogram), and the loss-vs-ratio curve of this image and seed, computed in the
//! background.

use eframe::egui::{self, Color32, Sense};
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints, Points};
use serde::{Deserialize, Serialize};

use super::picture::quality_text;
use super::widgets::{Part, colormap_combo, colormap_legend, model_switch, picture_and_controls, shown_model};
use super::{Panel, fit_picture};
use crate::jobs::loss_curve::default_ratios;
use crate::render::loss::loss_range;
use crate::window::busy;
use crate::window::job::{Job, JobUpdate};
use crate::window::session::{MaskMode, Session};
use crate::window::texture::PanelTexture;
use crate::worker::{LossView, ModelInfo, Request, Response, ViewOptions};
use mae_model::MaskStrategy;

const HISTOGRAM_BINS: usize = 24;
const PLOT_HEIGHT: f32 = 150.0;
const MASKED_COLOR: Color32 = Color32::from_rgb(230, 120, 60);
const VISIBLE_COLOR: Color32 = Color32::from_rgb(90, 150, 230);

/// The per-patch loss plot: bars sorted by loss, or a histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LossPlot {
    #[default]
    Sorted,
    Histogram,
}

/// The strategy the curve draws: the current one where the ratio changes it (random, block, centre); `None` for a
/// grid, picture or painted mask, which is one mask at every ratio: one point, not another strategy's curve.
pub fn curve_strategy(mode: MaskMode) -> Option<MaskStrategy> {
    mode.strategy().filter(|strategy| strategy.uses_ratio())
}

/// The mask in a sentence ("the grid mask").
fn mask_noun(mode: MaskMode) -> &'static str {
    match mode {
        MaskMode::Random => "random",
        MaskMode::Block => "block",
        MaskMode::Grid => "grid",
        MaskMode::Centre => "centre",
        MaskMode::Image => "picture",
        MaskMode::Painted => "painted",
    }
}

/// The loss-vs-ratio curve: asked for when the panel is visible and its image, seed or model changed.
#[derive(Debug, Clone, Default)]
pub struct LossCurveState {
    pub job: Job,
    /// (model generation, image id, strategy, seed) the curve belongs to.
    pub key: Option<(u64, u64, Option<MaskStrategy>, u64)>,
    pub points: Vec<(f64, Option<f32>)>,
    pub error: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LossPanel {
    pub view: LossView,
    pub plot: LossPlot,
    /// Which compared model the heatmap, numbers and plot show (the curve is always model A's).
    #[serde(skip)]
    pub model: usize,
    #[serde(skip)]
    pub curve: LossCurveState,
    #[serde(skip)]
    texture: PanelTexture,
}

impl LossPanel {
    fn request_curve_if_stale(&mut self, session: &mut Session) {
        let Some(image) = session.image.input.clone() else { return };
        let seed = session.settings.seed;
        let strategy = curve_strategy(session.settings.mask_mode);
        let key = Some((session.model().generation, image.id, strategy, seed));
        if session.model().info().is_none() || self.curve.key == key {
            return;
        }
        let Some(strategy) = strategy else {
            // Nothing to compute: the plot shows the one point the mask has.
            self.curve = LossCurveState { key, ..LossCurveState::default() };
            return;
        };
        let ratios = default_ratios();
        self.curve = LossCurveState { key, ..LossCurveState::default() };
        self.curve.job.start(session, ratios.len(), |id| Request::LossCurve { id, image, strategy, seed, ratios });
    }

    fn picture(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        let shown = shown_model(self.model, session);
        let side = session.result().and_then(|result| result.model(shown));
        let texture = side.and_then(|side| {
            let overlay = side.pictures.loss.as_ref()?;
            Some(self.texture.show(ui.ctx(), "loss", side.texture_key, overlay, session.upload()).clone())
        });
        let legend_height = 2.0 * ui.spacing().interact_size.y;
        let picture_height = (ui.available_height() - legend_height).max(32.0);
        ui.allocate_ui(egui::vec2(ui.available_width(), picture_height), |ui| {
            fit_picture(ui, texture.as_ref(), session, Sense::hover(), "loss overlay")
                .1
                .on_hover_text("Per-patch mean squared error (brighter = worse)");
        });
        if let Some(side) = side {
            // Each heatmap spans its own lowest..highest patch loss.
            let (low, high) = loss_range(&side.patch_loss);
            colormap_legend(ui, self.view.colormap, low, high, "patch loss");
        }
    }

    fn controls(&mut self, ui: &mut egui::Ui, session: &Session) {
        model_switch(ui, &mut self.model, session);
        let Some(result) = session.result().and_then(|result| result.model(shown_model(self.model, session))) else {
            ui.label("The per-patch loss appears with the first reconstruction.");
            return;
        };
        let format = |value: Option<f32>| value.map_or("none".to_string(), |v| format!("{v:.4}"));
        ui.label(format!("masked patches: mean loss {}", format(result.quality.masked_loss)))
            .on_hover_text("The training loss: mean squared error over the hidden patches");
        ui.label(format!("visible patches: mean loss {}", format(result.quality.visible_loss)))
            .on_hover_text("How well the model copies what it saw (not part of the training loss)");
        ui.add(egui::Label::new(quality_text(&result.quality, result.uses_target_statistics)).wrap()).on_hover_text(
            "Of the pasted-back picture against the original, before 8-bit rounding: PSNR over all pixels and over \
             the masked ones, SSIM as scikit-image computes it",
        );
        if result.uses_target_statistics {
            ui.add(
                egui::Label::new(
                    "This is a norm-pix model: its pictures and these numbers use each hidden patch's own mean and \
                     variance, which the model never saw.",
                )
                .wrap(),
            );
        }
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.plot, LossPlot::Sorted, "Sorted")
                .on_hover_text("Every patch's loss, worst first");
            ui.selectable_value(&mut self.plot, LossPlot::Histogram, "Histogram")
                .on_hover_text("How the patch losses are distributed");
        });
        ui.add(egui::Slider::new(&mut self.view.alpha, 0.0..=1.0).text("Opacity"))
            .on_hover_text("How strongly the heatmap covers the picture");
        colormap_combo(ui, "loss colormap", "Colormap", &mut self.view.colormap);
        let losses: Vec<(usize, f32, bool)> = result
            .patch_loss
            .iter()
            .enumerate()
            .map(|(patch, &loss)| (patch, loss, result.mask.get(patch).is_some_and(|&m| m > 0.5)))
            .collect();
        let plot = Plot::new("patch_loss_plot").height(PLOT_HEIGHT).legend(Legend::default()).allow_scroll(false);
        match self.plot {
            LossPlot::Sorted => {
                let mut sorted = losses;
                sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
                let bars = |want_masked: bool| -> Vec<Bar> {
                    sorted
                        .iter()
                        .enumerate()
                        .filter(|(_, (_, _, masked))| *masked == want_masked)
                        .map(|(rank, (patch, loss, _))| {
                            Bar::new(rank as f64, f64::from(*loss)).name(format!("patch {patch}"))
                        })
                        .collect()
                };
                plot.x_axis_label("rank").y_axis_label("loss").show(ui, |plot_ui| {
                    plot_ui.bar_chart(BarChart::new("masked", bars(true)).color(MASKED_COLOR));
                    plot_ui.bar_chart(BarChart::new("visible", bars(false)).color(VISIBLE_COLOR));
                });
            }
            LossPlot::Histogram => {
                let max = losses.iter().map(|l| l.1).fold(0.0f32, f32::max).max(1e-6);
                let width = f64::from(max) / HISTOGRAM_BINS as f64;
                let histogram = |want_masked: bool| -> Vec<Bar> {
                    let mut counts = [0usize; HISTOGRAM_BINS];
                    for (_, loss, masked) in &losses {
                        if *masked == want_masked {
                            let bin = ((loss / max) * HISTOGRAM_BINS as f32) as usize;
                            counts[bin.min(HISTOGRAM_BINS - 1)] += 1;
                        }
                    }
                    counts
                        .iter()
                        .enumerate()
                        .map(|(bin, &count)| Bar::new((bin as f64 + 0.5) * width, count as f64).width(width))
                        .collect()
                };
                plot.x_axis_label("loss").y_axis_label("patches").show(ui, |plot_ui| {
                    plot_ui.bar_chart(BarChart::new("masked", histogram(true)).color(MASKED_COLOR));
                    plot_ui.bar_chart(BarChart::new("visible", histogram(false)).color(VISIBLE_COLOR));
                });
            }
        }
        self.curve_plot(ui, session);
    }

    fn curve_plot(&self, ui: &mut egui::Ui, session: &Session) {
        let mode = session.settings.mask_mode;
        let strategy = curve_strategy(mode);
        let title = match strategy {
            Some(strategy) => {
                let seed =
                    if strategy.uses_seed() { format!(", seed {}", session.settings.seed) } else { String::new() };
                format!("Mean masked loss vs. mask ratio ({} masks{seed})", strategy.name())
            }
            None => format!("Masked loss of the {} mask, which the ratio does not change", mask_noun(mode)),
        };
        ui.label(title).on_hover_text(
            "Computed in the background, one ratio at a time, with the current image, mask strategy and seed; a \
             grid, picture or painted mask is one mask at every ratio, so it is one point (at the fraction it masks)",
        );
        let curve = &self.curve;
        if let Some((done, total)) = curve.job.progress() {
            ui.horizontal(|ui| {
                busy::indicator(ui);
                ui.label(format!("{done} of {total} ratios"));
            });
        }
        if let Some(error) = &curve.error {
            ui.colored_label(Color32::from_rgb(230, 90, 80), error);
        }
        let points: Vec<[f64; 2]> =
            curve.points.iter().filter_map(|(ratio, loss)| loss.map(|l| [*ratio, f64::from(l)])).collect();
        // The current result: at the slider's ratio on a curve; alone, at the fraction its mask hides.
        let current = session.result().and_then(|result| {
            let loss = f64::from(result.first().quality.masked_loss?);
            let x =
                if strategy.is_some() { session.settings.mask_ratio } else { result.first().quality.masked_fraction };
            Some([x, loss])
        });
        let current_name = if strategy.is_some() {
            "current".to_string()
        } else {
            format!("{} mask (masks {:.3})", mask_noun(mode), current.map_or(0.0, |[x, _]| x))
        };
        let plot = Plot::new("loss_vs_ratio");
        // A lone point says what it is in a legend; a curve's title says it already (and a legend covered it).
        let plot =
            if strategy.is_none() { plot.legend(Legend::default().position(egui_plot::Corner::LeftTop)) } else { plot };
        plot.height(PLOT_HEIGHT)
            .x_axis_label("mask ratio")
            .y_axis_label("masked loss")
            .include_x(0.0)
            .include_x(1.0)
            .allow_scroll(false)
            .show(ui, |plot_ui| {
                plot_ui.line(Line::new("loss", PlotPoints::from(points)));
                if let Some(current) = current {
                    plot_ui.points(Points::new(current_name, vec![current]).radius(4.0).color(Color32::YELLOW));
                }
            });
    }
}

impl Panel for LossPanel {
    fn title(&self) -> &'static str {
        "Loss"
    }

    fn description(&self) -> &'static str {
        "Per-patch loss heatmap, its distribution and the loss-vs-ratio curve"
    }

    fn is_busy(&self) -> bool {
        self.curve.job.is_running()
    }

    fn ui(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        self.request_curve_if_stale(session);
        picture_and_controls(ui, |ui, part| match part {
            Part::Picture => self.picture(ui, session),
            Part::Controls => self.controls(ui, session),
        });
    }

    fn add_view(&self, view: &mut ViewOptions, session: &Session) {
        view.for_model(shown_model(self.model, session)).loss = Some(self.view.clone());
    }

    fn on_response(&mut self, response: &Response, _session: &mut Session) {
        let curve = &mut self.curve;
        match curve.job.on_response(response) {
            JobUpdate::Answered(Response::LossCurve { points, .. }) => {
                curve.points = points.clone();
                curve.job.finish();
            }
            JobUpdate::Failed(error) => curve.error = Some(error.to_string()),
            // The job was lost with the worker's state: ask again when next shown.
            JobUpdate::Lost => *curve = LossCurveState::default(),
            _ => {}
        }
    }

    fn on_model_loaded(&mut self, _info: &ModelInfo, _session: &mut Session) {
        self.curve = LossCurveState::default();
    }
}
