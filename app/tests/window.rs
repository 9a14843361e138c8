//! The window driven through egui_kittest with the real app state, the real worker thread and a tiny fixture model.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui::{self, Vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use mae_explorer::jobs::masks::MaskPicture;
use mae_explorer::render::attention::{HeadFusion, Query, Stack};
use mae_explorer::window::controls::{COMPARE_FIELD_LABEL, MASK_LABEL, RATIO_LABEL, close_label, swap_label};
use mae_explorer::window::file_browser::{FILE_NAME_LABEL, PATH_LABEL, REPLACE_LABEL};
use mae_explorer::window::first_run::StartModel;
use mae_explorer::window::panels::compare::{difference_label, pasted_label};
use mae_explorer::window::panels::dataset::FOLDER_LABEL as DATASET_FOLDER_LABEL;
use mae_explorer::window::panels::{Panel, PanelId};
use mae_explorer::window::session::{MaskMode, ModelState};
use mae_explorer::window::settings::Remembered;
use mae_explorer::window::system_dialog::SystemDialog;
use mae_explorer::window::{AppOptions, MaeApp};
use mae_integration_tests::fake_hub::{FakeHub, REPO, Weights, silent_hub};
use mae_integration_tests::gate::Gate;
use mae_model::hub::HubSettings;
use mae_model::masking::len_keep;
use mae_model::{MaskSpec, MaskStrategy, Masking, SizeRule};

/// Generous: the worker is fast, but CI machines are shared.
const PATIENCE: Duration = Duration::from_secs(60);

fn fixture_model() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/tiny-p16").display().to_string()
}

fn harness(options: AppOptions) -> Harness<'static, MaeApp> {
    harness_with(options, Remembered::default(), Vec2::new(1280.0, 800.0))
}

fn harness_with(options: AppOptions, remembered: Remembered, size: Vec2) -> Harness<'static, MaeApp> {
    Harness::builder()
        .with_size(size)
        .build_ui_state(|ui, app: &mut MaeApp| app.show(ui), MaeApp::new(options, remembered))
}

/// Steps frames until `done` holds (the worker answers asynchronously), failing with `what` after a while.
fn step_until(harness: &mut Harness<'static, MaeApp>, what: &str, done: impl Fn(&MaeApp) -> bool) {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        harness.step();
        if done(harness.state()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}; app state: {:?}", harness.state());
}

fn ready_harness(options: AppOptions) -> Harness<'static, MaeApp> {
    let mut harness = harness(options);
    step_until(&mut harness, "the first reconstruction", |app| app.session.is_up_to_date());
    harness
}

fn shown_ratio(app: &MaeApp) -> Option<f64> {
    match app.session.result().map(|shown| &shown.mask_spec) {
        Some(MaskSpec::Drawn { ratio, .. }) => Some(*ratio),
        _ => None,
    }
}

fn sweep_is_over(app: &MaeApp) -> bool {
    app.session.forwards.sweep.as_ref().is_some_and(|sweep| sweep.is_over())
}

fn masked_count(app: &MaeApp) -> usize {
    app.session.result().map_or(0, |shown| shown.first().mask.iter().filter(|&&m| m > 0.5).count())
}

#[test]
fn the_first_reconstruction_appears_with_model_and_timing_in_the_status_line() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.step();
    let app = harness.state();
    assert!(matches!(app.session.model().state, ModelState::Ready(_)), "{:?}", app.session.model().state);
    let shown = app.session.result().unwrap();
    assert_eq!(shown.first().grid, (4, 4));
    assert_eq!(shown.first().pictures.reconstruction.dimensions(), (64, 64));
    assert_eq!(masked_count(app), 16 - len_keep(16, 0.75));
    assert!(shown.first().forward_ms.is_some());
    harness.get_by_label_contains("model tiny-p16");
    harness.get_by_label_contains("last forward");
}

#[test]
fn moving_the_ratio_slider_produces_a_result_with_the_new_ratio() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let before = harness.state().session.result().unwrap().id;
    harness.get_by_role_and_label(egui::Role::Slider, RATIO_LABEL).set_value_accesskit(0.5);
    step_until(&mut harness, "a result at ratio 0.5", |app| {
        shown_ratio(app) == Some(0.5) && app.session.is_up_to_date()
    });
    let app = harness.state();
    assert!(app.session.result().unwrap().id > before);
    assert_eq!(app.session.settings.mask_ratio, 0.5);
    assert_eq!(masked_count(app), 8, "half of the 16 patches are masked at ratio 0.5");
    assert_eq!(app.session.forwards.stats().forwards(), 2);
    // The textures were created once (five panels and the preview) and then updated in place.
    assert_eq!(app.session.messages.textures_created.get(), 6);
}

#[test]
fn a_burst_of_slider_moves_runs_far_fewer_forwards_and_ends_on_the_last_value() {
    // The worker is held (a gate in its wake-up call) after answering the first move, as a big model would still be
    // busy while the pointer moves on: every later move queues, and the newest one alone is run. No sleeps.
    let gate = std::sync::Arc::new(Gate::default());
    let mut options = AppOptions::new(fixture_model());
    let held = gate.clone();
    options.worker.notify = std::sync::Arc::new(move || held.pass());
    let mut harness = ready_harness(options);
    // The sweep of the first picture's masks is done first: its reports would take the gate's hold otherwise.
    step_until(&mut harness, "the sweep", sweep_is_over);
    let stats = harness.state().session.forwards.stats().clone();
    let (forwards_before, requests_before, superseded_before) =
        (stats.forwards(), stats.forward_requests(), stats.superseded());
    // The worker may still be on its way to the pass of a response already shown: arm only once all are behind it.
    gate.wait_for_passes(stats.responses());
    gate.arm();
    harness.get_by_role_and_label(egui::Role::Slider, RATIO_LABEL).set_value_accesskit(0.2);
    step_until(&mut harness, "the first move's result", |app| shown_ratio(app) == Some(0.2));
    let moves: u32 = 60;
    let mut last_value = 0.2;
    for step in 1..moves {
        last_value = 0.2 + 0.01 * f64::from(step);
        harness.get_by_role_and_label(egui::Role::Slider, RATIO_LABEL).set_value_accesskit(last_value);
        harness.step();
    }
    let sent = stats.forward_requests();
    gate.open();
    step_until(&mut harness, "the result of the last move", |app| app.session.is_up_to_date());
    let app = harness.state();
    let requests = stats.forward_requests() - requests_before;
    assert_eq!(requests, moves as usize, "one request per move");
    assert_eq!(sent, requests_before + 1, "the held worker took nothing more in");
    assert_eq!(stats.forwards() - forwards_before, 2, "the first move, then only the newest of the other 59");
    assert_eq!(stats.superseded() - superseded_before, moves as usize - 2);
    let shown = shown_ratio(app).unwrap();
    assert!((shown - last_value).abs() < 1e-9, "the picture shows ratio {shown}, the slider says {last_value}");
    assert_eq!(masked_count(app), 16 - len_keep(16, last_value));
}

#[test]
fn a_held_slider_shows_the_sweep_without_forward_passes_and_letting_go_runs_the_exact_one() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    step_until(&mut harness, "the sweep", sweep_is_over);
    harness.get_by_label_contains("model tiny-p16");
    let stats = harness.state().session.forwards.stats().clone();
    let forwards = stats.all_forwards();
    // Held (as the pointer holds it while dragging), every move is answered from the sweep.
    harness.state_mut().session.forwards.held_by_script = true;
    for ratio in [0.3, 0.5, 0.55, 0.9] {
        harness.get_by_role_and_label(egui::Role::Slider, RATIO_LABEL).set_value_accesskit(ratio);
        step_until(&mut harness, "the scrubbed picture", |app| app.session.is_up_to_date());
        let shown = harness.state().session.result().unwrap().first().clone();
        assert!(shown.scrubbed.is_some_and(|scrubbed| scrubbed.exact), "{ratio}: {:?}", shown.scrubbed);
        assert_eq!(masked_count(harness.state()), 16 - len_keep(16, ratio));
    }
    assert_eq!(stats.all_forwards(), forwards, "no forward pass while the slider is held");
    let scrubbed = harness.state().session.result().unwrap().first().clone();
    // Let go: the exact forward pass runs, with the attention maps the Attention panel in front wants.
    harness.state_mut().session.forwards.held_by_script = false;
    step_until(&mut harness, "the exact picture", |app| app.session.is_up_to_date());
    let exact = harness.state().session.result().unwrap().first().clone();
    assert_eq!(stats.all_forwards(), forwards + 1);
    assert!(exact.scrubbed.is_none() && exact.pictures.attention.is_some());
    assert_eq!(
        (&scrubbed.pictures.masked, &scrubbed.pictures.reconstruction, &scrubbed.pictures.pasted),
        (&exact.pictures.masked, &exact.pictures.reconstruction, &exact.pictures.pasted),
        "the sweep's pictures are the forward pass's pixels"
    );
    assert_eq!(scrubbed.quality, exact.quality);
}

#[test]
fn the_size_control_feeds_the_picture_at_its_own_shape_and_is_remembered() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    // The sample photo is 451×300: at its own size, 448×288 for 16-pixel patches, an 18×28 grid.
    harness.state_mut().session.set_size(SizeRule::Native);
    step_until(&mut harness, "the picture at its own size", |app| {
        app.session.is_up_to_date() && app.session.result().is_some_and(|result| result.first().grid == (18, 28))
    });
    harness.run_steps(2);
    let shown = harness.state().session.result().unwrap().first().clone();
    assert_eq!(shown.pictures.original.dimensions(), (448, 288));
    assert_eq!(shown.pictures.attention.as_ref().map(image::RgbaImage::dimensions), Some((448, 288)));
    assert_eq!(masked_count(harness.state()), 504 - len_keep(504, 0.75));
    harness.get_by_label_contains("the picture is fed at 448×288");
    // Painting starts from the mask on screen, on the picture's own grid.
    harness.state_mut().session.set_mask_mode(MaskMode::Painted);
    harness.state_mut().session.toggle_patch(503);
    step_until(&mut harness, "the painted mask", |app| app.session.is_up_to_date());
    assert_eq!(harness.state().session.result().unwrap().first().mask.len(), 504);
    // A size off the patch grid is refused in the message line, and the window stays usable.
    harness.state_mut().session.set_mask_mode(MaskMode::Random);
    harness.state_mut().session.set_size(SizeRule::Exact { width: 100, height: 100 });
    step_until(&mut harness, "the refusal", |app| {
        app.session.messages.notice.as_ref().is_some_and(|notice| notice.is_error && notice.text.contains("96x96"))
    });
    harness.state_mut().session.set_size(SizeRule::Exact { width: 96, height: 64 });
    step_until(&mut harness, "the custom size", |app| {
        app.session.is_up_to_date() && app.session.result().is_some_and(|result| result.first().grid == (4, 6))
    });
    let (_, restored) = restart(harness.state_mut());
    assert_eq!(restored.session.size, SizeRule::Exact { width: 96, height: 64 });
}

#[test]
fn clicking_a_patch_in_painted_mode_changes_the_mask_sent_to_the_worker() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    choose_mask(&mut harness, "Painted");
    assert_eq!(harness.state().session.settings.mask_mode, MaskMode::Painted);
    step_until(&mut harness, "the painted mask's result", |app| {
        app.session.is_up_to_date() && matches!(app.session.result().unwrap().mask_spec, MaskSpec::Keep { .. })
    });
    let mask_before = harness.state().session.result().unwrap().first().mask.clone();
    // Click the top-left patch (patch 0) of the original picture.
    let picture = harness.get_by_label("Original picture").rect();
    let patch_zero = picture.min + picture.size() / 8.0;
    harness.hover_at(patch_zero);
    harness.drag_at(patch_zero);
    harness.drop_at(patch_zero);
    harness.step();
    let painted = harness.state().session.mask.painted.clone();
    assert_eq!(painted[0], mask_before[0] < 0.5, "the click flipped patch 0");
    step_until(&mut harness, "the result of the painted mask", |app| app.session.is_up_to_date());
    let app = harness.state();
    let shown = app.session.result().unwrap();
    let visible: Vec<usize> = (0..16).filter(|&p| !painted[p]).collect();
    assert_eq!(shown.mask_spec, MaskSpec::Keep { visible });
    assert_eq!(shown.first().mask[0] > 0.5, painted[0]);
    for (patch, (now, before)) in shown.first().mask.iter().zip(&mask_before).enumerate().skip(1) {
        assert_eq!(now, before, "patch {patch} changed without being clicked");
    }
}

#[test]
fn a_model_folder_with_missing_files_is_explained_in_the_window() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::copy(PathBuf::from(fixture_model()).join("config.json"), folder.path().join("config.json")).unwrap();
    let mut harness = harness(AppOptions::new(folder.path().display().to_string()));
    step_until(
        &mut harness,
        "the load to fail",
        |app| matches!(app.session.model().state, ModelState::Failed(ref e) if !e.is_empty()),
    );
    harness.step();
    let ModelState::Failed(error) = &harness.state().session.model().state else { unreachable!() };
    assert!(error.contains("model.safetensors") || error.contains("weights"), "{error}");
    harness.get_by_label("No model is loaded");
    harness.get_by_label("Open model folder…");
    // The window keeps running and offers a way out; nothing else changed.
    assert!(harness.state().session.result().is_none());
    assert!(harness.state().session.image.input.is_some());
}

#[test]
fn a_worker_panic_is_shown_and_the_worker_keeps_serving() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.state_mut().session.forwards.crash_worker();
    step_until(&mut harness, "the crash report", |app| {
        app.session.messages.notice.as_ref().is_some_and(|notice| notice.is_error && notice.text.contains("crashed"))
    });
    harness.step();
    harness.get_by_label_contains("model worker crashed");
    assert_eq!(harness.state().session.forwards.stats().restarts(), 1);
    harness.get_by_role_and_label(egui::Role::Slider, RATIO_LABEL).set_value_accesskit(0.25);
    step_until(&mut harness, "a result after the crash", |app| {
        shown_ratio(app) == Some(0.25) && app.session.is_up_to_date()
    });
}

#[test]
fn a_file_that_is_not_an_image_is_refused_and_the_picture_stays() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let folder = tempfile::tempdir().unwrap();
    let text_file = folder.path().join("notes.png");
    std::fs::write(&text_file, "this is text, not a picture").unwrap();
    let image_before = harness.state().session.image.input.as_ref().unwrap().id;
    harness.state_mut().open_image_file(text_file);
    step_until(&mut harness, "the error message", |app| {
        app.session.messages.notice.as_ref().is_some_and(|notice| notice.is_error)
    });
    harness.step();
    let app = harness.state();
    let notice = app.session.messages.notice.as_ref().unwrap();
    assert!(notice.text.contains("notes.png") && notice.text.contains("not an image"), "{}", notice.text);
    assert_eq!(app.session.image.input.as_ref().unwrap().id, image_before);
    assert!(app.session.is_up_to_date());
}

