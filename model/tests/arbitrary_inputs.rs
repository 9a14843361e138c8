//! Arbitrary bytes, and well-formed files with arbitrary declared sizes, through the readers of untrusted files:
//! the torch zip/pickle reader, the `.npy` reader and the config parsers. Whatever the input, they return (an
//! error or a value): no panic, no abort, and no more than [`BUDGET`] bytes allocated — a forged header declaring
//! gigabytes is refused before it is believed.
//!
//! The run is bounded for CI: 256 cases per property, a fixed seed, inputs of a few kB, no failure files written.
//! Going over the budget makes the capped allocator fail, which aborts this test binary: a loud failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cap::Cap;
use mae_model::npy::NpyFile;
use mae_model::torch_checkpoint::read_pytorch_checkpoint;
use mae_model::{CheckedJson, MaeConfig, PreprocessorConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

#[global_allocator]
static ALLOCATOR: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

/// Bytes a reader may allocate on top of what was allocated before it started. The inputs are under 200 kB (the
/// largest is a mutated 160 kB checkpoint, read whole); all properties pass with 512 KiB, and an allocation sized
/// by a forged header (kilobytes to exabytes here) would overshoot this.
const BUDGET: usize = 2 << 20;

/// The allocation cap is process-wide: properties run one at a time so that none is charged for another.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn within_budget<T>(run: impl FnOnce() -> T) -> T {
    let before = ALLOCATOR.allocated();
    ALLOCATOR.set_limit(before + BUDGET).expect("the limit is above what is allocated");
    let result = run();
    ALLOCATOR.set_limit(usize::MAX).expect("no limit");
    result
}

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(20_261_127),
        ..Config::default()
    }
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(path)
}

fn write_temporary(bytes: &[u8], name: &str) -> (tempfile::TempDir, PathBuf) {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join(name);
    std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
    (folder, path)
}

// ------------------------------------------------------------------------------------------- torch zip / pickle

/// A stored zip holding `entries` under `archive/` (as torch.save lays a checkpoint out).
fn torch_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        zip.start_file(format!("archive/{name}"), options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn pickle_int(value: u64) -> Vec<u8> {
    let mut bytes = vec![0x8a, 9];
    bytes.extend(value.to_le_bytes());
    bytes.push(0); // sign byte: always non-negative
    bytes
}

fn pickle_text(text: &str) -> Vec<u8> {
    let mut bytes = vec![b'X'];
    bytes.extend((text.len() as u32).to_le_bytes());
    bytes.extend(text.as_bytes());
    bytes
}

/// torch.save's records for one float tensor, `_rebuild_tensor_v2(storage(key, numel), offset, shape, stride)`,
/// with every number arbitrary.
fn forged_state_dict(numel: u64, offset: u64, shape: &[u64], stride: &[u64]) -> Vec<u8> {
    let tuple = |values: &[u64]| {
        let mut bytes = vec![b'('];
        values.iter().for_each(|&v| bytes.extend(pickle_int(v)));
        bytes.push(b't');
        bytes
    };
    let mut bytes = vec![0x80, 2, b'}', b'('];
    bytes.extend(pickle_text("vit.embeddings.cls_token"));
    bytes.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
    bytes.push(b'(');
    bytes.extend(pickle_text("storage"));
    bytes.extend(b"ctorch\nFloatStorage\n");
    bytes.extend(pickle_text("0"));
    bytes.extend(pickle_text("cpu"));
    bytes.extend(pickle_int(numel));
    bytes.extend(b"tQ");
    bytes.extend(pickle_int(offset));
    bytes.extend(tuple(shape));
    bytes.extend(tuple(stride));
    bytes.extend(b"\x89ccollections\nOrderedDict\n)Rt");
    bytes.extend(b"Ru.");
    bytes
}

fn read_checkpoint_bytes(bytes: &[u8]) -> mae_model::Result<usize> {
    let (_folder, path) = write_temporary(bytes, "pytorch_model.bin");
    within_budget(|| read_pytorch_checkpoint(&path).map(|tensors| tensors.len()))
}

/// The forged files below are only a test if the reader accepts them when their sizes agree.
#[test]
fn the_forged_checkpoint_and_npy_layouts_load_when_honest() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pickle = forged_state_dict(4, 0, &[2, 2], &[2, 1]);
    let file = torch_zip(&[("data.pkl", &pickle), ("byteorder", b"little"), ("data/0", &[0u8; 16])]);
    assert_eq!(read_checkpoint_bytes(&file).unwrap(), 1);
    assert_eq!(read_npy_bytes(&honest_npy("<f4", &[2, 3], 24)), Some((vec![2, 3], 6)));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn checkpoint_reader_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        prop_assert!(read_checkpoint_bytes(&bytes).is_err());
    }

    #[test]
    fn checkpoint_reader_survives_arbitrary_pickles_in_a_valid_zip(
        pickle in prop::collection::vec(any::<u8>(), 0..2048),
        storage in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        // Arbitrary opcodes after a protocol header, so the parser gets past its first byte.
        let pickle = [&[0x80, 2][..], &pickle].concat();
        let _ = read_checkpoint_bytes(&torch_zip(&[("data.pkl", &pickle), ("data/0", &storage)]));
    }

    #[test]
    fn checkpoint_reader_believes_no_declared_size(
        numel in prop_oneof![0..64u64, any::<u64>()],
        offset in prop_oneof![0..8u64, any::<u64>()],
        shape in prop::collection::vec(prop_oneof![0..8u64, any::<u64>()], 0..5),
        stride in prop::collection::vec(prop_oneof![0..8u64, any::<u64>()], 0..5),
        storage_floats in 0..32usize,
    ) {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let pickle = forged_state_dict(numel, offset, &shape, &stride);
        let storage = vec![0u8; 4 * storage_floats];
        let file = torch_zip(&[("data.pkl", &pickle), ("byteorder", b"little"), ("data/0", &storage)]);
        if let Ok(count) = read_checkpoint_bytes(&file) {
            // Accepted only when what it declares is what it holds.
            prop_assert_eq!(count, 1);
            prop_assert!(numel as usize == storage_floats);
        }
    }

    #[test]
    fn checkpoint_reader_survives_a_damaged_real_checkpoint(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        keep in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let mut bytes = std::fs::read(fixture("models/tiny-p8-bin/pytorch_model.bin")).unwrap();
        for (at, value) in &flips {
            let at = at.index(bytes.len());
            bytes[at] ^= value | 1;
        }
        if truncate {
            bytes.truncate(keep.index(bytes.len()));
        }
        let _ = read_checkpoint_bytes(&bytes);
    }
}

