//! One error type for everything the model crate can refuse, each variant naming the file or input at fault.

use std::path::PathBuf;

/// Errors from loading, preprocessing and running a ViTMAE model.
///
/// Every message names what was wrong and, where it helps, what to do about it; callers print it on one line.
#[derive(Debug, thiserror::Error)]
pub enum MaeError {
    /// `config.json` or `preprocessor_config.json` is missing, unreadable, malformed or inconsistent.
    #[error("{}: {problem}", path.display())]
    Config { path: PathBuf, problem: String },

    /// A weights file is missing, truncated, or lacks / mis-shapes a tensor.
    #[error("{}: {problem}", path.display())]
    Weights { path: PathBuf, problem: String },

    /// An image (or pixel-value array) could not be read or has the wrong shape.
    #[error("{}: {problem}", path.display())]
    Image { path: PathBuf, problem: String },

    /// An argument is out of range (mask ratio, noise length, kept patches, ...).
    #[error("{0}")]
    InvalidInput(String),

    /// The requested compute device is not available.
    #[error("device: {0}")]
    Device(String),

    /// The model could not be found or fetched from the Hugging Face hub or its cache.
    #[error("{0}")]
    Hub(String),

    /// An error inside a tensor operation (a bug or an out-of-memory condition, not bad user input).
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, MaeError>;

impl MaeError {
    pub(crate) fn config(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self::Config { path: path.into(), problem: problem.into() }
    }
    pub(crate) fn weights(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self::Weights { path: path.into(), problem: problem.into() }
    }
    pub(crate) fn image(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self::Image { path: path.into(), problem: problem.into() }
    }
}
