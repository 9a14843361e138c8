//! PyTorch checkpoints (`pytorch_model.bin`, facebookresearch/mae `.pth`) read without running any of their code.
//!
//! A torch zip checkpoint is a pickle (`<archive>/data.pkl`) that describes tensors whose bytes live in
//! `<archive>/data/<key>`. Unpickling in Python can call any function the file names, which is how malicious
//! checkpoints work. Here candle's pickle reader only *describes* the objects (it never calls anything), and we
//! then accept exactly one shape of content: a dict of tensors (optionally under `"model"` / `"state_dict"`), built
//! by torch's own tensor-rebuild functions. Anything else — `posix.system`, an int, a string — is refused with the
//! key named.
//!
//! Original MAE checkpoints use timm names and a fused `qkv` projection; [`to_hub_layout`] renames them to the
//! Hugging Face hub layout and splits `qkv`, and [`infer_original_config`] derives the architecture from the
//! tensor shapes when no `config.json` is given.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};

use crate::config::MaeConfig;
use crate::error::{MaeError, Result};

/// A pickle bigger than this is not a state dict (vit-mae-huge's is ~60 KB); refusing it bounds parse time.
const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// Deeper nesting than this is never produced by `torch.save` of a state dict, and unbounded nesting would
/// overflow the stack in recursive code (including candle's own clone/drop of pickle objects).
const MAX_NESTING: u32 = 64;
/// Upper bound on pickle objects materialised, counting memo copies: stops "billion laughs" pickles that
/// reference the same growing object over and over.
const MAX_OBJECTS: u64 = 20_000_000;

/// Which naming scheme a checkpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLayout {
    /// Hugging Face hub names (`vit.encoder.layer.0.attention.attention.query.weight`, ...).
    Hub,
    /// facebookresearch/mae (timm) names (`blocks.0.attn.qkv.weight`, `decoder_blocks.0...`, ...).
    OriginalMae,
}

