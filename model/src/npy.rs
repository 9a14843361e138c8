//! `.npy` arrays (`--pixel-values`, `--noise`) read with every size checked before anything is allocated.
//!
//! Hand-written rather than candle's `Tensor::read_npy`, because that one allocates whatever the header declares
//! before reading the data: a 100-byte file declaring 10¹¹ elements aborts the process. Here the header is read
//! with numpy's own size limit, its shape must account for exactly the bytes the file holds, and the caller sees
//! the shape (to check it against the model) before the data is read. Only what the CLI needs is supported:
//! C-ordered float16/32/64 arrays, either byte order.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{MaeError, Result};
use crate::input_file::open_regular;

const MAGIC: &[u8] = b"\x93NUMPY";
/// numpy's `np.load` refuses longer headers by default (`max_header_size=10000`).
const MAX_HEADER_BYTES: usize = 10_000;

/// The element type of the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    F16,
    F32,
    F64,
}

impl Element {
    fn size(self) -> usize {
        match self {
            Self::F16 => 2,
            Self::F32 => 4,
            Self::F64 => 8,
        }
    }
}

/// An opened `.npy` file whose header has been checked against the file's size; the data is not read yet.
#[derive(Debug)]
pub struct NpyFile {
    path: PathBuf,
    reader: BufReader<File>,
    element: Element,
    big_endian: bool,
    shape: Vec<usize>,
}

impl NpyFile {
    /// Opens `path` and reads its header; fails (naming the file) unless the header is a C-ordered float array
    /// whose shape accounts for exactly the bytes after the header.
    pub fn open(path: &Path) -> Result<Self> {
        let fail = |problem: String| MaeError::image(path, problem);
        let (file, size) = open_regular(path).map_err(fail)?;
        let mut reader = BufReader::new(file);
        let header =
            read_header(&mut reader).map_err(|problem| fail(format!("not a readable .npy array: {problem}")))?;
        let (element, big_endian, shape) = parse_header(&header.text).map_err(fail)?;
        let elements = shape
            .iter()
            .try_fold(1u64, |product, &side| product.checked_mul(side as u64))
            .ok_or_else(|| fail(format!("the header's shape {shape:?} is too large")))?;
        let data_bytes = size.saturating_sub(header.length as u64);
        if elements.checked_mul(element.size() as u64) != Some(data_bytes) {
            return Err(fail(format!(
                "the header declares shape {shape:?} ({elements} values of {} bytes) but the file holds {data_bytes} \
                 bytes of data; it is truncated or not written by numpy",
                element.size()
            )));
        }
        Ok(Self { path: path.to_owned(), reader, element, big_endian, shape })
    }

    /// The array's shape as the header declares it (already known to match the file's size).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Reads the values as f32 (float64 is rounded, as `to_dtype(F32)` would).
    pub fn read_f32(mut self) -> Result<Vec<f32>> {
        let count: usize = self.shape.iter().product();
        let mut bytes = vec![0u8; count * self.element.size()];
        self.reader
            .read_exact(&mut bytes)
            .map_err(|e| MaeError::image(&self.path, format!("cannot read the array's data ({e})")))?;
        let chunks = bytes.chunks_exact(self.element.size());
        let big = self.big_endian;
        Ok(match self.element {
            Element::F16 => chunks
                .map(|c| {
                    let raw = [c[0], c[1]];
                    let bits = if big { u16::from_be_bytes(raw) } else { u16::from_le_bytes(raw) };
                    half::f16::from_bits(bits).to_f32()
                })
                .collect(),
            Element::F32 => chunks
                .map(|c| {
                    let raw = [c[0], c[1], c[2], c[3]];
                    if big { f32::from_be_bytes(raw) } else { f32::from_le_bytes(raw) }
                })
                .collect(),
            Element::F64 => chunks
                .map(|c| {
                    let raw: [u8; 8] = std::array::from_fn(|i| c[i]);
                    (if big { f64::from_be_bytes(raw) } else { f64::from_le_bytes(raw) }) as f32
                })
                .collect(),
        })
    }
}

/// The header's dictionary text and the total length of magic, version, length field and header.
struct Header {
    text: String,
    length: usize,
}

fn read_header(reader: &mut impl Read) -> std::result::Result<Header, String> {
    let mut prefix = [0u8; 8];
    reader.read_exact(&mut prefix).map_err(|_| "the file is too short to be one".to_string())?;
    if &prefix[..6] != MAGIC {
        return Err("it does not start with numpy's \\x93NUMPY signature".into());
    }
    let (header_length, length_field) = match prefix[6] {
        1 => {
            let mut field = [0u8; 2];
            reader.read_exact(&mut field).map_err(|_| "the header is truncated".to_string())?;
            (u16::from_le_bytes(field) as usize, 2)
        }
        2 | 3 => {
            let mut field = [0u8; 4];
            reader.read_exact(&mut field).map_err(|_| "the header is truncated".to_string())?;
            (u32::from_le_bytes(field) as usize, 4)
        }
        version => return Err(format!("format version {version} is unknown (numpy writes 1, 2 or 3)")),
    };
    if header_length > MAX_HEADER_BYTES {
        return Err(format!("its header is {header_length} bytes; numpy itself refuses more than {MAX_HEADER_BYTES}"));
    }
    let mut text = vec![0u8; header_length];
    reader.read_exact(&mut text).map_err(|_| "the header is truncated".to_string())?;
    let text = String::from_utf8(text).map_err(|_| "the header is not text".to_string())?;
    Ok(Header { text, length: 8 + length_field + header_length })
}

