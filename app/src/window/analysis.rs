//! The Attention and Loss sections under the four panels.

use eframe::egui::{self, Color32, Pos2, Rect, Sense, Stroke, Vec2};
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints, Points};

use super::app::MaeApp;
use super::panels::{patch_rect, patch_under};
use super::settings::{LossPlot, MAX_ENSEMBLE_SIZE};
use super::textures;
use crate::render::Colormap;
use crate::worker::Fusion;

/// Side of the overlay pictures in the analysis sections.
const OVERLAY_SIDE: f32 = 300.0;
const HISTOGRAM_BINS: usize = 24;

pub fn analysis_sections(app: &mut MaeApp, ui: &mut egui::Ui) {
    if app.settings.show_attention {
        ui.separator();
        attention_section(app, ui);
    }
    if app.settings.show_loss {
        ui.separator();
        loss_section(app, ui);
    }
    if app.settings.show_ensemble {
        ui.separator();
        ensemble_section(app, ui);
    }
}

fn ensemble_section(app: &mut MaeApp, ui: &mut egui::Ui) {
    ui.heading("Seed ensemble");
    let seeds = app.settings.ensemble_size as u64;
    let first = app.settings.seed;
    ui.horizontal(|ui| {
        ui.add(egui::Slider::new(&mut app.settings.ensemble_size, 2..=MAX_ENSEMBLE_SIZE).text("seeds"))
            .on_hover_text("How many masks to average (each is one forward pass)");
        colormap_combo(ui, "ensemble_colormap", "Colormap", &mut app.settings.ensemble_colormap);
        let busy = app.ensemble.request_id.is_some();
        if ui
            .add_enabled(!busy && app.model_info().is_some(), egui::Button::new("Compute"))
            .on_hover_text(format!(
                "Run seeds {first}…{} at ratio {:.3} and show the mean and spread of the pasted-back pictures",
                first.wrapping_add(seeds - 1),
                app.settings.mask_ratio
            ))
            .clicked()
        {
            app.request_ensemble();
        }
        if busy {
            ui.spinner();
            ui.label(format!("{seeds} forward passes…"));
        }
    });
    if let Some(error) = &app.ensemble.error {
        ui.colored_label(Color32::from_rgb(230, 90, 80), error);
    }
    let Some(result) = app.ensemble.result.clone() else {
        ui.label("Where the pasted-back pictures of different masks disagree, the model is unsure.");
        return;
    };
    let stale = app.image.as_ref().map(|image| image.id) != Some(result.image_id)
        || result.ratio != app.settings.mask_ratio
        || result.seeds.first() != Some(&first)
        || result.seeds.len() as u64 != seeds;
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.label("Mean of the pasted-back pictures");
            overlay_picture(app, ui, textures::ENSEMBLE_MEAN, "Per-pixel mean over the seeds");
        });
        ui.vertical(|ui| {
            ui.label(format!("Standard deviation (0 … {:.1} of 255)", result.max_std));
            overlay_picture(
                app,
                ui,
                textures::ENSEMBLE_STD,
                "Per-pixel spread over the seeds; black = all seeds agree",
            );
        });
        ui.vertical(|ui| {
            let never = result.times_masked.iter().filter(|&&count| count == 0).count();
            ui.label(format!("{} seeds at ratio {:.3}", result.seeds.len(), result.ratio));
            ui.label(format!("{never} of {} patches never masked (std 0)", result.times_masked.len()));
            if stale {
                ui.colored_label(Color32::from_rgb(230, 170, 60), "Settings changed since: press Compute again");
            }
        });
    });
}

