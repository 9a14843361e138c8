use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use candle_core::DType;
use image::RgbImage;
use mae_integration_tests::gate::Gate;
use mae_model::{DeviceChoice, DownloadProgress, MaskSpec, MaskStrategy};

use super::*;

const WAIT: Duration = Duration::from_secs(60);

fn fixture_model() -> String {
    format!("{}/../tests/fixtures/models/tiny-p16", env!("CARGO_MANIFEST_DIR"))
}

fn sample_image(id: u64) -> ImageInput {
    let rgb = RgbImage::from_fn(48, 40, |x, y| image::Rgb([(x * 5) as u8, (y * 6) as u8, 77]));
    ImageInput { id, rgb: Arc::new(rgb), name: "gradient".into(), size: mae_model::SizeRule::Model }
}

fn forward(id: u64, ratio: f64, view: ViewOptions) -> Request {
    let mask = MaskSpec::random(0, ratio);
    Request::Forward(Box::new(ForwardRequest { id, image: sample_image(1), mask, view }))
}

fn load(worker: &Worker, model: &str) -> Response {
    load_at(worker, model, 0)
}

/// Loads `model` as the window's model at `index` (0: the first; 1: the first compared).
fn load_at(worker: &Worker, model: &str, index: usize) -> Response {
    let load = LoadRequest {
        location: model.parse().unwrap(),
        device: DeviceChoice::Cpu,
        dtype: DType::F32,
        cancel: Arc::new(AtomicBool::new(false)),
        hub: mae_model::hub::HubSettings::from_env(),
        index,
    };
    worker.send(Request::LoadModel { id: 1000, load });
    next(worker, |response| matches!(response, Response::ModelLoaded { .. } | Response::Failed { id: 1000, .. }))
}

/// The next response `wanted` accepts (others are dropped), failing the test after a while.
fn next(worker: &Worker, wanted: impl Fn(&Response) -> bool) -> Response {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if let Ok(response) = worker.responses.recv_timeout(Duration::from_millis(50))
            && wanted(&response)
        {
            return response;
        }
    }
    panic!("no matching response from the worker within {WAIT:?}");
}

fn forward_result(worker: &Worker) -> Box<ForwardResult> {
    match next(worker, |r| matches!(r, Response::Forward(_) | Response::Failed { .. })) {
        Response::Forward(result) => result,
        other => panic!("expected a result, got {other:?}"),
    }
}

/// A worker whose `notify` passes `gate`: armed, the worker is held right after its next response, before it looks
/// at its requests again, until the test opens the gate. No sleeps, no clocks.
fn gated_config(gate: &Arc<Gate>) -> WorkerConfig {
    let gate = gate.clone();
    WorkerConfig { notify: Arc::new(move || gate.pass()) }
}

#[test]
fn queued_forward_requests_collapse_into_the_newest() {
    let gate = Arc::new(Gate::default());
    let worker = Worker::spawn(gated_config(&gate));
    assert!(matches!(load(&worker, &fixture_model()), Response::ModelLoaded { .. }));
    gate.wait_for_passes(worker.stats().responses());
    // The worker is held after answering request 0; the 49 sent meanwhile are one batch when the gate opens.
    gate.arm();
    worker.send(forward(0, 0.0, ViewOptions::default()));
    assert_eq!(forward_result(&worker).id, 0);
    for id in 1..50 {
        worker.send(forward(id, 0.01 * id as f64, ViewOptions::default()));
    }
    gate.open();
    let newest = forward_result(&worker);
    assert_eq!(newest.id, 49, "the newest request is answered, and only it");
    let stats = worker.stats();
    assert_eq!(stats.forwards(), 2, "one forward for request 0, one for the batch");
    assert_eq!(stats.forward_requests(), 50);
    assert_eq!(stats.superseded(), 48);
    // Nothing else was answered: the next forward's answer is the next response.
    worker.send(forward(50, 0.5, ViewOptions::default()));
    assert_eq!(forward_result(&worker).id, 50);
}

