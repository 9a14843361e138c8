//! Work of several forward passes that the window (through the worker thread) and the command line both do:
//! comparison grids and their animations, loss-vs-ratio curves, seed ensembles, evaluations of many images through
//! one model or several. One implementation each, importing neither the CLI nor egui: callers turn their own inputs
//! into a job and report its progress their own way.

pub mod animation;
pub mod compare;
pub mod csv;
pub mod ensemble;
pub mod eval_csv;
pub mod evaluate;
pub mod grid;
pub mod image_files;
pub mod lists;
pub mod loss_curve;
pub mod masks;
pub mod sweep;

use candle_core::Tensor;

/// `count` copies of one image's `[1, 3, H, W]` pixel values as a batch `[count, 3, H, W]`: the input of a batched
/// forward pass that masks one image several ways (seeds of an ensemble or of a grid row).
fn repeat_image(pixel_values: &Tensor, count: usize) -> candle_core::Result<Tensor> {
    Tensor::cat(&vec![pixel_values; count], 0)
}