/// Parses numpy's header dictionary, `{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 224, 224), }`.
fn parse_header(text: &str) -> std::result::Result<(Element, bool, Vec<usize>), String> {
    let value_after = |key: &str| -> std::result::Result<&str, String> {
        let quoted = format!("'{key}'");
        let start = text.find(&quoted).ok_or_else(|| format!("the header has no '{key}'"))?;
        let rest = text[start + quoted.len()..].trim_start();
        rest.strip_prefix(':').map(str::trim_start).ok_or_else(|| format!("the header's '{key}' has no value"))
    };
    let descr = value_after("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|rest| rest.split('\'').next())
        .ok_or("the header's 'descr' is not a string")?;
    let (big_endian, code) = match descr.split_at_checked(1) {
        Some(("<" | "=" | "|", code)) => (false, code),
        Some((">", code)) => (true, code),
        _ => (false, descr),
    };
    let element = match code {
        "f2" | "e" => Element::F16,
        "f4" | "f" => Element::F32,
        "f8" | "d" => Element::F64,
        other => {
            return Err(format!(
                "the array holds `{other}` values; pixel values and noise must be floats (f2, f4, f8)"
            ));
        }
    };
    if value_after("fortran_order")?.starts_with("True") {
        return Err("the array is in Fortran order; save it with np.save(path, np.ascontiguousarray(array))".into());
    }
    let shape = value_after("shape")?;
    let inside =
        shape.strip_prefix('(').and_then(|rest| rest.split(')').next()).ok_or("the header's 'shape' is not a tuple")?;
    let shape = inside
        .split(',')
        .map(str::trim)
        .filter(|side| !side.is_empty())
        .map(|side| side.parse::<usize>().map_err(|_| format!("the header's shape has a bad length `{side}`")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((element, big_endian, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        npy_with_header(&format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"), data)
    }

    fn npy_with_header(dictionary: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dictionary.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = MAGIC.to_vec();
        bytes.extend([1, 0]);
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(data);
        bytes
    }

    fn open_bytes(bytes: &[u8]) -> Result<NpyFile> {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("a.npy");
        std::fs::write(&path, bytes).unwrap();
        NpyFile::open(&path)
    }

    #[test]
    fn numpy_files_in_each_float_type_and_byte_order_read_back() {
        let values = [1.5f32, -2.0, 0.25];
        let little: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let big: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        let double: Vec<u8> = values.iter().flat_map(|v| f64::from(*v).to_le_bytes()).collect();
        let halves: Vec<u8> = values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
        for (descr, data) in [("<f4", little), (">f4", big), ("<f8", double), ("<f2", halves)] {
            let file = open_bytes(&npy(descr, "(1, 3)", &data)).unwrap();
            assert_eq!(file.shape(), [1, 3]);
            assert_eq!(file.read_f32().unwrap(), values, "{descr}");
        }
        assert_eq!(open_bytes(&npy("<f4", "()", &2f32.to_le_bytes())).unwrap().shape(), [] as [usize; 0]);
    }

    #[test]
    fn a_header_declaring_more_than_the_file_holds_is_refused_before_allocating() {
        let error = open_bytes(&npy("<f4", "(100000, 1000000)", &[0; 16])).unwrap_err().to_string();
        assert!(error.contains("declares shape [100000, 1000000]") && error.contains("holds 16 bytes"), "{error}");
        let error = open_bytes(&npy("<f8", "(4294967296, 4294967296, 4294967296)", &[])).unwrap_err().to_string();
        assert!(error.contains("too large"), "{error}");
    }

    #[test]
    fn other_arrays_are_refused_with_the_reason() {
        for (bytes, expected) in [
            (npy("<i8", "(2,)", &[0; 16]), "`i8` values"),
            (npy("<f4", "(2,)", &[0; 4]), "holds 4 bytes"),
            (b"\x93NUMPY\x09\x00".to_vec(), "version 9"),
            (b"PK\x03\x04 a zip file".to_vec(), "signature"),
            (b"\x93NUMPY\x01\x00\x10\x00{".to_vec(), "truncated"),
            (b"\x93NUMPY\x02\x00\xff\xff\xff\x7f".to_vec(), "refuses more than 10000"),
        ] {
            let error = open_bytes(&bytes).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected}: {error}");
        }
        let fortran = npy_with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", &[0; 4]);
        assert!(open_bytes(&fortran).unwrap_err().to_string().contains("Fortran order"));
    }
}
