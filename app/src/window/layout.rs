//! The tiles: every panel in a tile that can be resized, moved, tabbed with others, closed and reopened, laid out
//! by `egui_tiles` (rerun's tiling engine). Closing a tile hides it where it was, so reopening it (View menu) puts
//! it back in its place. Panels tabbed together get a tab bar; a panel alone in its tile gets a small title chip
//! over its top-left corner instead (drag it to move the tile, × to close it), so the pictures keep the height a
//! tab bar would take. The tree is persisted with the settings.

use std::collections::HashSet;

use eframe::egui::{self, Color32, Rect, Sense, Stroke, Vec2};
use egui_tiles::{
    Container, Grid, GridLayout, Linear, LinearDir, SimplificationOptions, Tabs, Tile, TileId, Tiles, Tree, UiResponse,
};

use super::panels::{PanelId, Panels};
use super::session::Session;

const TREE_ID: &str = "mae_explorer_tiles";
/// The four pictures of a result, in the default 2×2 grid.
const PICTURES: [PanelId; 4] = [PanelId::Original, PanelId::Masked, PanelId::Reconstruction, PanelId::Pasted];
/// Tabs of the default layout that start closed (View reopens them; the Compare panel opens when a compared model loads), so
/// the pictures keep their size until they are wanted.
const CLOSED_AT_START: [PanelId; 2] = [PanelId::Compare, PanelId::Dataset];
/// Height of a tile's tab bar (a little under egui_tiles' 24: the pictures get the rest).
const TAB_BAR_HEIGHT: f32 = 20.0;
/// Space between tiles.
const GAP: f32 = 2.0;
/// Inner margin of a panel inside its tile.
const PANE_MARGIN: f32 = 2.0;

/// Space on either side of a tab's title (egui_tiles' 8, less: all analysis tabs fit beside larger pictures, and
/// the room is better spent between the title and its close button, below).
const TAB_TITLE_SPACING: f32 = 4.0;
/// The close button's box in a tab, and how far its × is drawn inside that box: egui_tiles' 12 and 2 put the ×
/// 6 px from the title, close enough that a click meant for the tab closed it; 16 and 4 keep the same 8-px × and
/// leave 8 px of tab between the title and it.
const TAB_CLOSE_BUTTON: f32 = 16.0;
const TAB_CLOSE_MARGIN: f32 = 4.0;
/// What a tab needs besides its title: the spacing, the close button and egui_tiles' 4 px of padding before it.
const TAB_CHROME_WIDTH: f32 = 2.0 * TAB_TITLE_SPACING + 4.0 + TAB_CLOSE_BUTTON;

pub struct Layout {
    pub tree: Tree<PanelId>,
    fit: Fit,
}

/// Whether the default proportions follow the tiles' area.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fit {
    /// A fresh default layout: fitted on the next frame.
    Needed,
    /// Fitted for `area` with these shares of the pictures and the analysis tabs, giving those `tabs_width`:
    /// fitted again when the area changes (window resized, a banner shown or gone) or the tabs want another width
    /// (a tab opened, the Dataset table in front), until the user moves the divider.
    Following { area: Vec2, shares: [f32; 2], tabs_width: f32 },
    /// A remembered layout, or one the user changed: left as it is.
    Off,
}

impl std::fmt::Debug for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layout").field("visible", &self.visible_panels()).finish()
    }
}

impl Default for Layout {
    fn default() -> Self {
        Self { tree: default_tree(), fit: Fit::Needed }
    }
}

