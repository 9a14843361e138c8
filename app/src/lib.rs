//! MAE Explorer: the window, the worker thread, rendering of model outputs into pictures, export and the CLI.
//! The binary (`main.rs`) only parses arguments and dispatches here, so tests drive the same code.

pub mod allocator;
pub mod atomic_file;
pub mod bench;
pub mod cli;
pub mod dump;
pub mod export;
pub mod loss_curve;
pub mod model_arg;
pub mod render;
pub mod window;
pub mod worker;
