//! Named tensors from a checkpoint file, each checked against the shape the config implies.
//!
//! `.safetensors` files are read with positioned reads, never memory-mapped. A map would let the weights be used where
//! they lie, but every weight matrix is copied once anyway, into the layout its kernels read (packed panels for the
//! CPU kernel, `Wᵀ` for candle's and CUDA's; see `packed_matrix` and `transposed_matrix`); reading it through a map
//! would add the map's pages to the process's memory while the copy is made, and a file truncated under a map kills
//! the process with SIGBUS. With reads, a file truncated or rewritten while the app runs cannot touch a model already
//! loaded, and a load that meets it fails with an error.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Metadata, TensorInfo, TensorView};

use crate::cpu_matmul::PackedWeight;
use crate::error::{MaeError, Result};
use crate::ops::KernelChoice;

/// Where a model's weights go as they are read, and in which layout: the device, the compute dtype and the kernels
/// that will read them. `MaeModel::from_store` makes one; every module's `load` takes it.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    pub device: &'a Device,
    pub dtype: DType,
    pub kernels: KernelChoice,
}

/// Where the tensors come from.
enum Source {
    /// A `.safetensors` file or bytes compiled into the binary (the demo model), its header parsed once; tensors
    /// are read when asked for.
    Safetensors { bytes: SafetensorsBytes, header: Metadata, data_start: u64 },
    /// Tensors already read into memory (PyTorch checkpoints), keyed by hub names.
    InMemory(HashMap<String, Tensor>),
}

enum SafetensorsBytes {
    File(File),
    Static(&'static [u8]),
}

impl SafetensorsBytes {
    fn len(&self) -> std::io::Result<u64> {
        match self {
            Self::File(file) => Ok(file.metadata()?.len()),
            Self::Static(bytes) => Ok(bytes.len() as u64),
        }
    }

    /// Fills `out` from `offset` on; a file that has become shorter is an error, never a partial read.
    fn read_at(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        match self {
            #[cfg(unix)]
            Self::File(file) => std::os::unix::fs::FileExt::read_exact_at(file, out, offset),
            #[cfg(windows)]
            Self::File(file) => {
                let mut done = 0;
                while done < out.len() {
                    match std::os::windows::fs::FileExt::seek_read(file, &mut out[done..], offset + done as u64)? {
                        0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                        read => done += read,
                    }
                }
                Ok(())
            }
            Self::Static(bytes) => {
                let range = usize::try_from(offset).ok().and_then(|start| bytes.get(start..start + out.len()));
                out.copy_from_slice(range.ok_or(std::io::ErrorKind::UnexpectedEof)?);
                Ok(())
            }
        }
    }
}

/// The rows of one f32 matrix, read a band at a time.
enum F32Rows<'a> {
    /// Little-endian f32 at `offset` in the file or embedded bytes.
    Stored { bytes: &'a SafetensorsBytes, offset: u64 },
    /// Converted from another dtype or format, whole.
    Converted(Vec<f32>),
}

impl F32Rows<'_> {
    /// Rows `first_row..first_row + rows` of `row_len` values each, read into `buffer` when they come from a file.
    fn read<'b>(
        &'b self,
        first_row: usize,
        rows: usize,
        row_len: usize,
        buffer: &'b mut Vec<f32>,
    ) -> std::result::Result<&'b [f32], String> {
        let range = first_row * row_len..(first_row + rows) * row_len;
        match self {
            Self::Stored { bytes, offset } => {
                buffer.resize(range.len(), 0.0);
                let start = offset + (range.start * std::mem::size_of::<f32>()) as u64;
                bytes.read_at(start, bytemuck::cast_slice_mut(buffer)).map_err(|e| e.to_string())?;
                Ok(buffer)
            }
            Self::Converted(values) => Ok(&values[range]),
        }
    }
}