#[test]
fn a_real_image_file_replaces_the_picture_and_is_remembered() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("gradient.png");
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 100])).save(&path).unwrap();
    let image_before = harness.state().session.image.input.as_ref().unwrap().id;
    harness.state_mut().open_image_file(path.clone());
    step_until(&mut harness, "the new image's result", |app| {
        app.session.image.input.as_ref().unwrap().id != image_before && app.session.is_up_to_date()
    });
    let app = harness.state();
    assert_eq!(app.session.image.input.as_ref().unwrap().rgb.dimensions(), (40, 30));
    assert_eq!(app.session.settings.recent_files.first(), Some(&path));
}

#[test]
fn saving_to_an_unwritable_place_says_so_and_writes_nothing() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let folder = tempfile::tempdir().unwrap();
    let target = folder.path().join("missing-folder").join("panels.png");
    let app = harness.state_mut();
    app.export.save_pictures(target.clone(), &mut app.session);
    step_until(&mut harness, "the save error", |app| {
        app.session.messages.notice.as_ref().is_some_and(|notice| notice.is_error)
    });
    assert!(harness.state().session.messages.notice.as_ref().unwrap().text.contains("could not save"));
    assert!(!target.exists());
    // And a writable place gets the four panels side by side.
    let good = folder.path().join("panels.png");
    let app = harness.state_mut();
    app.export.save_pictures(good.clone(), &mut app.session);
    step_until(&mut harness, "the save", |app| {
        app.session.messages.notice.as_ref().is_some_and(|notice| !notice.is_error)
    });
    let saved = image::open(&good).unwrap();
    assert_eq!((saved.width(), saved.height()), (4 * 64 + 3 * 8, 64));
}

#[test]
fn attention_and_loss_panels_draw_their_overlays_while_they_are_in_view() {
    // The Attention tab is in front by default: its overlay comes with the result, the hidden Loss tab's does not.
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let shown = harness.state().session.result().unwrap();
    assert!(shown.first().pictures.attention.is_some() && shown.first().pictures.loss.is_none());
    // Choosing another layer re-draws from the cached forward pass: no new forward.
    let forwards = harness.state().session.forwards.stats().forwards();
    harness.state_mut().panels.attention.view.selection.layer = 1;
    step_until(&mut harness, "the re-drawn attention", |app| app.session.is_up_to_date());
    let app = harness.state();
    assert_eq!(app.session.forwards.stats().forwards(), forwards);
    assert_eq!(app.session.result().unwrap().first().forward_ms, None);
    // Bring the Loss tab forward: its overlay is drawn (again from the cache) and its curve is the sweep's, every
    // distinct mask of the slider (17 kept counts on a 4×4 grid), computed in the background.
    harness.state_mut().layout.bring_to_front(PanelId::Loss);
    step_until(&mut harness, "the loss curve", |app| {
        app.session.forwards.sweep.as_ref().is_some_and(|sweep| sweep.is_over()) && app.session.is_up_to_date()
    });
    let app = harness.state();
    assert!(app.session.result().unwrap().first().pictures.loss.is_some());
    let sweep = app.session.forwards.sweep.clone().unwrap();
    let curve = &sweep.model(0).unwrap().curve;
    let fractions: Vec<f64> = curve.iter().map(|(fraction, _)| *fraction).collect();
    assert_eq!(fractions, (0..=16).map(|masked| f64::from(masked) / 16.0).collect::<Vec<_>>());
    assert_eq!(curve[0].1, None, "nothing is masked at 0");
    assert!(curve[1..].iter().all(|(_, loss)| loss.is_some()));
    assert_eq!(app.session.forwards.stats().forwards(), forwards, "no forward pass for the view");
    assert_eq!(app.session.forwards.stats().sweep_forwards(), 16, "the sweep's own, the shown mask's excepted");
    // A centre mask sweeps centre masks; a grid mask, which no ratio changes, is one labelled point and no curve
    // (not the random mask's curve with the current point far off it).
    harness.state_mut().session.set_mask_mode(MaskMode::Centre);
    step_until(&mut harness, "the centre curve", |app| {
        app.session.forwards.sweep.as_ref().is_some_and(|sweep| {
            sweep.strategy == MaskStrategy::Centre && sweep.is_over() && sweep.models[0].curve.len() == 17
        }) && app.session.is_up_to_date()
    });
    // At 0.4 the count asked on a 4×4 grid is 7; the largest centred rectangle within it is 2×3, and the line
    // under the slider says so rather than that the mask stopped short.
    harness.state_mut().session.settings.mask_ratio = 0.4;
    step_until(&mut harness, "the centre mask at 0.4", |app| app.session.is_up_to_date());
    harness.run_steps(2);
    harness.get_by_label_contains("6 of 16 patches masked (0.375): the largest centred rectangle within the 7 asked");
    let forwards = harness.state().session.forwards.stats().all_forwards();
    harness.state_mut().session.set_mask_mode(MaskMode::Grid);
    step_until(&mut harness, "the grid mask's point", |app| app.session.is_up_to_date());
    let app = harness.state();
    assert!(!app.panels.loss.is_busy(), "no curve to wait for");
    assert_eq!(app.session.forwards.stats().all_forwards(), forwards + 1, "the grid mask's own forward, no sweep");
    assert_eq!(app.session.result().unwrap().first().quality.masked_fraction, 0.75);
}

#[test]
fn keyboard_shortcuts_nudge_the_ratio_and_draw_a_new_seed() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.key_press(egui::Key::ArrowRight);
    harness.step();
    assert!((harness.state().session.settings.mask_ratio - 0.76).abs() < 1e-9);
    harness.key_press(egui::Key::ArrowLeft);
    harness.key_press(egui::Key::ArrowLeft);
    harness.step();
    assert!((harness.state().session.settings.mask_ratio - 0.74).abs() < 1e-9);
    let seed = harness.state().session.settings.seed;
    harness.key_press(egui::Key::R);
    harness.step();
    assert_ne!(harness.state().session.settings.seed, seed);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::E);
    harness.step();
    assert!(harness.state().export.open);
    harness.step();
    harness.get_by_label("Export grid…");
}

#[test]
fn the_export_dialog_writes_a_grid_and_reports_bad_input() {
    let photo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/chelsea.png");
    let mut options = AppOptions::new(fixture_model());
    options.image = Some(photo.clone());
    let mut harness = ready_harness(options);
    let folder = tempfile::tempdir().unwrap();
    // Bad ratios are caught before anything runs.
    harness.state_mut().export.settings.ratios = "0.5, 2".into();
    harness.state_mut().export_grid_to(folder.path().join("never.png"));
    assert!(harness.state().export.error.as_ref().unwrap().contains("\"2\""));
    // Two ratios × two seeds, four columns, 64 px tiles.
    let path = folder.path().join("grid.png");
    let app = harness.state_mut();
    app.export.settings.ratios = "0.25 0.75".into();
    app.export.settings.seeds = "0,1".into();
    app.export.settings.tile_size = 64;
    app.export_grid_to(path.clone());
    step_until(&mut harness, "the export", |app| !app.export.job.is_running());
    assert_eq!(harness.state().export.error, None);
    // The same job through the `export` command gives the same picture, to the pixel (the dialog's default
    // columns are the command's).
    let cli = folder.path().join("cli.png");
    let model = fixture_model();
    export_command(
        &["--model", &model, "--mask-ratios", "0.25,0.75", "--seeds", "0,1", "--tile-size", "64"],
        &photo,
        &cli,
    );
    let (grid, expected) = (image::open(&path).unwrap().to_rgba8(), image::open(&cli).unwrap().to_rgba8());
    assert_eq!(grid.dimensions(), expected.dimensions());
    assert!(grid == expected, "the window's grid differs from the command's");
    // A grid too big to compose is refused before any forward pass.
    let forwards = harness.state().session.forwards.stats().forwards();
    let app = harness.state_mut();
    app.export.settings.seeds = (0..100).map(|seed| seed.to_string()).collect::<Vec<_>>().join(",");
    app.export.settings.tile_size = 1024;
    app.export_grid_to(folder.path().join("huge.png"));
    step_until(&mut harness, "the refused export", |app| !app.export.job.is_running());
    assert!(harness.state().export.error.as_ref().unwrap().contains("grid would be"));
    assert_eq!(harness.state().session.forwards.stats().forwards(), forwards);
    assert!(!folder.path().join("huge.png").exists());
    harness.state_mut().export.settings.seeds = "0".into();
    // An unwritable destination is an error in the window, and no file appears.
    let bad = folder.path().join("no-such-folder").join("grid.png");
    harness.state_mut().export_grid_to(bad.clone());
    step_until(&mut harness, "the failed export", |app| !app.export.job.is_running());
    assert!(harness.state().session.messages.notice.as_ref().unwrap().text.contains("could not export"));
    assert!(!bad.exists());
}

#[test]
fn a_seed_ensemble_runs_one_forward_per_seed_and_shows_mean_and_spread() {
    let mut remembered = Remembered::default();
    remembered.panels.ensemble.size = 5;
    let mut harness = harness_with(AppOptions::new(fixture_model()), remembered, Vec2::new(1280.0, 800.0));
    step_until(&mut harness, "the first reconstruction", |app| app.session.is_up_to_date());
    harness.state_mut().layout.bring_to_front(PanelId::Ensemble);
    harness.step();
    let forwards = harness.state().session.forwards.stats().forwards();
    harness.get_by_label("Compute").click();
    step_until(&mut harness, "the ensemble", |app| app.panels.ensemble.result.is_some());
    let app = harness.state();
    let result = app.panels.ensemble.result.as_ref().unwrap();
    assert_eq!(result.seeds, vec![2, 3, 4, 5, 6]);
    assert_eq!(result.mean.dimensions(), (64, 64));
    assert_eq!(app.session.forwards.stats().forwards(), forwards + 5);
    assert!(result.times_masked.iter().all(|&count| count <= 5));
}

/// eframe's storage as a map, for the persistence round trip.
#[derive(Default)]
struct MemoryStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

/// The remembered state as the next run reads it back.
fn restart(app: &mut MaeApp) -> (MemoryStorage, Remembered) {
    let mut storage = MemoryStorage::default();
    eframe::App::save(app, &mut storage);
    let remembered = mae_explorer::window::settings::load(Some(&storage));
    (storage, remembered)
}

/// The tree as JSON values (maps compare whatever their order).
/// The tree as JSON, with the closed tiles sorted (egui_tiles keeps them in a hash set, written in any order).
fn tree_json(tree: &egui_tiles::Tree<PanelId>) -> serde_json::Value {
    let mut json = serde_json::to_value(tree).unwrap();
    if let Some(serde_json::Value::Array(closed)) = json.pointer_mut("/tiles/invisible") {
        closed.sort_by_key(|tile| tile.as_u64());
    }
    json
}

#[test]
fn settings_survive_a_restart() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let app = harness.state_mut();
    app.session.settings.mask_ratio = 0.6;
    app.session.settings.seed = 1234;
    app.session.settings.dark_theme = false;
    app.panels.attention.view.colormap = mae_explorer::render::Colormap::Turbo;
    app.panels.ensemble.size = 13;
    app.export.settings.seeds = "4 5 6".into();
    let (mut storage, restored) = restart(harness.state_mut());
    let app = harness.state();
    assert_eq!(restored.session, app.session.settings);
    assert_eq!(restored.session.model.as_deref(), Some(fixture_model().as_str()), "the model that loaded");
    assert_eq!(restored.panels.attention.view, app.panels.attention.view);
    assert_eq!(restored.panels.ensemble.size, 13);
    assert_eq!(restored.export, app.export.settings);
    // A damaged entry falls back to the defaults instead of failing.
    storage.0.insert(eframe::APP_KEY.to_string(), "not ron at all (".into());
    let fallback = mae_explorer::window::settings::load(Some(&storage));
    assert_eq!(fallback.session, mae_explorer::window::session::SessionSettings::default());
    assert!(fallback.layout.is_none());
}

/// The centre of a widget found by its label.
fn centre_of(harness: &Harness<'static, MaeApp>, role: egui::Role, label: &str) -> egui::Pos2 {
    harness.get_by_role_and_label(role, label).rect().center()
}

#[test]
fn a_moved_and_a_closed_tile_stay_so_after_a_restart() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    // Close the Loss tab with its × (the close button inside the tab).
    let loss_tab = harness.get_by_role_and_label(egui::Role::Button, "Loss").rect();
    harness
        .get_all_by_label("Close")
        .find(|node| loss_tab.contains(node.rect().center()))
        .expect("the Loss tab has a close button")
        .click();
    harness.step();
    harness.step();
    assert!(!harness.state().layout.is_open(PanelId::Loss), "the × closed the Loss tile");
    // Drag the Ensemble tab onto the middle of the Original picture's tile.
    let from = centre_of(&harness, egui::Role::Button, "Ensemble");
    let to = centre_of(&harness, egui::Role::Image, "Original picture");
    let analysis_parent = {
        let tree = &harness.state().layout.tree;
        tree.tiles.parent_of(tree.tiles.find_pane(&PanelId::Ensemble).unwrap())
    };
    harness.hover_at(from);
    harness.step();
    harness.drag_at(from);
    harness.step();
    for step in 1..=10 {
        harness.hover_at(from + (to - from) * (step as f32 / 10.0));
        harness.step();
    }
    harness.drop_at(to);
    harness.step();
    harness.step();
    let (layout_after_move, loss_place) = {
        let tree = &harness.state().layout.tree;
        let ensemble = tree.tiles.find_pane(&PanelId::Ensemble).unwrap();
        assert_ne!(tree.tiles.parent_of(ensemble), analysis_parent, "the Ensemble tile moved");
        let loss = tree.tiles.find_pane(&PanelId::Loss).unwrap();
        (tree_json(tree), (loss, tree.tiles.parent_of(loss)))
    };
    // Restart: a new window from what this one remembered has the same layout.
    let (_, remembered) = restart(harness.state_mut());
    let mut restarted = harness_with(AppOptions::new(fixture_model()), remembered, Vec2::new(1280.0, 800.0));
    restarted.step();
    let layout = &restarted.state().layout;
    assert_eq!(tree_json(&layout.tree), layout_after_move);
    assert!(!layout.is_open(PanelId::Loss));
    assert!(layout.is_open(PanelId::Ensemble) && layout.is_open(PanelId::Original));
    // View → the Loss checkbox reopens the closed tile where it was.
    click_and_settle(&mut restarted, "View");
    restarted.get_by_role_and_label(egui::Role::CheckBox, "Loss").click();
    restarted.step();
    restarted.step();
    assert!(restarted.state().layout.is_open(PanelId::Loss), "View → Loss reopened the tile");
    let tree = &restarted.state().layout.tree;
    let loss = tree.tiles.find_pane(&PanelId::Loss).unwrap();
    assert_eq!((loss, tree.tiles.parent_of(loss)), loss_place, "where it was");
    // View → Reset layout: the layout a new window of this size starts with, not the one this window had.
    click_and_settle(&mut restarted, "View");
    restarted.get_by_role_and_label(egui::Role::Button, "Reset layout").click();
    restarted.step();
    restarted.step();
    let mut fresh = harness_with(AppOptions::new(fixture_model()), Remembered::default(), Vec2::new(1280.0, 800.0));
    fresh.step();
    fresh.step();
    let reset = tree_json(&restarted.state().layout.tree);
    assert_ne!(reset, layout_after_move);
    assert_eq!(reset, tree_json(&fresh.state().layout.tree));
    assert!(restarted.state().layout.is_open(PanelId::Loss) && restarted.state().layout.is_open(PanelId::Ensemble));
}

