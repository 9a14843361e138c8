//! Several models in the worker, one type for all of them: one forward request answered with every model's result,
//! each compared model set against the first patch by patch where they saw the same patches, side by side where
//! they did not; a set over the memory budget refused before the new weights are loaded, with the figures; no more
//! than four models.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use candle_core::DType;
use image::RgbImage;
use mae_explorer::worker::{
    ForwardRequest, ForwardResult, ImageInput, LoadRequest, Request, Response, ViewOptions, Worker, WorkerConfig,
};
use mae_integration_tests::{oversized_tiny_p8, perturbed_tiny_p8};
use mae_model::{DeviceChoice, MaskSpec};

const WAIT: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models").join(name)
}

fn next(worker: &Worker, wanted: impl Fn(&Response) -> bool) -> Response {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        match worker.try_recv() {
            Some(response) if wanted(&response) => return response,
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    panic!("no matching response from the worker within {WAIT:?}");
}

/// Loads `model` as the window's model at `index` (0: the first; the list's length adds one).
fn load(worker: &Worker, id: u64, model: &Path, index: usize) -> Response {
    let load = LoadRequest {
        location: model.display().to_string().parse().unwrap(),
        device: DeviceChoice::Cpu,
        dtype: DType::F32,
        cancel: Arc::new(AtomicBool::new(false)),
        hub: mae_model::hub::HubSettings::from_env(),
        index,
    };
    worker.send(Request::LoadModel { id, load });
    next(
        worker,
        |response| matches!(response, Response::ModelLoaded { id: got, .. } | Response::Failed { id: got, .. } if *got == id),
    )
}

fn pair(worker: &Worker, id: u64, mask: MaskSpec) -> Box<ForwardResult> {
    let rgb = RgbImage::from_fn(48, 40, |x, y| image::Rgb([(x * 5) as u8, (y * 6) as u8, 77]));
    let image = ImageInput { id: 1, rgb: Arc::new(rgb), name: "gradient".into(), size: mae_model::SizeRule::Model };
    let view = ViewOptions::default();
    worker.send(Request::Forward(Box::new(ForwardRequest { id, image, mask: mask.clone(), view })));
    match next(worker, |r| {
        matches!(r, Response::Forward(result) if result.id == id) || matches!(r, Response::Failed { .. })
    }) {
        Response::Forward(result) => result,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_pair_on_one_grid_is_compared_patch_by_patch() {
    let scratch = tempfile::tempdir().unwrap();
    let other = perturbed_tiny_p8(scratch.path());
    let worker = Worker::spawn(WorkerConfig::default());
    assert!(matches!(load(&worker, 1, &fixture("tiny-p8"), 0), Response::ModelLoaded { .. }));
    assert!(matches!(load(&worker, 2, &other, 1), Response::ModelLoaded { .. }));
    let result = pair(&worker, 3, MaskSpec::random(0, 0.5));
    let compare = result.model(1).expect("a pair");
    assert!(compare.own_input.is_none(), "{:?}", compare.own_input);
    assert!(result.first().difference.is_none(), "the first model is not compared with itself");
    let difference = compare.difference.as_ref().unwrap().as_ref().expect("same grid, preprocessing and loss");
    // Both saw the same visible set: B's masked count is A's, and the wins split A's masked patches.
    let a_masked = result.first().masked_patches().iter().filter(|&&m| m).count();
    assert_eq!(compare.masked_patches().iter().filter(|&&m| m).count(), a_masked);
    let wins: usize = result.wins().iter().map(|(_, wins)| wins).sum();
    assert_eq!(wins, a_masked, "no ties between different models");
    assert!(difference.max_abs > 0.0);
    // Closing B: the next request is answered by the first model alone.
    worker.send(Request::CloseModel { index: 1 });
    assert_eq!(pair(&worker, 4, MaskSpec::random(0, 0.5)).models.len(), 1);
}

#[test]
fn a_preprocessor_file_in_the_hubs_spelling_preprocesses_alike() {
    // The hub's vit-mae-* files say `"size": 224`; files saved by newer transformers (the fixtures', the demo's)
    // say `{"height": .., "width": ..}`. The same resize either way, so the pair is compared patch by patch.
    let scratch = tempfile::tempdir().unwrap();
    let other = perturbed_tiny_p8(scratch.path());
    let hub_spelled = r#"{"do_normalize": true, "do_rescale": true, "do_resize": true, "image_mean": [0.485, 0.456,
        0.406], "image_std": [0.229, 0.224, 0.225], "resample": 2, "rescale_factor": 0.00392156862745098, "size": 32}"#;
    std::fs::write(other.join("preprocessor_config.json"), hub_spelled).unwrap();
    let worker = Worker::spawn(WorkerConfig::default());
    assert!(matches!(load(&worker, 1, &fixture("tiny-p8"), 0), Response::ModelLoaded { .. }));
    assert!(matches!(load(&worker, 2, &other, 1), Response::ModelLoaded { .. }));
    let result = pair(&worker, 3, MaskSpec::random(0, 0.75));
    let compare = result.model(1).expect("a pair");
    assert!(compare.own_input.is_none(), "{:?}", compare.own_input);
    assert!(compare.difference.as_ref().is_some_and(Result::is_ok), "no difference map");
    // A resize that really differs is named, and the message has no run of spaces.
    std::fs::write(other.join("preprocessor_config.json"), r#"{"size": 32, "resample": 3}"#).unwrap();
    assert!(matches!(load(&worker, 4, &other, 1), Response::ModelLoaded { .. }));
    let result = pair(&worker, 5, MaskSpec::random(0, 0.75));
    let note = result.model(1).expect("a pair").own_input.clone().expect("each model preprocessed the image itself");
    assert!(
        note.contains(
            " preprocesses images differently (resize to 32×32 (bicubic) against resize to 32×32 (bilinear), the \
             first model's second): each model"
        ),
        "{note}"
    );
    assert!(!note.contains("  "), "{note}");
}

#[test]
fn models_that_see_different_patches_are_shown_side_by_side() {
    let worker = Worker::spawn(WorkerConfig::default());
    assert!(matches!(load(&worker, 1, &fixture("tiny-p8"), 0), Response::ModelLoaded { .. }));
    // tiny-p16: also a 4×4 grid, but of a 64-pixel input: its own preprocessing.
    assert!(matches!(load(&worker, 2, &fixture("tiny-p16"), 1), Response::ModelLoaded { .. }));
    let result = pair(&worker, 3, MaskSpec::random(1, 0.75));
    let compare = result.model(1).expect("a pair");
    let note = compare.own_input.as_deref().unwrap_or_default();
    assert!(
        note.contains("preprocesses images differently (resize to 64×64 (bilinear) against resize to 32×32"),
        "{note}"
    );
    let side_by_side = compare.difference.as_ref().unwrap().as_ref().expect_err("no patch-by-patch difference");
    assert!(side_by_side.why.contains("side by side"), "{}", side_by_side.why);
    assert_eq!(side_by_side.own_loss.dimensions(), (64, 64));
    assert_eq!(side_by_side.first_loss.dimensions(), (32, 32));
}

#[test]
fn a_pair_over_the_memory_budget_is_refused_before_loading_with_both_sizes() {
    let scratch = tempfile::tempdir().unwrap();
    let huge = oversized_tiny_p8(scratch.path());
    let worker = Worker::spawn(WorkerConfig::default());
    assert!(matches!(load(&worker, 1, &fixture("tiny-p8"), 0), Response::ModelLoaded { .. }));
    let Response::Failed { error, .. } = load(&worker, 2, &huge, 1) else { panic!("the pair was loaded") };
    assert!(
        error.contains("beside tiny-p8 (about") && error.contains("TB") && error.contains("close the other"),
        "{error}"
    );
    // A is still there and answers alone.
    assert_eq!(pair(&worker, 3, MaskSpec::random(0, 0.5)).models.len(), 1);
}

#[test]
fn up_to_four_models_answer_one_request_each_against_the_first_and_a_fifth_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let worker = Worker::spawn(WorkerConfig::default());
    assert!(matches!(load(&worker, 1, &fixture("tiny-p8"), 0), Response::ModelLoaded { .. }));
    // Three perturbed copies (each its own folder), compared with the first.
    for index in 1..4 {
        let folder = scratch.path().join(format!("copy-{index}"));
        std::fs::create_dir_all(&folder).unwrap();
        let copy = perturbed_tiny_p8(&folder);
        assert!(matches!(load(&worker, 10 + index as u64, &copy, index), Response::ModelLoaded { .. }));
    }
    let result = pair(&worker, 20, MaskSpec::random(3, 0.75));
    assert_eq!(result.models.iter().map(|model| model.index).collect::<Vec<_>>(), [0, 1, 2, 3]);
    let keys: std::collections::BTreeSet<u64> = result.models.iter().map(|model| model.texture_key).collect();
    assert_eq!(keys.len(), 4, "each model's pictures are told apart");
    for model in &result.models[1..] {
        assert!(model.difference.as_ref().is_some_and(Result::is_ok), "model {} has its difference", model.index);
    }
    // A fifth model is refused, saying how many the window holds; the four stay.
    let Response::Failed { error, .. } = load(&worker, 30, &fixture("tiny-p8"), 4) else { panic!("a fifth loaded") };
    assert!(error.contains("at most 4 models"), "{error}");
    assert_eq!(pair(&worker, 31, MaskSpec::random(3, 0.75)).models.len(), 4);
    // The second becomes the first: the request is answered in the new order.
    worker.send(Request::SwapWithFirst { id: 32, index: 1 });
    let names: Vec<String> =
        pair(&worker, 33, MaskSpec::random(3, 0.75)).models.iter().map(|m| m.name.clone()).collect();
    assert_eq!(names[1], "tiny-p8", "the first went to the second place: {names:?}");
}
