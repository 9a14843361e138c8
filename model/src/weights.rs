//! Named tensors from a checkpoint file, each checked against the shape the config implies.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};

use crate::error::{MaeError, Result};

/// Where the tensors come from.
enum Source {
    /// A memory-mapped `.safetensors` file: tensors are copied out only when asked for.
    Safetensors(MmapedSafetensors),
    /// Tensors already read into memory (PyTorch checkpoints), keyed by hub names.
    InMemory(HashMap<String, Tensor>),
}

/// A checkpoint's tensors under Hugging Face hub key names.
pub struct WeightStore {
    path: PathBuf,
    source: Source,
    /// For checkpoints renamed on loading: maps a hub key back to the name in the file, so errors name the
    /// tensor the user can actually find there.
    file_name_of: Option<fn(&str) -> Option<String>>,
}

impl std::fmt::Debug for WeightStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl WeightStore {
    /// Memory-maps a `.safetensors` file and validates its header (a truncated file fails here).
    pub fn open_safetensors(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(MaeError::weights(path, "weights file not found"));
        }
        // SAFETY: the mapping is read-only; like every mmap-based loader we rely on nobody truncating the file
        // while it is mapped. A file already truncated is caught by the header validation below.
        #[allow(unsafe_code)]
        let mapped = unsafe { MmapedSafetensors::new(path) }
            .map_err(|e| MaeError::weights(path, format!("not a valid safetensors file ({})", root_cause(&e))))?;
        Ok(Self { path: path.to_owned(), source: Source::Safetensors(mapped), file_name_of: None })
    }

    /// Wraps tensors that were read some other way (already renamed to hub keys).
    pub fn from_tensors(path: &Path, tensors: HashMap<String, Tensor>) -> Self {
        Self { path: path.to_owned(), source: Source::InMemory(tensors), file_name_of: None }
    }

    /// Makes errors name tensors as the file does (`file_name_of(hub_key)`), for checkpoints renamed on loading.
    pub fn with_file_names(mut self, file_name_of: fn(&str) -> Option<String>) -> Self {
        self.file_name_of = Some(file_name_of);
        self
    }

    /// `key` as the user should look for it in the file.
    fn display_key(&self, key: &str) -> String {
        match self.file_name_of.and_then(|f| f(key)) {
            Some(name) => format!("`{name}` (hub name `{key}`)"),
            None => format!("`{key}`"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads `key` as `dtype` on `device`, refusing it unless its shape is exactly `shape`.
    pub fn get(&self, key: &str, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let tensor = match &self.source {
            Source::Safetensors(st) => {
                let view = st.get(key).map_err(|_| self.missing(key))?;
                if view.shape() != shape {
                    return Err(self.wrong_shape(key, view.shape(), shape));
                }
                st.load(key, &Device::Cpu).map_err(|e| {
                    MaeError::weights(&self.path, format!("tensor `{key}` cannot be read ({})", root_cause(&e)))
                })?
            }
            Source::InMemory(map) => {
                let tensor = map.get(key).ok_or_else(|| self.missing(key))?;
                if tensor.dims() != shape {
                    return Err(self.wrong_shape(key, tensor.dims(), shape));
                }
                tensor.clone()
            }
        };
        Ok(tensor.to_dtype(dtype)?.to_device(device)?)
    }

    fn missing(&self, key: &str) -> MaeError {
        MaeError::weights(
            &self.path,
            format!("tensor {} is missing (is this a ViTMAE checkpoint?)", self.display_key(key)),
        )
    }

    fn wrong_shape(&self, key: &str, actual: &[usize], expected: &[usize]) -> MaeError {
        MaeError::weights(
            &self.path,
            format!("tensor {} has shape {actual:?} but the config implies {expected:?}", self.display_key(key)),
        )
    }
}

/// candle wraps errors in context layers; users need the innermost sentence.
pub(crate) fn root_cause(error: &candle_core::Error) -> String {
    match error {
        candle_core::Error::WithPath { inner, .. } | candle_core::Error::WithBacktrace { inner, .. } => {
            root_cause(inner)
        }
        candle_core::Error::Context { inner, .. } => root_cause(inner),
        other => other.to_string(),
    }
}
