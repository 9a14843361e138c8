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
    ImageInput { id, rgb: Arc::new(rgb), name: "gradient".into() }
}

fn forward(id: u64, ratio: f64, view: ViewOptions) -> Request {
    let mask = MaskSpec::random(0, ratio);
    Request::Forward(Box::new(ForwardRequest { id, image: sample_image(1), mask, view }))
}

fn load(worker: &Worker, model: &str) -> Response {
    let load = LoadRequest {
        location: model.parse().unwrap(),
        device: DeviceChoice::Cpu,
        dtype: DType::F32,
        cancel: Arc::new(AtomicBool::new(false)),
        hub: mae_model::hub::HubSettings::from_env(),
        index: 0,
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

#[test]
fn the_loss_curve_arrives_point_by_point_and_forward_requests_go_first() {
    let gate = Arc::new(Gate::default());
    let worker = Worker::spawn(gated_config(&gate));
    load(&worker, &fixture_model());
    gate.wait_for_passes(worker.stats().responses());
    let ratios: Vec<f64> = (0..40).map(|step| f64::from(step) * 0.025).collect();
    let strategy = MaskStrategy::Random;
    // Held after the curve's first point: the forward request sent then is waiting when the worker looks again,
    // and must be answered before the curve's second point.
    gate.arm();
    worker.send(Request::LossCurve { id: 3, image: sample_image(1), strategy, seed: 2, ratios: ratios.clone() });
    let curve_or_forward = |r: &Response| {
        matches!(r, Response::LossCurve { .. } | Response::Progress { id: 3, .. } | Response::Forward(_))
    };
    assert!(matches!(next(&worker, curve_or_forward), Response::Progress { id: 3, done: 1, total: 40 }));
    worker.send(forward(4, 0.5, ViewOptions::default()));
    gate.open();
    let mut order = vec!["progress 1".to_string()];
    loop {
        match next(&worker, curve_or_forward) {
            Response::Progress { done, total, .. } => order.push(format!("progress {done}/{total}")),
            Response::Forward(result) => order.push(format!("forward {}", result.id)),
            Response::LossCurve { id, points } => {
                assert_eq!(id, 3);
                assert_eq!(points.iter().map(|(ratio, _)| *ratio).collect::<Vec<_>>(), ratios);
                assert_eq!(points[0].1, None, "nothing is masked at ratio 0");
                assert!(points[1..].iter().all(|(_, loss)| loss.is_some_and(f32::is_finite)));
                break;
            }
            _ => unreachable!(),
        }
    }
    let expected: Vec<String> = ["progress 1".to_string(), "forward 4".to_string()]
        .into_iter()
        .chain((2..=40).map(|done| format!("progress {done}/40")))
        .collect();
    assert_eq!(order, expected);
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
