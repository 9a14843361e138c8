//! A panel's GPU texture: created once, then updated in place with `TextureHandle::set` when the picture it shows
//! changes (uploading a picture is the only picture work the UI thread does).

use std::cell::Cell;

use eframe::egui::{self, ColorImage, TextureHandle, TextureOptions};
use image::RgbaImage;

#[derive(Default)]
pub struct PanelTexture {
    handle: Option<TextureHandle>,
    /// What the texture holds: the picture's key and the filtering it was uploaded with.
    holds: Option<(u64, TextureOptions)>,
}

impl std::fmt::Debug for PanelTexture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PanelTexture").field("holds", &self.holds.map(|(key, _)| key)).finish()
    }
}

/// How panels upload pictures: the filtering the Display settings chose, and the counter of textures created
/// (which should stay at one per picture however many results arrive).
#[derive(Clone, Copy)]
pub struct Upload<'a> {
    pub filtering: TextureOptions,
    pub created: &'a Cell<usize>,
}

/// Crisp (nearest) or smooth (linear) scaling.
pub fn filtering(nearest: bool) -> TextureOptions {
    if nearest { TextureOptions::NEAREST } else { TextureOptions::LINEAR }
}

fn color_image(picture: &RgbaImage) -> ColorImage {
    ColorImage::from_rgba_unmultiplied([picture.width() as usize, picture.height() as usize], picture.as_raw())
}

impl PanelTexture {
    /// The texture showing `picture`, uploaded only when `key` (which identifies the picture) or the filtering
    /// changed since the last call.
    pub fn show(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        key: u64,
        picture: &RgbaImage,
        upload: Upload<'_>,
    ) -> &TextureHandle {
        self.show_with(ctx, name, key, upload, || color_image(picture))
    }

    /// As `show`, for a picture that is already an egui image (made on demand).
    pub fn show_with(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        key: u64,
        upload: Upload<'_>,
        picture: impl FnOnce() -> ColorImage,
    ) -> &TextureHandle {
        let options = upload.filtering;
        let wanted = Some((key, options));
        if self.holds != wanted || self.handle.is_none() {
            match self.handle.as_mut() {
                Some(handle) => handle.set(picture(), options),
                None => {
                    self.handle = Some(ctx.load_texture(name, picture(), options));
                    upload.created.set(upload.created.get() + 1);
                }
            }
            self.holds = wanted;
        }
        self.handle.as_ref().expect("the texture was just made")
    }
}