#[test]
fn the_default_layout_fills_the_window_with_large_pictures() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.step();
    let app = harness.state();
    let tree = &app.layout.tree;
    let root = tree.tiles.rect(tree.root().unwrap()).unwrap();
    // The panes shown (one per tab group) cover the central area but for tab bars and gaps.
    let shown: f32 = tree
        .active_tiles()
        .into_iter()
        .filter(|&tile| tree.tiles.get_pane(&tile).is_some())
        .filter_map(|tile| tree.tiles.rect(tile))
        .map(|rect| rect.area())
        .sum();
    for tile in tree.active_tiles() {
        println!("{tile:?} {:?} {:?}", tree.tiles.get_pane(&tile), tree.tiles.rect(tile));
    }
    assert!(shown > 0.85 * root.area(), "panes cover {shown:.0} of {:.0} px²", root.area());
    assert!(root.width() > 900.0 && root.height() > 680.0, "the tiles fill the window: {root:?}");
    // The four pictures: before the tiles, a 1280×800 window drew them 241 px wide in a row; now each has at least
    // twice the area (1.42× the side).
    for label in ["Original picture", "Masked picture", "Reconstruction picture", "Pasted back picture"] {
        let picture = harness.get_by_role_and_label(egui::Role::Image, label).rect();
        println!("{label}: {:.0}×{:.0} {picture:?}", picture.width(), picture.height());
        assert!(picture.width() >= 1.42 * 241.0 && picture.height() >= 1.42 * 241.0, "{label}: {picture:?}");
    }
}

/// The real binary with `--screenshot`, under Xvfb. Skipped (with a note) where `xvfb-run` is not installed;
/// `.ci/run` installs it.
#[test]
fn the_screenshot_option_writes_the_window_or_fails_with_the_reason() {
    if std::process::Command::new("xvfb-run").arg("--help").output().is_err() {
        eprintln!("xvfb-run is not installed: skipping the --screenshot check");
        return;
    }
    let folder = tempfile::tempdir().unwrap();
    let png = folder.path().join("window.png");
    let run = |model: &str, png: &std::path::Path| {
        std::process::Command::new("xvfb-run")
            .args(["-a", "-s", "-screen 0 1600x1000x24", env!("CARGO_BIN_EXE_mae-explorer"), "--model", model])
            .arg("--screenshot")
            .arg(png)
            .output()
            .unwrap()
    };
    let output = run(&fixture_model(), &png);
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let picture = image::open(&png).unwrap();
    assert_eq!((picture.width(), picture.height()), (1280, 800));
    // One line on stdout: the time of the forward pass whose result is in the picture.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let forward_ms: f64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("forward_ms="))
        .unwrap_or_else(|| panic!("no forward_ms line in {stdout:?}"))
        .parse()
        .unwrap();
    assert!(forward_ms > 0.0 && forward_ms < 60_000.0, "{forward_ms}");
    // The demo against three perturbed copies whose preprocessor files are spelled as the hub's: four models in
    // all, each compared with A patch by patch (win counts printed by letter), and the time printed is a number
    // even when A's picture came from the worker's cache.
    let copies: Vec<String> = [1.2, 0.8, 1.4]
        .iter()
        .enumerate()
        .map(|(index, scale)| {
            let copy = folder.path().join(format!("copy-{index}"));
            std::fs::create_dir_all(&copy).unwrap();
            mae_integration_tests::perturbed_demo_hub_spelled(&copy, *scale).display().to_string()
        })
        .collect();
    let compare = |models: &str, png: &std::path::Path| {
        std::process::Command::new("xvfb-run")
            .args(["-a", "-s", "-screen 0 1600x1000x24", env!("CARGO_BIN_EXE_mae-explorer"), "--model", "demo"])
            .args(["--compare", models, "--panel", "compare", "--screenshot"])
            .arg(png)
            .output()
            .unwrap()
    };
    let output = compare(&copies.join(","), &folder.path().join("four.png"));
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = |name: &str| stdout.lines().find_map(|line| line.strip_prefix(name)).map(str::to_string);
    let pair_ms: f64 = line("forward_ms=").unwrap_or_default().parse().unwrap_or(-1.0);
    assert!(pair_ms > 0.0, "{stdout}");
    assert_eq!(line("models=").as_deref(), Some("4"), "{stdout}");
    let wins = line("wins=").unwrap_or_else(|| panic!("no wins line in {stdout:?}"));
    let counts: Vec<usize> = wins
        .split(',')
        .zip(["A:", "B:", "C:", "D:"])
        .map(|(part, prefix)| part.strip_prefix(prefix).and_then(|n| n.parse().ok()).expect(&wins))
        .collect();
    // Ratio 0.75 of 196 patches: 147 masked, each won by one model or a tie.
    assert!(counts.len() == 4 && counts.iter().sum::<usize>() <= 147 && counts.iter().sum::<usize>() > 100, "{wins}");
    // A model that cannot load fails the run, naming it.
    let output = compare(&format!("{},/no/such/model", copies[0]), &folder.path().join("never.png"));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("model C (/no/such/model) could not be loaded"));
    assert!(!folder.path().join("never.png").exists());
    // Start-up flags: another window size, ratio and seed; a ratio outside [0, 1] is refused before any window.
    let sized = folder.path().join("sized.png");
    let output = std::process::Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1600x1000x24", env!("CARGO_BIN_EXE_mae-explorer"), "--model"])
        .arg(fixture_model())
        .args(["--mask-ratio", "0.5", "--seed", "7", "--window-size", "1000x700", "--ratio-steps", "3"])
        .arg("--screenshot")
        .arg(&sized)
        .output()
        .unwrap();
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(image::image_dimensions(&sized).unwrap(), (1000, 700));
    // Three ratio moves before the picture: the medians of their forward passes and of their waits are printed,
    // and a wait includes its forward pass.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = |name: &str| -> f64 {
        let prefix = format!("{name}=");
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("{stdout}"))
            .parse()
            .unwrap()
    };
    let (first, warm, latency) = (value("first_picture_ms"), value("warm_forward_ms"), value("latency_ms"));
    assert!(first > 0.0 && warm > 0.0 && latency >= warm, "{stdout}");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
        .args(["--mask-ratio", "1.5", "--screenshot"])
        .arg(folder.path().join("never.png"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("1.5"));
    let missing = folder.path().join("no-model-here");
    let failed_png = folder.path().join("failed.png");
    let output = run(&missing.display().to_string(), &failed_png);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no screenshot") && stderr.contains("no-model-here"), "{stderr}");
    assert!(!failed_png.exists());
    // An image named on the command line that cannot be read fails the run too (the sample is no substitute).
    let output = std::process::Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1600x1000x24", env!("CARGO_BIN_EXE_mae-explorer"), "--model"])
        .arg(fixture_model())
        .arg(folder.path().join("missing.jpg"))
        .arg("--screenshot")
        .arg(&failed_png)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.jpg"));
    assert!(!failed_png.exists());
}

#[derive(Debug)]
struct DroppedPath(PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn pasted_and_dropped_images_replace_the_picture() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let pasted = egui::ColorImage::new([30, 20], vec![egui::Color32::from_rgb(200, 30, 40); 600]);
    harness.event(egui::Event::PasteImage(std::sync::Arc::new(pasted)));
    step_until(&mut harness, "the pasted image's result", |app| {
        app.session.image.input.as_ref().unwrap().rgb.dimensions() == (30, 20) && app.session.is_up_to_date()
    });
    assert_eq!(harness.state().session.image.input.as_ref().unwrap().rgb.get_pixel(0, 0).0, [200, 30, 40]);

    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("dropped.png");
    image::RgbImage::from_pixel(12, 34, image::Rgb([1, 2, 3])).save(&path).unwrap();
    harness.input_mut().dropped_files.push(std::sync::Arc::new(DroppedPath(path)));
    step_until(&mut harness, "the dropped image's result", |app| {
        app.session.image.input.as_ref().unwrap().rgb.dimensions() == (12, 34) && app.session.is_up_to_date()
    });
}

#[test]
fn loading_another_model_from_the_model_field_switches_grid_and_results() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    // 24×24 input in 4-px patches, predicting per-patch-normalized pixels.
    let other = PathBuf::from(fixture_model()).with_file_name("tiny-p4-normpix").display().to_string();
    harness.state_mut().session.model_mut().field = other.clone();
    harness.get_by_label("Load").click();
    step_until(&mut harness, "the second model's result", |app| {
        app.session.model().info().is_some_and(|info| info.name == "tiny-p4-normpix") && app.session.is_up_to_date()
    });
    let app = harness.state();
    let (rows, cols) = app.session.model().grid().unwrap();
    assert_eq!(app.session.result().unwrap().first().grid, (rows, cols));
    assert_eq!((rows, cols), (6, 6));
    assert_eq!(app.session.settings.model.as_deref(), Some(other.as_str()));
    // Its reconstruction borrows the hidden patches' statistics, and the window says so.
    assert!(app.session.result().unwrap().first().uses_target_statistics);
    harness.step();
    harness.get_by_label_contains("which the model never saw");
}

#[test]
fn a_grid_exported_from_the_window_equals_the_one_the_command_writes() {
    let photo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/photos/rocket.jpg");
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.state_mut().open_image_file(photo.clone());
    step_until(&mut harness, "the photo's result", |app| {
        app.session.image.input.as_ref().is_some_and(|image| image.name == "rocket.jpg") && app.session.is_up_to_date()
    });
    let folder = tempfile::tempdir().unwrap();
    let from_window = folder.path().join("window.png");
    let app = harness.state_mut();
    app.export.settings.ratios = "0.5 0.75".into();
    app.export.settings.seeds = "0, 1".into();
    // original, mask, masked, reconstruction, pasted, loss heatmap, attention rollout
    app.export.settings.columns = [true, true, false, true, true, true, true];
    app.export.settings.tile_size = 64;
    app.panels.attention.view.colormap = mae_explorer::render::Colormap::Cividis;
    app.export_grid_to(from_window.clone());
    step_until(&mut harness, "the window's export", |app| !app.export.job.is_running());
    assert_eq!(harness.state().export.error, None);

    let from_command = folder.path().join("command.png");
    let model = fixture_model();
    let args = ["--model", &model, "--mask-ratios", "0.5,0.75", "--seeds", "0,1", "--tile-size", "64"];
    let columns = ["--colormap", "cividis", "--columns", "original,mask,reconstruction,pasted,loss,rollout"];
    export_command(&[&args[..], &columns[..]].concat(), &photo, &from_command);
    assert_same_bytes(&from_window, &from_command);
}

#[test]
fn a_grid_of_both_compared_models_from_the_window_equals_export_models() {
    let tiny_p8 = PathBuf::from(fixture_model()).with_file_name("tiny-p8").display().to_string();
    let mut options = AppOptions::new(fixture_model());
    options.compare = vec![tiny_p8.clone()];
    let mut harness = harness(options);
    let photo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/photos/rocket.jpg");
    harness.state_mut().open_image_file(photo.clone());
    step_until(&mut harness, "the pair on the photo", |app| {
        app.session.image.input.as_ref().is_some_and(|image| image.name == "rocket.jpg")
            && app.session.is_up_to_date()
            && app.session.result().is_some_and(|result| result.models.len() == 2)
    });
    let folder = tempfile::tempdir().unwrap();
    let from_window = folder.path().join("window.png");
    let app = harness.state_mut();
    app.export.settings.ratios = "0.5".into();
    app.export.settings.seeds = "0, 3".into();
    app.export.settings.columns = [true, false, true, true, true, true, false];
    app.export.settings.tile_size = 48;
    app.panels.attention.view.colormap = mae_explorer::render::Colormap::Viridis;
    assert!(app.export.settings.all_models, "every model by default while models are compared");
    app.export_grid_to(from_window.clone());
    step_until(&mut harness, "the window's export", |app| !app.export.job.is_running());
    assert_eq!(harness.state().export.error, None);
    let from_command = folder.path().join("command.png");
    let csv = folder.path().join("command.csv");
    let (models, csv_path) = (format!("{},{tiny_p8}", fixture_model()), csv.display().to_string());
    let job = ["--mask-ratios", "0.5", "--seeds", "0,3", "--tile-size", "48", "--colormap", "viridis"];
    let columns = ["--columns", "original,masked,reconstruction,pasted,loss"];
    let pair = ["--models", models.as_str(), "--metrics-csv", csv_path.as_str()];
    export_command(&[&pair[..], &job[..], &columns[..]].concat(), &photo, &from_command);
    assert_same_bytes(&from_window, &from_command);
    // Five columns per model, one row per seed; the CSV has one line per row and model.
    let picture = image::open(&from_command).unwrap();
    let (model, single) = (fixture_model(), folder.path().join("single.png"));
    export_command(&[&["--model", model.as_str()][..], &job[..], &columns[..]].concat(), &photo, &single);
    let single = image::open(&single).unwrap();
    let gap = mae_explorer::render::grid::GAP;
    assert_eq!(picture.width() - single.width(), 5 * (48 + gap), "five more tiles of 48 px and their gaps");
    let text = std::fs::read_to_string(&csv).unwrap();
    let models: Vec<&str> = text.lines().skip(1).map(|line| line.split(',').nth(1).unwrap()).collect();
    assert_eq!(models, ["tiny-p16", "tiny-p8", "tiny-p16", "tiny-p8"]);
}