#[test]
fn a_view_change_redraws_without_running_the_model() {
    let worker = Worker::spawn(WorkerConfig::default());
    load(&worker, &fixture_model());
    worker.send(forward(1, 0.5, ViewOptions::default()));
    let first = forward_result(&worker).first().clone();
    assert!(first.forward_ms.is_some());
    assert!(first.pictures.attention.is_none());
    let mut view = ViewOptions::default();
    view.for_model(0).attention = Some(AttentionView::default());
    worker.send(forward(2, 0.5, view.clone()));
    let second = forward_result(&worker).first().clone();
    assert!(second.pictures.attention.is_some());
    assert_eq!(second.mask, first.mask);
    // Attention maps were not kept the first time (no panel showed them), so the model ran again, keeping them.
    assert_eq!(worker.stats().forwards(), 2);
    let mut other_layer = view.clone();
    if let Some(attention) = other_layer.for_model(0).attention.as_mut() {
        attention.selection.layer = 1;
    }
    worker.send(forward(3, 0.5, other_layer));
    let third = forward_result(&worker).first().clone();
    assert_eq!(third.forward_ms, None, "the cached output was re-drawn");
    assert!(third.pictures.attention.is_some());
    assert_ne!(third.pictures.attention, second.pictures.attention, "another layer looks different");
    worker.send(forward(4, 0.5, ViewOptions::default()));
    assert_eq!(forward_result(&worker).first().forward_ms, None, "outputs with attention maps serve plain views too");
    assert_eq!(worker.stats().forwards(), 2);
}

#[test]
fn a_panic_is_reported_and_the_worker_carries_on() {
    let worker = Worker::spawn(WorkerConfig::default());
    load(&worker, &fixture_model());
    worker.send(Request::Crash);
    match next(&worker, |r| matches!(r, Response::Restarted { .. })) {
        Response::Restarted { message } => assert!(message.contains("crash requested"), "{message}"),
        _ => unreachable!(),
    }
    worker.send(forward(7, 0.75, ViewOptions::default()));
    assert_eq!(forward_result(&worker).id, 7, "the model survived the crash");
    assert_eq!(worker.stats().restarts(), 1);
}