// ------------------------------------------------------------------------------------------- .npy

fn read_npy_bytes(bytes: &[u8]) -> Option<(Vec<usize>, usize)> {
    let (_folder, path) = write_temporary(bytes, "values.npy");
    within_budget(|| {
        let file = NpyFile::open(&path).ok()?;
        let shape = file.shape().to_vec();
        Some((shape, file.read_f32().ok()?.len()))
    })
}

/// A `.npy` file with the given header fields and `data_bytes` zero bytes of data.
fn npy_file(descr: &str, shape: &[u64], data_bytes: usize, version: u8) -> Vec<u8> {
    let shape_text: Vec<String> = shape.iter().map(u64::to_string).collect();
    let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({},), }}\n", shape_text.join(", "));
    let mut bytes = b"\x93NUMPY".to_vec();
    bytes.extend([version, 0]);
    if version == 1 {
        bytes.extend((header.len() as u16).to_le_bytes());
    } else {
        bytes.extend((header.len() as u32).to_le_bytes());
    }
    bytes.extend(header.as_bytes());
    bytes.extend(vec![0u8; data_bytes]);
    bytes
}

fn honest_npy(descr: &str, shape: &[u64], data_bytes: usize) -> Vec<u8> {
    npy_file(descr, shape, data_bytes, 1)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn npy_reader_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let with_magic = [&b"\x93NUMPY\x01\x00"[..], &bytes].concat();
        for candidate in [&bytes, &with_magic] {
            if let Some((shape, values)) = read_npy_bytes(candidate) {
                prop_assert_eq!(shape.iter().product::<usize>(), values);
            }
        }
    }

    #[test]
    fn npy_reader_believes_no_declared_shape(
        shape in prop::collection::vec(prop_oneof![0..8u64, any::<u64>()], 0..5),
        descr in prop::sample::select(vec!["<f4", ">f4", "<f8", "<f2", "|u1", "<i8", "f4", "<f16", "'", ""]),
        data_bytes in 0..256usize,
        version in prop::sample::select(vec![1u8, 2, 3, 4]),
    ) {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = npy_file(descr, &shape, data_bytes, version);
        if let Some((read_shape, values)) = read_npy_bytes(&bytes) {
            // Accepted only when the declared shape accounts for exactly the bytes there are.
            let declared: usize = read_shape.iter().product();
            prop_assert_eq!(declared, values);
            prop_assert!(values * 2 <= data_bytes);
        }
    }
}

// ------------------------------------------------------------------------------------------- configs

fn json_number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..300u64).prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        Just("1e400".to_string()),
        Just("null".to_string()),
        Just("\"16\"".to_string()),
        Just("[16, 16]".to_string()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_parsers_survive_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        within_budget(|| {
            let _ = MaeConfig::from_json_bytes(&bytes);
            let _ = PreprocessorConfig::from_json_bytes(&bytes);
        });
    }

    #[test]
    fn configs_with_arbitrary_sizes_are_refused_or_fit_the_memory_check(
        values in prop::collection::vec(json_number(), 12),
        as_array in any::<bool>(),
    ) {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let fields = [
            "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "image_size",
            "patch_size", "decoder_hidden_size", "decoder_num_hidden_layers", "decoder_num_attention_heads",
            "decoder_intermediate_size", "mask_ratio", "layer_norm_eps",
        ];
        let json = if as_array {
            format!("[{}]", values.join(", "))
        } else {
            let pairs: Vec<String> = fields.iter().zip(&values).map(|(f, v)| format!("\"{f}\": {v}")).collect();
            format!("{{{}}}", pairs.join(", "))
        };
        within_budget(|| {
            if let Ok(config) = MaeConfig::from_json(&json) {
                prop_assert!(!as_array, "a JSON array was read as a config");
                // The size arithmetic of every accepted config is safe to do.
                let side = config.grid_size() as u64;
                let _ = mae_model::model::check_forward_fits(&config, (side as usize, side as usize));
                let _ = mae_model::memory::forward_pass_bytes(&config, side.saturating_mul(side));
            }
            let preprocessor = format!("{{\"size\": {{\"height\": {}, \"width\": {}}}}}", values[0], values[1]);
            if let Ok(config) = PreprocessorConfig::from_json_bytes(preprocessor.as_bytes()) {
                let (height, width) = config.target_size();
                prop_assert!((height as u64) * (width as u64) <= mae_model::input_file::MAX_PIXELS);
            }
            Ok(())
        })?;
    }
}
