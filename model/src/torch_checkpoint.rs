//! PyTorch checkpoints (`pytorch_model.bin`, facebookresearch/mae `.pth`) read without running any of their code.
//!
//! A torch zip checkpoint is a pickle (`<archive>/data.pkl`) that describes tensors whose bytes live in
//! `<archive>/data/<key>`. Unpickling in Python can call any function the file names, which is how malicious
//! checkpoints work. Here candle's pickle reader only *describes* the objects (it never calls anything), and we
//! then accept exactly one shape of content: a dict of tensors (optionally under `"model"` / `"state_dict"`), built
//! by torch's own tensor-rebuild functions. Anything else — `posix.system`, an int, a string — is refused with the
//! key named. Renaming original-MAE keys is `original_mae.rs`'s job, not this file's.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};

use crate::error::{MaeError, Result};
use crate::input_file::open_regular;
use crate::memory;

/// A pickle bigger than this is not a state dict (vit-mae-huge's is ~60 KB); refusing it bounds parse time.
const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// Deeper nesting than this is never produced by `torch.save` of a state dict, and unbounded nesting would
/// overflow the stack in recursive code (including candle's own clone/drop of pickle objects).
const MAX_NESTING: u32 = 64;
/// Upper bound on pickle objects materialised, counting memo copies: stops "billion laughs" pickles that
/// reference the same growing object over and over.
const MAX_OBJECTS: u64 = 20_000_000;

/// Every tensor of a torch zip checkpoint, by name, on the CPU in the file's own dtype.
///
/// The state dict is taken from the top level or from under a `"model"` / `"state_dict"` key (how MAE training
/// scripts save). Fails — with the file named — on anything that is not a torch zip checkpoint holding tensors.
pub fn read_pytorch_checkpoint(path: &Path) -> Result<HashMap<String, Tensor>> {
    let fail = |problem: String| MaeError::weights(path, problem);
    let (file, _) = open_regular(path).map_err(fail)?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
        fail(format!(
            "not a PyTorch zip checkpoint ({e}); save it with torch.save from torch ≥ 1.6 or convert it to \
             .safetensors"
        ))
    })?;
    let names: Vec<String> = archive.file_names().filter_map(|n| n.ok().map(|n| n.into_owned())).collect();
    let pickle_name = names
        .iter()
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .ok_or_else(|| fail("a zip file, but not a PyTorch checkpoint (no data.pkl inside)".into()))?
        .clone();
    let prefix = pickle_name.strip_suffix("data.pkl").unwrap_or_default().to_string();

    let byteorder_name = format!("{prefix}byteorder");
    if let Ok(entry) = archive.by_name(&byteorder_name) {
        let mut order = String::new();
        entry.take(16).read_to_string(&mut order).map_err(|e| fail(format!("cannot read {byteorder_name} ({e})")))?;
        if order.trim() != "little" {
            return Err(fail(format!(
                "{byteorder_name} says the tensors are stored `{}`; only little endian is supported",
                order.trim()
            )));
        }
    }

    let pickle = {
        let entry = archive.by_name(&pickle_name).map_err(|e| fail(format!("cannot read {pickle_name} ({e})")))?;
        if entry.size() > MAX_PICKLE_BYTES {
            return Err(fail(format!("{pickle_name} is {} bytes; that is not a state dict", entry.size())));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        BufReader::new(entry)
            .take(MAX_PICKLE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("cannot read {pickle_name} ({e})")))?;
        bytes
    };
    check_pickle_bounds(&pickle).map_err(|problem| fail(format!("{pickle_name}: {problem}")))?;
    let object = parse_pickle(&pickle).map_err(|problem| fail(format!("{pickle_name}: {problem}")))?;
    refuse_foreign_callables(&object).map_err(fail)?;

    let entries = state_dict_entries(object).map_err(fail)?;
    let infos = entries
        .into_iter()
        .map(|(name, value)| match tensor_info(value) {
            Ok(info) => Ok((name, info)),
            Err(what) => Err(fail(format!("`{name}` is {what}, not a tensor"))),
        })
        .collect::<Result<Vec<_>>>()?;
    // A storage's bytes are kept only until its last tensor is built, so peak memory stays near the file size.
    let mut uses: HashMap<String, usize> = HashMap::new();
    for (_, info) in &infos {
        *uses.entry(info.storage_key.clone()).or_default() += 1;
    }
    // Sizes come from the pickle, so a small file can declare anything (and a deflated entry can inflate to it):
    // what the tensors and their storages would take is checked against memory before any of it is read.
    let declared = declared_bytes(&infos).map_err(fail)?;
    memory::check_fits("the checkpoint's tensors", declared).map_err(fail)?;
    let mut storages = StorageCache { archive: &mut archive, prefix: &prefix, bytes: HashMap::new() };
    let mut tensors = HashMap::with_capacity(infos.len());
    for (name, info) in infos {
        let tensor = storages.tensor(&info).map_err(|problem| fail(format!("tensor `{name}`: {problem}")))?;
        if let Some(count) = uses.get_mut(&info.storage_key) {
            *count -= 1;
            if *count == 0 {
                storages.bytes.remove(&info.storage_key);
            }
        }
        tensors.insert(name, tensor);
    }
    if tensors.is_empty() {
        return Err(fail("the checkpoint holds no tensors".into()));
    }
    Ok(tensors)
}

