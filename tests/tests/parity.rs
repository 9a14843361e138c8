//! `mae-explorer dump` against outputs that Hugging Face transformers produced (tools/make_fixtures.py).
//!
//! Tolerance: 1e-4 relative L2 for every float output; mask, ids_restore and noise exact.

use std::path::{Path, PathBuf};

use mae_explorer::cli::{DumpArgs, EngineArgs, ForwardInputArgs, ModelArgs, SizeArgs};
use mae_integration_tests::{TensorFile, compare_outputs, fixtures, read_tensor_file, to_f64};
use mae_model::{DeviceChoice, KernelChoice, SizeRule};

const TOLERANCE: f64 = 1e-4;

/// Where `dump` takes its input from.
enum Input<'a> {
    PixelValues(&'a Path),
    Image(PathBuf),
}

/// Runs `dump` on `model` (a fixture model name or folder) and reads what it wrote.
fn run_dump(
    model: &Path,
    input: Input,
    noise: Option<&Path>,
    seed: Option<u64>,
    ratio: f64,
    kernels: KernelChoice,
) -> anyhow::Result<TensorFile> {
    run_dump_at(model, input, noise, seed, ratio, kernels, SizeRule::Model)
}

/// [`run_dump`] with `--size`.
fn run_dump_at(
    model: &Path,
    input: Input,
    noise: Option<&Path>,
    seed: Option<u64>,
    ratio: f64,
    kernels: KernelChoice,
    size: SizeRule,
) -> anyhow::Result<TensorFile> {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out.safetensors");
    let (image, pixel_values) = match input {
        Input::PixelValues(path) => (None, Some(path.to_owned())),
        Input::Image(path) => (Some(path), None),
    };
    let args = DumpArgs {
        input: ForwardInputArgs {
            image,
            pixel_values,
            mask: "random".into(),
            noise: noise.map(Path::to_owned),
            seed,
            mask_ratio: Some(ratio),
            size: SizeArgs { size },
        },
        model: ModelArgs { location: model.to_string_lossy().into_owned() },
        engine: EngineArgs { device: DeviceChoice::Cpu, kernels, ..EngineArgs::default() },
        force: false,
        out: out.clone(),
    };
    mae_explorer::commands::dump::run(&args)?;
    Ok(read_tensor_file(&out))
}

/// Runs `dump` on a fixture case's own pixel values and noise, and compares every output.
fn check_case(model_dir: &Path, case_path: &Path, kernels: KernelChoice) -> Vec<String> {
    let case = read_tensor_file(case_path);
    let scratch = tempfile::tempdir().unwrap();
    let pixel_values = scratch.path().join("pixel_values.npy");
    let noise = scratch.path().join("noise.npy");
    case.tensors["pixel_values"].write_npy(&pixel_values).unwrap();
    case.tensors["noise"].write_npy(&noise).unwrap();
    let ratio: f64 = case.metadata["mask_ratio"].parse().unwrap();
    let ours = match run_dump(model_dir, Input::PixelValues(&pixel_values), Some(&noise), None, ratio, kernels) {
        Ok(ours) => ours,
        Err(error) => return vec![format!("dump failed: {error:#}")],
    };
    compare_outputs(&ours.tensors, &case.tensors, TOLERANCE)
}

