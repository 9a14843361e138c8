//! What the window remembers between runs (eframe persistence): the session's settings, every panel's settings,
//! the tile layout and the Export dialog's choices.

use egui_tiles::Tree;
use serde::{Deserialize, Serialize};

use super::export::ExportSettings;
use super::panels::{PanelId, Panels};
use super::session::SessionSettings;

/// The remembered state as it is read back.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct Remembered {
    pub session: SessionSettings,
    pub panels: Panels,
    pub layout: Option<Tree<PanelId>>,
    pub export: ExportSettings,
}

/// The remembered state as it is written (borrowed from the running app; same field names as `Remembered`).
#[derive(Serialize)]
pub struct ToRemember<'a> {
    pub session: &'a SessionSettings,
    pub panels: &'a Panels,
    /// `Some`: RON spells options out, and `Remembered::layout` is one.
    pub layout: Option<&'a Tree<PanelId>>,
    pub export: &'a ExportSettings,
}

/// The state saved by the last run (defaults when there is none or it cannot be read).
pub fn load(storage: Option<&dyn eframe::Storage>) -> Remembered {
    storage.and_then(|storage| eframe::get_value::<Remembered>(storage, eframe::APP_KEY)).unwrap_or_default()
}

pub fn save(storage: &mut dyn eframe::Storage, state: &ToRemember<'_>) {
    eframe::set_value(storage, eframe::APP_KEY, state);
}