/// Every tensor of a torch zip checkpoint, by name, on the CPU in the file's own dtype.
///
/// The state dict is taken from the top level or from under a `"model"` / `"state_dict"` key (how MAE training
/// scripts save). Fails — with the file named — on anything that is not a torch zip checkpoint holding tensors.
pub fn read_pytorch_checkpoint(path: &Path) -> Result<HashMap<String, Tensor>> {
    let fail = |problem: String| MaeError::weights(path, problem);
    if !path.is_file() {
        return Err(fail("weights file not found".into()));
    }
    let file = File::open(path).map_err(|e| fail(format!("cannot open the checkpoint ({e})")))?;
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

    if let Ok(mut entry) = archive.by_name(&format!("{prefix}byteorder")) {
        let mut order = String::new();
        let _ = entry.read_to_string(&mut order);
        if order.trim() != "little" {
            return Err(fail(format!("tensors are stored {} endian; only little endian is supported", order.trim())));
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
            // The header's size may lie; reading (bounded by `take`) grows the buffer only as data really comes.
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

/// Tells hub-named from MAE-named checkpoints by their keys.
pub fn detect_layout(names: impl IntoIterator<Item = impl AsRef<str>>) -> Option<KeyLayout> {
    let mut original = false;
    for name in names {
        let name = name.as_ref();
        if name.starts_with("vit.") || name.starts_with("decoder.") {
            return Some(KeyLayout::Hub);
        }
        original |= name.starts_with("blocks.")
            || name.starts_with("patch_embed.")
            || name.starts_with("decoder_blocks.")
            || name == "cls_token"
            || name == "pos_embed";
    }
    original.then_some(KeyLayout::OriginalMae)
}

/// The sub-module renames inside one transformer block: (timm, hub).
const BLOCK_RENAMES: [(&str, &str); 5] = [
    ("norm1", "layernorm_before"),
    ("attn.proj", "attention.output.dense"),
    ("norm2", "layernorm_after"),
    ("mlp.fc1", "intermediate.dense"),
    ("mlp.fc2", "output.dense"),
];

/// Top-level renames: (timm, hub). Prefix entries end with a dot.
const TOP_RENAMES: [(&str, &str); 10] = [
    ("cls_token", "vit.embeddings.cls_token"),
    ("pos_embed", "vit.embeddings.position_embeddings"),
    ("patch_embed.proj.", "vit.embeddings.patch_embeddings.projection."),
    ("norm.", "vit.layernorm."),
    ("mask_token", "decoder.mask_token"),
    ("decoder_pos_embed", "decoder.decoder_pos_embed"),
    ("decoder_embed.", "decoder.decoder_embed."),
    ("decoder_norm.", "decoder.decoder_norm."),
    ("decoder_pred.", "decoder.decoder_pred."),
    ("blocks.", "vit.encoder.layer."),
];

/// Renames facebookresearch/mae tensors to hub names and splits each fused `qkv` into query/key/value (rows
/// `[:D]`, `[D:2D]`, `[2D:]`). Tensors the model does not use (classifier heads, ...) are dropped.
pub fn to_hub_layout(path: &Path, tensors: HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
    let mut hub = HashMap::with_capacity(tensors.len() + 16);
    for (name, tensor) in tensors {
        let Some((stack, index, rest)) = split_block_name(&name) else {
            if let Some(renamed) = rename_top_level(&name) {
                hub.insert(renamed, tensor);
            }
            continue;
        };
        let prefix = match stack {
            "blocks" => format!("vit.encoder.layer.{index}"),
            _ => format!("decoder.decoder_layers.{index}"),
        };
        if let Some(suffix) = rest.strip_prefix("attn.qkv.") {
            let rows = tensor.dim(0)?;
            if rows % 3 != 0 {
                return Err(MaeError::weights(
                    path,
                    format!("tensor `{name}` has {rows} rows, which cannot be split into query, key and value"),
                ));
            }
            let width = rows / 3;
            for (part, start) in [("query", 0), ("key", width), ("value", 2 * width)] {
                let slice = tensor.narrow(0, start, width)?.contiguous()?;
                hub.insert(format!("{prefix}.attention.attention.{part}.{suffix}"), slice);
            }
            continue;
        }
        if let Some((timm, renamed)) = BLOCK_RENAMES.iter().find(|(timm, _)| rest.starts_with(&format!("{timm}."))) {
            hub.insert(format!("{prefix}.{renamed}{}", &rest[timm.len()..]), tensor);
        }
    }
    Ok(hub)
}

/// `blocks.3.mlp.fc1.weight` → ("blocks", 3, "mlp.fc1.weight").
fn split_block_name(name: &str) -> Option<(&str, usize, &str)> {
    let (stack, rest) = name.split_once('.')?;
    if stack != "blocks" && stack != "decoder_blocks" {
        return None;
    }
    let (index, rest) = rest.split_once('.')?;
    Some((stack, index.parse().ok()?, rest))
}

fn rename_top_level(name: &str) -> Option<String> {
    TOP_RENAMES.iter().find_map(|(timm, hub)| {
        if timm.ends_with('.') {
            name.strip_prefix(timm).map(|rest| format!("{hub}{rest}"))
        } else {
            (name == *timm).then(|| hub.to_string())
        }
    })
}

/// The facebookresearch/mae name a hub key came from, so errors name what is actually in the file.
pub fn original_name(hub_key: &str) -> Option<String> {
    let block = |prefix: &str, stack: &str| -> Option<String> {
        let rest = hub_key.strip_prefix(prefix)?;
        let (index, rest) = rest.split_once('.')?;
        if let Some(suffix) = rest.strip_prefix("attention.attention.") {
            let (_, suffix) = suffix.split_once('.')?;
            return Some(format!("{stack}.{index}.attn.qkv.{suffix}"));
        }
        BLOCK_RENAMES.iter().find_map(|(timm, hub)| {
            rest.strip_prefix(&format!("{hub}.")).map(|suffix| format!("{stack}.{index}.{timm}.{suffix}"))
        })
    };
    block("vit.encoder.layer.", "blocks").or_else(|| block("decoder.decoder_layers.", "decoder_blocks")).or_else(|| {
        TOP_RENAMES.iter().find_map(|(timm, hub)| {
            if hub.ends_with('.') {
                hub_key.strip_prefix(hub).map(|rest| format!("{timm}{rest}"))
            } else {
                (hub_key == *hub).then(|| timm.to_string())
            }
        })
    })
}

/// The architecture of an original MAE checkpoint, read off its tensor shapes (given as timm names).
///
/// Head counts are not visible in the weights; they are those of the published models (encoder 12 for
/// ViT-B/768, 16 for ViT-L/1024 and ViT-H/1280; decoder 16). LayerNorm eps is MAE's 1e-6.
pub fn infer_original_config(shapes: &HashMap<String, Vec<usize>>) -> std::result::Result<MaeConfig, String> {
    let shape = |key: &str| -> std::result::Result<&Vec<usize>, String> {
        shapes.get(key).ok_or_else(|| format!("tensor `{key}` is missing, so the architecture cannot be inferred"))
    };
    let dim = |key: &str, axis: usize| -> std::result::Result<usize, String> {
        shape(key)?.get(axis).copied().ok_or_else(|| format!("tensor `{key}` has an unexpected shape"))
    };
    let count_blocks = |stack: &str| -> usize {
        shapes
            .keys()
            .filter_map(|k| split_block_name(k))
            .filter(|(s, _, _)| *s == stack)
            .map(|(_, i, _)| i)
            .fold(BTreeSet::new(), |mut set, i| {
                set.insert(i);
                set
            })
            .len()
    };
    let patch = shape("patch_embed.proj.weight")?;
    let [hidden, channels, patch_size, patch_w] = patch.as_slice() else {
        return Err(format!("tensor `patch_embed.proj.weight` has shape {patch:?}, expected [D, 3, p, p]"));
    };
    if patch_size != patch_w {
        return Err(format!("non-square patches {patch_size}×{patch_w} are not supported"));
    }
    let tokens = dim("pos_embed", 1)?;
    let grid = (tokens.saturating_sub(1) as f64).sqrt().round() as usize;
    if grid * grid + 1 != tokens {
        return Err(format!("`pos_embed` has {tokens} rows, which is not 1 + a square number of patches"));
    }
    let heads = match hidden {
        768 => 12,
        1024 | 1280 => 16,
        other => {
            return Err(format!(
                "encoder width {other} is not one of the published MAE models (768, 1024, 1280), so its head \
                 count is unknown; put a config.json beside the checkpoint"
            ));
        }
    };
    let decoder_hidden = dim("decoder_embed.weight", 0)?;
    if decoder_hidden % 16 != 0 {
        return Err(format!(
            "decoder width {decoder_hidden} does not fit MAE's 16 decoder heads; put a config.json beside the checkpoint"
        ));
    }
    let config = MaeConfig {
        hidden_size: *hidden,
        num_hidden_layers: count_blocks("blocks"),
        num_attention_heads: heads,
        intermediate_size: dim("blocks.0.mlp.fc1.weight", 0)?,
        hidden_act: "gelu".into(),
        layer_norm_eps: 1e-6,
        image_size: grid * patch_size,
        patch_size: *patch_size,
        num_channels: *channels,
        qkv_bias: shapes.contains_key("blocks.0.attn.qkv.bias"),
        decoder_num_attention_heads: 16,
        decoder_hidden_size: decoder_hidden,
        decoder_num_hidden_layers: count_blocks("decoder_blocks"),
        decoder_intermediate_size: dim("decoder_blocks.0.mlp.fc1.weight", 0)?,
        mask_ratio: 0.75,
        norm_pix_loss: false,
    };
    config.validate()?;
    Ok(config)
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

    #[test]
    fn original_names_round_trip_through_the_hub_names() {
        for name in [
            "blocks.3.norm1.weight",
            "blocks.0.mlp.fc2.bias",
            "decoder_blocks.7.attn.proj.weight",
            "patch_embed.proj.bias",
            "norm.weight",
            "cls_token",
            "decoder_pred.weight",
        ] {
            let hub = if let Some((stack, index, rest)) = split_block_name(name) {
                let (timm, renamed) = BLOCK_RENAMES.iter().find(|(t, _)| rest.starts_with(t)).unwrap();
                let prefix = if stack == "blocks" { "vit.encoder.layer" } else { "decoder.decoder_layers" }.to_string();
                format!("{prefix}.{index}.{renamed}{}", &rest[timm.len()..])
            } else {
                rename_top_level(name).unwrap()
            };
            assert_eq!(original_name(&hub).as_deref(), Some(name), "{hub}");
        }
        assert_eq!(
            original_name("vit.encoder.layer.2.attention.attention.key.bias").as_deref(),
            Some("blocks.2.attn.qkv.bias")
        );
    }

    fn base_shapes(hidden: usize, layers: usize, patch: usize, grid: usize) -> HashMap<String, Vec<usize>> {
        let mut shapes = HashMap::from([
            ("patch_embed.proj.weight".to_string(), vec![hidden, 3, patch, patch]),
            ("pos_embed".to_string(), vec![1, grid * grid + 1, hidden]),
            ("decoder_embed.weight".to_string(), vec![512, hidden]),
            ("blocks.0.attn.qkv.bias".to_string(), vec![3 * hidden]),
        ]);
        for i in 0..layers {
            shapes.insert(format!("blocks.{i}.mlp.fc1.weight"), vec![4 * hidden, hidden]);
        }
        for j in 0..8 {
            shapes.insert(format!("decoder_blocks.{j}.mlp.fc1.weight"), vec![2048, 512]);
        }
        shapes
    }

    #[test]
    fn published_variants_are_inferred_from_shapes() {
        let base = infer_original_config(&base_shapes(768, 12, 16, 14)).unwrap();
        assert_eq!(
            (base.hidden_size, base.num_hidden_layers, base.num_attention_heads, base.intermediate_size),
            (768, 12, 12, 3072)
        );
        assert_eq!((base.image_size, base.patch_size, base.layer_norm_eps), (224, 16, 1e-6));
        assert_eq!(
            (base.decoder_hidden_size, base.decoder_num_hidden_layers, base.decoder_num_attention_heads),
            (512, 8, 16)
        );
        let large = infer_original_config(&base_shapes(1024, 24, 16, 14)).unwrap();
        assert_eq!((large.num_hidden_layers, large.num_attention_heads), (24, 16));
        let huge = infer_original_config(&base_shapes(1280, 32, 14, 16)).unwrap();
        assert_eq!((huge.num_hidden_layers, huge.num_attention_heads, huge.image_size), (32, 16, 224));
        let unknown = infer_original_config(&base_shapes(32, 2, 8, 4)).unwrap_err();
        assert!(unknown.contains("config.json"), "{unknown}");
    }
}