/// Bytes of every tensor plus every storage they are cut from (all storages at once is the worst case).
fn declared_bytes(infos: &[(String, TensorInfo)]) -> std::result::Result<u64, String> {
    let overflow = || "the tensors' declared sizes overflow".to_string();
    let mut storages: HashMap<&str, u64> = HashMap::new();
    let mut total = 0u64;
    for (_, info) in infos {
        let element = info.dtype.size_in_bytes() as u64;
        let numel = info.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64)).ok_or_else(overflow)?;
        total = numel.checked_mul(element).and_then(|bytes| total.checked_add(bytes)).ok_or_else(overflow)?;
        let storage = (info.storage_elements as u64).checked_mul(element).ok_or_else(overflow)?;
        storages.insert(&info.storage_key, storage);
    }
    storages.values().try_fold(total, |acc, &bytes| acc.checked_add(bytes)).ok_or_else(overflow)
}

/// Runs candle's pickle reader: it only builds a description of the objects and never calls anything.
fn parse_pickle(pickle: &[u8]) -> std::result::Result<Object, String> {
    let mut reader = pickle;
    let mut stack = Stack::empty();
    stack.read_loop(&mut reader).map_err(|e| format!("malformed pickle ({e})"))?;
    stack.finalize().map_err(|e| format!("malformed pickle ({e})"))
}