/// Runs `mae-explorer export --device cpu --image PHOTO --out OUT` with `args` (failing with its error output).
fn export_command(args: &[&str], photo: &std::path::Path, out: &std::path::Path) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
        .args(["export", "--device", "cpu"])
        .args(args)
        .arg("--image")
        .arg(photo)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Two files with the same bytes (pictures written by the window and by the command).
fn assert_same_bytes(a: &std::path::Path, b: &std::path::Path) {
    let (a_bytes, b_bytes) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(
        a_bytes == b_bytes,
        "{} and {} differ ({} vs {} bytes)",
        a.display(),
        b.display(),
        a_bytes.len(),
        b_bytes.len()
    );
}

/// Clicks at a screen position (press and release, as a mouse does).
fn click_at(harness: &mut Harness<'static, MaeApp>, position: egui::Pos2) {
    harness.hover_at(position);
    harness.step();
    harness.drag_at(position);
    harness.step();
    harness.drop_at(position);
    harness.step();
    harness.step();
}

fn attention_shows(app: &MaeApp) -> (Stack, usize, HeadFusion) {
    let selection = &app.panels.attention.view.selection;
    (selection.stack, selection.layer, selection.heads)
}

#[test]
fn clicking_a_gallery_thumbnail_or_a_plot_point_focuses_that_head_in_the_attention_panel() {
    let mut harness = harness_with(AppOptions::new(fixture_model()), Remembered::default(), Vec2::new(1920.0, 1080.0));
    harness.state_mut().layout.bring_to_front(PanelId::Heads);
    step_until(&mut harness, "the head gallery", |app| {
        app.session.is_up_to_date() && app.session.result().is_some_and(|result| result.first().heads.is_some())
    });
    harness.step();
    // tiny-p16's encoder has 2 layers of 5 heads: click the thumbnail of layer 1, head 3.
    let app = harness.state();
    let rect = app.panels.heads.gallery_rect.expect("the gallery was drawn");
    let geometry = app.session.result().unwrap().first().heads.as_ref().unwrap().gallery.geometry.clone();
    let (x, y) = geometry.centre_of(Stack::Encoder, 1, 3).unwrap();
    let scale = rect.width() / geometry.width as f32;
    assert_ne!(attention_shows(app), (Stack::Encoder, 1, HeadFusion::Head(3)));
    click_at(&mut harness, rect.min + egui::vec2(x * scale, y * scale));
    assert_eq!(attention_shows(harness.state()), (Stack::Encoder, 1, HeadFusion::Head(3)));
    assert!(harness.state().layout.is_open(PanelId::Attention));
    let tree = &harness.state().layout.tree;
    assert!(tree.active_tiles().contains(&tree.tiles.find_pane(&PanelId::Attention).unwrap()), "Attention in front");

    // Back to the Heads tab; click the plotted point of a decoder head that no other point crowds.
    harness.state_mut().layout.bring_to_front(PanelId::Heads);
    step_until(&mut harness, "the gallery again", |app| {
        app.session.is_up_to_date() && app.session.result().is_some_and(|result| result.first().heads.is_some())
    });
    harness.step();
    let plotted = harness.state().panels.heads.plotted.clone();
    let loneliest = |&(position, head): &(egui::Pos2, (Stack, usize, usize))| {
        let nearest = plotted.iter().filter(|(_, other)| *other != head).map(|(p, _)| p.distance(position));
        (nearest.fold(f32::INFINITY, f32::min), head, position)
    };
    let (spacing, (stack, layer, head), position) = plotted
        .iter()
        .filter(|(_, (stack, _, _))| *stack == Stack::Decoder)
        .map(loneliest)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .expect("decoder heads are plotted");
    assert!(spacing > 8.0, "every decoder point is crowded ({spacing:.1} px)");
    click_at(&mut harness, position);
    assert_eq!(attention_shows(harness.state()), (stack, layer, HeadFusion::Head(head)));
}

#[test]
fn offline_with_an_empty_cache_the_demo_model_shows_at_once_and_says_how_to_get_the_real_one() {
    let cache = tempfile::tempdir().unwrap();
    let mut options = AppOptions::new("unused");
    options.model = StartModel::Default { hub_id: "facebook/vit-mae-base".into() };
    options.hub =
        HubSettings { cache_dir: cache.path().to_owned(), offline: true, ..HubSettings::from_vars(&|_| None) };
    let mut harness = ready_harness(options);
    harness.step();
    let app = harness.state();
    assert_eq!(app.session.model().info().unwrap().name, mae_model::DEMO_MODEL_NAME);
    assert_eq!(app.session.result().unwrap().first().grid, (14, 14));
    let notice = app.session.messages.notice.as_ref().expect("a line about the real model");
    assert!(
        !notice.is_error && notice.text.contains("facebook/vit-mae-base") && notice.text.contains("HF_HUB_OFFLINE")
    );
    assert!(app.session.model().fetch.is_none(), "nothing is downloaded offline");
    assert_eq!(app.session.settings.model, None, "the stand-in is not remembered as the user's choice");
    harness.get_by_label_contains("model demo (built in)");
    assert!(std::fs::read_dir(cache.path()).unwrap().next().is_none(), "the cache stays empty");
}

/// The grid of the model the fake hub serves as `facebook/vit-mae-base` (tiny-p8: 32 px, 8-px patches).
const HUB_MODEL_GRID: (usize, usize) = (4, 4);
/// The built-in demo model's grid (224 px, 16-px patches).
const DEMO_GRID: (usize, usize) = (14, 14);

/// The first run online: no model named, the default not in `cache`, downloaded from `hub`.
fn first_run_options(cache: &std::path::Path, hub: HubSettings) -> AppOptions {
    let mut options = AppOptions::new("unused");
    options.model = StartModel::Default { hub_id: REPO.into() };
    options.hub = HubSettings { cache_dir: cache.to_owned(), ..hub };
    options
}

fn shown_grid(app: &MaeApp) -> Option<(usize, usize)> {
    app.session.is_up_to_date().then(|| app.session.result().map(|shown| shown.first().grid)).flatten()
}

#[test]
fn online_the_demo_stands_in_until_the_default_model_is_downloaded_then_the_window_switches_keeping_the_job() {
    let hub = FakeHub::start(Weights::Whole);
    let cache = tempfile::tempdir().unwrap();
    let mut harness = harness(first_run_options(cache.path(), hub.settings(cache.path())));
    let image_before = harness.state().session.image.input.as_ref().expect("the sample photo").id;
    // The user's ratio and seed, set before either model is ready: the switch must keep them.
    harness.state_mut().session.settings.mask_ratio = 0.5;
    harness.state_mut().session.settings.seed = 7;

    step_until(&mut harness, "the downloaded model's reconstruction", |app| shown_grid(app) == Some(HUB_MODEL_GRID));
    let app = harness.state();
    assert_eq!(app.session.result().unwrap().mask_spec, MaskSpec::random(7, 0.5));
    assert_eq!(app.session.image.input.as_ref().unwrap().id, image_before, "the image is kept");
    assert!(app.session.model().fetch.is_none());
    assert_eq!(app.session.settings.model.as_deref(), Some(REPO), "the real model is remembered");
    let weights = hub.file_downloads().iter().filter(|path| path.ends_with("/model.safetensors")).count();
    assert_eq!(weights, 1, "downloaded once, then loaded from the cache: {:?}", hub.requests());
}

#[test]
fn a_model_the_user_chooses_while_the_default_downloads_is_never_replaced() {
    // The weights download is held half-way until the test releases it: the demo stays on screen while the status
    // line shows the progress.
    let hub = FakeHub::start(Weights::Held);
    let cache = tempfile::tempdir().unwrap();
    let mut harness = harness(first_run_options(cache.path(), hub.settings(cache.path())));
    step_until(&mut harness, "the demo model's reconstruction", |app| shown_grid(app) == Some(DEMO_GRID));
    step_until(&mut harness, "download progress", |app| {
        app.session.model().fetch.as_ref().is_some_and(|fetch| fetch.progress.is_some())
    });
    harness.get_by_label_contains("the demo model meanwhile");
    assert_eq!(harness.state().session.settings.model, None, "the stand-in is not remembered");
    harness.state_mut().session.load_model(fixture_model());
    assert!(harness.state().session.model().fetch.is_none(), "choosing a model abandons the background download");
    step_until(&mut harness, "the chosen model's reconstruction", |app| {
        shown_grid(app).is_some_and(|grid| grid != DEMO_GRID)
    });
    let chosen_grid = shown_grid(harness.state());
    // The default model's download can finish now: the rest of the weights goes out, and its client is done with
    // them (read or given up). Had the download not been abandoned, the window would switch to it (as the online
    // test shows); however long the window runs on, the chosen model stays.
    hub.release_weights();
    hub.wait_for_finished_weights(1);
    for _ in 0..50 {
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(shown_grid(harness.state()), chosen_grid);
    assert_eq!(harness.state().session.settings.model.as_deref(), Some(fixture_model().as_str()));
}

#[test]
fn a_silent_hub_ends_the_background_download_with_a_line_and_the_demo_stays_usable() {
    let cache = tempfile::tempdir().unwrap();
    let hub = HubSettings {
        endpoint: Some(silent_hub()),
        metadata_timeout: Duration::from_secs(1),
        download_timeout: Duration::from_secs(1),
        ..HubSettings::from_vars(&|_| None)
    };
    let mut harness = harness(first_run_options(cache.path(), hub));
    step_until(&mut harness, "the download to give up", |app| app.session.model().fetch.is_none());
    step_until(&mut harness, "the demo model's reconstruction", |app| shown_grid(app) == Some(DEMO_GRID));
    let notice = harness.state().session.messages.notice.clone().expect("a line about the download");
    assert!(!notice.is_error && notice.text.contains("could not be downloaded"), "{}", notice.text);
    // Still usable: a new ratio gives a new result with the demo.
    harness.state_mut().session.settings.mask_ratio = 0.3;
    step_until(&mut harness, "a result at the new ratio", |app| {
        app.session.is_up_to_date() && shown_ratio(app) == Some(0.3)
    });
}

/// The bad-input corpus (tools/make_bad_inputs.py) through the window: every broken image and model is an error
/// message naming it, the picture and model in use stay, and the window keeps computing.
#[test]
fn every_bad_image_and_model_of_the_corpus_is_an_error_and_the_window_stays_usable() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let bad = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bad");
    let image_before = harness.state().session.image.input.as_ref().unwrap().id;
    let folder = tempfile::tempdir().unwrap();
    let fifo = folder.path().join("stream.png");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut images: Vec<PathBuf> = std::fs::read_dir(bad.join("images")).unwrap().map(|e| e.unwrap().path()).collect();
    images.sort();
    images.push(fifo);
    for image in &images {
        harness.state_mut().session.messages.notice = None;
        harness.state_mut().open_image_file(image.clone());
        step_until(&mut harness, "the image error", |app| {
            app.session.messages.notice.as_ref().is_some_and(|n| n.is_error)
        });
        let notice = harness.state().session.messages.notice.clone().unwrap();
        let name = image.file_name().unwrap().to_string_lossy().into_owned();
        assert!(notice.text.contains(&name), "{name}: {}", notice.text);
        assert_eq!(
            harness.state().session.image.input.as_ref().unwrap().id,
            image_before,
            "{name} replaced the picture"
        );
    }
    let mut models: Vec<PathBuf> = std::fs::read_dir(bad.join("models")).unwrap().map(|e| e.unwrap().path()).collect();
    models.sort();
    for model in &models {
        harness.state_mut().session.messages.notice = None;
        harness.state_mut().session.load_model(model.display().to_string());
        step_until(&mut harness, "the model error", |app| {
            app.session.model().loading.is_none() && app.session.messages.notice.as_ref().is_some_and(|n| n.is_error)
        });
        let notice = harness.state().session.messages.notice.clone().unwrap();
        let name = model.file_name().unwrap().to_string_lossy().into_owned();
        assert!(notice.text.contains(&name) && notice.text.contains("still using tiny-p16"), "{name}: {}", notice.text);
    }
    // Still working: a new ratio gets a new result from the model that was in use.
    harness.get_by_role_and_label(egui::Role::Slider, RATIO_LABEL).set_value_accesskit(0.5);
    step_until(&mut harness, "a result after the bad inputs", |app| {
        shown_ratio(app) == Some(0.5) && app.session.is_up_to_date()
    });
    assert_eq!(harness.state().session.model().info().unwrap().name, "tiny-p16");
}

/// The Heads panel in a narrow tile: gallery and plot stay inside it (a control row running past the edge once
/// widened everything after it).
#[test]
fn the_heads_panel_fits_its_tile() {
    for size in [Vec2::new(1280.0, 800.0), Vec2::new(1600.0, 1000.0)] {
        let mut harness = harness_with(AppOptions::new(fixture_model()), Remembered::default(), size);
        harness.state_mut().layout.bring_to_front(PanelId::Heads);
        step_until(&mut harness, "the head gallery", |app| {
            app.session.is_up_to_date() && app.session.result().is_some_and(|result| result.first().heads.is_some())
        });
        harness.step();
        let app = harness.state();
        let tile = app.layout.tree.tiles.find_pane(&PanelId::Heads).unwrap();
        let tile_rect = app.layout.tree.tiles.rect(tile).unwrap();
        let gallery = app.panels.heads.gallery_rect.expect("the gallery was drawn");
        assert!(tile_rect.contains_rect(gallery), "{size:?}: gallery {gallery:?} outside the tile {tile_rect:?}");
        assert!(!app.panels.heads.plotted.is_empty());
        for (point, head) in &app.panels.heads.plotted {
            assert!(tile_rect.contains(*point), "{size:?}: {head:?} plotted at {point:?}, outside {tile_rect:?}");
        }
    }
}

/// Opens the Mask choice in the control panel and picks `label`.
fn choose_mask(harness: &mut Harness<'static, MaeApp>, label: &str) {
    harness.get_by_role_and_label(egui::Role::ComboBox, MASK_LABEL).click();
    // One frame takes the click, the next shows the list.
    harness.run_steps(2);
    harness.get_by_label(label).click();
    harness.run_steps(2);
}

fn shown_mask(app: &MaeApp) -> Vec<bool> {
    app.session.result().unwrap().first().mask.iter().map(|&m| m > 0.5).collect()
}

