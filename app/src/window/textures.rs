//! GPU textures of the panels: created once, then updated in place with `TextureHandle::set`.

use std::collections::HashMap;

use eframe::egui::{self, ColorImage, TextureHandle, TextureOptions};

use crate::worker::PanelImages;

/// The names of the textures the window draws.
pub const ORIGINAL: &str = "original";
pub const MASK: &str = "mask";
pub const MASKED: &str = "masked";
pub const RECONSTRUCTION: &str = "reconstruction";
pub const PASTED: &str = "pasted";
pub const ATTENTION: &str = "attention";
pub const LOSS: &str = "loss";
/// The newly opened picture before the model has seen it.
pub const PREVIEW: &str = "preview";
pub const ENSEMBLE_MEAN: &str = "ensemble mean";
pub const ENSEMBLE_STD: &str = "ensemble std";

#[derive(Default)]
pub struct PanelTextures {
    handles: HashMap<&'static str, TextureHandle>,
    /// How many textures were created (not updated): stays at one per name however many results arrive.
    pub created: usize,
}

impl std::fmt::Debug for PanelTextures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PanelTextures").field("names", &self.handles.keys().collect::<Vec<_>>()).finish()
    }
}

impl PanelTextures {
    pub fn upload(&mut self, ctx: &egui::Context, panels: &PanelImages, nearest: bool) {
        let options = if nearest { TextureOptions::NEAREST } else { TextureOptions::LINEAR };
        self.set(ctx, ORIGINAL, &panels.original, options);
        self.set(ctx, MASK, &panels.mask, options);
        self.set(ctx, MASKED, &panels.masked, options);
        self.set(ctx, RECONSTRUCTION, &panels.reconstruction, options);
        self.set(ctx, PASTED, &panels.pasted, options);
        if let Some(attention) = &panels.attention {
            self.set(ctx, ATTENTION, attention, options);
        }
        if let Some(loss) = &panels.loss {
            self.set(ctx, LOSS, loss, options);
        }
    }

    /// Uploads one picture under `name` (created the first time, updated in place after).
    pub fn set_one(&mut self, ctx: &egui::Context, name: &'static str, image: &ColorImage, nearest: bool) {
        self.set(ctx, name, image, if nearest { TextureOptions::NEAREST } else { TextureOptions::LINEAR });
    }

    fn set(&mut self, ctx: &egui::Context, name: &'static str, image: &ColorImage, options: TextureOptions) {
        match self.handles.get_mut(name) {
            Some(handle) => handle.set(image.clone(), options),
            None => {
                self.handles.insert(name, ctx.load_texture(name, image.clone(), options));
                self.created += 1;
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&TextureHandle> {
        self.handles.get(name)
    }
}
