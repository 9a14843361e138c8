//! The batched forward (`MaeModel::forward_batch`, issue 18): each item against transformers at batch > 1 with
//! explicit per-row noise (tools/make_batch_fixtures.py), and against its own batch-1 forward.
//!
//! Tolerances: 1e-4 relative L2 against transformers (every float output, per item; mask and ids_restore exact);
//! 1e-5 relative between a batch item and the same input alone (gemm blocks differently over more rows, so the
//! sums may round differently, but never by more than that).

use candle_core::{DType, Device, IndexOp, Tensor};
use mae_integration_tests::{fixtures, read_tensor_file, relative_l2, to_f64};
use mae_model::{
    DeviceChoice, ForwardOptions, LoadOptions, LoadedModel, MaeOutput, MaskSpec, MaskStrategy, ModelLocation,
    load_model, select_device,
};

const HF_TOLERANCE: f64 = 1e-4;
const BATCH_TOLERANCE: f64 = 1e-5;

fn load(name: &str) -> LoadedModel {
    let device = select_device(DeviceChoice::Cpu).unwrap();
    let location = ModelLocation::Folder(fixtures().join("models").join(name));
    load_model(&location, &device, &LoadOptions::default()).unwrap()
}

fn relative_difference(actual: f64, expected: f64) -> f64 {
    (actual - expected).abs() / expected.abs().max(f64::MIN_POSITIVE)
}

#[test]
fn every_item_of_a_batch_equals_transformers_with_that_rows_noise() {
    let mut paths: Vec<_> =
        std::fs::read_dir(fixtures().join("batch")).unwrap().map(|entry| entry.unwrap().path()).collect();
    paths.sort();
    assert_eq!(paths.len(), 3, "tools/make_batch_fixtures.py writes three batches");
    for path in paths {
        let case = read_tensor_file(&path);
        let name = path.file_stem().unwrap().to_str().unwrap();
        let model_name = name.rsplit_once("-seed").unwrap().0;
        let loaded = load(model_name);
        let ratio: f64 = case.metadata["mask_ratio"].parse().unwrap();
        let noise = &case.tensors["noise"];
        let batch = noise.dim(0).unwrap();
        assert!(batch > 1, "{name}: a batch fixture holds more than one item");
        let specs: Vec<MaskSpec> =
            (0..batch).map(|row| MaskSpec::Noise { noise: noise.i(row).unwrap().to_vec1().unwrap(), ratio }).collect();
        let outputs = loaded
            .model
            .forward_batch(&case.tensors["pixel_values"], &specs, ForwardOptions { attentions: false })
            .unwrap();
        assert_eq!(outputs.len(), batch);
        let item_losses = to_f64(&case.tensors["item_loss"]);
        for (row, output) in outputs.iter().enumerate() {
            let expected = |key: &str| case.tensors[key].i(row).unwrap().unsqueeze(0).unwrap();
            let logits = relative_l2(&output.logits, &expected("logits"));
            assert!(logits <= HF_TOLERANCE, "{name} row {row}: logits differ by {logits:e}");
            let hidden = relative_l2(&output.last_hidden_state, &expected("last_hidden_state"));
            assert!(hidden <= HF_TOLERANCE, "{name} row {row}: last_hidden_state differs by {hidden:e}");
            let mask: Vec<f32> = case.tensors["mask"].i(row).unwrap().to_vec1().unwrap();
            assert_eq!(output.masking.mask, mask, "{name} row {row}: mask");
            let ids_restore: Vec<i64> = case.tensors["ids_restore"].i(row).unwrap().to_vec1().unwrap();
            let ours: Vec<i64> = output.masking.ids_restore.iter().map(|&i| i as i64).collect();
            assert_eq!(ours, ids_restore, "{name} row {row}: ids_restore");
            let loss = f64::from(output.loss.unwrap());
            let difference = relative_difference(loss, item_losses[row]);
            assert!(difference <= HF_TOLERANCE, "{name} row {row}: loss {loss} against {}", item_losses[row]);
        }
        // HF's own `loss` is one mean over the batch: the rows' losses average to it.
        let mean = outputs.iter().map(|output| f64::from(output.loss.unwrap())).sum::<f64>() / batch as f64;
        let hf_loss = to_f64(&case.tensors["loss"])[0];
        assert!(relative_difference(mean, hf_loss) <= HF_TOLERANCE, "{name}: mean loss {mean} against HF's {hf_loss}");
    }
}