#[test]
fn choosing_a_strategy_changes_the_mask_and_what_the_worker_is_asked() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let (seed, ratio) = (harness.state().session.settings.seed, harness.state().session.settings.mask_ratio);
    let expected = |strategy| -> Vec<bool> {
        let masking = Masking::new(&MaskSpec::Drawn { strategy, seed, ratio }, (4, 4)).unwrap();
        masking.mask.iter().map(|&m| m == 1.0).collect()
    };
    assert_eq!(shown_mask(harness.state()), expected(MaskStrategy::Random));
    assert_ne!(expected(MaskStrategy::Block), expected(MaskStrategy::Random), "the test needs masks that differ");
    let slider_disabled = |harness: &Harness<'static, MaeApp>| {
        harness.get_by_role_and_label(egui::Role::Slider, RATIO_LABEL).accesskit_node().is_disabled()
    };
    for (label, strategy) in
        [("Block", MaskStrategy::Block), ("Grid", MaskStrategy::Grid), ("Centre", MaskStrategy::Centre)]
    {
        choose_mask(&mut harness, label);
        step_until(&mut harness, label, |app| {
            app.session.is_up_to_date()
                && app.session.result().unwrap().mask_spec == MaskSpec::Drawn { strategy, seed, ratio }
        });
        assert_eq!(shown_mask(harness.state()), expected(strategy), "{label}");
        // Only the grid mask ignores the ratio: its slider is disabled, the others' are not.
        assert_eq!(slider_disabled(&harness), strategy == MaskStrategy::Grid, "{label}");
    }
    // The measurements are under the pasted-back picture.
    harness.get_by_label_contains("SSIM");
    // Painting starts from the mask on screen (the centre hole), not from a random one.
    let centre = shown_mask(harness.state());
    choose_mask(&mut harness, "Painted");
    assert_eq!(harness.state().session.mask.painted, centre);
}

#[test]
fn a_dropped_picture_becomes_the_mask_while_masks_come_from_pictures_and_a_saved_mask_reads_back() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let folder = tempfile::tempdir().unwrap();
    // Saved from the window: white where masked, at the model's input size.
    let saved = folder.path().join("saved-mask.png");
    let app = harness.state_mut();
    app.export.save_mask(saved.clone(), &mut app.session);
    step_until(&mut harness, "the mask to be saved", |app| {
        app.session.messages.notice.as_ref().is_some_and(|n| !n.is_error)
    });
    let on_screen = shown_mask(harness.state());
    let picture = mae_model::mask_picture::load_mask_picture(&saved).unwrap();
    assert_eq!(picture.dimensions(), (64, 64));
    assert_eq!(mae_model::mask_picture::mask_from_picture(&picture, (64, 64), 16).unwrap(), on_screen);

    // A picture (any size) masking the left half: dropped while "From a picture" is chosen, it becomes the mask.
    let left_half = folder.path().join("left-half.png");
    image::RgbImage::from_fn(10, 7, |x, _| if x < 5 { image::Rgb([255; 3]) } else { image::Rgb([0; 3]) })
        .save(&left_half)
        .unwrap();
    let session = &mut harness.state_mut().session;
    session.set_mask_picture(MaskPicture::read(&saved).unwrap(), Some(saved.clone()));
    let image_before = session.image.input.as_ref().unwrap().id;
    harness.input_mut().dropped_files.push(std::sync::Arc::new(DroppedPath(left_half.clone())));
    let left: Vec<bool> = (0..16).map(|patch| patch % 4 < 2).collect();
    step_until(&mut harness, "the dropped mask's result", |app| app.session.is_up_to_date() && shown_mask(app) == left);
    let app = harness.state();
    assert_eq!(app.session.settings.mask_mode, MaskMode::Image);
    assert_eq!(app.session.image.input.as_ref().unwrap().id, image_before, "the picture stays; only the mask changed");
    assert_eq!(app.session.settings.mask_picture.as_deref(), Some(left_half.as_path()));
}

/// A hub host name that never resolves (`.invalid` is reserved for that): the download fails with the resolver's
/// own words, as it does for a newcomer without network.
const UNREACHABLE_HUB: &str = "http://huggingface.invalid";
const ANALYSIS_TABS: [&str; 4] = ["Attention", "Loss", "Ensemble", "Heads"];
const PICTURE_LABELS: [&str; 4] =
    ["Original picture", "Masked picture", "Reconstruction picture", "Pasted back picture"];

/// A cache folder whose path alone is wider than any window: the hub error names it, so the first-run notice is
/// several lines long.
fn long_cache_folder(root: &std::path::Path) -> PathBuf {
    let folder = (0..4).fold(root.to_owned(), |path, level| {
        path.join(format!("hugging-face-cache-folder-level-{level}-with-a-long-name-{}", "x".repeat(120)))
    });
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

/// The first run without network, at `size`, with `image` named on the command line (else the sample): the demo
/// model stands in, and the notice says why the real one could not be downloaded.
fn first_run_without_network(cache: &std::path::Path, size: Vec2, image: Option<PathBuf>) -> Harness<'static, MaeApp> {
    let hub = HubSettings { endpoint: Some(UNREACHABLE_HUB.into()), ..HubSettings::from_vars(&|_| None) };
    let options = AppOptions { image, ..first_run_options(cache, hub) };
    let mut harness = harness_with(options, Remembered::default(), size);
    step_until(&mut harness, "the download to fail", |app| app.session.model().fetch.is_none());
    step_until(&mut harness, "the demo model's reconstruction", |app| shown_grid(app) == Some(DEMO_GRID));
    harness.step();
    let notice = harness.state().session.messages.notice.clone().expect("a line about the download");
    assert!(
        notice.text.starts_with("Showing the small built-in demo model")
            && notice.text.contains("could not be downloaded")
            && notice.text.contains(&cache.display().to_string()),
        "{}",
        notice.text
    );
    harness
}

/// Every tile on screen, every analysis tab and the four pictures lie inside the window, and the tiles reach
/// the window's right edge and no further: they get exactly the area left for them.
fn assert_laid_out_inside_the_window(harness: &Harness<'static, MaeApp>, what: &str) {
    let window = harness.ctx.content_rect();
    let tree = &harness.state().layout.tree;
    let root = tree.tiles.rect(tree.root().unwrap()).unwrap();
    // The harness draws the app inside its own 8-px margin.
    let right_edge = window.right() - 8.0;
    assert!((root.right() - right_edge).abs() < 1.0, "{what}: the tiles end at {root:?}, the window at {window:?}");
    for tile in tree.active_tiles() {
        let rect = tree.tiles.rect(tile).unwrap();
        let pane = tree.tiles.get_pane(&tile);
        assert!(window.contains_rect(rect), "{what}: tile {tile:?} ({pane:?}) at {rect:?}, window {window:?}");
    }
    for tab in ANALYSIS_TABS {
        let rect = harness.get_by_role_and_label(egui::Role::Button, tab).rect();
        assert!(window.contains_rect(rect), "{what}: the {tab} tab at {rect:?}, window {window:?}");
    }
    for picture in PICTURE_LABELS {
        let rect = harness.get_by_role_and_label(egui::Role::Image, picture).rect();
        assert!(window.contains_rect(rect) && rect.width() > 100.0, "{what}: {picture} at {rect:?}, window {window:?}");
    }
}

#[test]
fn the_first_run_notice_without_network_leaves_every_tile_and_tab_inside_the_window() {
    for size in [Vec2::new(1280.0, 800.0), Vec2::new(1024.0, 640.0)] {
        let root = tempfile::tempdir().unwrap();
        let cache = long_cache_folder(root.path());
        let mut harness = first_run_without_network(&cache, size, None);
        assert_laid_out_inside_the_window(&harness, &format!("{size:?}"));
        // Shown whole, the notice pushes the tiles down, never sideways.
        harness.get_by_label("More").click();
        harness.step();
        harness.step();
        assert!(harness.state().session.messages.notice.as_ref().unwrap().expanded);
        assert_laid_out_inside_the_window(&harness, &format!("{size:?}, the whole notice shown"));
    }
}

#[test]
fn after_a_resize_every_tile_and_tab_is_still_inside_the_window() {
    let root = tempfile::tempdir().unwrap();
    let cache = long_cache_folder(root.path());
    // A picture whose file name is longer than the window is wide, for the status line.
    let picture = root.path().join(format!("{}.png", "a-photo-with-a-very-long-file-name-".repeat(6)));
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 100])).save(&picture).unwrap();
    let mut harness = first_run_without_network(&cache, Vec2::new(1280.0, 800.0), Some(picture));
    assert!(harness.state().session.image.input.as_ref().unwrap().name.starts_with("a-photo"));
    for size in [Vec2::new(1024.0, 640.0), Vec2::new(1600.0, 1000.0), Vec2::new(1280.0, 800.0)] {
        harness.set_size(size);
        harness.step();
        harness.step();
        assert_laid_out_inside_the_window(&harness, &format!("resized to {size:?}"));
    }
}

/// A window on a machine without a system file dialog (the check's answer is given, so the test does not depend
/// on the desktop it runs on).
fn without_system_dialog(model: String) -> AppOptions {
    let mut options = AppOptions::new(model);
    options.system_dialog = Some(SystemDialog::Unavailable(
        "no system file dialog: no org.freedesktop.portal.FileChooser on the session bus and no zenity on PATH".into(),
    ));
    options
}

/// Replaces what a text field of the in-window browser holds by `text`, as typing does, and presses Enter.
fn type_into(harness: &mut Harness<'static, MaeApp>, field: &str, text: &str) {
    harness.get_by_role_and_label(egui::Role::TextInput, field).focus();
    harness.step();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.get_by_role_and_label(egui::Role::TextInput, field).type_text(text);
    harness.step();
    harness.key_press(egui::Key::Enter);
    harness.step();
    harness.step();
}

/// Clicks the widget labelled `label` and lets the window settle (a menu or window opens a frame later).
fn click_and_settle(harness: &mut Harness<'static, MaeApp>, label: &str) {
    harness.get_by_label(label).click();
    harness.run_steps(3);
}

/// Clicks File, then the entry that starts with `entry` (an entry's label includes its shortcut).
fn open_file_menu_entry(harness: &mut Harness<'static, MaeApp>, entry: &str) {
    click_and_settle(harness, "File");
    harness.get_by_label_contains(entry).click();
    harness.run_steps(3);
}

#[test]
fn without_a_system_dialog_open_image_shows_the_in_window_browser_and_opens_the_photo_picked_in_it() {
    let mut harness = ready_harness(without_system_dialog(fixture_model()));
    let folder = tempfile::tempdir().unwrap();
    let photos = folder.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 100]))
        .save(photos.join("gradient.png"))
        .unwrap();
    std::fs::write(photos.join("notes.txt"), "not a picture").unwrap();
    let image_before = harness.state().session.image.input.as_ref().unwrap().id;

    open_file_menu_entry(&mut harness, "Open image…");
    assert!(harness.state().session.files.browser.is_some(), "the in-window browser opened");
    harness.get_by_label_contains("no org.freedesktop.portal.FileChooser");
    type_into(&mut harness, PATH_LABEL, &photos.display().to_string());
    assert_eq!(harness.state().session.files.browser.as_ref().unwrap().folder(), photos.canonicalize().unwrap());
    harness.get_by_label("notes.txt");
    click_and_settle(&mut harness, "gradient.png · image");
    harness.get_by_label("Open").click();
    step_until(&mut harness, "the picked photo's result", |app| {
        app.session.image.input.as_ref().unwrap().id != image_before && app.session.is_up_to_date()
    });
    let app = harness.state();
    assert!(app.session.files.browser.is_none(), "the browser closed");
    assert_eq!(app.session.image.input.as_ref().unwrap().rgb.dimensions(), (40, 30));
    assert_eq!(app.session.image.input.as_ref().unwrap().name, "gradient.png");

    // A model folder through the same browser: typing its path and Enter shows it, "Open model" loads it.
    open_file_menu_entry(&mut harness, "Open model folder…");
    let other_model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/tiny-p8");
    type_into(&mut harness, PATH_LABEL, &other_model.display().to_string());
    harness.get_by_label("config.json");
    harness.get_by_label("Open model").click();
    step_until(&mut harness, "the other model's result", |app| {
        app.session.model().info().is_some_and(|info| info.name != "tiny-p16") && app.session.is_up_to_date()
    });
    assert_eq!(harness.state().session.model().info().unwrap().name, "tiny-p8");

    // The File menu opens the browser at any time, where the last choice was made; Esc closes it.
    open_file_menu_entry(&mut harness, "Browse files in the window…");
    let models = other_model.parent().unwrap().canonicalize().unwrap();
    assert_eq!(harness.state().session.files.browser.as_ref().unwrap().folder(), models);
    harness.key_press(egui::Key::Escape);
    harness.step();
    assert!(harness.state().session.files.browser.is_none());
}

#[test]
fn saving_through_the_in_window_browser_asks_before_replacing_a_file() {
    let mut harness = ready_harness(without_system_dialog(fixture_model()));
    let folder = tempfile::tempdir().unwrap();
    let existing = folder.path().join("panels.png");
    std::fs::write(&existing, "an older file").unwrap();
    harness.state_mut().session.files.last_folder = Some(folder.path().to_owned());

    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::S);
    harness.step();
    harness.step();
    let browser = harness.state().session.files.browser.as_ref().expect("the in-window browser opened");
    assert!(browser.file_name.ends_with(".png"), "a name is suggested: {}", browser.file_name);
    type_into(&mut harness, FILE_NAME_LABEL, "panels.png");
    harness.get_by_label_contains("panels.png already exists");
    assert_eq!(std::fs::read(&existing).unwrap(), b"an older file", "nothing replaced before the answer");
    // "Keep it" goes back to the name; the second time, "Replace" writes the four pictures over it.
    click_and_settle(&mut harness, "Keep it");
    assert!(harness.state().session.files.browser.as_ref().unwrap().confirm_replace.is_none());
    click_and_settle(&mut harness, "Save");
    harness.get_by_label(REPLACE_LABEL).click();
    step_until(&mut harness, "the save", |app| {
        app.session.messages.notice.as_ref().is_some_and(|n| n.text.starts_with("saved"))
    });
    let saved = image::open(&existing).unwrap();
    assert_eq!((saved.width(), saved.height()), (4 * 64 + 3 * 8, 64));
    assert!(harness.state().session.files.browser.is_none());
}

fn difference_picture(app: &MaeApp) -> Option<image::RgbaImage> {
    let pair = app.session.result()?.model(1)?;
    pair.difference.as_ref()?.as_ref().ok().map(|difference| difference.picture.clone())
}