#[test]
fn a_failed_load_keeps_the_model_in_use_and_says_why() {
    let worker = Worker::spawn(WorkerConfig::default());
    worker.send(forward(1, 0.5, ViewOptions::default()));
    match next(&worker, |r| matches!(r, Response::Failed { id: 1, .. })) {
        Response::Failed { error, .. } => assert!(error.contains("no model"), "{error}"),
        _ => unreachable!(),
    }
    load(&worker, &fixture_model());
    match load(&worker, "/no/such/model/folder") {
        Response::Failed { error, .. } => assert!(error.contains("/no/such/model/folder"), "{error}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    worker.send(forward(2, 0.5, ViewOptions::default()));
    assert_eq!(forward_result(&worker).first().grid, (4, 4));
}

fn drawn(id: u64, strategy: MaskStrategy, ratio: f64) -> Box<ForwardRequest> {
    let mask = MaskSpec::Drawn { strategy, seed: 3, ratio };
    Box::new(ForwardRequest { id, image: sample_image(1), mask, view: ViewOptions::default() })
}

/// The next sweep report that `done` accepts.
fn sweep_report(worker: &Worker, done: impl Fn(&SweepReport) -> bool) -> SweepReport {
    match next(worker, |r| matches!(r, Response::Sweep(report) if done(report))) {
        Response::Sweep(report) => *report,
        _ => unreachable!(),
    }
}

#[test]
fn the_sweep_fills_in_the_background_and_a_request_waits_for_one_sweep_forward_at_most() {
    let gate = Arc::new(Gate::default());
    let worker = Worker::spawn(gated_config(&gate));
    load(&worker, &fixture_model());
    gate.wait_for_passes(worker.stats().responses());
    // Held after the visible result, then after the first report, which comes after the sweep's first forward
    // pass: held there, the worker takes in the request sent meanwhile before its next sweep step.
    gate.arm();
    worker.send(Request::Forward(drawn(1, MaskStrategy::Random, 0.75)));
    gate.wait_until_held();
    gate.arm();
    gate.open();
    assert_eq!(forward_result(&worker).id, 1);
    let first = sweep_report(&worker, |_| true);
    assert_eq!(first.models[0].forwards, 1);
    assert_eq!(first.models.len(), 1);
    let held_at = first.models[0].forwards;
    worker.send(Request::Forward(drawn(2, MaskStrategy::Random, 0.3)));
    gate.open();
    assert_eq!(forward_result(&worker).id, 2);
    assert_eq!(worker.stats().sweep_forwards(), held_at, "the request was answered before any further sweep step");
    let last = sweep_report(&worker, SweepReport::is_over);
    let sweep = &last.models[0];
    // 16 patches: 17 kept counts, of which the two shown (0.75 and 0.3) cost the sweep nothing.
    assert_eq!((sweep.done, sweep.total, sweep.forwards), (17, 17, 15));
    assert_eq!(worker.stats().sweep_forwards(), 15);
    assert_eq!(worker.stats().forwards(), 2);
    assert!(sweep.bytes > 17 * 64 * 64 * 3, "17 reconstructions of 64×64 RGB and more: {}", sweep.bytes);
    assert_eq!(sweep.curve.len(), 17);
    assert_eq!(sweep.curve[0], (0.0, None), "nothing masked, no masked loss");
    assert!(sweep.curve.windows(2).all(|pair| pair[0].0 < pair[1].0));
    assert!(sweep.curve[1..].iter().all(|(_, loss)| loss.is_some_and(f32::is_finite)));
}

#[test]
fn a_scrub_shows_the_cached_entry_with_the_pixels_a_forward_pass_gives() {
    for strategy in [MaskStrategy::Random, MaskStrategy::Block, MaskStrategy::Centre] {
        let worker = Worker::spawn(WorkerConfig::default());
        load(&worker, &fixture_model());
        worker.send(Request::Forward(drawn(1, strategy, 0.75)));
        forward_result(&worker);
        sweep_report(&worker, SweepReport::is_over);
        for (id, ratio) in [(2, 0.4), (3, 0.95), (4, 0.0), (5, 0.5625)] {
            let forwards = worker.stats().all_forwards();
            worker.send(Request::Scrub(drawn(id, strategy, ratio)));
            let scrubbed = forward_result(&worker).first().clone();
            assert_eq!(worker.stats().all_forwards(), forwards, "{strategy:?} {ratio}: no forward pass");
            let shown = scrubbed.scrubbed.expect("a result from the sweep");
            assert!(shown.exact, "{strategy:?} {ratio}: every count is cached");
            assert_eq!(scrubbed.forward_ms, None);
            worker.send(Request::Forward(drawn(id + 100, strategy, ratio)));
            let exact = forward_result(&worker).first().clone();
            assert!(exact.forward_ms.is_some() && exact.scrubbed.is_none());
            assert_eq!(scrubbed.pictures, exact.pictures, "{strategy:?} {ratio}: the same pixels");
            assert_eq!(scrubbed.mask, exact.mask);
            assert_eq!(scrubbed.patch_loss, exact.patch_loss);
            assert_eq!(scrubbed.quality, exact.quality);
            assert_eq!(scrubbed.requested_masked, exact.requested_masked);
            // The fraction the slider asks for (a block or centre mask may hide fewer).
            let asked = 16 - mae_model::masking::len_keep(16, ratio);
            assert_eq!(shown.masked_fraction, asked as f64 / 16.0);
        }
    }
}

#[test]
fn a_compared_model_has_its_own_sweep_and_a_scrub_shows_both_with_their_difference() {
    let worker = Worker::spawn(WorkerConfig::default());
    load(&worker, &fixture_model());
    assert!(matches!(load_at(&worker, &fixture_model(), 1), Response::ModelLoaded { .. }));
    worker.send(Request::Forward(drawn(1, MaskStrategy::Random, 0.75)));
    assert_eq!(forward_result(&worker).models.len(), 2);
    let report = sweep_report(&worker, SweepReport::is_over);
    assert_eq!(report.models.iter().map(|model| (model.index, model.done)).collect::<Vec<_>>(), [(0, 17), (1, 17)]);
    assert_eq!(worker.stats().sweep_forwards(), 32, "16 entries each beyond the visible one");
    let forwards = worker.stats().all_forwards();
    worker.send(Request::Scrub(drawn(2, MaskStrategy::Random, 0.25)));
    let scrubbed = forward_result(&worker);
    assert_eq!(worker.stats().all_forwards(), forwards);
    assert!(scrubbed.models.iter().all(|model| model.scrubbed.is_some_and(|shown| shown.exact)));
    // The same model twice: the same pixels, and a difference of zero on every masked patch.
    assert_eq!(scrubbed.models[0].pictures, scrubbed.models[1].pictures);
    let difference = scrubbed.models[1].difference.clone().unwrap().expect("compared patch by patch");
    worker.send(Request::Forward(drawn(3, MaskStrategy::Random, 0.25)));
    let exact = forward_result(&worker);
    let exact_difference = exact.models[1].difference.clone().unwrap().expect("compared patch by patch");
    assert_eq!(difference.picture, exact_difference.picture);
    assert_eq!(scrubbed.wins(), exact.wins());
}

#[test]
fn a_scrub_before_its_mask_is_cached_shows_the_nearest_entry_and_says_so() {
    let gate = Arc::new(Gate::default());
    let worker = Worker::spawn(gated_config(&gate));
    load(&worker, &fixture_model());
    gate.wait_for_passes(worker.stats().responses());
    // Held right after the visible result: the sweep is stopped before its first step, so it holds that one entry.
    gate.arm();
    worker.send(Request::Forward(drawn(1, MaskStrategy::Random, 0.75)));
    forward_result(&worker);
    worker.send(Request::StopSweep);
    gate.open();
    let report = sweep_report(&worker, |report| report.models[0].stopped.is_some());
    assert_eq!((report.models[0].done, report.models[0].forwards), (1, 0));
    assert_eq!(report.models[0].stopped.as_deref(), Some("stopped"));
    worker.send(Request::Scrub(drawn(2, MaskStrategy::Random, 0.25)));
    let nearest = forward_result(&worker).first().clone();
    assert_eq!(nearest.scrubbed, Some(Scrubbed { exact: false, masked_fraction: 0.75 }));
    assert_eq!(nearest.mask.iter().filter(|&&m| m > 0.5).count(), 12, "the 0.75 mask, the only one cached");
    assert_eq!(worker.stats().all_forwards(), 1);
    // Another seed has no sweep yet: the scrub runs its forward pass, which starts that sweep.
    let mut other_seed = drawn(3, MaskStrategy::Random, 0.25);
    other_seed.mask = MaskSpec::Drawn { strategy: MaskStrategy::Random, seed: 4, ratio: 0.25 };
    worker.send(Request::Scrub(other_seed));
    let ran = forward_result(&worker).first().clone();
    assert!(ran.scrubbed.is_none() && ran.forward_ms.is_some());
    assert_eq!(sweep_report(&worker, SweepReport::is_over).seed, 4);
}

#[test]
fn a_seed_ensemble_summarizes_every_seed() {
    let worker = Worker::spawn(WorkerConfig::default());
    load(&worker, &fixture_model());
    let request = Request::Ensemble {
        id: 5,
        image: sample_image(1),
        strategy: MaskStrategy::Random,
        ratio: 0.5,
        seeds: vec![0, 1, 2],
        colormap: crate::render::Colormap::Magma,
    };
    worker.send(request);
    match next(&worker, |r| matches!(r, Response::Ensemble(_) | Response::Failed { .. })) {
        Response::Ensemble(result) => {
            assert_eq!((result.id, result.image_id, result.seeds.len()), (5, 1, 3));
            assert_eq!(result.mean.dimensions(), (64, 64));
            // Each patch counts the seeds whose mask hid it: exactly the three masks torch's seeds 0, 1, 2 draw.
            let side = (result.times_masked.len() as f64).sqrt() as usize;
            let mut expected = vec![0u32; side * side];
            for seed in [0, 1, 2] {
                let masking = mae_model::Masking::new(&MaskSpec::random(seed, 0.5), (side, side)).unwrap();
                for (count, &masked) in expected.iter_mut().zip(&masking.mask) {
                    *count += u32::from(masked == 1.0);
                }
            }
            assert_eq!(result.times_masked, expected);
            assert_eq!(
                expected.iter().sum::<u32>() as usize,
                3 * (side * side / 2),
                "half of the patches, three times"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(worker.stats().forwards(), 3);
}

#[test]
fn download_progress_reads_as_a_sentence() {
    let progress =
        DownloadProgress { file: "model.safetensors".into(), downloaded: 120_000_000, total: Some(447_670_680) };
    let downloading = LoadProgress::Downloading(progress.clone());
    assert_eq!(downloading.to_string(), "downloading model.safetensors: 120 of 448 MB (27 %)");
    assert!((downloading.fraction().unwrap() - 0.268).abs() < 1e-3);
    let unknown = LoadProgress::Downloading(DownloadProgress { total: None, ..progress });
    assert_eq!(unknown.to_string(), "downloading model.safetensors: 120 MB");
    assert_eq!(unknown.fraction(), None);
}

#[test]
fn dropping_the_handle_ends_the_thread() {
    let worker = Worker::spawn(WorkerConfig::default());
    let stats = worker.stats().clone();
    drop(worker);
    // The thread held the other clone of the stats; it lets go when it ends.
    let start = Instant::now();
    while Arc::strong_count(&stats) > 1 {
        assert!(start.elapsed() < WAIT, "the worker thread did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
}
