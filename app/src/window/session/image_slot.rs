//! The image slot: the picture the model sees, a preview shown until its first result arrives, and why the
//! picture named on the command line could not be opened.

use std::sync::Arc;

use eframe::egui;

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
    /// Puts a new picture in the slot under `id` (fresh, so results for the old picture are told apart).
    pub fn set(&mut self, id: u64, name: String, rgb: Arc<image::RgbImage>, preview: egui::ColorImage) {
        self.preview = Some((id, preview));
        self.input = Some(ImageInput { id, rgb, name });
    }

    pub fn id(&self) -> Option<u64> {
        self.input.as_ref().map(|image| image.id)
    }
}