/// The four pictures as a 2×2 grid on the left, the analysis panels tabbed together on the right.
fn default_tree() -> Tree<PanelId> {
    let mut tiles = Tiles::default();
    let pictures: Vec<TileId> = PICTURES
        .iter()
        .map(|&picture| {
            let pane = tiles.insert_pane(picture);
            tiles.insert_tab_tile(vec![pane])
        })
        .collect();
    let mut grid = Grid::new(pictures);
    grid.layout = GridLayout::Columns(2);
    let grid = tiles.insert_container(grid);
    let analysis: Vec<TileId> =
        PanelId::ALL.iter().filter(|panel| !PICTURES.contains(panel)).map(|&panel| tiles.insert_pane(panel)).collect();
    let analysis = tiles.insert_tab_tile(analysis);
    for &panel in &CLOSED_AT_START {
        if let Some(tile) = tiles.find_pane(&panel) {
            tiles.set_visible(tile, false);
        }
    }
    let root = tiles.insert_container(Linear::new_binary(LinearDir::Horizontal, [grid, analysis], 0.6));
    Tree::new(egui::Id::unique(TREE_ID), root, tiles)
}

impl Layout {
    /// A persisted tree, if it still holds every panel exactly once (a settings file from another version may
    /// not); otherwise the default layout.
    pub fn restored(tree: Option<Tree<PanelId>>) -> Self {
        match tree {
            Some(tree) if holds_every_panel_once(&tree) => Self { tree, fit: Fit::Off },
            _ => Self::default(),
        }
    }

    /// Back to the default layout (View → Reset layout).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    fn pane(&self, panel: PanelId) -> Option<TileId> {
        self.tree.tiles.find_pane(&panel)
    }

    pub fn is_open(&self, panel: PanelId) -> bool {
        self.pane(panel).is_some_and(|tile| self.tree.tiles.is_visible(tile))
    }

    /// The panels on screen now (open, and the active tab where tabbed): the ones whose pictures are worth
    /// drawing.
    pub fn visible_panels(&self) -> Vec<PanelId> {
        self.tree.active_tiles().into_iter().filter_map(|tile| self.tree.tiles.get_pane(&tile).copied()).collect()
    }

    /// Opens (where it was closed) or closes a panel's tile.
    pub fn set_open(&mut self, panel: PanelId, open: bool) {
        let Some(tile) = self.pane(panel) else { return };
        self.tree.tiles.set_visible(tile, open);
        if open {
            self.bring_to_front(panel);
        }
    }

    /// Opens the panel's tile and makes it the active tab where it is tabbed with others.
    pub fn bring_to_front(&mut self, panel: PanelId) {
        let Some(tile) = self.pane(panel) else { return };
        self.tree.tiles.set_visible(tile, true);
        self.tree.make_active(|id, _| id == tile);
    }

    /// Draws every open tile.
    pub fn ui(&mut self, ui: &mut egui::Ui, panels: &mut Panels, session: &mut Session) {
        let area = ui.available_size();
        let tabs_width = self.analysis_width(ui, panels);
        let refit = match self.fit {
            Fit::Needed => true,
            Fit::Following { area: fitted, shares, tabs_width: fitted_tabs } if self.root_shares() == Some(shares) => {
                fitted != area || fitted_tabs != tabs_width
            }
            Fit::Following { .. } => {
                self.fit = Fit::Off;
                false
            }
            Fit::Off => false,
        };
        if refit {
            self.fit_default(area, tabs_width);
        }
        let alone = self
            .tree
            .tiles
            .iter()
            .filter_map(|(_, tile)| match tile {
                Tile::Container(Container::Tabs(tabs)) if tabs.children.len() == 1 => tabs.children.first().copied(),
                _ => None,
            })
            .collect();
        let mut behavior = TileBehavior { panels, session, alone, closed: Vec::new() };
        self.tree.ui(&mut behavior, ui);
        for tile in behavior.closed {
            self.tree.tiles.set_visible(tile, false);
        }
    }

    /// Gives the picture grid the width at which its four tiles come out square for this area, as long as the
    /// analysis tabs keep `tabs_width` (every tab visible), and the analysis tabs the rest.
    fn fit_default(&mut self, available: Vec2, tabs_width: f32) {
        self.fit = Fit::Off;
        let Some(root) = self.tree.root() else { return };
        let Some(Tile::Container(Container::Linear(linear))) = self.tree.tiles.get_mut(root) else { return };
        let [grid, analysis] = linear.children[..] else { return };
        let picture_side = (available.y - GAP) / 2.0 - 2.0 * PANE_MARGIN;
        let square_grid_width = 2.0 * (picture_side + 2.0 * PANE_MARGIN) + GAP;
        let grid_width = square_grid_width.min(available.x - GAP - tabs_width);
        let fraction = (grid_width / available.x.max(1.0)).clamp(0.4, 0.75);
        let shares = [2.0 * fraction, 2.0 * (1.0 - fraction)];
        linear.shares.set_share(grid, shares[0]);
        linear.shares.set_share(analysis, shares[1]);
        self.fit = Fit::Following { area: available, shares, tabs_width };
    }

    /// What the analysis tabs of the default layout need: every open tab's title visible (at 1280 px a tab bar
    /// with Compare and Dataset open overflowed and hid the active tab), and the width the panel in front wants.
    fn analysis_width(&self, ui: &egui::Ui, panels: &Panels) -> f32 {
        let analysis = PanelId::ALL.iter().filter(|panel| !PICTURES.contains(panel));
        let tabs: f32 = analysis
            .clone()
            .filter(|&&panel| self.is_open(panel))
            .map(|&panel| tab_width(ui, panels.get(panel).title()))
            .sum::<f32>()
            // Rounding of the tiles' widths.
            + 2.0;
        let visible = self.visible_panels();
        let wanted = analysis
            .filter(|panel| visible.contains(panel))
            .map(|&panel| panels.get(panel).wanted_width() + 2.0 * PANE_MARGIN)
            .fold(0.0, f32::max);
        tabs.max(wanted)
    }

    /// The shares of the root's two children (pictures, analysis tabs), while the root is that split.
    fn root_shares(&self) -> Option<[f32; 2]> {
        let Some(Tile::Container(Container::Linear(linear))) = self.tree.tiles.get(self.tree.root()?) else {
            return None;
        };
        let [grid, analysis] = linear.children[..] else { return None };
        Some([linear.shares[grid], linear.shares[analysis]])
    }
}

