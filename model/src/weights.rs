//! Named tensors from a checkpoint file, each checked against the shape the config implies, and the weight
//! matrices the fused CPU kernels read where they lie.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Metadata, SafeTensors, TensorView};

use crate::error::{MaeError, Result};
use crate::weight_bytes::WeightBytes;

/// Where the tensors come from.
enum Source {
    /// A `.safetensors` file, memory-mapped or compiled into the binary (the demo model), its header parsed once:
    /// f32 matrices are read in place, everything else is copied out when asked for.
    Safetensors { bytes: Arc<WeightBytes>, header: Metadata, data_start: usize },
    /// Tensors already read into memory (PyTorch checkpoints), keyed by hub names.
    InMemory(HashMap<String, Tensor>),
}

/// A weight matrix `[rows, cols]` of f32 in host memory, row-major: where it lies in a weights file when it can be
/// read there (an aligned f32 tensor of a `.safetensors` file), else a copy made once on loading.
#[derive(Clone)]
pub struct HostMatrix {
    bytes: Arc<WeightBytes>,
    /// Byte offset of the first value in `bytes` (a multiple of 4, and aligned in memory).
    offset: usize,
    pub rows: usize,
    pub cols: usize,
}

impl std::fmt::Debug for HostMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostMatrix").field("rows", &self.rows).field("cols", &self.cols).finish_non_exhaustive()
    }
}

impl HostMatrix {
    /// A matrix made from values (a converted weight): a copy.
    pub fn from_values(values: Vec<f32>, rows: usize, cols: usize) -> Self {
        debug_assert_eq!(values.len(), rows * cols);
        Self { bytes: WeightBytes::from_values(values), offset: 0, rows, cols }
    }

    /// Runs `f` on the values, row after row (a lease break waits until `f` returns; see `weight_bytes.rs`).
    pub fn read<R>(&self, f: impl FnOnce(&[f32]) -> R) -> R {
        self.bytes.read(|bytes| f(bytemuck::cast_slice(&bytes[self.offset..self.offset + 4 * self.rows * self.cols])))
    }

    /// Whether the values are read where they lie in the weights file (or the binary) rather than from a copy.
    pub fn in_place(&self) -> bool {
        self.bytes.in_place()
    }

    /// The matrix as a candle tensor `[rows, cols]` on the CPU (a copy, for the ops that need one).
    pub fn to_tensor(&self) -> Result<Tensor> {
        Ok(self.read(|values| Tensor::from_slice(values, (self.rows, self.cols), &Device::Cpu))?)
    }
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
    /// Opens a `.safetensors` file in place (see `weight_bytes.rs`) and validates its header: a truncated file, or
    /// offsets that point outside it, fail here.
    pub fn open_safetensors(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(MaeError::weights(path, "weights file not found"));
        }
        let bytes = WeightBytes::open(path).map_err(|e| MaeError::weights(path, format!("cannot be read ({e})")))?;
        Self::from_bytes(path, bytes)
    }

    /// Reads safetensors bytes that live as long as the program (`include_bytes!`), validating the header;
    /// `path` is only what errors name.
    pub fn from_static_safetensors(path: &Path, bytes: &'static [u8]) -> Result<Self> {
        Self::from_bytes(path, WeightBytes::from_static(bytes))
    }

    fn from_bytes(path: &Path, bytes: Arc<WeightBytes>) -> Result<Self> {
        let (header_len, header) = bytes
            .read(|bytes| SafeTensors::read_metadata(bytes))
            .map_err(|e| MaeError::weights(path, format!("not a valid safetensors file ({e})")))?;
        let source = Source::Safetensors { bytes, header, data_start: 8 + header_len };
        Ok(Self { path: path.to_owned(), source, file_name_of: None })
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

    /// Loads `key` as `dtype` on `device` (a copy), refusing it unless its shape is exactly `shape`.
    pub fn get(&self, key: &str, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let tensor = match &self.source {
            Source::Safetensors { bytes, header, data_start } => {
                let info = header.info(key).ok_or_else(|| self.missing(key))?;
                if info.shape != shape {
                    return Err(self.wrong_shape(key, &info.shape, shape));
                }
                let (begin, end) = (data_start + info.data_offsets.0, data_start + info.data_offsets.1);
                bytes
                    .read(|bytes| {
                        let view = TensorView::new(info.dtype, info.shape.clone(), &bytes[begin..end])
                            .map_err(|e| e.to_string())?;
                        view.load(&Device::Cpu).map_err(|e| root_cause(&e))
                    })
                    .map_err(|problem| {
                        MaeError::weights(&self.path, format!("tensor `{key}` cannot be read ({problem})"))
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

    /// Loads `key` as an f32 matrix of `shape[0]` rows (the other axes flattened into each row), refusing it
    /// unless its shape is exactly `shape`: read in place when it is an f32 tensor of a safetensors file, aligned
    /// for f32 in memory, on a little-endian CPU; otherwise converted into a copy once.
    pub fn matrix(&self, key: &str, shape: &[usize]) -> Result<HostMatrix> {
        let rows = shape.first().copied().unwrap_or(1);
        let cols = shape.iter().skip(1).product::<usize>();
        if let Source::Safetensors { bytes, header, data_start } = &self.source {
            let info = header.info(key).ok_or_else(|| self.missing(key))?;
            if info.shape != shape {
                return Err(self.wrong_shape(key, &info.shape, shape));
            }
            let offset = data_start + info.data_offsets.0;
            let aligned = bytes.read(|bytes| (bytes.as_ptr() as usize + offset) % 4 == 0) && offset % 4 == 0;
            if info.dtype == safetensors::Dtype::F32 && aligned && cfg!(target_endian = "little") {
                return Ok(HostMatrix { bytes: bytes.clone(), offset, rows, cols });
            }
        }
        let values = self.get(key, shape, DType::F32, &Device::Cpu)?.flatten_all()?.to_vec1()?;
        Ok(HostMatrix::from_values(values, rows, cols))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_bytes_that_are_not_safetensors_are_refused_with_their_name() {
        let error =
            WeightStore::from_static_safetensors(Path::new("assets/x.safetensors"), b"\x08\0\0\0\0\0\0\0{broken")
                .unwrap_err()
                .to_string();
        assert!(error.starts_with("assets/x.safetensors: not a valid safetensors file"), "{error}");
    }
}