/// Walks the pickle's opcodes once, tracking only how deep and how large each object would be, so that hostile
/// nesting or memo amplification is refused before candle builds (and recursively clones/drops) the objects.
fn check_pickle_bounds(pickle: &[u8]) -> std::result::Result<(), String> {
    #[derive(Clone, Copy)]
    enum Item {
        Mark,
        Object { depth: u32, objects: u64 },
    }
    const LEAF: Item = Item::Object { depth: 0, objects: 1 };
    fn merge(children: &[Item]) -> Item {
        let (mut depth, mut objects) = (0, 1u64);
        for child in children {
            if let Item::Object { depth: d, objects: o } = child {
                depth = depth.max(d + 1);
                objects = objects.saturating_add(*o);
            }
        }
        Item::Object { depth, objects }
    }
    let truncated = || "truncated pickle".to_string();
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: HashMap<u32, Item> = HashMap::new();
    let mut materialised: u64 = 0;
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> std::result::Result<&[u8], String> {
        let bytes = pickle.get(*at..*at + n).ok_or_else(truncated)?;
        *at += n;
        Ok(bytes)
    };
    let pop = |stack: &mut Vec<Item>| stack.pop().ok_or_else(|| "malformed pickle (stack underflow)".to_string());
    let pop_to_mark = |stack: &mut Vec<Item>| -> std::result::Result<Vec<Item>, String> {
        let mark = stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or_else(|| "malformed pickle (no mark)".to_string())?;
        let items = stack.split_off(mark + 1);
        stack.pop();
        Ok(items)
    };
    loop {
        let opcode = *take(&mut at, 1)?.first().ok_or_else(truncated)?;
        match opcode {
            0x80 => drop(take(&mut at, 1)?),
            b'c' => {
                for _ in 0..2 {
                    let line = pickle[at..].iter().position(|&b| b == b'\n').ok_or_else(truncated)?;
                    at += line + 1;
                }
                stack.push(LEAF);
            }
            b'K' => stack.push(take(&mut at, 1).map(|_| LEAF)?),
            b'M' => stack.push(take(&mut at, 2).map(|_| LEAF)?),
            b'J' => stack.push(take(&mut at, 4).map(|_| LEAF)?),
            b'G' => stack.push(take(&mut at, 8).map(|_| LEAF)?),
            0x8a => {
                let n = take(&mut at, 1)?[0] as usize;
                stack.push(take(&mut at, n).map(|_| LEAF)?);
            }
            b'X' => {
                let len = u32::from_le_bytes(take(&mut at, 4)?.try_into().map_err(|_| truncated())?) as usize;
                stack.push(take(&mut at, len).map(|_| LEAF)?);
            }
            b'N' | 0x88 | 0x89 | b')' | b']' | b'}' => stack.push(LEAF),
            b'(' => stack.push(Item::Mark),
            b'Q' => {
                let id = pop(&mut stack)?;
                stack.push(merge(&[id]));
            }
            b't' | b'd' => {
                let items = pop_to_mark(&mut stack)?;
                stack.push(merge(&items));
            }
            0x85..=0x87 => {
                let n = (opcode - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(pop(&mut stack)?);
                }
                stack.push(merge(&items));
            }
            b'R' | 0x81 | b'b' => {
                let (a, b) = (pop(&mut stack)?, pop(&mut stack)?);
                stack.push(merge(&[a, b]));
            }
            b'a' | b's' | b'e' | b'u' => {
                let mut items = match opcode {
                    b'a' => vec![pop(&mut stack)?],
                    b's' => vec![pop(&mut stack)?, pop(&mut stack)?],
                    _ => pop_to_mark(&mut stack)?,
                };
                items.push(pop(&mut stack)?);
                stack.push(merge(&items));
            }
            b'h' | b'j' | b'q' | b'r' => {
                let id = if matches!(opcode, b'h' | b'q') {
                    take(&mut at, 1)?[0] as u32
                } else {
                    u32::from_le_bytes(take(&mut at, 4)?.try_into().map_err(|_| truncated())?)
                };
                // Both directions copy the whole object inside candle's reader.
                let item = if matches!(opcode, b'h' | b'j') {
                    let item = *memo.get(&id).ok_or_else(|| "malformed pickle (unknown memo entry)".to_string())?;
                    stack.push(item);
                    item
                } else {
                    let item = *stack.last().ok_or_else(|| "malformed pickle (stack underflow)".to_string())?;
                    memo.insert(id, item);
                    item
                };
                if let Item::Object { objects, .. } = item {
                    materialised = materialised.saturating_add(objects);
                }
            }
            b'.' => return Ok(()),
            other => return Err(format!("unsupported pickle opcode 0x{other:02x} (not written by torch.save)")),
        }
        if let Some(Item::Object { depth, objects }) = stack.last() {
            if *depth > MAX_NESTING {
                return Err(format!("objects nested deeper than {MAX_NESTING} levels; not a state dict"));
            }
            if materialised.saturating_add(*objects) > MAX_OBJECTS {
                return Err("the pickle expands to too many objects; not a state dict".into());
            }
        }
    }
}

/// The only functions and classes a state dict's pickle may name.
fn is_allowed_global(module: &str, name: &str) -> bool {
    matches!(
        (module, name),
        ("torch._utils", "_rebuild_tensor_v2")
            | ("torch._utils", "_rebuild_parameter")
            | ("collections", "OrderedDict")
            | ("torch", "FloatStorage" | "DoubleStorage" | "HalfStorage" | "BFloat16Storage" | "LongStorage")
            | ("torch", "IntStorage" | "ShortStorage" | "ByteStorage" | "CharStorage" | "BoolStorage")
    )
}

/// Refuses the whole file if its pickle names anything outside [`is_allowed_global`], wherever it sits.
fn refuse_foreign_callables(object: &Object) -> std::result::Result<(), String> {
    let mut pending = vec![object];
    while let Some(object) = pending.pop() {
        match object {
            Object::Class { module_name, class_name } if !is_allowed_global(module_name, class_name) => {
                return Err(format!(
                    "refusing to load: the checkpoint's pickle calls `{module_name}.{class_name}`, which a file of \
                     weights never needs (nothing from it was executed)"
                ));
            }
            Object::Tuple(items) | Object::List(items) => pending.extend(items),
            Object::Dict(pairs) => pending.extend(pairs.iter().flat_map(|(k, v)| [k, v])),
            Object::Reduce { callable, args } | Object::Build { callable, args } => {
                pending.push(callable);
                pending.push(args);
            }
            Object::PersistentLoad(inner) => pending.push(inner),
            _ => {}
        }
    }
    Ok(())
}

