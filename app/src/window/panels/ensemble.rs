//! The Ensemble panel: the pasted-back pictures of several seeds at the current ratio, as their per-pixel mean
//! and standard deviation. Where the masks disagree the model is unsure; computed in the background.

use eframe::egui::{self, Color32, Sense};
use serde::{Deserialize, Serialize};

use super::widgets::{colormap_combo, colormap_legend};
use super::{Panel, fit_picture};
use crate::render::Colormap;
use crate::window::busy;
use crate::window::job::{Job, JobUpdate};
use crate::window::session::Session;
use crate::window::texture::PanelTexture;
use crate::worker::{EnsembleResult, ModelInfo, Request, Response};

/// Largest seed ensemble offered (each seed is one forward pass).
const MAX_ENSEMBLE_SIZE: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct EnsemblePanel {
    /// Seeds in an ensemble (the current seed and the next ones).
    pub size: usize,
    pub colormap: Colormap,
    /// The ensemble being computed.
    #[serde(skip)]
    pub job: Job,
    #[serde(skip)]
    pub result: Option<EnsembleResult>,
    #[serde(skip)]
    pub error: Option<String>,
    #[serde(skip)]
    mean: PanelTexture,
    #[serde(skip)]
    std: PanelTexture,
}

impl Default for EnsemblePanel {
    fn default() -> Self {
        Self {
            size: 8,
            colormap: Colormap::Magma,
            job: Job::default(),
            result: None,
            error: None,
            mean: PanelTexture::default(),
            std: PanelTexture::default(),
        }
    }
}

impl EnsemblePanel {
    /// Asks for the current seed and the next `size - 1`, at the current ratio.
    pub fn request(&mut self, session: &mut Session) {
        let Some(image) = session.image.input.clone() else { return };
        let first = session.settings.seed;
        let seeds = (0..self.size as u64).map(|offset| first.wrapping_add(offset)).collect();
        let (ratio, colormap) = (session.settings.mask_ratio, self.colormap);
        // Seeds only vary the drawn strategies that use them; the others are averaged over random masks.
        let strategy = session.settings.mask_mode.strategy().filter(|s| s.uses_seed()).unwrap_or_default();
        self.job.start(session, self.size, |id| Request::Ensemble { id, image, strategy, ratio, seeds, colormap });
        self.error = None;
    }

    fn controls(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        self.size = self.size.clamp(2, MAX_ENSEMBLE_SIZE);
        let first = session.settings.seed;
        ui.horizontal_wrapped(|ui| {
            ui.add(egui::Slider::new(&mut self.size, 2..=MAX_ENSEMBLE_SIZE).text("seeds"))
                .on_hover_text("How many masks to average (each is one forward pass)");
            let last = first.wrapping_add(self.size as u64 - 1);
            let compute = ui
                .add_enabled(!self.job.is_running() && session.model().info().is_some(), egui::Button::new("Compute"))
                .on_hover_text(format!(
                    "Run seeds {first}…{last} at ratio {:.3} and show the mean and spread of the pasted-back pictures",
                    session.settings.mask_ratio
                ));
            if compute.clicked() {
                self.request(session);
            }
            if let Some((done, total)) = self.job.progress() {
                busy::indicator(ui);
                ui.label(format!("{done} of {total} forward passes"));
            }
        });
        // On a line of its own (as in the Heads panel): a nested horizontal row does not wrap, and in a narrow tile
        // it ran past the window's edge.
        colormap_combo(ui, "ensemble colormap", "Colormap", &mut self.colormap);
        if let Some(error) = &self.error {
            ui.colored_label(Color32::from_rgb(230, 90, 80), error);
        }
    }
}

impl Panel for EnsemblePanel {
    fn title(&self) -> &'static str {
        "Ensemble"
    }

    fn description(&self) -> &'static str {
        "Mean and spread of the reconstructions over several random masks"
    }

    fn is_busy(&self) -> bool {
        self.job.is_running()
    }

    fn ui(&mut self, ui: &mut egui::Ui, session: &mut Session) {
        self.controls(ui, session);
        let Some(result) = self.result.clone() else {
            ui.label("Where the pasted-back pictures of different masks disagree, the model is unsure.");
            return;
        };
        let stale = session.image.input.as_ref().map(|image| image.id) != Some(result.image_id)
            || result.ratio != session.settings.mask_ratio
            || result.seeds.first() != Some(&session.settings.seed)
            || result.seeds.len() != self.size;
        let never = result.times_masked.iter().filter(|&&count| count == 0).count();
        ui.label(format!(
            "{} seeds at ratio {:.3}; {never} of {} patches never masked (std 0)",
            result.seeds.len(),
            result.ratio,
            result.times_masked.len()
        ));
        if stale {
            ui.colored_label(Color32::from_rgb(230, 170, 60), "Settings changed since: press Compute again");
        }
        colormap_legend(ui, self.colormap, 0.0, result.max_std, "per-pixel standard deviation (0–255 units)");
        let ctx = ui.ctx().clone();
        let mean = self.mean.show(&ctx, "ensemble mean", result.id, &result.mean, session.upload()).clone();
        let std = self.std.show(&ctx, "ensemble std", result.id, &result.std, session.upload()).clone();
        let size = ui.available_size();
        let horizontal = size.x >= size.y;
        let half =
            if horizontal { egui::vec2(size.x / 2.0 - 4.0, size.y) } else { egui::vec2(size.x, size.y / 2.0 - 4.0) };
        let draw = |ui: &mut egui::Ui| {
            ui.allocate_ui(half, |ui| fit_picture(ui, Some(&mean), session, Sense::hover(), "ensemble mean").1)
                .inner
                .on_hover_text("Per-pixel mean of the pasted-back pictures over the seeds");
            ui.allocate_ui(half, |ui| fit_picture(ui, Some(&std), session, Sense::hover(), "ensemble spread").1)
                .inner
                .on_hover_text("Per-pixel standard deviation over the seeds; dark = all seeds agree");
        };
        if horizontal {
            ui.horizontal_top(|ui| draw(ui));
        } else {
            ui.vertical(|ui| draw(ui));
        }
    }

    fn on_response(&mut self, response: &Response, _session: &mut Session) {
        match self.job.on_response(response) {
            JobUpdate::Answered(Response::Ensemble(result)) => {
                self.result = Some((**result).clone());
                self.job.finish();
            }
            JobUpdate::Failed(error) => self.error = Some(error.to_string()),
            _ => {}
        }
    }

    fn on_model_loaded(&mut self, _info: &ModelInfo, _session: &mut Session) {
        self.job.forget();
        self.result = None;
    }
}
