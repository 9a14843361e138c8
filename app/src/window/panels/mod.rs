//! The views of the window. Each panel is one struct that owns its settings (persisted with serde) and its
//! textures, and draws itself with [`Panel::ui`] into its tile; what panels share (model, image, current result,
//! the worker) is the [`Session`]. This follows egui's demo `View::ui` and rerun's view classes.
//!
//! **Adding a panel** = one new file here with a struct implementing [`Panel`] (+ `Default`, `Serialize`,
//! `Deserialize`), and one line in the [`panel_list!`] below. The tile layout, the View menu and persistence are
//! all built from that list.

mod attention;
pub mod compare;
pub mod dataset;
mod ensemble;
mod heads;
mod loss;
mod picture;
mod widgets;

use eframe::egui;
use serde::{Deserialize, Serialize};

pub use attention::AttentionPanel;
pub use compare::ComparePanel;
pub use dataset::DatasetPanel;
pub use ensemble::EnsemblePanel;
pub use heads::HeadsPanel;
pub use loss::LossPanel;
pub use picture::{Picture, PicturePanel, fit_picture, patch_rect, patch_under};

pub use super::session::PanelCommand;
use super::session::Session;
use crate::worker::{ModelInfo, Response, ViewOptions};

/// One view of the window.
pub trait Panel {
    /// The tab title and the View menu's label.
    fn title(&self) -> &'static str;

    /// What the panel shows (the View menu's tooltip).
    fn description(&self) -> &'static str;

    /// Draws the panel into its tile. Called only while the tile is visible.
    fn ui(&mut self, ui: &mut egui::Ui, session: &mut Session);

    /// Adds what the worker should draw with every forward pass while this panel is open.
    fn add_view(&self, _view: &mut ViewOptions, _session: &Session) {}

    /// A worker response the session did not consume (background jobs, exports, restarts).
    fn on_response(&mut self, _response: &Response, _session: &mut Session) {}

    /// A new model is in use: forget results of the old one and bring settings into its ranges, and start what
    /// waited for a model (whether or not the panel is in view).
    fn on_model_loaded(&mut self, _info: &ModelInfo, _session: &mut Session) {}

    /// The width the panel needs to show everything without scrolling sideways; while it is in front, the default
    /// layout gives the analysis tabs at least this where the window has room.
    fn wanted_width(&self) -> f32 {
        0.0
    }

    /// Whether a background job of this panel is still running (a screenshot waits for it).
    fn is_busy(&self) -> bool {
        false
    }

    /// A request another panel made through [`Messages::send`](super::session::Messages::send).
    fn on_command(&mut self, _command: &PanelCommand) {}
}

/// The panel a command is for, brought to the front when the command is delivered.
pub fn addressee(command: &PanelCommand) -> PanelId {
    match command {
        PanelCommand::FocusHead { .. } => PanelId::Attention,
    }
}

/// Declares the panels: `Id, field: Type = constructor,` per line. Generates [`PanelId`] (what the tiles hold),
/// [`Panels`] (one field per panel, persisted) and the dispatch from an id to its panel.
macro_rules! panel_list {
    ($($id:ident, $field:ident: $panel:ty = $make:expr,)+) => {
        /// Which panel a tile shows.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum PanelId {
            $($id,)+
        }

        impl PanelId {
            /// Every panel, in View-menu order.
            pub const ALL: &[PanelId] = &[$(PanelId::$id,)+];
        }

        /// Every panel's state.
        #[derive(Serialize, Deserialize)]
        #[serde(default)]
        pub struct Panels {
            $(pub $field: $panel,)+
        }

        impl Default for Panels {
            fn default() -> Self {
                Self { $($field: $make,)+ }
            }
        }

        impl Panels {
            pub fn get(&self, id: PanelId) -> &dyn Panel {
                match id {
                    $(PanelId::$id => &self.$field,)+
                }
            }

            pub fn get_mut(&mut self, id: PanelId) -> &mut dyn Panel {
                match id {
                    $(PanelId::$id => &mut self.$field,)+
                }
            }
        }
    };
}

panel_list! {
    Original, original: PicturePanel = PicturePanel::new(Picture::Original),
    Masked, masked: PicturePanel = PicturePanel::new(Picture::Masked),
    Reconstruction, reconstruction: PicturePanel = PicturePanel::new(Picture::Reconstruction),
    Pasted, pasted: PicturePanel = PicturePanel::new(Picture::Pasted),
    Attention, attention: AttentionPanel = AttentionPanel::default(),
    Loss, loss: LossPanel = LossPanel::default(),
    Ensemble, ensemble: EnsemblePanel = EnsemblePanel::default(),
    Heads, heads: HeadsPanel = HeadsPanel::default(),
    Compare, compare: ComparePanel = ComparePanel::default(),
    Dataset, dataset: DatasetPanel = DatasetPanel::default(),
}

impl std::fmt::Debug for Panels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(PanelId::ALL.iter().map(|&id| self.get(id).title())).finish()
    }
}

impl Panels {
    /// Whether any panel's background job is still running.
    pub fn any_busy(&self) -> bool {
        PanelId::ALL.iter().any(|&id| self.get(id).is_busy())
    }

    /// Every panel, with its id.
    pub fn each_mut(&mut self, mut visit: impl FnMut(PanelId, &mut dyn Panel)) {
        for &id in PanelId::ALL {
            visit(id, self.get_mut(id));
        }
    }
}
