//! Work of several forward passes that the window (through the worker thread) and the command line both do:
//! comparison grids, loss-vs-ratio curves, seed ensembles. One implementation each, importing neither the CLI
//! nor egui: callers turn their own inputs into a job and report its progress their own way.

pub mod ensemble;
pub mod grid;
pub mod lists;
pub mod loss_curve;