/// Largest safetensors header read (the format's own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Parses and checks a safetensors header: tensors back to back from offset 0, each as long as its shape and dtype
/// say, the last ending where the file does (the checks `safetensors` makes when it is given the whole file).
fn read_header(bytes: &SafetensorsBytes) -> std::result::Result<(Metadata, u64), String> {
    let file_len = bytes.len().map_err(|e| e.to_string())?;
    let mut length = [0u8; 8];
    bytes.read_at(0, &mut length).map_err(|_| "shorter than a header".to_string())?;
    let header_len = u64::from_le_bytes(length);
    if header_len > MAX_HEADER_BYTES || 8 + header_len > file_len {
        return Err(format!("a header of {header_len} bytes does not fit in a file of {file_len} bytes: truncated?"));
    }
    let mut header = vec![0u8; header_len as usize];
    bytes.read_at(8, &mut header).map_err(|e| e.to_string())?;
    let header: Metadata = serde_json::from_slice(&header).map_err(|e| format!("header: {e}"))?;
    let mut infos: Vec<&TensorInfo> = header.tensors().into_values().collect();
    infos.sort_by_key(|info| info.data_offsets);
    let mut end_of_previous = 0;
    for info in infos {
        let (begin, end) = info.data_offsets;
        let bits = info.shape.iter().try_fold(info.dtype.bitsize(), |bits, &n| bits.checked_mul(n));
        if begin != end_of_previous || bits.is_none_or(|bits| bits % 8 != 0 || end.checked_sub(begin) != Some(bits / 8))
        {
            return Err(format!("tensor offsets {begin}..{end} do not match the tensors before and its shape"));
        }
        end_of_previous = end;
    }
    let data_start = 8 + header_len;
    if data_start + end_of_previous as u64 != file_len {
        return Err(format!(
            "the header describes {end_of_previous} bytes of tensors, the file holds {}{}",
            file_len - data_start,
            if data_start + (end_of_previous as u64) > file_len { ": truncated?" } else { "" }
        ));
    }
    Ok((header, data_start))
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
    /// Opens a `.safetensors` file and validates its header: a truncated file, or offsets that point outside it,
    /// fail here.
    pub fn open_safetensors(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(MaeError::weights(path, "weights file not found"));
        }
        let file = File::open(path).map_err(|e| MaeError::weights(path, format!("cannot be read ({e})")))?;
        Self::from_bytes(path, SafetensorsBytes::File(file))
    }

    /// Reads safetensors bytes that live as long as the program (`include_bytes!`), validating the header;
    /// `path` is only what errors name.
    pub fn from_static_safetensors(path: &Path, bytes: &'static [u8]) -> Result<Self> {
        Self::from_bytes(path, SafetensorsBytes::Static(bytes))
    }

    fn from_bytes(path: &Path, bytes: SafetensorsBytes) -> Result<Self> {
        let (header, data_start) = read_header(&bytes)
            .map_err(|problem| MaeError::weights(path, format!("not a valid safetensors file ({problem})")))?;
        Ok(Self {
            path: path.to_owned(),
            source: Source::Safetensors { bytes, header, data_start },
            file_name_of: None,
        })
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
            Source::Safetensors { bytes, header, data_start } => {
                let info = self.checked_info(header, key, shape)?;
                let (begin, end) = info.data_offsets;
                let mut raw = vec![0u8; end - begin];
                bytes.read_at(data_start + begin as u64, &mut raw).map_err(|e| self.unreadable(key, e.to_string()))?;
                TensorView::new(info.dtype, info.shape.clone(), &raw)
                    .map_err(|e| self.unreadable(key, e.to_string()))?
                    .load(&Device::Cpu)
                    .map_err(|e| self.unreadable(key, root_cause(&e)))?
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

    /// Loads matrices of one `shape` that read the same input (q, k and v; or one), each `[outputs, inputs]` as HF
    /// stores it (a conv kernel's trailing axes count as `inputs`), and returns `Wᵀ = [inputs, n·outputs]`, their
    /// transposes side by side: the layout candle's matmul and the CUDA kernels read.
    pub fn transposed_matrix(&self, keys: &[String], shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let (inputs, outputs) = side_by_side_dims(keys, shape);
        let mut transposed = vec![0f32; inputs * outputs];
        self.read_transposed(keys, shape, &mut transposed, |k, n| k * outputs + n)?;
        Ok(Tensor::from_vec(transposed, (inputs, outputs), &Device::Cpu)?.to_dtype(dtype)?.to_device(device)?)
    }

    /// The same matrices as [`WeightStore::transposed_matrix`] gives, packed in the CPU kernel's panels
    /// (`cpu_matmul.rs`) without an intermediate copy.
    pub(crate) fn packed_matrix(&self, keys: &[String], shape: &[usize]) -> Result<PackedWeight> {
        let (inputs, outputs) = side_by_side_dims(keys, shape);
        let mut packed = PackedWeight::zeroed(inputs, outputs);
        self.read_transposed(keys, shape, packed.values_mut(), |k, n| PackedWeight::index_of(inputs, k, n))?;
        Ok(packed)
    }

    /// Writes `Wᵀ[k, n]` of the matrices side by side to `out[index(k, n)]`. Each matrix is read `BAND_ROWS` rows
    /// at a time into one small buffer that stays in cache and is transposed from there straight into place: no
    /// other copy of the weights is made. (A scratch copy of each whole matrix cost more than the transpose itself:
    /// every one was fresh memory, zeroed and faulted in page by page.)
    fn read_transposed(
        &self,
        keys: &[String],
        shape: &[usize],
        out: &mut [f32],
        index: impl Fn(usize, usize) -> usize,
    ) -> Result<()> {
        /// 16 rows: each output row then receives one 64-byte cache line per band.
        const BAND_ROWS: usize = 16;
        let rows = shape.first().copied().unwrap_or(0);
        let inputs = shape.iter().skip(1).product::<usize>();
        let mut band = Vec::new();
        for (part, key) in keys.iter().enumerate() {
            let matrix = self.f32_rows(key, shape)?;
            for first_row in (0..rows).step_by(BAND_ROWS) {
                let band_rows = BAND_ROWS.min(rows - first_row);
                let values =
                    matrix.read(first_row, band_rows, inputs, &mut band).map_err(|e| self.unreadable(key, e))?;
                let first_column = part * rows + first_row;
                for k in 0..inputs {
                    for r in 0..band_rows {
                        out[index(k, first_column + r)] = values[r * inputs + k];
                    }
                }
            }
        }
        Ok(())
    }

    /// Where the rows of `key` (exactly `shape`) come from as f32: straight from the file when it is stored as
    /// little-endian f32, else from a copy converted through a candle tensor.
    fn f32_rows(&self, key: &str, shape: &[usize]) -> Result<F32Rows<'_>> {
        if let Source::Safetensors { bytes, header, data_start } = &self.source {
            let info = self.checked_info(header, key, shape)?;
            if info.dtype == safetensors::Dtype::F32 && cfg!(target_endian = "little") {
                return Ok(F32Rows::Stored { bytes, offset: data_start + info.data_offsets.0 as u64 });
            }
        }
        Ok(F32Rows::Converted(self.get(key, shape, DType::F32, &Device::Cpu)?.flatten_all()?.to_vec1()?))
    }

    /// `key`'s entry in the header, refused unless its shape is exactly `shape`.
    fn checked_info<'h>(&self, header: &'h Metadata, key: &str, shape: &[usize]) -> Result<&'h TensorInfo> {
        let info = header.info(key).ok_or_else(|| self.missing(key))?;
        if info.shape != shape {
            return Err(self.wrong_shape(key, &info.shape, shape));
        }
        Ok(info)
    }

    fn unreadable(&self, key: &str, problem: String) -> MaeError {
        MaeError::weights(&self.path, format!("tensor `{key}` cannot be read ({problem})"))
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

/// `(inputs, outputs)` of the matrices of `shape` under `keys` side by side.
fn side_by_side_dims(keys: &[String], shape: &[usize]) -> (usize, usize) {
    let rows = shape.first().copied().unwrap_or(0);
    (shape.iter().skip(1).product::<usize>(), rows * keys.len())
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

    /// Three matrices of 37 rows (not a multiple of the 16-row bands) × a 3×3×5 conv kernel side by side: the
    /// transposed and the packed layouts both hold `W[n, k]` at `Wᵀ[k, n]`.
    #[test]
    fn matrices_side_by_side_transpose_and_pack_to_the_definition() {
        let (rows, shape) = (37, [37, 3, 3, 5]);
        let inputs = 45;
        let keys: Vec<String> = ["q", "k", "v"].iter().map(|name| format!("{name}.weight")).collect();
        let tensors = keys
            .iter()
            .enumerate()
            .map(|(part, key)| {
                let values: Vec<f32> = (0..rows * inputs).map(|i| (part * 10_000 + i) as f32).collect();
                (key.clone(), Tensor::from_vec(values, &shape[..], &Device::Cpu).unwrap())
            })
            .collect();
        let store = WeightStore::from_tensors(Path::new("memory"), tensors);
        let transposed: Vec<f32> = store
            .transposed_matrix(&keys, &shape, DType::F32, &Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let packed = store.packed_matrix(&keys, &shape).unwrap();
        let outputs = 3 * rows;
        for k in 0..inputs {
            for n in 0..outputs {
                let expected = ((n / rows) * 10_000 + (n % rows) * inputs + k) as f32;
                assert_eq!(transposed[k * outputs + n], expected, "Wᵀ[{k}, {n}]");
                assert_eq!(packed.values()[packed.index(k, n)], expected, "packed Wᵀ[{k}, {n}]");
            }
        }
    }

    #[test]
    fn embedded_bytes_that_are_not_safetensors_are_refused_with_their_name() {
        let error =
            WeightStore::from_static_safetensors(Path::new("assets/x.safetensors"), b"\x08\0\0\0\0\0\0\0{broken")
                .unwrap_err()
                .to_string();
        assert!(error.starts_with("assets/x.safetensors: not a valid safetensors file"), "{error}");
    }
}