fn attention_section(app: &mut MaeApp, ui: &mut egui::Ui) {
    ui.heading("Attention");
    let Some(info) = app.model_info().cloned() else {
        ui.label("Attention maps appear once a model is loaded.");
        return;
    };
    ui.horizontal_top(|ui| {
        overlay_picture(
            app,
            ui,
            textures::ATTENTION,
            "Click a visible patch to see where it looks; right-click for CLS",
        );
        ui.vertical(|ui| {
            let attention = &mut app.settings.attention;
            ui.horizontal(|ui| {
                ui.label("Stack");
                let before = attention.decoder;
                ui.selectable_value(&mut attention.decoder, false, "Encoder")
                    .on_hover_text("Attention among the CLS token and the visible patches");
                ui.selectable_value(&mut attention.decoder, true, "Decoder")
                    .on_hover_text("Attention among all patches (mask tokens included)");
                if before != attention.decoder {
                    attention.layer = 0;
                    attention.head = None;
                }
            });
            let (layers, heads) = if attention.decoder {
                (info.decoder_layers, info.decoder_heads)
            } else {
                (info.encoder_layers, info.encoder_heads)
            };
            ui.add(egui::Slider::new(&mut attention.layer, 0..=layers.saturating_sub(1)).text("Layer"))
                .on_hover_text("Which transformer layer (0 = first). With rollout: the last layer multiplied in.");
            let head_text = attention
                .head
                .map_or_else(|| format!("all heads ({})", attention.fusion.name()), |h| format!("head {h}"));
            egui::ComboBox::from_label("Heads")
                .selected_text(head_text)
                .show_ui(ui, |ui| {
                    for fusion in Fusion::ALL {
                        if ui
                            .selectable_label(
                                attention.head.is_none() && attention.fusion == fusion,
                                format!("all heads ({})", fusion.name()),
                            )
                            .clicked()
                        {
                            attention.head = None;
                            attention.fusion = fusion;
                        }
                    }
                    for head in 0..heads {
                        ui.selectable_value(&mut attention.head, Some(head), format!("head {head}"));
                    }
                })
                .response
                .on_hover_text("One head, or all heads fused by mean, max or min");
            ui.checkbox(&mut attention.rollout, "Rollout")
                .on_hover_text("Attention rollout: (A+I)/2 multiplied over the layers up to this one");
            ui.add_enabled(
                attention.rollout,
                egui::Slider::new(&mut attention.discard_ratio, 0.0..=0.99).text("Discard ratio"),
            )
            .on_hover_text("Rollout drops this fraction of the weakest attention weights per layer");
            ui.horizontal(|ui| {
                let query = attention.query_patch.map_or("CLS".to_string(), |p| format!("patch {p}"));
                ui.label(format!("Query: {query}"));
                if ui
                    .small_button("Use CLS")
                    .on_hover_text("Show the CLS token's attention (or right-click the picture)")
                    .clicked()
                {
                    attention.query_patch = None;
                }
            });
            ui.add(egui::Slider::new(&mut attention.alpha, 0.0..=1.0).text("Opacity"))
                .on_hover_text("How strongly the heatmap covers the picture");
            colormap_choice(ui, "Colormap##attention", &mut attention.colormap);
        });
    });
}

fn loss_section(app: &mut MaeApp, ui: &mut egui::Ui) {
    ui.heading("Loss");
    let Some(shown) = app.shown.as_ref() else {
        ui.label("The per-patch loss appears with the first reconstruction.");
        return;
    };
    let masked_mean = shown.masked_loss;
    let visible_mean = shown.visible_loss;
    let mut losses: Vec<(usize, f32, bool)> = shown
        .patch_loss
        .iter()
        .enumerate()
        .map(|(p, &l)| (p, l, shown.mask.get(p).is_some_and(|&m| m > 0.5)))
        .collect();
    let format = |value: Option<f32>| value.map_or("none".to_string(), |v| format!("{v:.4}"));
    ui.horizontal_top(|ui| {
        overlay_picture(app, ui, textures::LOSS, "Per-patch mean squared error (brighter = worse)");
        ui.vertical(|ui| {
            ui.label(format!("masked patches: mean loss {}", format(masked_mean)))
                .on_hover_text("The training loss: mean squared error over the hidden patches");
            ui.label(format!("visible patches: mean loss {}", format(visible_mean)))
                .on_hover_text("How well the model copies what it saw (not part of the training loss)");
            ui.horizontal(|ui| {
                ui.selectable_value(&mut app.settings.loss_plot, LossPlot::Sorted, "Sorted")
                    .on_hover_text("Every patch's loss, from worst to best");
                ui.selectable_value(&mut app.settings.loss_plot, LossPlot::Histogram, "Histogram")
                    .on_hover_text("How the patch losses are distributed");
            });
            ui.add(egui::Slider::new(&mut app.settings.loss.alpha, 0.0..=1.0).text("Opacity"))
                .on_hover_text("How strongly the heatmap covers the picture");
            colormap_choice(ui, "Colormap##loss", &mut app.settings.loss.colormap);
            let plot =
                Plot::new("patch_loss_plot").height(170.0).width(360.0).legend(Legend::default()).allow_scroll(false);
            match app.settings.loss_plot {
                LossPlot::Sorted => {
                    losses.sort_by(|a, b| b.1.total_cmp(&a.1));
                    let (masked, visible): (Vec<_>, Vec<_>) = losses.iter().enumerate().partition(|(_, (_, _, m))| *m);
                    let bars = |items: Vec<(usize, &(usize, f32, bool))>| -> Vec<Bar> {
                        items
                            .into_iter()
                            .map(|(rank, (patch, loss, _))| {
                                Bar::new(rank as f64, f64::from(*loss)).name(format!("patch {patch}"))
                            })
                            .collect()
                    };
                    plot.x_axis_label("rank").y_axis_label("loss").show(ui, |plot_ui| {
                        plot_ui.bar_chart(BarChart::new("masked", bars(masked)).color(Color32::from_rgb(230, 120, 60)));
                        plot_ui
                            .bar_chart(BarChart::new("visible", bars(visible)).color(Color32::from_rgb(90, 150, 230)));
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
                        plot_ui
                            .bar_chart(BarChart::new("masked", histogram(true)).color(Color32::from_rgb(230, 120, 60)));
                        plot_ui.bar_chart(
                            BarChart::new("visible", histogram(false)).color(Color32::from_rgb(90, 150, 230)),
                        );
                    });
                }
            }
        });
        ui.vertical(|ui| loss_curve(app, ui));
    });
}