/// Every float output of `batched` against `alone`, at `BATCH_TOLERANCE`.
fn assert_same_output(batched: &MaeOutput, alone: &MaeOutput, what: &str) {
    assert_eq!(batched.masking, alone.masking, "{what}: masking");
    let pairs = [
        ("logits", &batched.logits, &alone.logits),
        ("last_hidden_state", &batched.last_hidden_state, &alone.last_hidden_state),
        ("reconstruction", &batched.reconstruction, &alone.reconstruction),
        ("pixel_values", &batched.pixel_values, &alone.pixel_values),
    ];
    for (key, actual, expected) in pairs {
        assert_eq!(actual.dims(), expected.dims(), "{what}: {key} shape");
        let difference = relative_l2(actual, expected);
        assert!(difference <= BATCH_TOLERANCE, "{what}: {key} differs by {difference:e}");
    }
    let patch_loss = relative_l2(
        &Tensor::new(batched.patch_loss.as_slice(), &Device::Cpu).unwrap(),
        &Tensor::new(alone.patch_loss.as_slice(), &Device::Cpu).unwrap(),
    );
    assert!(patch_loss <= BATCH_TOLERANCE, "{what}: patch loss differs by {patch_loss:e}");
    assert_eq!(batched.loss.is_some(), alone.loss.is_some(), "{what}: loss defined");
    if let (Some(batched), Some(alone)) = (batched.loss, alone.loss) {
        let difference = relative_difference(f64::from(batched), f64::from(alone));
        assert!(difference <= BATCH_TOLERANCE, "{what}: loss {batched} against {alone}");
    }
    for (stack, batched_maps, alone_maps) in [
        ("encoder", &batched.encoder_attentions, &alone.encoder_attentions),
        ("decoder", &batched.decoder_attentions, &alone.decoder_attentions),
    ] {
        assert_eq!(batched_maps.len(), alone_maps.len(), "{what}: {stack} attention layers");
        for (layer, (actual, expected)) in batched_maps.iter().zip(alone_maps).enumerate() {
            assert_eq!(actual.dims(), expected.dims(), "{what}: {stack} layer {layer} attention shape");
            let difference = relative_l2(actual, expected);
            assert!(difference <= BATCH_TOLERANCE, "{what}: {stack} layer {layer} attention differs by {difference:e}");
        }
    }
}

#[test]
fn a_batch_of_mixed_masks_gives_each_item_its_own_forward() {
    for model_name in ["tiny-p8", "tiny-p4-normpix"] {
        let loaded = load(model_name);
        let size = loaded.model.config().image_size;
        let specs = vec![
            MaskSpec::random(0, 0.75),
            MaskSpec::Drawn { strategy: MaskStrategy::Block, seed: 4, ratio: 0.5 },
            MaskSpec::random(1, 0.75),
            MaskSpec::Drawn { strategy: MaskStrategy::Grid, seed: 2, ratio: 0.75 },
            MaskSpec::Drawn { strategy: MaskStrategy::Centre, seed: 0, ratio: 0.3 },
            MaskSpec::Keep { visible: vec![0, 3] },
            MaskSpec::random(2, 0.0),
            MaskSpec::random(3, 1.0),
            MaskSpec::random(7, 0.75),
        ];
        let pixel_values = Tensor::randn(0f32, 1.0, (specs.len(), 3, size, size), &Device::Cpu).unwrap();
        let options = ForwardOptions { attentions: true };
        let outputs = loaded.model.forward_batch(&pixel_values, &specs, options).unwrap();
        assert_eq!(outputs.len(), specs.len());
        // The three random masks at 0.75 keep the same count: they ran as one group of three.
        let kept: Vec<usize> = outputs.iter().map(|output| output.masking.len_keep()).collect();
        assert_eq!(kept[0], kept[2]);
        assert_eq!(kept[0], kept[8]);
        for (item, (spec, batched)) in specs.iter().zip(&outputs).enumerate() {
            let alone_input = pixel_values.narrow(0, item, 1).unwrap();
            let alone = loaded.model.forward(&alone_input, spec, options).unwrap();
            assert_same_output(batched, &alone, &format!("{model_name} item {item} ({spec:?})"));
        }
        // Items of one group are not mixed up: different inputs under one mask give different logits.
        assert_ne!(to_f64(&outputs[0].logits), to_f64(&outputs[2].logits));
    }
}

#[test]
fn a_batch_that_does_not_match_its_masks_is_refused_with_the_shapes() {
    let loaded = load("tiny-p8");
    let size = loaded.model.config().image_size;
    let pixel_values = Tensor::zeros((2, 3, size, size), DType::F32, &Device::Cpu).unwrap();
    let one_mask = [MaskSpec::random(0, 0.75)];
    let error = loaded.model.forward_batch(&pixel_values, &one_mask, ForwardOptions::default()).unwrap_err();
    assert!(error.to_string().contains("[1, 3, H, W]") && error.to_string().contains("[2, 3, 32, 32]"), "{error}");
    let error = loaded.model.forward_batch(&pixel_values, &[], ForwardOptions::default()).unwrap_err();
    assert!(error.to_string().contains("one mask per image"), "{error}");
}

#[test]
fn a_batch_too_large_for_memory_is_refused_before_it_runs() {
    let config = load("tiny-p8").model.config().clone();
    let error = mae_model::check_batch_fits(&config, (4096, 4096), 4096, false).unwrap_err();
    assert!(error.contains("a batch of 4096 forward passes"), "{error}");
    assert!(error.contains("more than the"), "{error}");
    mae_model::check_batch_fits(&config, (4, 4), 16, true).unwrap();
}