#[test]
fn a_second_model_is_compared_on_the_same_mask_and_closing_it_ends_the_pair() {
    let scratch = tempfile::tempdir().unwrap();
    let model_b = mae_integration_tests::perturbed_tiny_p8(scratch.path());
    let tiny_p8 = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/tiny-p8");
    let mut harness = ready_harness(AppOptions::new(tiny_p8.display().to_string()));
    assert!(!harness.state().layout.is_open(PanelId::Compare), "closed until there is something to compare");
    // Type model B under "Compare with" and press Enter.
    type_into(&mut harness, COMPARE_FIELD_LABEL, &model_b.display().to_string());
    step_until(&mut harness, "the pair", |app| app.session.is_up_to_date() && difference_picture(app).is_some());
    let app = harness.state();
    assert!(app.layout.is_open(PanelId::Compare), "model B brings the Compare panel forward");
    let result = app.session.result().unwrap();
    let pair = result.model(1).unwrap();
    assert_eq!(pair.masked_patches(), shown_mask(app), "the same mask");
    assert_eq!(app.session.settings.compare_models, [model_b.to_str().unwrap()], "B is remembered");
    for label in [pasted_label(0), pasted_label(1), difference_label(1)] {
        harness.get_by_role_and_label(egui::Role::Image, &label);
    }
    harness.get_by_label_contains("Masked patches won: A");
    // Another ratio: both models run again, and the difference map follows.
    let before = difference_picture(harness.state()).unwrap();
    harness.state_mut().session.nudge_ratio(-0.25);
    step_until(&mut harness, "the pair at the new ratio", |app| {
        app.session.is_up_to_date() && difference_picture(app).is_some_and(|picture| picture != before)
    });
    // The Loss panel's switch: B's heatmap is drawn (from B's forward pass) and A's is no longer asked for.
    harness.state_mut().layout.bring_to_front(PanelId::Loss);
    harness.step();
    harness.get_by_role_and_label(egui::Role::Button, "B").click();
    step_until(&mut harness, "B's loss heatmap", |app| {
        let result = app.session.result();
        app.session.is_up_to_date()
            && result.is_some_and(|r| r.first().pictures.loss.is_none())
            && result.and_then(|r| r.model(1)).is_some_and(|pair| pair.pictures.loss.is_some())
    });
    assert_eq!(harness.state().panels.loss.model, 1);
    // Swap: B becomes model A (every panel shows it) and A is compared with it.
    let (a_name, b_name) = {
        let session = &harness.state().session;
        (session.model().info().unwrap().name.clone(), session.models[1].info().unwrap().name.clone())
    };
    harness.get_by_label(&swap_label(1)).click();
    step_until(&mut harness, "the swapped pair", |app| {
        app.session.model().info().is_some_and(|info| info.name == b_name)
            && app.session.is_up_to_date()
            && app.session.result().and_then(|result| result.model(1)).is_some_and(|pair| pair.name == a_name)
    });
    // Close B: the next results are A's alone, and B is forgotten for the next start.
    harness.get_by_label(&close_label(1)).click();
    harness.step();
    assert_eq!(harness.state().session.models.len(), 1);
    harness.state_mut().session.nudge_ratio(0.1);
    step_until(&mut harness, "A alone", |app| {
        app.session.is_up_to_date() && app.session.result().is_some_and(|result| result.models.len() == 1)
    });
    assert!(harness.state().session.settings.compare_models.is_empty());
}

#[test]
fn a_pair_over_the_memory_budget_is_refused_with_both_sizes_and_a_stays() {
    let scratch = tempfile::tempdir().unwrap();
    let huge = mae_integration_tests::oversized_tiny_p8(scratch.path());
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.state_mut().session.compare_with([huge.display().to_string()]);
    step_until(&mut harness, "the refusal", |app| {
        app.session.models.len() == 1 && app.session.messages.notice.is_some()
    });
    let notice = harness.state().session.messages.notice.clone().unwrap();
    assert!(notice.is_error && notice.text.contains("beside") && notice.text.contains("TB"), "{}", notice.text);
    assert!(matches!(harness.state().session.model().state, ModelState::Ready(_)), "model A is still in use");
}

#[test]
fn the_menus_entries_do_what_they_say_when_clicked() {
    let mut harness = ready_harness(without_system_dialog(fixture_model()));
    // File → Browse files in the window…: the in-window browser, for an image; Cancel closes it.
    open_file_menu_entry(&mut harness, "Browse files in the window");
    assert!(harness.state().session.files.browser.is_some(), "the in-window browser opened");
    click_and_settle(&mut harness, "Cancel");
    assert!(harness.state().session.files.browser.is_none());
    // File → Export…: the Export dialog.
    assert!(!harness.state().export.open);
    open_file_menu_entry(&mut harness, "Export…");
    assert!(harness.state().export.open);
    harness.get_by_label("Export grid…");
    harness.state_mut().export.open = false;
    harness.step();
    // View → a panel's checkbox closes its tile (and its tab goes).
    assert!(harness.state().layout.is_open(PanelId::Heads));
    click_and_settle(&mut harness, "View");
    harness.get_by_role_and_label(egui::Role::CheckBox, "Heads").click();
    harness.run_steps(3);
    assert!(!harness.state().layout.is_open(PanelId::Heads));
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    assert!(harness.query_by_role_and_label(egui::Role::Button, "Heads").is_none(), "the Heads tab is gone");
    // View → every other panel's checkbox: closes its tile, and a second click opens it again.
    for &panel in PanelId::ALL.iter().filter(|&&panel| panel != PanelId::Heads) {
        let title = harness.state().panels.get(panel).title();
        for _ in 0..2 {
            let open = harness.state().layout.is_open(panel);
            click_and_settle(&mut harness, "View");
            harness.get_by_role_and_label(egui::Role::CheckBox, title).click();
            harness.run_steps(3);
            assert_eq!(harness.state().layout.is_open(panel), !open, "View → {title}");
            harness.key_press(egui::Key::Escape);
            harness.run_steps(2);
        }
    }
    // View → Controls hides the control panel, ratio slider and all.
    click_and_settle(&mut harness, "View");
    harness.get_by_role_and_label(egui::Role::CheckBox, "Controls").click();
    harness.run_steps(3);
    assert!(!harness.state().session.settings.show_controls);
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    assert!(harness.query_by_role_and_label(egui::Role::Slider, RATIO_LABEL).is_none(), "the controls are hidden");
    // View → Dark theme, and the theme button at the right of the menu bar: the window's theme follows.
    assert!(harness.state().session.settings.dark_theme);
    click_and_settle(&mut harness, "View");
    harness.get_by_role_and_label(egui::Role::CheckBox, "Dark theme").click();
    harness.run_steps(3);
    assert!(!harness.state().session.settings.dark_theme);
    assert_eq!(harness.ctx.theme(), egui::Theme::Light);
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    click_and_settle(&mut harness, "Dark theme");
    assert!(harness.state().session.settings.dark_theme);
    assert_eq!(harness.ctx.theme(), egui::Theme::Dark);
    // Help → Test crash recovery: the worker panics, the window says so and carries on with the model.
    click_and_settle(&mut harness, "Help");
    harness.get_by_label_contains("Shortcuts:");
    harness.get_by_label("Test crash recovery").click();
    step_until(&mut harness, "the restart notice", |app| app.session.forwards.stats().restarts() == 1);
    step_until(&mut harness, "the notice", |app| {
        app.session.messages.notice.as_ref().is_some_and(|notice| notice.text.contains("crash requested"))
    });
    harness.state_mut().session.settings.mask_ratio = 0.5;
    step_until(&mut harness, "a result after the crash", |app| {
        app.session.is_up_to_date() && shown_ratio(app) == Some(0.5)
    });
}

#[test]
fn the_export_dialog_is_operated_through_its_widgets() {
    let photo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/chelsea.png");
    let mut options = without_system_dialog(fixture_model());
    options.image = Some(photo.clone());
    let mut harness = ready_harness(options);
    let folder = tempfile::tempdir().unwrap();
    harness.state_mut().session.files.last_folder = Some(folder.path().to_owned());
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::E);
    harness.run_steps(2);
    let set_text = |harness: &mut Harness<'static, MaeApp>, field: &str, text: &str| {
        harness.get_by_role_and_label(egui::Role::TextInput, field).set_text_value_accesskit(text);
        harness.run_steps(2);
    };
    // A ratio outside [0, 1], typed into the dialog, is named there and in the dialog's error line.
    set_text(&mut harness, "Mask ratios", "0.5, 2");
    click_and_settle(&mut harness, "Export grid…");
    assert!(harness.state().export.error.as_ref().unwrap().contains("\"2\""));
    assert!(harness.state().session.files.browser.is_none(), "no file is asked for");
    harness.get_by_label_contains("\"2\"");
    // Masks, ratios, seeds, tile size and one more column, all through the widgets.
    set_text(&mut harness, "Masks", "grid, random");
    set_text(&mut harness, "Mask ratios", "0.25");
    set_text(&mut harness, "Seeds", "3");
    harness.get_by_label("Tile size").set_value_accesskit(48.0);
    harness.run_steps(2);
    harness.get_by_role_and_label(egui::Role::CheckBox, "mask").click();
    harness.run_steps(2);
    let settings = &harness.state().export.settings;
    assert_eq!(
        (settings.masks.as_str(), settings.ratios.as_str(), settings.seeds.as_str(), settings.tile_size),
        ("grid, random", "0.25", "3", 48)
    );
    assert_eq!(settings.columns, [true, true, true, true, true, false, false]);
    // Export grid… asks for a file (here in the window's own browser), then the grid is written.
    click_and_settle(&mut harness, "Export grid…");
    assert_eq!(harness.state().export.error, None);
    type_into(&mut harness, FILE_NAME_LABEL, "grid.png");
    let path = folder.path().join("grid.png");
    step_until(&mut harness, "the export", |app| !app.export.job.is_running() && path.is_file());
    // It is the grid the export command draws for the same choices.
    let cli = folder.path().join("cli.png");
    let model = fixture_model();
    let choices = ["--masks", "grid,random", "--mask-ratios", "0.25", "--seeds", "3", "--tile-size", "48"];
    let columns = ["--columns", "original,mask,masked,reconstruction,pasted", "--model", model.as_str()];
    export_command(&[&choices[..], &columns[..]].concat(), &photo, &cli);
    let (grid, expected) = (image::open(&path).unwrap().to_rgba8(), image::open(&cli).unwrap().to_rgba8());
    assert_eq!(grid.dimensions(), expected.dimensions());
    assert!(grid == expected, "the dialog's grid differs from the command's");
}

#[test]
fn the_export_dialog_with_its_animation_section_fits_the_smallest_window_we_test() {
    let mut harness = harness_with(AppOptions::new(fixture_model()), Remembered::default(), Vec2::new(1024.0, 640.0));
    step_until(&mut harness, "the first reconstruction", |app| app.session.is_up_to_date());
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::E);
    harness.run_steps(3);
    let window = harness.ctx.content_rect();
    for button in ["Export grid…", "Export animation…", "Four pictures as one PNG…"] {
        let rect = harness.get_by_role_and_label(egui::Role::Button, button).rect();
        assert!(window.contains_rect(rect), "{button} at {rect:?} is outside the window {window:?}");
    }
}

#[test]
fn an_animation_from_the_export_dialog_has_the_bytes_the_animate_command_writes() {
    let photo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/chelsea.png");
    let mut options = without_system_dialog(fixture_model());
    options.image = Some(photo.clone());
    let mut harness = ready_harness(options);
    let folder = tempfile::tempdir().unwrap();
    harness.state_mut().session.files.last_folder = Some(folder.path().to_owned());
    // File → Export animation… opens the Export dialog, which holds the animation's settings.
    open_file_menu_entry(&mut harness, "Export animation…");
    assert!(harness.state().export.open);
    let set_text = |harness: &mut Harness<'static, MaeApp>, field: &str, text: &str| {
        harness.get_by_role_and_label(egui::Role::TextInput, field).set_text_value_accesskit(text);
        harness.run_steps(2);
    };
    // Both lists varied: refused in the dialog, and no file is asked for.
    set_text(&mut harness, "Frame mask ratios", "0.5:0.7:0.1");
    set_text(&mut harness, "Frame seeds", "1-2");
    click_and_settle(&mut harness, "Export animation…");
    let error = harness.state().export.error.clone().unwrap();
    assert!(error.contains("both the mask ratios (3) and the seeds (2)"), "{error}");
    assert!(harness.state().session.files.browser.is_none(), "no file is asked for");
    set_text(&mut harness, "Frame seeds", "1");
    harness.get_by_label("Tile size").set_value_accesskit(40.0);
    harness.get_by_label("Frames per second").set_value_accesskit(10.0);
    harness.run_steps(2);
    for name in ["animation.gif", "animation.png"] {
        click_and_settle(&mut harness, "Export animation…");
        assert_eq!(harness.state().export.error, None);
        type_into(&mut harness, FILE_NAME_LABEL, name);
        let path = folder.path().join(name);
        step_until(&mut harness, "the animation", |app| !app.export.animation.is_running() && path.is_file());
        let cli = folder.path().join(format!("cli-{name}"));
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
            .args(["animate", "--device", "cpu", "--model", &fixture_model(), "--image"])
            .arg(&photo)
            .args(["--mask-ratios", "0.5:0.7:0.1", "--seeds", "1", "--tile-size", "40", "--fps", "10", "--out"])
            .arg(&cli)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert_same_bytes(&path, &cli);
    }
}

/// The attention picture on screen now, once the window is up to date.
fn settled_attention(harness: &mut Harness<'static, MaeApp>, what: &str) -> image::RgbaImage {
    step_until(harness, what, |app| app.session.is_up_to_date());
    harness.state().session.result().unwrap().first().pictures.attention.clone().expect("an attention picture")
}

