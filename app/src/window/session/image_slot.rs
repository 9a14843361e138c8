//! The image slot: the picture the model sees, a preview shown until its first result arrives, and why the
//! picture named on the command line could not be opened.

use std::sync::Arc;

use eframe::egui;

use mae_model::SizeRule;

use crate::worker::ImageInput;

#[derive(Default)]
pub struct ImageSlot {
    pub input: Option<ImageInput>,
    /// A small copy of a newly opened picture (image id, picture), shown until the model's result arrives.
    pub preview: Option<(u64, egui::ColorImage)>,
    /// Why the image named on the command line could not be opened.
    pub startup_error: Option<String>,
}

impl ImageSlot {
    /// Puts a new picture in the slot under `id` (fresh, so results for the old picture are told apart), to be fed
    /// at `size`.
    pub fn set(&mut self, id: u64, name: String, rgb: Arc<image::RgbImage>, preview: egui::ColorImage, size: SizeRule) {
        self.preview = Some((id, preview));
        self.input = Some(ImageInput { id, rgb, name, size });
    }

    /// The same picture fed at another `size`, under a fresh `id` (the worker's caches are of the old size).
    pub fn resize(&mut self, id: u64, size: SizeRule) {
        if let Some(input) = self.input.as_mut() {
            input.id = id;
            input.size = size;
        }
    }

    pub fn id(&self) -> Option<u64> {
        self.input.as_ref().map(|image| image.id)
    }
}
