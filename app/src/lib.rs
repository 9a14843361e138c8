//! MAE Explorer: the window, the worker thread, jobs shared by window and CLI, rendering of model outputs into
//! pictures, and the headless commands.
//! The binary (`main.rs`) only parses arguments and dispatches here, so tests drive the same code.

pub mod allocator;
pub mod atomic_file;
pub mod cli;
pub mod commands;
pub mod head_stats;
pub mod jobs;
pub mod render;
pub mod window;
pub mod worker;
