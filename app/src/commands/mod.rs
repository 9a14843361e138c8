//! The headless subcommands: each turns its arguments into model loads, forward passes and jobs, and writes
//! files atomically. Shared work (grids, curves) lives in `crate::jobs`, shared drawing in `crate::render`.

pub mod animate;
pub mod bench;
pub mod compare;
pub mod dump;
pub mod eval;
pub mod export;
pub mod forward_input;
pub mod heads;
pub mod loss_curve;
pub mod model_arg;