fn loss_curve(app: &mut MaeApp, ui: &mut egui::Ui) {
    ui.label(format!("Mean masked loss vs. mask ratio (seed {})", app.settings.seed))
        .on_hover_text("Computed in the background, one ratio at a time, with the current image and seed");
    let wanted = app.image.as_ref().map(|image| (image.id, app.settings.seed));
    if app.model_info().is_some() && wanted.is_some() && app.loss_curve.key != wanted {
        app.request_loss_curve();
    }
    let curve = &app.loss_curve;
    if curve.request_id.is_some() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(format!("{} of {} ratios", curve.progress.0, curve.progress.1));
        });
    }
    if let Some(error) = &curve.error {
        ui.colored_label(Color32::from_rgb(230, 90, 80), error);
    }
    let points: Vec<[f64; 2]> =
        curve.points.iter().filter_map(|(ratio, loss)| loss.map(|l| [*ratio, f64::from(l)])).collect();
    let current =
        app.shown.as_ref().and_then(|shown| shown.masked_loss).map(|l| [app.settings.mask_ratio, f64::from(l)]);
    Plot::new("loss_vs_ratio")
        .height(200.0)
        .width(320.0)
        .x_axis_label("mask ratio")
        .y_axis_label("masked loss")
        .include_x(0.0)
        .include_x(1.0)
        .allow_scroll(false)
        .show(ui, |plot_ui| {
            plot_ui.line(Line::new("loss", PlotPoints::from(points)));
            if let Some(current) = current {
                plot_ui.points(Points::new("current", vec![current]).radius(4.0).color(Color32::YELLOW));
            }
        });
}

fn colormap_choice(ui: &mut egui::Ui, id: &str, colormap: &mut Colormap) {
    let label = id.split("##").next().unwrap_or(id);
    ui.horizontal(|ui| colormap_combo(ui, id, label, colormap));
}

fn colormap_combo(ui: &mut egui::Ui, id: &str, label: &str, colormap: &mut Colormap) {
    ui.label(label);
    egui::ComboBox::from_id_salt(id)
        .selected_text(colormap.name())
        .show_ui(ui, |ui| {
            for choice in Colormap::ALL {
                ui.selectable_value(colormap, choice, choice.name());
            }
        })
        .response
        .on_hover_text(format!("{label}: the colours of the heatmap (low → high)"));
}

/// An overlay picture; clicks on the attention picture choose the query patch.
fn overlay_picture(app: &mut MaeApp, ui: &mut egui::Ui, texture: &str, tooltip: &str) {
    let (height, width) = app.model_info().map_or((224, 224), |info| info.image_size);
    let size = Vec2::new(OVERLAY_SIDE, OVERLAY_SIDE * height as f32 / width.max(1) as f32);
    let (rect, response) = ui.allocate_exact_size(size, Sense::click());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, format!("{texture} overlay")));
    let response = response.on_hover_text(tooltip);
    let painter = ui.painter_at(rect);
    match app.textures.get(texture) {
        Some(handle) => {
            painter.image(handle.id(), rect, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
        }
        None => {
            painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "computing…",
                egui::FontId::proportional(13.0),
                ui.visuals().weak_text_color(),
            );
        }
    }
    let Some(grid) = app.grid() else { return };
    if texture == textures::ATTENTION {
        if let Some(patch) = app.settings.attention.query_patch {
            painter.rect_stroke(
                patch_rect(rect, grid, patch),
                0.0,
                Stroke::new(2.0, Color32::from_rgb(80, 220, 255)),
                egui::StrokeKind::Inside,
            );
        }
        if response.clicked()
            && let Some(pointer) = response.interact_pointer_pos()
        {
            app.settings.attention.query_patch = Some(patch_under(pointer, rect, grid));
        } else if response.secondary_clicked() {
            app.settings.attention.query_patch = None;
        }
    }
}