/// The width a tab needs for its title.
fn tab_width(ui: &egui::Ui, title: &str) -> f32 {
    let font = egui::TextStyle::Button.resolve(ui.style());
    let color = ui.visuals().text_color();
    ui.fonts_mut(|fonts| fonts.layout_no_wrap(title.to_string(), font, color)).size().x + TAB_CHROME_WIDTH
}

fn holds_every_panel_once(tree: &Tree<PanelId>) -> bool {
    let panes: Vec<PanelId> =
        tree.tiles.tiles().filter_map(|tile| if let Tile::Pane(pane) = tile { Some(*pane) } else { None }).collect();
    tree.root().is_some()
        && panes.len() == PanelId::ALL.len()
        && PanelId::ALL.iter().all(|panel| panes.iter().filter(|pane| *pane == panel).count() == 1)
}

/// How the tree draws panels and reacts to tab clicks.
struct TileBehavior<'a> {
    panels: &'a mut Panels,
    session: &'a mut Session,
    /// Panes alone in their tab group: shown without a tab bar, with a title chip.
    alone: HashSet<TileId>,
    /// Panes whose chip's × was clicked this frame.
    closed: Vec<TileId>,
}

impl egui_tiles::Behavior<PanelId> for TileBehavior<'_> {
    fn pane_ui(&mut self, ui: &mut egui::Ui, tile_id: TileId, pane: &mut PanelId) -> UiResponse {
        egui::Frame::new().inner_margin(PANE_MARGIN).show(ui, |ui| {
            ui.set_min_size(ui.available_size());
            self.panels.get_mut(*pane).ui(ui, self.session);
        });
        if !self.alone.contains(&tile_id) {
            return UiResponse::None;
        }
        let title = self.panels.get(*pane).title();
        match title_chip(ui, tile_id, title) {
            Chip::Dragged => UiResponse::DragStarted,
            Chip::Closed => {
                self.closed.push(tile_id);
                UiResponse::None
            }
            Chip::Idle => UiResponse::None,
        }
    }

    fn tab_title_for_pane(&mut self, pane: &PanelId) -> egui::WidgetText {
        self.panels.get(*pane).title().into()
    }

    fn is_tab_closable(&self, tiles: &Tiles<PanelId>, tile_id: TileId) -> bool {
        tiles.get_pane(&tile_id).is_some()
    }

    /// Closing hides the tile in place, so the View menu can bring it back where it was.
    fn on_tab_close(&mut self, tiles: &mut Tiles<PanelId>, tile_id: TileId) -> bool {
        tiles.set_visible(tile_id, false);
        false
    }

    fn is_tab_bar_visible(&self, _tile_id: TileId, tabs: &Tabs) -> bool {
        tabs.children.len() > 1
    }

    fn tab_bar_height(&self, _style: &egui::Style) -> f32 {
        TAB_BAR_HEIGHT
    }

    fn gap_width(&self, _style: &egui::Style) -> f32 {
        GAP
    }

    fn tab_title_spacing(&self, _visuals: &egui::Visuals) -> f32 {
        TAB_TITLE_SPACING
    }

    fn close_button_outer_size(&self) -> f32 {
        TAB_CLOSE_BUTTON
    }

    fn close_button_inner_margin(&self) -> f32 {
        TAB_CLOSE_MARGIN
    }

    fn simplification_options(&self) -> SimplificationOptions {
        SimplificationOptions { all_panes_must_have_tabs: true, ..SimplificationOptions::default() }
    }
}