#[test]
fn the_attention_controls_change_the_map_on_screen() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let forwards = harness.state().session.forwards.stats().forwards();
    let encoder_map = settled_attention(&mut harness, "the first map");
    let selection = |app: &MaeApp| app.panels.attention.view.selection;
    // Stack: Decoder.
    harness.get_by_label("Decoder").click();
    harness.run_steps(2);
    assert_eq!(selection(harness.state()).stack, Stack::Decoder);
    let decoder_map = settled_attention(&mut harness, "the decoder map");
    assert!(decoder_map != encoder_map, "the stack did not change the map");
    // Heads: one head instead of the mean.
    harness.get_by_role_and_label(egui::Role::ComboBox, "Heads").click();
    harness.run_steps(2);
    harness.get_by_label("head 1").click();
    harness.run_steps(2);
    assert_eq!(selection(harness.state()).heads, HeadFusion::Head(1));
    let head_map = settled_attention(&mut harness, "head 1's map");
    assert!(head_map != decoder_map, "the head did not change the map");
    // Layer: the last of the decoder's three (a rollout of one layer colours like that layer alone).
    harness.get_by_role_and_label(egui::Role::Slider, "Layer").set_value_accesskit(2.0);
    harness.run_steps(2);
    assert_eq!(selection(harness.state()).layer, 2);
    let layer_map = settled_attention(&mut harness, "layer 2's map");
    assert!(layer_map != head_map, "the layer did not change the map");
    // Rollout, then its discard ratio.
    harness.get_by_role_and_label(egui::Role::CheckBox, "Rollout").click();
    harness.run_steps(2);
    assert!(selection(harness.state()).rollout);
    let rollout_map = settled_attention(&mut harness, "the rollout map");
    assert!(rollout_map != layer_map, "rollout did not change the map");
    harness.get_by_role_and_label(egui::Role::Slider, "Discard").set_value_accesskit(0.9);
    harness.run_steps(2);
    assert!((selection(harness.state()).discard_ratio - 0.9).abs() < 1e-6);
    let discard_map = settled_attention(&mut harness, "the map with discard");
    assert!(discard_map != rollout_map, "the discard ratio did not change the map");
    // A click on the map asks about the patch under the pointer (tiny-p16: 4×4 patches; row 2, column 1 is 9).
    let map = harness.get_by_label("attention overlay").rect();
    click_at(&mut harness, map.min + egui::vec2(map.width() * 1.5 / 4.0, map.height() * 2.5 / 4.0));
    assert_eq!(harness.state().session.settings.query, Query::Patch(9));
    let patch_map = settled_attention(&mut harness, "patch 9's map");
    assert!(patch_map != discard_map, "the query patch did not change the map");
    // Use CLS goes back to the CLS token's row: the map before the click.
    harness.get_by_label("Use CLS").click();
    harness.run_steps(2);
    assert_eq!(harness.state().session.settings.query, Query::Cls);
    assert!(settled_attention(&mut harness, "the CLS map again") == discard_map, "not the CLS map again");
    assert_eq!(harness.state().session.forwards.stats().forwards(), forwards, "every map drawn from the cache");
}

#[test]
fn the_loss_panel_switches_between_sorted_losses_and_their_histogram() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.get_by_role_and_label(egui::Role::Button, "Loss").click();
    harness.run_steps(2);
    step_until(&mut harness, "the loss overlay", |app| {
        app.session.is_up_to_date() && app.session.result().is_some_and(|result| result.first().pictures.loss.is_some())
    });
    harness.run_steps(2);
    // egui_plot's axes are painted, not accessible: the panel's choice is read, and what a restart remembers.
    let plot = |app: &MaeApp| format!("{:?}", app.panels.loss.plot);
    assert_eq!(plot(harness.state()), "Sorted");
    harness.get_by_label("Histogram").click();
    harness.run_steps(2);
    assert_eq!(plot(harness.state()), "Histogram");
    let (_, remembered) = restart(harness.state_mut());
    let restarted = harness_with(AppOptions::new(fixture_model()), remembered, Vec2::new(1280.0, 800.0));
    assert_eq!(plot(restarted.state()), "Histogram");
    harness.get_by_label("Sorted").click();
    harness.run_steps(2);
    assert_eq!(plot(harness.state()), "Sorted");
}

#[test]
fn the_dataset_panel_fills_from_a_folder_sorts_and_a_click_opens_the_image() {
    let folder = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(root.join("tests/fixtures/photos/rocket.jpg"), folder.path().join("rocket.jpg")).unwrap();
    std::fs::copy(root.join("assets/chelsea.png"), folder.path().join("chelsea.png")).unwrap();
    let gradient = image::RgbImage::from_fn(80, 60, |x, y| image::Rgb([(x * 3) as u8, (y * 4) as u8, 90]));
    gradient.save(folder.path().join("gradient.png")).unwrap();
    // A file named like a picture that is not one: its row says why, and the run goes on.
    std::fs::write(folder.path().join("notes.png"), "not a picture").unwrap();
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.state_mut().layout.bring_to_front(PanelId::Dataset);
    harness.step();
    type_into(&mut harness, DATASET_FOLDER_LABEL, &folder.path().display().to_string());
    step_until(&mut harness, "every image measured", |app| {
        let dataset = &app.panels.dataset;
        !dataset.job.is_running() && dataset.rows.len() == 4 && dataset.rows.iter().all(|row| row.evaluation.is_some())
    });
    let dataset = &harness.state().panels.dataset;
    let failed: Vec<&str> = dataset
        .rows
        .iter()
        .filter(|row| row.evaluation.as_ref().unwrap().quality.is_err())
        .map(|row| row.name.as_str())
        .collect();
    assert_eq!(failed, ["notes.png"]);
    // Sorted by masked loss, worst first (the default), the failed row last.
    let masked_loss = |app: &MaeApp, index: usize| {
        let row = &app.panels.dataset.rows[index];
        row.evaluation.as_ref().unwrap().quality.as_ref().ok().and_then(|q| q.masked_loss)
    };
    let order = harness.state().panels.dataset.order();
    let losses: Vec<f32> = order[..3].iter().map(|&i| masked_loss(harness.state(), i).unwrap()).collect();
    assert!(losses.windows(2).all(|pair| pair[0] >= pair[1]), "{losses:?}");
    assert_eq!(harness.state().panels.dataset.rows[order[3]].name, "notes.png");
    // A click on the header sorts the other way.
    harness.get_by_label_contains("masked loss v").click();
    harness.step();
    let order = harness.state().panels.dataset.order();
    let losses: Vec<f32> = order[..3].iter().map(|&i| masked_loss(harness.state(), i).unwrap()).collect();
    assert!(losses.windows(2).all(|pair| pair[0] <= pair[1]), "{losses:?}");
    // A click on a row opens that image in the picture panels.
    let best = harness.state().panels.dataset.rows[order[0]].name.clone();
    harness.get_by_label(&best).click();
    step_until(&mut harness, "the clicked image", |app| {
        app.session.image.input.as_ref().is_some_and(|image| image.name == best) && app.session.is_up_to_date()
    });
}

#[test]
fn the_dataset_folder_is_chosen_in_the_file_browser_and_evaluated() {
    let folder = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(root.join("tests/fixtures/photos/rocket.jpg"), folder.path().join("rocket.jpg")).unwrap();
    std::fs::copy(root.join("assets/chelsea.png"), folder.path().join("chelsea.png")).unwrap();
    let mut harness = ready_harness(without_system_dialog(fixture_model()));
    harness.state_mut().layout.bring_to_front(PanelId::Dataset);
    harness.step();
    click_and_settle(&mut harness, "…");
    assert!(harness.state().session.files.browser.is_some(), "no system dialog here: the in-window browser opens");
    // Go to the folder, then choose it: it is evaluated at once.
    type_into(&mut harness, PATH_LABEL, &folder.path().display().to_string());
    click_and_settle(&mut harness, "Choose folder");
    step_until(&mut harness, "both images measured", |app| {
        let dataset = &app.panels.dataset;
        !dataset.job.is_running() && dataset.rows.len() == 2 && dataset.rows.iter().all(|row| row.evaluation.is_some())
    });
    assert_eq!(harness.state().panels.dataset.folder, folder.path().display().to_string());
}

/// Every control drawn this frame (buttons, fields, sliders, check boxes, combo boxes, radio buttons, drag values)
/// that lies outside the window of `size` and cannot be brought into it: each is scrolled into view (as a screen
/// reader or the keyboard would) and looked at again; one in a scroll area is reachable, one cut off by the window's
/// edge is not. Each as its role, label and rectangle.
fn unreachable_controls(harness: &mut Harness<'static, MaeApp>, size: Vec2) -> Vec<String> {
    let window = egui::Rect::from_min_size(egui::Pos2::ZERO, size).expand(1.0);
    let roles = [
        egui::Role::Button,
        egui::Role::TextInput,
        egui::Role::Slider,
        egui::Role::CheckBox,
        egui::Role::ComboBox,
        egui::Role::RadioButton,
        egui::Role::SpinButton,
    ];
    let outside = |harness: &Harness<'static, MaeApp>| {
        let mut found = Vec::new();
        for role in roles {
            for node in harness.query_all_by_role(role) {
                let rect = node.rect();
                if rect.area() > 0.0 && !window.contains_rect(rect) {
                    found.push((node.accesskit_node().id(), format!("{role:?} {:?}", node.accesskit_node().label())));
                }
            }
        }
        found
    };
    let mut unreachable = Vec::new();
    for (id, description) in outside(harness) {
        let Some(node) = harness.query_by(|node| node.id() == id) else { continue };
        node.scroll_to_me();
        harness.run_steps(3);
        if let Some(node) = harness.query_by(|node| node.id() == id)
            && !window.contains_rect(node.rect())
        {
            unreachable.push(format!("{description} at {:?}, even scrolled to", node.rect()));
        }
    }
    unreachable
}