/// Checks every fixture case with `dump --kernels <kernels>`.
fn check_every_case(kernels: KernelChoice) {
    let cases_root = fixtures().join("cases");
    let mut models: Vec<_> = std::fs::read_dir(&cases_root).unwrap().map(|e| e.unwrap().path()).collect();
    models.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut models_with_cases = 0;
    for case_dir in &models {
        let model_dir = fixtures().join("models").join(case_dir.file_name().unwrap());
        let mut cases: Vec<_> = std::fs::read_dir(case_dir).unwrap().map(|e| e.unwrap().path()).collect();
        cases.sort();
        models_with_cases += 1;
        for case in cases.iter().filter(|p| p.extension().is_some_and(|e| e == "safetensors")) {
            checked += 1;
            for problem in check_case(&model_dir, case, kernels) {
                failures.push(format!("{}: {problem}", case.strip_prefix(&cases_root).unwrap().display()));
            }
        }
    }
    assert!(models_with_cases >= 2, "expected fixtures for at least two model configurations");
    assert!(checked >= 10, "only {checked} cases found");
    assert!(failures.is_empty(), "{} problems in {checked} cases:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn dump_matches_transformers_on_every_fixture_case() {
    check_every_case(KernelChoice::Fused);
}

/// candle's composed ops are what the GPU's fused kernels are compared against (`tools/gpu_check.sh`): they must
/// meet the same tolerance, here on the CPU.
#[test]
fn candle_ops_match_transformers_on_every_fixture_case() {
    check_every_case(KernelChoice::Candle);
}

/// Cases made from a photo, run from the photo itself: our decoding and resizing must equal PIL's so exactly
/// that the whole forward pass still meets 1e-4.
#[test]
fn image_cases_match_when_dump_reads_the_image_itself() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for model in ["tiny-p8", "tiny-p4-normpix", "tiny-p16"] {
        let dir = fixtures().join("cases").join(model);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let case = read_tensor_file(&path);
            let Some(image) = case.metadata.get("image") else { continue };
            let image = mae_integration_tests::repo_root().join("assets").join(image);
            let scratch = tempfile::tempdir().unwrap();
            let noise = scratch.path().join("noise.npy");
            case.tensors["noise"].write_npy(&noise).unwrap();
            let ratio = case.metadata["mask_ratio"].parse().unwrap();
            let model_dir = fixtures().join("models").join(model);
            let ours = run_dump(&model_dir, Input::Image(image), Some(&noise), None, ratio, KernelChoice::Fused);
            let mut ours = ours.unwrap().tensors;
            // pixel_values are floats computed from equal bytes: compare them with the tolerance, not exactly.
            let error = mae_integration_tests::relative_l2(&ours["pixel_values"], &case.tensors["pixel_values"]);
            if error > 1e-6 {
                failures.push(format!("{}: pixel_values relative L2 {error:.2e}", path.display()));
            }
            ours.remove("pixel_values");
            let mut expected = case.tensors.clone();
            expected.remove("pixel_values");
            failures.extend(
                compare_outputs(&ours, &expected, TOLERANCE).into_iter().map(|p| format!("{}: {p}", path.display())),
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} image cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The embedded demo model (`--model demo`: trained weights, 224 px) run from the photo itself, against
/// transformers' outputs for the same files (`tests/fixtures/demo/`, a slim case without decoder attentions).
#[test]
fn demo_model_matches_transformers_on_a_photo() {
    let path = fixtures().join("demo/chelsea.safetensors");
    let case = read_tensor_file(&path);
    let scratch = tempfile::tempdir().unwrap();
    let noise = scratch.path().join("noise.npy");
    case.tensors["noise"].write_npy(&noise).unwrap();
    let ratio = case.metadata["mask_ratio"].parse().unwrap();
    let image = mae_integration_tests::repo_root().join("assets").join(&case.metadata["image"]);
    let mut ours = run_dump(Path::new("demo"), Input::Image(image), Some(&noise), None, ratio, KernelChoice::Fused)
        .unwrap()
        .tensors;
    assert!(case.tensors.contains_key("logits") && case.tensors.contains_key("encoder_attentions.0"));
    // what the slim fixture leaves out by design (see tests/fixtures/README.md); anything else must match
    ours.retain(|name, _| {
        !matches!(name.as_str(), "pixel_values" | "reconstruction") && !name.starts_with("decoder_attentions.")
    });
    let problems = compare_outputs(&ours, &case.tensors, TOLERANCE);
    assert!(problems.is_empty(), "{}:\n{}", path.display(), problems.join("\n"));
}

/// `dump --image chelsea.png --size WxH --seed 2` with the demo model, at a non-square, a portrait and a larger
/// size, against transformers' `ViTImageProcessor(size={"height": H, "width": W})` and
/// `interpolate_pos_encoding=True` with the same seed's noise (`tests/fixtures/sizes/`, tools/make_size_fixtures.py):
/// noise and mask exactly; the pixel values within 1e-6 (the same 8-bit resize: one level is 0.017 after
/// normalization, and float32 rescaling and normalizing in another order differ by ~4e-7); every float output at
/// 1e-4.
#[test]
fn other_sizes_match_transformers_interpolated_from_the_photo() {
    let image = mae_integration_tests::repo_root().join("assets/chelsea.png");
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures().join("sizes")).unwrap() {
        let path = entry.unwrap().path();
        let case = read_tensor_file(&path);
        let size: SizeRule = case.metadata["size"].parse().unwrap();
        let seed = case.metadata["seed"].parse().unwrap();
        let ratio = case.metadata["mask_ratio"].parse().unwrap();
        let ours = run_dump_at(
            Path::new("demo"),
            Input::Image(image.clone()),
            None,
            Some(seed),
            ratio,
            KernelChoice::Fused,
            size,
        )
        .unwrap()
        .tensors;
        let SizeRule::Exact { width, height } = size else { panic!("{}: not a WxH size", path.display()) };
        assert_eq!(ours["pixel_values"].dims(), [1, 3, height, width], "{}", path.display());
        for name in ["noise", "mask", "ids_restore"] {
            assert_eq!(to_f64(&ours[name]), to_f64(&case.tensors[name]), "{}: {name}", path.display());
        }
        let (pixels, expected) = (to_f64(&ours["pixel_values"]), to_f64(&case.tensors["pixel_values"]));
        let worst = pixels.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-6, "{}: pixel values differ by up to {worst}", path.display());
        // Checked above, within the resize's float rounding; the rest at the tolerance.
        let ours =
            ours.into_iter().filter(|(name, _)| name != "pixel_values" && case.tensors.contains_key(name)).collect();
        let mut expected = case.tensors.clone();
        expected.remove("pixel_values");
        let problems = compare_outputs(&ours, &expected, TOLERANCE);
        assert!(problems.is_empty(), "{}:\n{}", path.display(), problems.join("\n"));
        checked += 1;
    }
    assert_eq!(checked, 3, "three sizes");
}

