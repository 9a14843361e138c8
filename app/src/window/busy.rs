//! "Something is being computed" without starving the model: egui's `Spinner` asks for a repaint every frame,
//! which under a software renderer (or without vsync) is an unbounded frame rate that takes CPU from the forward
//! pass it is waiting for. This one turns at four frames a second: under Mesa's software renderer each frame of a
//! 1280×800 window costs CPU the model needs (measured: ten frames a second made a vit-mae-base forward pass in the
//! window 1.25× `bench`'s, four 1.16×).

use std::time::Duration;

use eframe::egui::{self, Sense, Stroke, Vec2};

/// How often a busy indicator (or an elapsed-time label) is redrawn.
const REDRAW_INTERVAL: Duration = Duration::from_millis(250);

/// A small turning arc; schedules the next redraw `REDRAW_INTERVAL` from now.
pub fn indicator(ui: &mut egui::Ui) -> egui::Response {
    let size = ui.spacing().interact_size.y;
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(size), Sense::hover());
    if ui.is_rect_visible(rect) {
        let time = ui.input(|input| input.time);
        let start = (time * 4.0).rem_euclid(std::f64::consts::TAU) as f32;
        let radius = rect.height() / 2.0 - 2.0;
        let points: Vec<_> = (0..=16)
            .map(|i| {
                let angle = start + i as f32 / 16.0 * std::f32::consts::PI * 1.5;
                rect.center() + radius * Vec2::angled(angle)
            })
            .collect();
        let color = ui.visuals().strong_text_color();
        ui.painter().add(egui::Shape::line(points, Stroke::new(2.0, color)));
    }
    ui.ctx().request_repaint_after(REDRAW_INTERVAL);
    response
}