/// The `(name, value)` pairs of the state dict, found at the top level or under `"model"` / `"state_dict"`.
fn state_dict_entries(object: Object) -> std::result::Result<Vec<(String, Object)>, String> {
    let Object::Dict(pairs) = object else {
        return Err(format!("the checkpoint holds {}, not a dict of tensors", describe(&object)));
    };
    let nested = pairs.iter().position(|(k, v)| {
        matches!(k, Object::Unicode(k) if k == "model" || k == "state_dict") && matches!(v, Object::Dict(_))
    });
    let pairs = match nested {
        Some(index) => match pairs.into_iter().nth(index) {
            Some((_, Object::Dict(inner))) => inner,
            _ => unreachable!("position() matched a dict value"),
        },
        None => pairs,
    };
    pairs
        .into_iter()
        .map(|(key, value)| match key {
            Object::Unicode(name) => Ok((name, value)),
            other => Err(format!("the state dict has a key that is {}, not a name", describe(&other))),
        })
        .collect()
}

/// Where a tensor's numbers are: which storage, at which element offset, with which shape.
#[derive(Debug)]
struct TensorInfo {
    storage_key: String,
    dtype: DType,
    storage_elements: usize,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// Reads `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` (possibly wrapped in
/// `_rebuild_parameter`); the error says what the value is instead.
fn tensor_info(value: Object) -> std::result::Result<TensorInfo, String> {
    let what = describe(&value);
    let Object::Reduce { callable, args } = value else { return Err(what) };
    let (callable, args) = match *callable {
        Object::Class { ref module_name, ref class_name }
            if module_name == "torch._utils" && class_name == "_rebuild_parameter" =>
        {
            match *args {
                Object::Tuple(mut items) if !items.is_empty() => match items.swap_remove(0) {
                    Object::Reduce { callable, args } => (*callable, *args),
                    _ => return Err(what),
                },
                _ => return Err(what),
            }
        }
        callable => (callable, *args),
    };
    let is_rebuild = matches!(&callable, Object::Class { module_name, class_name }
        if module_name == "torch._utils" && class_name == "_rebuild_tensor_v2");
    let Object::Tuple(items) = args else { return Err(what) };
    if !is_rebuild || items.len() < 4 {
        return Err(what);
    }
    let mut items = items.into_iter();
    let (storage, offset, size, stride) = (items.next(), items.next(), items.next(), items.next());
    let malformed = || "a malformed tensor record".to_string();
    let Some(Object::PersistentLoad(storage)) = storage else { return Err(malformed()) };
    let Object::Tuple(storage) = *storage else { return Err(malformed()) };
    // ('storage', torch.FloatStorage, key, location, numel)
    let [kind, class, key, _location, numel] = <[Object; 5]>::try_from(storage).map_err(|_| malformed())?;
    if kind != Object::Unicode("storage".into()) {
        return Err(malformed());
    }
    let Object::Class { class_name, .. } = class else { return Err(malformed()) };
    let dtype = match class_name.as_str() {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "LongStorage" => DType::I64,
        "ByteStorage" => DType::U8,
        other => return Err(format!("a tensor of {other}, which MAE Explorer cannot read")),
    };
    let Object::Unicode(storage_key) = key else { return Err(malformed()) };
    let count = |object: Option<Object>| -> std::result::Result<usize, String> {
        match object {
            Some(Object::Int(v)) if v >= 0 => Ok(v as usize),
            Some(Object::Long(v)) if v >= 0 => usize::try_from(v).map_err(|_| malformed()),
            _ => Err(malformed()),
        }
    };
    let counts = |object: Option<Object>| -> std::result::Result<Vec<usize>, String> {
        match object {
            Some(Object::Tuple(values)) => values.into_iter().map(|v| count(Some(v))).collect(),
            _ => Err(malformed()),
        }
    };
    let info = TensorInfo {
        storage_key,
        dtype,
        storage_elements: count(Some(numel))?,
        offset: count(offset)?,
        shape: counts(size)?,
        stride: counts(stride)?,
    };
    if info.shape.len() != info.stride.len() {
        return Err(malformed());
    }
    Ok(info)
}

/// A short description of a pickle value for error messages.
fn describe(object: &Object) -> String {
    match object {
        Object::Int(v) => format!("the integer {v}"),
        Object::Long(v) => format!("the integer {v}"),
        Object::Float(v) => format!("the number {v}"),
        Object::Unicode(s) => format!("the string {:?}", s.chars().take(40).collect::<String>()),
        Object::Bool(b) => format!("the boolean {b}"),
        Object::None => "None".into(),
        Object::Tuple(_) => "a tuple".into(),
        Object::List(_) => "a list".into(),
        Object::Dict(_) => "a dict".into(),
        Object::Class { module_name, class_name } => format!("the class {module_name}.{class_name}"),
        Object::Reduce { callable, .. } | Object::Build { callable, .. } => match callable.as_ref() {
            Object::Class { module_name, class_name } => format!("a {module_name}.{class_name}(...) object"),
            _ => "an object".into(),
        },
        Object::PersistentLoad(_) => "a bare storage".into(),
        Object::Mark => "a pickle mark".into(),
    }
}

/// Storage files read once each: tensors that share a storage (views) share its bytes.
struct StorageCache<'a, R: Read + std::io::Seek> {
    archive: &'a mut zip::ZipArchive<R>,
    prefix: &'a str,
    bytes: HashMap<String, Vec<u8>>,
}