#[test]
fn every_panel_keeps_its_controls_inside_the_window_at_the_sizes_we_test() {
    // A folder for the Dataset table, and a model B for the Compare panel.
    let folder = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(root.join("tests/fixtures/photos/rocket.jpg"), folder.path().join("a-rocket-on-its-pad.jpg"))
        .unwrap();
    std::fs::copy(root.join("assets/chelsea.png"), folder.path().join("chelsea.png")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let model_b = mae_integration_tests::perturbed_tiny_p8(scratch.path()).display().to_string();
    for (width, height) in [(1024.0, 640.0), (1280.0, 800.0), (1600.0, 1000.0), (1920.0, 1080.0)] {
        let size = Vec2::new(width, height);
        let mut harness = harness_with(AppOptions::new(fixture_model()), Remembered::default(), size);
        step_until(&mut harness, "the first picture", |app| app.session.is_up_to_date());
        // The layout a first start has (four analysis tabs, the narrowest), then the one with every tab open.
        let open: Vec<PanelId> =
            PanelId::ALL.iter().copied().filter(|&panel| harness.state().layout.is_open(panel)).collect();
        for panel in open {
            harness.state_mut().layout.bring_to_front(panel);
            harness.run_steps(4);
            let unreachable = unreachable_controls(&mut harness, size);
            assert!(unreachable.is_empty(), "{width}×{height}, default layout, {panel:?} in front: {unreachable:#?}");
        }
        harness.state_mut().session.compare_with([model_b.clone()]);
        step_until(&mut harness, "the pair", |app| {
            app.session.is_up_to_date() && app.session.result().is_some_and(|result| result.models.len() == 2)
        });
        harness.state_mut().panels.dataset.folder = folder.path().display().to_string();
        let app = harness.state_mut();
        app.panels.dataset.evaluate(&mut app.session);
        step_until(&mut harness, "the folder measured", |app| {
            !app.panels.dataset.job.is_running() && app.panels.dataset.rows.iter().all(|row| row.evaluation.is_some())
        });
        for &panel in PanelId::ALL {
            harness.state_mut().layout.bring_to_front(panel);
            harness.run_steps(4);
            let unreachable = unreachable_controls(&mut harness, size);
            assert!(unreachable.is_empty(), "{width}×{height}, {panel:?} in front: {unreachable:#?}");
        }
        // The Dataset table at this size: every column's header is on screen, or the numbers scroll sideways
        // under the frozen image column.
        harness.state_mut().layout.bring_to_front(PanelId::Dataset);
        harness.run_steps(4);
        for title in ["image", "masked loss v", "SSIM"] {
            let shown = harness.query_by_role_and_label(egui::Role::Button, title).is_some();
            assert!(shown || (title == "SSIM" && width < 1600.0), "{width}×{height}: no {title} column");
        }
        harness.get_by_label("a-rocket-on-its-pad.jpg");
    }
}

#[test]
fn evaluate_at_start_runs_when_model_b_opens_the_compare_tab_in_front_of_the_dataset() {
    // `--evaluate FOLDER --compare B`: B's Compare tab opens in front of the Dataset tab; the evaluation used to
    // wait for the Dataset panel to be drawn, for ever (a screenshot run timed out).
    let folder = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(root.join("tests/fixtures/photos/rocket.jpg"), folder.path().join("rocket.jpg")).unwrap();
    std::fs::copy(root.join("assets/chelsea.png"), folder.path().join("chelsea.png")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut options = AppOptions::new(fixture_model());
    options.compare = vec![mae_integration_tests::perturbed_tiny_p8(scratch.path()).display().to_string()];
    // As `window::run` sets it up, before the first frame: the Dataset tab is never drawn, the Compare tab is in
    // front of it from the start.
    let mut app = MaeApp::new(options, Remembered::default());
    app.panels.dataset.folder = folder.path().display().to_string();
    app.panels.dataset.start_when_ready = true;
    app.layout.bring_to_front(PanelId::Dataset);
    app.layout.bring_to_front(PanelId::Compare);
    let mut harness =
        Harness::builder().with_size(Vec2::new(1280.0, 800.0)).build_ui_state(|ui, app: &mut MaeApp| app.show(ui), app);
    step_until(&mut harness, "the folder measured behind the Compare tab", |app| {
        let dataset = &app.panels.dataset;
        app.layout.visible_panels().contains(&PanelId::Compare)
            && !dataset.start_when_ready
            && !dataset.job.is_running()
            && dataset.rows.len() == 2
            && dataset.rows.iter().all(|row| row.evaluation.is_some())
    });
}

#[test]
fn a_worker_restart_while_the_worst_images_export_leaves_its_button_usable() {
    use mae_explorer::window::panels::Panel;
    use mae_explorer::window::panels::dataset::WORST_BUTTON;
    let folder = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(root.join("tests/fixtures/photos/rocket.jpg"), folder.path().join("rocket.jpg")).unwrap();
    std::fs::copy(root.join("assets/chelsea.png"), folder.path().join("chelsea.png")).unwrap();
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.state_mut().layout.bring_to_front(PanelId::Dataset);
    harness.state_mut().panels.dataset.folder = folder.path().display().to_string();
    let app = harness.state_mut();
    app.panels.dataset.evaluate(&mut app.session);
    step_until(&mut harness, "the folder measured", |app| {
        !app.panels.dataset.job.is_running() && app.panels.dataset.rows.iter().all(|row| row.evaluation.is_some())
    });
    // The export is on its way when the worker restarts (it panicked): the export is lost with it, and the button
    // that was disabled while it ran is enabled again (it stayed disabled for good before the one job tracker).
    let out = tempfile::tempdir().unwrap();
    let app = harness.state_mut();
    app.panels.dataset.export_worst(out.path().join("worst.png"), &mut app.session);
    assert!(app.panels.dataset.export.is_running());
    let restarted = mae_explorer::worker::Response::Restarted { message: "the model worker crashed".into() };
    app.panels.dataset.on_response(&restarted, &mut app.session);
    assert!(!app.panels.dataset.export.is_running());
    harness.run_steps(2);
    assert!(!harness.get_by_label(WORST_BUTTON).accesskit_node().is_disabled(), "the button is usable again");
}

/// Saves what File's `entry` saves through the in-window browser, into `folder` under `name`.
fn save_from_file_menu(harness: &mut Harness<'static, MaeApp>, entry: &str, folder: &std::path::Path, name: &str) {
    harness.state_mut().session.files.last_folder = Some(folder.to_owned());
    open_file_menu_entry(harness, entry);
    assert!(harness.state().session.files.browser.is_some(), "{entry}: the in-window browser opened");
    type_into(harness, FILE_NAME_LABEL, name);
    step_until(harness, &format!("{entry}: the save"), |app| {
        app.session.files.browser.is_none()
            && app.session.messages.notice.as_ref().is_some_and(|n| n.text.contains(name))
    });
}

#[test]
fn every_file_menu_entry_and_dataset_button_does_what_it_says_when_clicked() {
    // A cache with one model in the hub's layout (tiny-p8 as facebook/vit-mae-base), which the cached-model list
    // shows and loads offline.
    let cache = tempfile::tempdir().unwrap();
    let snapshot = cache.path().join("models--facebook--vit-mae-base/snapshots").join("a".repeat(40));
    std::fs::create_dir_all(&snapshot).unwrap();
    let tiny_p8 = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/tiny-p8");
    for file in ["config.json", "model.safetensors", "preprocessor_config.json"] {
        std::fs::copy(tiny_p8.join(file), snapshot.join(file)).unwrap();
    }
    let refs = cache.path().join("models--facebook--vit-mae-base/refs");
    std::fs::create_dir_all(&refs).unwrap();
    std::fs::write(refs.join("main"), "a".repeat(40)).unwrap();
    let mut options = without_system_dialog(fixture_model());
    options.hub =
        HubSettings { cache_dir: cache.path().to_owned(), offline: true, ..HubSettings::from_vars(&|_| None) };
    let mut harness = ready_harness(options);
    let folder = tempfile::tempdir().unwrap();

    // Save the four pictures: written, and read back at four tiles side by side.
    save_from_file_menu(&mut harness, "Save the four pictures as PNG", folder.path(), "four.png");
    let four = image::open(folder.path().join("four.png")).unwrap();
    assert_eq!((four.width(), four.height()), (4 * 64 + 3 * 8, 64));

    // Save mask…, then Open mask… reads it back: the mask on screen is the one saved.
    let saved_mask = shown_mask(harness.state());
    save_from_file_menu(&mut harness, "Save mask", folder.path(), "mask.png");
    harness.state_mut().session.settings.seed = 11;
    step_until(&mut harness, "another random mask", |app| app.session.is_up_to_date() && shown_mask(app) != saved_mask);
    open_file_menu_entry(&mut harness, "Open mask");
    type_into(&mut harness, PATH_LABEL, &folder.path().display().to_string());
    click_and_settle(&mut harness, "mask.png · image");
    harness.get_by_label("Open mask").click();
    step_until(&mut harness, "the mask from the picture", |app| {
        app.session.settings.mask_mode == MaskMode::Image && app.session.is_up_to_date()
    });
    assert_eq!(shown_mask(harness.state()), saved_mask, "the saved mask reads back as itself");

    // Open image…, then File → Open recent → that image again (after another one was opened).
    let photos = folder.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 100]))
        .save(photos.join("a.png"))
        .unwrap();
    std::fs::copy(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/chelsea.png"), photos.join("b.png"))
        .unwrap();
    for name in ["a.png", "b.png"] {
        open_file_menu_entry(&mut harness, "Open image");
        type_into(&mut harness, PATH_LABEL, &photos.display().to_string());
        click_and_settle(&mut harness, &format!("{name} · image"));
        harness.get_by_label("Open").click();
        step_until(&mut harness, name, |app| app.session.image.input.as_ref().is_some_and(|image| image.name == name));
    }
    click_and_settle(&mut harness, "File");
    harness.get_by_label("Open recent").click();
    harness.run_steps(3);
    let recent = photos.canonicalize().unwrap().join("a.png").display().to_string();
    harness.get_by_label_contains(&recent).click();
    step_until(&mut harness, "the recent image", |app| {
        app.session.image.input.as_ref().is_some_and(|image| image.name == "a.png") && app.session.is_up_to_date()
    });

    // The cached-model list shows the cache's model; choosing it loads it.
    click_and_settle(&mut harness, "File");
    harness.get_by_label("Models in the Hugging Face cache").click();
    harness.run_steps(3);
    harness
        .get_by(|node| {
            node.role() == egui::Role::Button
                && node.label().is_some_and(|label| label.contains("facebook/vit-mae-base"))
        })
        .click();
    step_until(&mut harness, "the cached model", |app| {
        app.session.model().info().is_some_and(|info| info.name == "facebook/vit-mae-base")
            && app.session.is_up_to_date()
    });

    // The Dataset panel's buttons: Evaluate starts the job; "Export the worst as a grid…" writes a grid.
    let images = tempfile::tempdir().unwrap();
    std::fs::copy(photos.join("a.png"), images.path().join("a.png")).unwrap();
    std::fs::copy(photos.join("b.png"), images.path().join("b.png")).unwrap();
    // (A folder is measured at a drawn mask: a picture mask names patches of one image.)
    harness.state_mut().session.set_mask_mode(MaskMode::Random);
    harness.state_mut().layout.bring_to_front(PanelId::Dataset);
    harness.state_mut().panels.dataset.folder = images.path().display().to_string();
    harness.run_steps(2);
    harness.get_by_label(mae_explorer::window::panels::dataset::EVALUATE_BUTTON).click();
    harness.run_steps(2);
    step_until(&mut harness, "both images measured", |app| {
        let dataset = &app.panels.dataset;
        !dataset.job.is_running() && dataset.rows.len() == 2 && dataset.rows.iter().all(|row| row.evaluation.is_some())
    });
    harness.state_mut().session.files.last_folder = Some(folder.path().to_owned());
    harness.get_by_label(mae_explorer::window::panels::dataset::WORST_BUTTON).click();
    harness.run_steps(3);
    type_into(&mut harness, FILE_NAME_LABEL, "worst.png");
    step_until(&mut harness, "the worst images' grid", |app| {
        !app.panels.dataset.export.is_running() && folder.path().join("worst.png").exists()
    });
    let worst = image::open(folder.path().join("worst.png")).unwrap();
    assert!(worst.width() > 5 * 128 && worst.height() > 2 * 128, "two rows of five 128-px tiles");

    // Quit asks the window to close.
    click_and_settle(&mut harness, "File");
    harness.get_by_label("Quit").click();
    harness.step();
    let closing = harness
        .output()
        .viewport_output
        .values()
        .any(|viewport| viewport.commands.iter().any(|command| matches!(command, egui::ViewportCommand::Close)));
    assert!(closing, "Quit sends the window its close command");
}

#[test]
fn the_control_panel_heads_export_and_browser_buttons_do_what_they_say_when_clicked() {
    let mut harness = ready_harness(without_system_dialog(fixture_model()));
    // New random seed: another seed, another mask.
    let (seed, mask) = (harness.state().session.settings.seed, shown_mask(harness.state()));
    click_and_settle(&mut harness, "New random seed");
    step_until(&mut harness, "the new seed's mask", |app| {
        app.session.is_up_to_date() && app.session.settings.seed != seed
    });
    assert_ne!(shown_mask(harness.state()), mask);
    // Painted mode's tools: Mask all, Show all, Invert, From random.
    harness.state_mut().session.set_mask_mode(MaskMode::Painted);
    harness.run_steps(2);
    let painted = |app: &MaeApp| app.session.mask.painted.clone();
    click_and_settle(&mut harness, "Mask all");
    assert!(painted(harness.state()).iter().all(|&m| m));
    click_and_settle(&mut harness, "Show all");
    assert!(painted(harness.state()).iter().all(|&m| !m));
    click_and_settle(&mut harness, "Invert");
    assert!(painted(harness.state()).iter().all(|&m| m));
    click_and_settle(&mut harness, "From random");
    let random = painted(harness.state());
    assert!(random.iter().any(|&m| m) && random.iter().any(|&m| !m), "a random mask again: {random:?}");
    // Crisp patches: the nearest filter goes.
    assert!(harness.state().session.settings.nearest_filtering);
    harness.get_by_role_and_label(egui::Role::CheckBox, "Crisp patches").click();
    harness.run_steps(2);
    assert!(!harness.state().session.settings.nearest_filtering);
    // The Heads panel's scales.
    harness.state_mut().layout.bring_to_front(PanelId::Heads);
    harness.run_steps(2);
    click_and_settle(&mut harness, "Per-head scale");
    assert_eq!(harness.state().panels.heads.scale, mae_explorer::render::gallery::GalleryScale::PerHead);
    click_and_settle(&mut harness, "Shared scale");
    assert_eq!(harness.state().panels.heads.scale, mae_explorer::render::gallery::GalleryScale::Shared);
    // The Export dialog's "Four pictures as one PNG…": a save of the four pictures is asked for.
    harness.state_mut().export.open = true;
    harness.run_steps(2);
    click_and_settle(&mut harness, "Four pictures as one PNG…");
    let browser = harness.state().session.files.browser.as_ref().expect("the in-window browser opened");
    assert!(matches!(browser.request, mae_explorer::window::file_request::FileRequest::SavePanels { .. }));
    // The browser's Up, Home and Hidden files.
    let folder = harness.state().session.files.browser.as_ref().unwrap().folder().to_owned();
    click_and_settle(&mut harness, "Up");
    let up = harness.state().session.files.browser.as_ref().unwrap().folder().to_owned();
    assert_eq!(Some(up.as_path()), folder.parent(), "Up goes to the folder above");
    click_and_settle(&mut harness, "Home");
    let home = harness.state().session.files.browser.as_ref().unwrap().folder().to_owned();
    assert_eq!(home, mae_explorer::window::file_browser::home_folder().canonicalize().unwrap_or(home.clone()));
    harness.get_by_role_and_label(egui::Role::CheckBox, "Hidden files").click();
    harness.run_steps(2);
    assert!(harness.state().session.files.browser.as_ref().unwrap().shows_hidden());
    click_and_settle(&mut harness, "Cancel");
    assert!(harness.state().session.files.browser.is_none());
    // The Compare button (not Enter): the typed model is loaded beside A.
    harness.state_mut().export.open = false;
    harness.run_steps(2);
    let scratch = tempfile::tempdir().unwrap();
    let model_b = mae_integration_tests::perturbed_tiny_p8(scratch.path());
    let field = harness.get_by_role_and_label(egui::Role::TextInput, COMPARE_FIELD_LABEL);
    field.focus();
    harness.step();
    harness.get_by_role_and_label(egui::Role::TextInput, COMPARE_FIELD_LABEL).type_text(&model_b.display().to_string());
    harness.run_steps(2);
    harness.get_by_role_and_label(egui::Role::Button, "Compare").click();
    step_until(&mut harness, "model B", |app| app.session.model_names().len() == 2);
}

#[test]
fn try_again_in_the_model_banner_loads_the_model_again() {
    let mut harness = harness(AppOptions::new("/no/such/model/folder"));
    step_until(&mut harness, "the failed load", |app| matches!(app.session.model().state, ModelState::Failed(_)));
    harness.run_steps(2);
    assert!(harness.state().session.model().loading.is_none());
    harness.get_by_label("Try again").click();
    // The click's frame asks for the load; its answer is taken in at the start of a later frame.
    harness.step();
    assert!(harness.state().session.model().loading.is_some(), "the load was asked for again");
    step_until(&mut harness, "the second failure", |app| {
        matches!(app.session.model().state, ModelState::Failed(_)) && app.session.model().loading.is_none()
    });
}

#[test]
fn cancel_in_the_dataset_panel_stops_the_folder() {
    // The worker is held after its first answer to the evaluation, so the job is still running when Cancel is
    // clicked; afterwards no further image of the folder is measured.
    let folder = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for index in 0..6 {
        std::fs::copy(root.join("assets/chelsea.png"), folder.path().join(format!("cat-{index}.png"))).unwrap();
    }
    let gate = std::sync::Arc::new(Gate::default());
    let mut options = AppOptions::new(fixture_model());
    let held = gate.clone();
    options.worker.notify = std::sync::Arc::new(move || held.pass());
    let mut harness = ready_harness(options);
    harness.state_mut().layout.bring_to_front(PanelId::Dataset);
    harness.state_mut().panels.dataset.folder = folder.path().display().to_string();
    harness.run_steps(2);
    let stats = harness.state().session.forwards.stats().clone();
    gate.wait_for_passes(stats.responses());
    gate.arm();
    harness.get_by_label(mae_explorer::window::panels::dataset::EVALUATE_BUTTON).click();
    harness.run_steps(3);
    assert!(harness.state().panels.dataset.job.is_running());
    harness.get_by_role_and_label(egui::Role::Button, "Cancel").click();
    harness.run_steps(2);
    assert!(!harness.state().panels.dataset.job.is_running(), "the job is forgotten at once");
    gate.open();
    // Give the worker time it would have needed to measure the rest (the fixture model takes a few milliseconds an
    // image), taking in whatever it answers.
    for _ in 0..100 {
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    let measured = harness.state().panels.dataset.rows.iter().filter(|row| row.evaluation.is_some()).count();
    assert!(measured < 6, "the folder stopped: {measured} of 6 measured");
}

#[test]
fn cancel_in_the_status_line_stops_a_model_download() {
    // The weights download is held half-way: the status line shows it with Cancel, and Cancel ends the load.
    let hub = FakeHub::start(Weights::Held);
    let cache = tempfile::tempdir().unwrap();
    let mut options = AppOptions::new(REPO);
    options.hub = hub.settings(cache.path());
    let mut harness = harness(options);
    step_until(&mut harness, "the download in progress", |app| {
        app.session
            .model()
            .loading
            .as_ref()
            .is_some_and(|loading| matches!(loading.progress, mae_explorer::worker::LoadProgress::Downloading(_)))
    });
    harness.run_steps(2);
    // The banner over the tiles and the status line both offer it: each stops the same load.
    harness.get_all_by_role_and_label(egui::Role::Button, "Cancel").next().expect("a Cancel button").click();
    harness.step();
    hub.release_weights();
    step_until(&mut harness, "the cancelled load", |app| {
        app.session.model().loading.is_none() && matches!(app.session.model().state, ModelState::Failed(_))
    });
    let ModelState::Failed(error) = &harness.state().session.model().state else { unreachable!() };
    assert!(error.contains("cancelled"), "{error}");
}