/// What happened to a title chip this frame.
enum Chip {
    Idle,
    Dragged,
    Closed,
}

/// The title of a tile that has no tab bar, over its top-left corner: drag it to move the tile, × closes it.
fn title_chip(ui: &mut egui::Ui, tile_id: TileId, title: &str) -> Chip {
    let font = egui::TextStyle::Button.resolve(ui.style());
    let text_color = ui.visuals().strong_text_color();
    let galley = ui.painter().layout_no_wrap(title.to_string(), font, text_color);
    let height = TAB_BAR_HEIGHT - 2.0;
    let title_rect = Rect::from_min_size(
        ui.max_rect().min + Vec2::splat(2.0 * PANE_MARGIN),
        Vec2::new(galley.size().x + 12.0, height),
    );
    let close_rect = Rect::from_min_size(title_rect.right_top(), Vec2::splat(height));
    let background = ui.visuals().panel_fill.gamma_multiply(0.8);
    ui.painter().rect_filled(title_rect.union(close_rect), 3.0, background);
    ui.painter().galley(title_rect.left_center() + Vec2::new(6.0, -galley.size().y / 2.0), galley, text_color);

    let id = ui.make_persistent_id(("title chip", tile_id));
    let drag = ui.interact(title_rect, id, Sense::drag()).on_hover_cursor(egui::CursorIcon::Grab);
    drag.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, title));
    let close = ui.interact(close_rect, id.with("close"), Sense::click()).on_hover_text(format!("Close {title}"));
    close.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, "Close"));
    let cross = close_rect.shrink(5.0);
    let stroke = Stroke::new(1.5, if close.hovered() { Color32::from_rgb(230, 90, 80) } else { text_color });
    ui.painter().line_segment([cross.left_top(), cross.right_bottom()], stroke);
    ui.painter().line_segment([cross.right_top(), cross.left_bottom()], stroke);
    if close.clicked() {
        Chip::Closed
    } else if drag.drag_started() {
        Chip::Dragged
    } else {
        Chip::Idle
    }
}