impl<R: Read + std::io::Seek> StorageCache<'_, R> {
    fn tensor(&mut self, info: &TensorInfo) -> std::result::Result<Tensor, String> {
        let element = info.dtype.size_in_bytes();
        let numel: usize = info.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or("shape overflows")?;
        let contiguous: Vec<usize> = {
            let mut strides = vec![1usize; info.shape.len()];
            for i in (0..info.shape.len().saturating_sub(1)).rev() {
                strides[i] = strides[i + 1].saturating_mul(info.shape[i + 1]);
            }
            strides
        };
        // Strides of size-1 dimensions do not matter; torch writes arbitrary ones there.
        let is_contiguous =
            info.shape.iter().zip(info.stride.iter().zip(&contiguous)).all(|(&d, (&s, &c))| d <= 1 || s == c);
        if !is_contiguous {
            return Err(format!("stored with strides {:?} (not contiguous), which is not supported", info.stride));
        }
        let end = info.offset.checked_add(numel).ok_or("offset overflows")?;
        if end > info.storage_elements {
            return Err(format!(
                "needs elements {}..{end} of a storage that has {}",
                info.offset, info.storage_elements
            ));
        }
        let storage_bytes = info.storage_elements.checked_mul(element).ok_or("storage size overflows")?;
        let bytes = self.storage(&info.storage_key, storage_bytes)?;
        let data = &bytes[info.offset * element..end * element];
        Tensor::from_raw_buffer(data, info.dtype, &info.shape, &Device::Cpu).map_err(|e| e.to_string())
    }

    fn storage(&mut self, key: &str, expected_bytes: usize) -> std::result::Result<&Vec<u8>, String> {
        if !self.bytes.contains_key(key) {
            let name = format!("{}data/{key}", self.prefix);
            let entry = self.archive.by_name(&name).map_err(|e| format!("storage {name} is missing ({e})"))?;
            if entry.size() != expected_bytes as u64 {
                return Err(format!("storage {name} has {} bytes, expected {expected_bytes}", entry.size()));
            }
            // The zip header's size may lie; reading (bounded by `take` to what the pickle declared, which was checked
            // against memory) grows the buffer only as data really comes, stored or inflated.
            let mut buffer = Vec::with_capacity(expected_bytes.min(1 << 28));
            BufReader::new(entry)
                .take(expected_bytes as u64)
                .read_to_end(&mut buffer)
                .map_err(|e| format!("storage {name} cannot be read ({e})"))?;
            if buffer.len() != expected_bytes {
                return Err(format!("storage {name} is truncated"));
            }
            self.bytes.insert(key.to_string(), buffer);
        }
        Ok(&self.bytes[key])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pickle_error(bytes: &[u8]) -> String {
        check_pickle_bounds(bytes).and_then(|_| parse_pickle(bytes).map(|_| ())).unwrap_err()
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        // PROTO 2, then 10 000 × (EMPTY_TUPLE wrapped by TUPLE1), STOP.
        let mut bytes = vec![0x80, 2, b')'];
        bytes.extend(std::iter::repeat_n(0x85, 10_000));
        bytes.push(b'.');
        assert!(pickle_error(&bytes).contains("nested deeper"), "{}", pickle_error(&bytes));
    }

    #[test]
    fn memo_amplification_is_refused() {
        // x = (); repeat: memo it, then build (x, x) from two memo copies: the size doubles each round.
        let mut bytes = vec![0x80, 2, b')'];
        for _ in 0..40 {
            bytes.extend([b'q', 0, b'h', 0, 0x86]);
        }
        bytes.push(b'.');
        let error = pickle_error(&bytes);
        assert!(error.contains("too many objects") || error.contains("nested deeper"), "{error}");
    }

    #[test]
    fn truncated_and_unknown_opcodes_are_errors() {
        assert!(pickle_error(&[0x80, 2, b'X', 10, 0, 0, 0, b'a']).contains("truncated"));
        assert!(pickle_error(&[0x80, 2, 0xff]).contains("opcode 0xff"));
    }
}
