//! ViTMAE (He et al. 2021) in candle, numerically equal to Hugging Face transformers' `ViTMAEForPreTraining`.
//!
//! The flow: [`preprocess`] turns an image into `pixel_values`; [`masking`] decides which patches the encoder
//! sees; [`MaeModel::forward`] runs encoder and decoder and returns a [`MaeOutput`] with logits, mask, loss,
//! reconstruction and (optionally) every attention map. [`demo`] is a small trained model compiled into the crate.
//! No GUI code lives here.

mod block_mask;
#[cfg(feature = "clap")]
mod clap_values;
pub mod config;
mod cpu_kernels;
mod cpu_matmul;
#[cfg(feature = "cuda")]
mod cuda_kernels;
pub mod decoder;
pub mod demo;
pub mod device;
pub mod embeddings;
pub mod encoder;
pub mod error;
pub mod hub;
pub mod input_file;
pub mod interpolate;
mod layers;
pub mod loader;
pub mod mask_picture;
pub mod masking;
pub mod memory;
pub mod metrics;
pub mod model;
mod mt19937;
pub mod npy;
pub mod ops;
pub mod original_mae;
pub mod outputs;
pub mod patches;
pub mod pil_resize;
pub mod preprocess;
pub mod python_random;
pub mod size;
pub mod source;
pub mod torch_checkpoint;
pub mod weights;

pub use config::{CheckedJson, MaeConfig, PreprocessorConfig};
pub use decoder::Decoder;
pub use demo::{DEMO_MODEL_ARG, DEMO_MODEL_NAME};
pub use device::{ComputeDtype, DeviceChoice, SelectedDevice, dtype_name, parse_dtype, select_device};
pub use embeddings::Embeddings;
pub use encoder::Encoder;
pub use error::{MaeError, Result};
pub use loader::LoadedModel;
pub use masking::{MaskSpec, MaskStrategy, Masking, TorchGenerator};
pub use metrics::{DisplayPair, Quality};
pub use model::{ForwardOptions, LinearProduct, MaeModel, check_batch_fits};
pub use ops::KernelChoice;
pub use outputs::MaeOutput;
pub use preprocess::Preprocessor;
pub use size::{InputSize, SizeRule};
pub use source::{Alongside, CachedModel, DownloadProgress, LoadOptions, ModelLocation, load_model};
pub use weights::WeightStore;
