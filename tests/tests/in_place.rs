//! Weights read where they lie (issue 21): which sources load without a copy of their weight matrices, that a
//! weights file truncated and rewritten under a loaded model changes nothing it computes (no SIGBUS, same outputs),
//! and that the candle kernels, which need transposed copies, still give the same outputs.

use std::io::Write;
use std::path::Path;

use mae_integration_tests::{fixtures, relative_l2};
use mae_model::{
    DeviceChoice, ForwardOptions, KernelChoice, LoadOptions, LoadedModel, MaeOutput, MaskSpec, ModelLocation,
    load_model, select_device,
};

fn load(location: ModelLocation) -> LoadedModel {
    let device = select_device(DeviceChoice::Cpu).unwrap();
    load_model(&location, &device, &LoadOptions::default()).unwrap()
}

fn forward(loaded: &LoadedModel) -> MaeOutput {
    let side = loaded.model.config().image_size;
    let pixels: Vec<f32> = (0..3 * side * side).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let pixel_values = candle_core::Tensor::from_vec(pixels, (1, 3, side, side), &candle_core::Device::Cpu).unwrap();
    let spec = MaskSpec::random(3, 0.6);
    loaded.model.forward(&pixel_values, &spec, ForwardOptions::default()).unwrap()
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn safetensors_folders_and_the_demo_model_load_without_copying_their_weights() {
    let folder = load(ModelLocation::Folder(fixtures().join("models/tiny-p8")));
    assert!(folder.model.weights_in_place(), "a safetensors folder is read from its memory map");
    let demo = load(ModelLocation::Demo);
    assert!(demo.model.weights_in_place(), "the demo model is read from the binary");
    // A PyTorch pickle has to be converted: its weights are a copy.
    let converted = load(ModelLocation::Folder(fixtures().join("models/tiny-p8-bin")));
    assert!(!converted.model.weights_in_place());
}

#[test]
fn a_weights_file_rewritten_under_a_loaded_model_changes_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let folder = scratch.path().join("tiny-p8");
    copy_folder(&fixtures().join("models/tiny-p8"), &folder);
    let loaded = load(ModelLocation::Folder(folder.clone()));
    assert!(loaded.model.weights_in_place());
    let before = forward(&loaded);

    // Truncating and rewriting in place, as an editor or a careless script would (the hub renames instead). The
    // open is held by the kernel until the model has copied its weights (weight_bytes.rs).
    let mut file =
        std::fs::OpenOptions::new().write(true).truncate(true).open(folder.join("model.safetensors")).unwrap();
    file.write_all(b"not weights any more").unwrap();
    drop(file);

    assert!(!loaded.model.weights_in_place(), "the model moved to a copy when the file was opened for writing");
    let after = forward(&loaded);
    assert_eq!(
        after.logits.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        before.logits.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
    assert_eq!(after.loss, before.loss);
}

#[test]
fn candle_kernels_convert_the_weights_once_and_agree() {
    let mut loaded = load(ModelLocation::Folder(fixtures().join("models/tiny-p8")));
    let fused = forward(&loaded);
    loaded.model.set_kernels(KernelChoice::Candle).unwrap();
    assert!(!loaded.model.weights_in_place(), "candle's matmul reads transposed copies");
    let candle = forward(&loaded);
    let difference = relative_l2(&candle.logits, &fused.logits);
    assert!(difference <= 1e-5, "candle and fused kernels differ by {difference:e}");
    loaded.model.set_kernels(KernelChoice::Fused).unwrap();
    let back = forward(&loaded);
    assert!(relative_l2(&back.logits, &fused.logits) <= 1e-6);
}
