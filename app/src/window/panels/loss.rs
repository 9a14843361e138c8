//! The Loss panel: per-patch loss over the picture with its colour scale, masked vs visible means, the loss of
//! every patch (sorted, or as a histogram), and the loss-vs-ratio curve of this image and seed, read from the
//! worker's sweep (every distinct mask of the slider, computed in the background); a click on the curve moves the
//! slider there.

use eframe::egui::{self, Color32, Sense};
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints, Points};
use serde::{Deserialize, Serialize};

use super::picture::{quality_text, scrub_note};
use super::widgets::{Part, colormap_combo, colormap_legend, model_switch, picture_and_controls, shown_model};
use super::{Panel, fit_picture};
use crate::render::loss::loss_range;
use crate::window::busy;
use crate::window::session::{MaskMode, Session};
use crate::window::texture::PanelTexture;
use crate::worker::{LossView, ModelSweep, ViewOptions};
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

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LossPanel {
    pub view: LossView,
    pub plot: LossPlot,
    /// Which compared model the heatmap, numbers, plot and curve show.
    #[serde(skip)]
    pub model: usize,
    #[serde(skip)]
    texture: PanelTexture,
    /// The curve's sweep is still computing (a screenshot waits for it).
    #[serde(skip)]
    curve_pending: bool,
}

/// The sweep of the model at `index` when it is of the image, strategy and seed on screen.
fn current_sweep(session: &Session, strategy: Option<MaskStrategy>, index: usize) -> Option<&ModelSweep> {
    let report = session.forwards.sweep.as_ref()?;
    let current = Some(report.image_id) == session.image.id()
        && Some(report.strategy) == strategy
        && report.seed == session.settings.seed;
    current.then(|| report.model(index)).flatten()
}

impl LossPanel {
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

    /// The numbers, the plots and the curve; returns the mask ratio clicked on the curve, if any.
    fn controls(&mut self, ui: &mut egui::Ui, session: &Session) -> Option<f64> {
        model_switch(ui, &mut self.model, session);
        let Some(result) = session.result().and_then(|result| result.model(shown_model(self.model, session))) else {
            ui.label("The per-patch loss appears with the first reconstruction.");
            return None;
        };
        if let Some(note) = scrub_note(result) {
            ui.label(note).on_hover_text("The cached mask nearest to the slider's, until the slider's own is cached");
        }
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
        self.curve_plot(ui, session)
    }

    /// The loss-vs-ratio curve of the shown model from its sweep, the current result marked; returns the mask
    /// ratio clicked on the curve, if any.
    fn curve_plot(&self, ui: &mut egui::Ui, session: &Session) -> Option<f64> {
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
            "Every distinct mask of the ratio slider with the current image, mask strategy and seed, from the sweep \
             computed in the background (click to move the slider there); a grid, picture or painted mask is one \
             mask at every ratio, so it is one point (at the fraction it masks)",
        );
        let shown = shown_model(self.model, session);
        let sweep = current_sweep(session, strategy, shown);
        if let Some(sweep) = sweep {
            if let Some(why) = &sweep.stopped {
                ui.colored_label(Color32::from_rgb(230, 170, 60), format!("The sweep {why}."));
            } else if !sweep.is_over() {
                ui.horizontal(|ui| {
                    busy::indicator(ui);
                    ui.label(format!("{} of {} masks", sweep.done, sweep.total));
                });
            }
        }
        let points: Vec<[f64; 2]> = sweep
            .map(|sweep| sweep.curve.iter().filter_map(|(ratio, loss)| loss.map(|l| [*ratio, f64::from(l)])).collect())
            .unwrap_or_default();
        // The current result: on a curve at the fraction its mask was asked to hide, as the curve's points are;
        // alone, at the fraction it hides.
        let current = session.result().and_then(|result| result.model(shown)).and_then(|result| {
            let loss = f64::from(result.quality.masked_loss?);
            let asked = result.requested_masked.filter(|_| strategy.is_some());
            let x = asked.map_or(result.quality.masked_fraction, |asked| asked as f64 / result.mask.len() as f64);
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
        let can_move = strategy.is_some();
        plot.height(PLOT_HEIGHT)
            .x_axis_label("mask ratio")
            .y_axis_label("masked loss")
            .include_x(0.0)
            .include_x(1.0)
            .allow_scroll(false)
            .allow_drag(false)
            .show(ui, |plot_ui| {
                plot_ui.line(Line::new("loss", PlotPoints::from(points)));
                if let Some(current) = current {
                    plot_ui.points(Points::new(current_name, vec![current]).radius(4.0).color(Color32::YELLOW));
                }
                let clicked = can_move && plot_ui.response().clicked();
                clicked.then(|| plot_ui.pointer_coordinate()).flatten().map(|point| point.x.clamp(0.0, 1.0))
            })
            .inner
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
        self.curve_pending
    }

    fn ui(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        let strategy = curve_strategy(session.settings.mask_mode);
        let sweep = current_sweep(session, strategy, shown_model(self.model, session));
        self.curve_pending = strategy.is_some() && sweep.is_none_or(|sweep| !sweep.is_over());
        let mut clicked = None;
        picture_and_controls(ui, |ui, part| match part {
            Part::Picture => self.picture(ui, session),
            Part::Controls => clicked = self.controls(ui, session),
        });
        if let Some(ratio) = clicked {
            // Rounded as the slider shows it; the exact forward pass for it runs as for any other move.
            session.settings.mask_ratio = (ratio * 1000.0).round() / 1000.0;
        }
    }

    fn add_view(&self, view: &mut ViewOptions, session: &Session) {
        view.for_model(shown_model(self.model, session)).loss = Some(self.view.clone());
    }
}
