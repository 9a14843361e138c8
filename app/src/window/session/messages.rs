//! Messages: the notice the user sees above the tiles, requests panels leave for each other during a frame
//! (delivered after it), and the count of textures panels created (which should stay at one per picture however
//! many results arrive).

use std::cell::Cell;

use crate::render::attention::Stack;

/// Requests between panels, delivered after the frame.
#[derive(Clone, Debug, PartialEq)]
pub enum PanelCommand {
    /// Show this attention head of this model in the Attention panel (and bring that panel to the front).
    FocusHead { stack: Stack, layer: usize, head: usize, model: usize },
}

/// A message shown in the banner above the tiles until dismissed or replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub is_error: bool,
    /// Shown whole ("More") rather than cut after a few rows.
    pub expanded: bool,
}

#[derive(Debug, Default)]
pub struct Messages {
    pub notice: Option<Notice>,
    commands: Vec<PanelCommand>,
    pub textures_created: Cell<usize>,
}

impl Messages {
    /// A request to another panel, delivered after this frame.
    pub fn send(&mut self, command: PanelCommand) {
        self.commands.push(command);
    }

    pub fn take_commands(&mut self) -> Vec<PanelCommand> {
        std::mem::take(&mut self.commands)
    }
}