/// A seed-drawn case must need no noise file: `--seed N` reproduces HF's mask on its own.
#[test]
fn seed_cases_reproduce_without_the_noise_file() {
    let mut checked = 0;
    for model in ["tiny-p8", "tiny-p4-normpix", "tiny-p16"] {
        let dir = fixtures().join("cases").join(model);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let case = read_tensor_file(&path);
            let Some(seed) = case.metadata.get("seed") else { continue };
            let scratch = tempfile::tempdir().unwrap();
            let pixel_values = scratch.path().join("pixel_values.npy");
            case.tensors["pixel_values"].write_npy(&pixel_values).unwrap();
            let ratio = case.metadata["mask_ratio"].parse().unwrap();
            let model_dir = fixtures().join("models").join(model);
            let ours = run_dump(
                &model_dir,
                Input::PixelValues(&pixel_values),
                None,
                Some(seed.parse().unwrap()),
                ratio,
                KernelChoice::Fused,
            )
            .unwrap();
            for name in ["noise", "mask", "ids_restore"] {
                assert_eq!(to_f64(&ours.tensors[name]), to_f64(&case.tensors[name]), "{}: {name}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} seed cases");
}

#[test]
fn torch_manual_seed_streams_are_reproduced_bit_for_bit() {
    let seeds = read_tensor_file(&fixtures().join("seeds.safetensors"));
    assert!(seeds.tensors.len() >= 8);
    for (name, expected) in &seeds.tensors {
        // seed_{N}_len_{L}
        let parts: Vec<&str> = name.split('_').collect();
        let (seed, len): (u64, usize) = (parts[1].parse().unwrap(), parts[3].parse().unwrap());
        let ours = mae_model::TorchGenerator::rand(seed, len);
        let want: Vec<f32> = expected.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(ours, want, "{name}");
    }
}

/// Each of the model's modules alone against the same module of transformers (`tests/fixtures/boundaries/`,
/// `tools/make_boundary_fixtures.py`): the embeddings against `vit.embeddings`' output, the encoder from those
/// embeddings against `last_hidden_state`, and the decoder from transformers' own `last_hidden_state` against the
/// logits; with both kernel choices, at the configured size and through interpolated position tables (48×32).
#[test]
fn embeddings_encoder_and_decoder_each_match_transformers_at_their_boundary() {
    use candle_core::{DType, Device};
    use mae_model::{MaeConfig, MaeModel, MaskSpec, Masking, WeightStore};

    let root = fixtures().join("boundaries");
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().map(|entry| entry.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let case = read_tensor_file(&path);
        let model_dir = fixtures().join("models").join(&case.metadata["model"]);
        let config = MaeConfig::from_file(&model_dir.join("config.json")).unwrap();
        let store = WeightStore::open_safetensors(&model_dir.join("model.safetensors")).unwrap();
        for kernels in [KernelChoice::Fused, KernelChoice::Candle] {
            let model = MaeModel::from_store(config.clone(), &store, &Device::Cpu, DType::F32, kernels).unwrap();
            let tensor = |name: &str| case.tensors[name].clone();
            let (_, _, height, width) = tensor("pixel_values").dims4().unwrap();
            let grid = model.grid_for(height, width).unwrap();
            let geometry = mae_model::patches::PatchGrid {
                channels: config.num_channels,
                rows: grid.0,
                cols: grid.1,
                patch: config.patch_size,
            };
            let noise: Vec<f32> = tensor("noise").flatten_all().unwrap().to_vec1().unwrap();
            let ratio: f64 = case.metadata["mask_ratio"].parse().unwrap();
            let masking = Masking::new(&MaskSpec::Noise { noise, ratio }, grid).unwrap();
            let pixels: Vec<f32> = tensor("pixel_values").flatten_all().unwrap().to_vec1().unwrap();
            let mut check = |what: &str, ours: &candle_core::Tensor, name: &str| {
                let expected = tensor(name).squeeze(0).unwrap();
                let error = mae_integration_tests::relative_l2(ours, &expected);
                if ours.dims() != expected.dims() || error > TOLERANCE {
                    failures.push(format!(
                        "{} {kernels:?} {what}: {:?} vs {:?}, relative L2 {error:.2e}",
                        path.display(),
                        ours.dims(),
                        expected.dims()
                    ));
                }
            };
            // Embeddings: pixels and mask → CLS + the visible tokens.
            let positions = model.embeddings().position_table(grid).unwrap();
            let embedded = model.embeddings().forward(&[&pixels], &[&masking], &geometry, &positions).unwrap();
            check("embeddings", &embedded, "embeddings");
            // Encoder: transformers' own embeddings → last_hidden_state.
            let (encoded, _) =
                model.encoder().forward(&tensor("embeddings").squeeze(0).unwrap(), 1, true, kernels).unwrap();
            check("encoder", &encoded, "last_hidden_state");
            // Decoder: transformers' own last_hidden_state and ids_restore → logits.
            let ids_restore = tensor("ids_restore").flatten_all().unwrap().to_dtype(DType::U32).unwrap();
            let positions = model.decoder().position_table(grid.0 * grid.1).unwrap();
            let last_hidden_state = tensor("last_hidden_state").squeeze(0).unwrap();
            let (logits, _) =
                model.decoder().forward(&last_hidden_state, &[ids_restore], &positions, true, kernels).unwrap();
            check("decoder", &logits[0], "logits");
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} boundary checks (4 fixtures × 2 kernel choices expected)");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `set_kernels` lays every weight out anew for the kernels asked (the CPU kernel's packed panels, or `Wᵀ` for
/// candle's ops) and keeps no other copy: the demo model switched fused → candle → fused gives, bit for bit, the
/// output it gave as loaded, attentions included (and, without attentions, the same logits); candle's ops agree
/// with it to the parity tolerance. (Partial
/// panels, widths not a multiple of 32, are `cpu_matmul.rs`'s own tests.)
#[test]
fn switching_kernels_lays_the_weights_out_again_without_changing_the_model() {
    use mae_model::preprocess::load_rgb_image;
    use mae_model::source::{LoadOptions, ModelLocation, load_model};
    use mae_model::{ForwardOptions, MaskSpec, select_device};

    let device = select_device(DeviceChoice::Cpu).unwrap();
    let mut loaded = load_model(&ModelLocation::Demo, &device, &LoadOptions::default()).unwrap();
    let image = load_rgb_image(&mae_integration_tests::repo_root().join("assets/chelsea.png")).unwrap();
    let pixel_values = loaded.preprocessor.pixel_values(&image, &device.device).unwrap();
    let mut run = |kernels: KernelChoice, attentions: bool| {
        loaded.model.set_kernels(kernels).unwrap();
        let options = ForwardOptions { attentions };
        let output = loaded.model.forward(&pixel_values, &MaskSpec::random(3, 0.75), options).unwrap();
        let attentions: Vec<f32> = output
            .encoder_attentions
            .iter()
            .chain(&output.decoder_attentions)
            .flat_map(|layer| layer.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect();
        (output.logits.flatten_all().unwrap().to_vec1::<f32>().unwrap(), attentions)
    };
    let as_loaded = run(KernelChoice::Fused, true);
    let candle = run(KernelChoice::Candle, true);
    let fused_again = run(KernelChoice::Fused, true);
    assert_eq!(fused_again, as_loaded, "fused → candle → fused changed the fused output");
    // Probabilities not kept go through the kernel's per-thread scratch instead: the same logits.
    assert_eq!(run(KernelChoice::Fused, false).0, as_loaded.0, "the logits depend on keeping the attentions");
    for ((ours, reference), what) in
        [(&candle.0, &as_loaded.0), (&candle.1, &as_loaded.1)].into_iter().zip(["logits", "attentions"])
    {
        let (difference, norm) = ours
            .iter()
            .zip(reference.iter())
            .fold((0f64, 0f64), |(d, n), (a, b)| (d + f64::from(a - b).powi(2), n + f64::from(*b).powi(2)));
        let relative = (difference / norm).sqrt();
        assert!(relative < TOLERANCE, "candle's {what} differ from the fused kernels' by {relative:.2e} (relative L2)");
    }
}
