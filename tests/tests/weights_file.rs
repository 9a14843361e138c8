//! Loading weights from a `.safetensors` file (issue 21): the q, k and v matrices transposed straight into one
//! matrix equal candle's transpose-and-concatenate, and a weights file truncated and rewritten in place under a
//! loaded model changes nothing it computes (the file is read, never mapped, so this cannot raise SIGBUS).

use std::io::Write;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use mae_integration_tests::fixtures;
use mae_model::{
    DeviceChoice, ForwardOptions, LoadOptions, LoadedModel, MaeOutput, MaskSpec, ModelLocation, WeightStore,
    load_model, select_device,
};

fn load(location: ModelLocation) -> LoadedModel {
    let device = select_device(DeviceChoice::Cpu).unwrap();
    load_model(&location, &device, &LoadOptions::default()).unwrap()
}

fn forward(loaded: &LoadedModel) -> MaeOutput {
    let side = loaded.model.config().image_size;
    let pixels: Vec<f32> = (0..3 * side * side).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let pixel_values = Tensor::from_vec(pixels, (1, 3, side, side), &Device::Cpu).unwrap();
    loaded.model.forward(&pixel_values, &MaskSpec::random(3, 0.6), ForwardOptions::default()).unwrap()
}

fn values(tensor: &Tensor) -> Vec<f32> {
    tensor.flatten_all().unwrap().to_vec1().unwrap()
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn query_key_and_value_transposed_side_by_side_equal_candles_transpose_and_concatenation() {
    let folder = fixtures().join("models/tiny-p8");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("config.json")).unwrap()).unwrap();
    let d = config["hidden_size"].as_u64().unwrap() as usize;
    let store = WeightStore::open_safetensors(&folder.join("model.safetensors")).unwrap();
    let keys: Vec<String> =
        ["query", "key", "value"].map(|name| format!("vit.encoder.layer.1.attention.attention.{name}.weight")).to_vec();
    let shape: &[usize] = &[d, d];
    let ours = store.transposed_matrix(&keys, shape, DType::F32, &Device::Cpu).unwrap();
    let parts: Vec<Tensor> =
        keys.iter().map(|key| store.get(key, shape, DType::F32, &Device::Cpu).unwrap().t().unwrap()).collect();
    let expected = Tensor::cat(&parts, 1).unwrap();
    assert_eq!(ours.dims(), &[d, 3 * d]);
    assert_eq!(values(&ours), values(&expected));
}

#[test]
fn a_weights_file_rewritten_under_a_loaded_model_changes_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let folder = scratch.path().join("tiny-p8");
    copy_folder(&fixtures().join("models/tiny-p8"), &folder);
    let loaded = load(ModelLocation::Folder(folder.clone()));
    let before = forward(&loaded);
    // Truncated and rewritten in place, as an editor or a careless script would (the hub renames instead).
    let mut file =
        std::fs::OpenOptions::new().write(true).truncate(true).open(folder.join("model.safetensors")).unwrap();
    file.write_all(b"not weights any more").unwrap();
    drop(file);
    let after = forward(&loaded);
    assert_eq!(values(&after.logits), values(&before.logits));
    assert_eq!(after.loss, before.loss);
    // Loading it again now is refused with the reason, not a crash.
    let device = select_device(DeviceChoice::Cpu).unwrap();
    let error = load_model(&ModelLocation::Folder(folder), &device, &LoadOptions::default()).unwrap_err().to_string();
    assert!(error.contains("not a valid safetensors file"), "{error}");
}
