//! A panel's GPU texture: created once, then updated in place with `TextureHandle::set` when the picture it shows
//! changes (uploading a picture is the only picture work the UI thread does).

use eframe::egui::{self, ColorImage, TextureHandle, TextureOptions};
use image::RgbaImage;

use super::session::Session;

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

/// Crisp (nearest) or smooth (linear) scaling, as the Display settings say.
pub fn filtering(session: &Session) -> TextureOptions {
    if session.settings.nearest_filtering { TextureOptions::NEAREST } else { TextureOptions::LINEAR }
}

pub fn color_image(picture: &RgbaImage) -> ColorImage {
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
        session: &Session,
    ) -> &TextureHandle {
        self.show_with(ctx, name, key, session, || color_image(picture))
    }

    /// As `show`, for a picture that is already an egui image (made on demand).
    pub fn show_with(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        key: u64,
        session: &Session,
        picture: impl FnOnce() -> ColorImage,
    ) -> &TextureHandle {
        let options = filtering(session);
        let wanted = Some((key, options));
        if self.holds != wanted || self.handle.is_none() {
            match self.handle.as_mut() {
                Some(handle) => handle.set(picture(), options),
                None => {
                    self.handle = Some(ctx.load_texture(name, picture(), options));
                    session.texture_creations.set(session.texture_creations.get() + 1);
                }
            }
            self.holds = wanted;
        }
        self.handle.as_ref().expect("the texture was just made")
    }
}
