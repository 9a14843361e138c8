//! The window driven through egui_kittest with the real app state, the real worker thread and a tiny fixture model.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui::{self, Vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use mae_explorer::render::attention::{HeadFusion, Stack};
use mae_explorer::window::controls::RATIO_LABEL;
use mae_explorer::window::first_run::StartModel;
use mae_explorer::window::panels::PanelId;
use mae_explorer::window::session::{MaskMode, ModelState};
use mae_explorer::window::settings::Remembered;
use mae_explorer::window::{AppOptions, MaeApp};
use mae_integration_tests::fake_hub::{FakeHub, REPO, Weights, silent_hub};
use mae_model::MaskSpec;
use mae_model::hub::HubSettings;
use mae_model::masking::len_keep;

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
    match app.session.result.as_ref().map(|shown| &shown.mask_spec) {
        Some(MaskSpec::Seed { ratio, .. }) => Some(*ratio),
        _ => None,
    }
}

fn masked_count(app: &MaeApp) -> usize {
    app.session.result.as_ref().map_or(0, |shown| shown.mask.iter().filter(|&&m| m > 0.5).count())
}

#[test]
fn the_first_reconstruction_appears_with_model_and_timing_in_the_status_line() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.step();
    let app = harness.state();
    assert!(matches!(app.session.model, ModelState::Ready(_)), "{:?}", app.session.model);
    let shown = app.session.result.as_ref().unwrap();
    assert_eq!(shown.grid, (4, 4));
    assert_eq!(shown.pictures.reconstruction.dimensions(), (64, 64));
    assert_eq!(masked_count(app), 16 - len_keep(16, 0.75));
    assert!(shown.forward_ms.is_some());
    harness.get_by_label_contains("model tiny-p16");
    harness.get_by_label_contains("last forward");
}

#[test]
fn moving_the_ratio_slider_produces_a_result_with_the_new_ratio() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let before = harness.state().session.result.as_ref().unwrap().id;
    harness.get_by_role_and_label(egui::Role::Slider, RATIO_LABEL).set_value_accesskit(0.5);
    step_until(&mut harness, "a result at ratio 0.5", |app| {
        shown_ratio(app) == Some(0.5) && app.session.is_up_to_date()
    });
    let app = harness.state();
    assert!(app.session.result.as_ref().unwrap().id > before);
    assert_eq!(app.session.settings.mask_ratio, 0.5);
    assert_eq!(masked_count(app), 8, "half of the 16 patches are masked at ratio 0.5");
    assert_eq!(app.session.worker_stats().forwards(), 2);
    // The textures were created once (five panels and the preview) and then updated in place.
    assert_eq!(app.session.texture_creations.get(), 6);
}

#[test]
fn a_burst_of_slider_moves_runs_far_fewer_forwards_and_ends_on_the_last_value() {
    // A 40 ms forward pass, like vit-mae-base on a laptop CPU, made with the fast fixture.
    let mut options = AppOptions::new(fixture_model());
    options.worker.min_forward_time = Duration::from_millis(40);
    let mut harness = ready_harness(options);
    let forwards_before = harness.state().session.worker_stats().forwards();
    let moves: u32 = 60;
    let mut last_value = 0.0;
    let burst_start = Instant::now();
    for step in 0..moves {
        last_value = 0.2 + 0.01 * f64::from(step);
        harness.get_by_role_and_label(egui::Role::Slider, RATIO_LABEL).set_value_accesskit(last_value);
        harness.step();
        // About the pace of pointer events while dragging (a 250 Hz mouse).
        std::thread::sleep(Duration::from_millis(4));
    }
    let burst = burst_start.elapsed();
    step_until(&mut harness, "the result of the last move", |app| app.session.is_up_to_date());
    let app = harness.state();
    let stats = app.session.worker_stats();
    let forwards = stats.forwards() - forwards_before;
    println!(
        "burst: {moves} slider moves in {:.0} ms -> {forwards} forwards, {} requests, {} superseded",
        burst.as_secs_f64() * 1e3,
        stats.forward_requests(),
        stats.superseded()
    );
    assert!(forwards * 3 <= moves as usize, "{forwards} forwards for {moves} moves: requests were not coalesced");
    assert!(stats.superseded() > 0);
    let shown = shown_ratio(app).unwrap();
    assert!((shown - last_value).abs() < 1e-9, "the picture shows ratio {shown}, the slider says {last_value}");
    assert_eq!(masked_count(app), 16 - len_keep(16, last_value));
}

#[test]
fn clicking_a_patch_in_painted_mode_changes_the_mask_sent_to_the_worker() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.get_by_label("Painted").click();
    harness.step();
    assert_eq!(harness.state().session.settings.mask_mode, MaskMode::Painted);
    step_until(&mut harness, "the painted mask's result", |app| {
        app.session.is_up_to_date() && matches!(app.session.result.as_ref().unwrap().mask_spec, MaskSpec::Keep { .. })
    });
    let mask_before = harness.state().session.result.as_ref().unwrap().mask.clone();
    // Click the top-left patch (patch 0) of the original picture.
    let picture = harness.get_by_label("Original picture").rect();
    let patch_zero = picture.min + picture.size() / 8.0;
    harness.hover_at(patch_zero);
    harness.drag_at(patch_zero);
    harness.drop_at(patch_zero);
    harness.step();
    let painted = harness.state().session.painted_mask.clone();
    assert_eq!(painted[0], mask_before[0] < 0.5, "the click flipped patch 0");
    step_until(&mut harness, "the result of the painted mask", |app| app.session.is_up_to_date());
    let app = harness.state();
    let shown = app.session.result.as_ref().unwrap();
    let visible: Vec<usize> = (0..16).filter(|&p| !painted[p]).collect();
    assert_eq!(shown.mask_spec, MaskSpec::Keep { visible });
    assert_eq!(shown.mask[0] > 0.5, painted[0]);
    for (patch, (now, before)) in shown.mask.iter().zip(&mask_before).enumerate().skip(1) {
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
        |app| matches!(app.session.model, ModelState::Failed(ref e) if !e.is_empty()),
    );
    harness.step();
    let ModelState::Failed(error) = &harness.state().session.model else { unreachable!() };
    assert!(error.contains("model.safetensors") || error.contains("weights"), "{error}");
    harness.get_by_label("No model is loaded");
    harness.get_by_label("Open model folder…");
    // The window keeps running and offers a way out; nothing else changed.
    assert!(harness.state().session.result.is_none());
    assert!(harness.state().session.image.is_some());
}

#[test]
fn a_worker_panic_is_shown_and_the_worker_keeps_serving() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.state_mut().session.crash_worker();
    step_until(&mut harness, "the crash report", |app| {
        app.session.notice.as_ref().is_some_and(|notice| notice.is_error && notice.text.contains("crashed"))
    });
    harness.step();
    harness.get_by_label_contains("model worker crashed");
    assert_eq!(harness.state().session.worker_stats().restarts(), 1);
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
    let image_before = harness.state().session.image.as_ref().unwrap().id;
    harness.state_mut().open_image_file(text_file);
    step_until(&mut harness, "the error message", |app| {
        app.session.notice.as_ref().is_some_and(|notice| notice.is_error)
    });
    harness.step();
    let app = harness.state();
    let notice = app.session.notice.as_ref().unwrap();
    assert!(notice.text.contains("notes.png") && notice.text.contains("not an image"), "{}", notice.text);
    assert_eq!(app.session.image.as_ref().unwrap().id, image_before);
    assert!(app.session.is_up_to_date());
}

#[test]
fn a_real_image_file_replaces_the_picture_and_is_remembered() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("gradient.png");
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 100])).save(&path).unwrap();
    let image_before = harness.state().session.image.as_ref().unwrap().id;
    harness.state_mut().open_image_file(path.clone());
    step_until(&mut harness, "the new image's result", |app| {
        app.session.image.as_ref().unwrap().id != image_before && app.session.is_up_to_date()
    });
    let app = harness.state();
    assert_eq!(app.session.image.as_ref().unwrap().rgb.dimensions(), (40, 30));
    assert_eq!(app.session.settings.recent_files.first(), Some(&path));
}

#[test]
fn saving_to_an_unwritable_place_says_so_and_writes_nothing() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let folder = tempfile::tempdir().unwrap();
    let target = folder.path().join("missing-folder").join("panels.png");
    let app = harness.state_mut();
    app.export.save_pictures(target.clone(), &mut app.session);
    step_until(&mut harness, "the save error", |app| app.session.notice.as_ref().is_some_and(|notice| notice.is_error));
    assert!(harness.state().session.notice.as_ref().unwrap().text.contains("could not save"));
    assert!(!target.exists());
    // And a writable place gets the four panels side by side.
    let good = folder.path().join("panels.png");
    let app = harness.state_mut();
    app.export.save_pictures(good.clone(), &mut app.session);
    step_until(&mut harness, "the save", |app| app.session.notice.as_ref().is_some_and(|notice| !notice.is_error));
    let saved = image::open(&good).unwrap();
    assert_eq!((saved.width(), saved.height()), (4 * 64 + 3 * 8, 64));
}

#[test]
fn attention_and_loss_panels_draw_their_overlays_while_they_are_in_view() {
    // The Attention tab is in front by default: its overlay comes with the result, the hidden Loss tab's does not.
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    let shown = harness.state().session.result.as_ref().unwrap();
    assert!(shown.pictures.attention.is_some() && shown.pictures.loss.is_none());
    // Choosing another layer re-draws from the cached forward pass: no new forward.
    let forwards = harness.state().session.worker_stats().forwards();
    harness.state_mut().panels.attention.view.selection.layer = 1;
    step_until(&mut harness, "the re-drawn attention", |app| app.session.is_up_to_date());
    let app = harness.state();
    assert_eq!(app.session.worker_stats().forwards(), forwards);
    assert_eq!(app.session.result.as_ref().unwrap().forward_ms, None);
    // Bring the Loss tab forward: its overlay is drawn (again from the cache) and its curve is asked for.
    harness.state_mut().layout.bring_to_front(PanelId::Loss);
    step_until(&mut harness, "the loss curve", |app| {
        app.panels.loss.curve.request_id.is_none()
            && !app.panels.loss.curve.points.is_empty()
            && app.session.is_up_to_date()
    });
    let app = harness.state();
    assert!(app.session.result.as_ref().unwrap().pictures.loss.is_some());
    assert_eq!(app.panels.loss.curve.points.len(), 19);
    assert!(app.panels.loss.curve.points.iter().all(|(_, loss)| loss.is_some()));
    assert_eq!(app.session.worker_stats().forwards(), forwards + 19, "one forward per curve point, none for the view");
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

/// UI frame time while the worker runs a real-size model. Set `MAE_EXPLORER_FRAME_MODEL` to a vit-mae-base-shaped
/// folder (e.g. made with `tools/bench_torch.py --make-base DIR`) to run it: it is slow and needs that model.
#[test]
#[ignore = "needs a vit-mae-base-sized model in MAE_EXPLORER_FRAME_MODEL"]
fn ui_frames_stay_short_while_the_worker_computes() {
    let model = std::env::var("MAE_EXPLORER_FRAME_MODEL").expect("set MAE_EXPLORER_FRAME_MODEL to a model folder");
    let mut harness = ready_harness(AppOptions::new(model));
    harness.state_mut().frame_timer.clear();
    let mut busy_frames = Vec::new();
    let start = Instant::now();
    let mut step = 0;
    // Keep the worker busy with a drag across the slider for three seconds, measuring every frame.
    while start.elapsed() < Duration::from_secs(3) {
        let value = 0.1 + 0.8 * ((step % 80) as f64 / 80.0);
        harness.get_by_role_and_label(egui::Role::Slider, RATIO_LABEL).set_value_accesskit(value);
        let frame_start = Instant::now();
        harness.step();
        busy_frames.push(frame_start.elapsed().as_secs_f64() * 1e3);
        step += 1;
        std::thread::sleep(Duration::from_millis(8));
    }
    let release = Instant::now();
    step_until(&mut harness, "the last result", |app| app.session.is_up_to_date());
    let release_to_picture_ms = release.elapsed().as_secs_f64() * 1e3;
    busy_frames.sort_by(f64::total_cmp);
    let median = busy_frames[busy_frames.len() / 2];
    let p95 = busy_frames[busy_frames.len() * 95 / 100];
    let max = busy_frames[busy_frames.len() - 1];
    let app = harness.state();
    println!(
        "{} frames while busy: median {median:.2} ms, p95 {p95:.2} ms, max {max:.2} ms; app-measured mean {:.2} ms; \
         {} forwards for {step} moves; last forward {:?} ms, drawing {:.0} ms; release to picture \
         {release_to_picture_ms:.0} ms",
        busy_frames.len(),
        app.frame_timer.mean_ms().unwrap_or(0.0),
        app.session.worker_stats().forwards(),
        app.session.result.as_ref().and_then(|shown| shown.forward_ms),
        app.session.result.as_ref().map_or(0.0, |shown| shown.render_ms)
    );
    assert!(p95 < 16.0, "95th percentile frame {p95:.1} ms");
}

#[test]
fn the_export_dialog_writes_a_grid_and_reports_bad_input() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
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
    step_until(&mut harness, "the export", |app| app.export.running.is_none());
    assert_eq!(harness.state().export.error, None);
    let grid = image::open(&path).unwrap();
    assert!(grid.width() > 4 * 64 && grid.height() > 4 * 64, "{}×{}", grid.width(), grid.height());
    // A grid too big to compose is refused before any forward pass.
    let forwards = harness.state().session.worker_stats().forwards();
    let app = harness.state_mut();
    app.export.settings.seeds = (0..100).map(|seed| seed.to_string()).collect::<Vec<_>>().join(",");
    app.export.settings.tile_size = 1024;
    app.export_grid_to(folder.path().join("huge.png"));
    step_until(&mut harness, "the refused export", |app| app.export.running.is_none());
    assert!(harness.state().export.error.as_ref().unwrap().contains("grid would be"));
    assert_eq!(harness.state().session.worker_stats().forwards(), forwards);
    assert!(!folder.path().join("huge.png").exists());
    harness.state_mut().export.settings.seeds = "0".into();
    // An unwritable destination is an error in the window, and no file appears.
    let bad = folder.path().join("no-such-folder").join("grid.png");
    harness.state_mut().export_grid_to(bad.clone());
    step_until(&mut harness, "the failed export", |app| app.export.running.is_none());
    assert!(harness.state().session.notice.as_ref().unwrap().text.contains("could not export"));
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
    let forwards = harness.state().session.worker_stats().forwards();
    harness.get_by_label("Compute").click();
    step_until(&mut harness, "the ensemble", |app| app.panels.ensemble.result.is_some());
    let app = harness.state();
    let result = app.panels.ensemble.result.as_ref().unwrap();
    assert_eq!(result.seeds, vec![2, 3, 4, 5, 6]);
    assert_eq!(result.mean.dimensions(), (64, 64));
    assert_eq!(app.session.worker_stats().forwards(), forwards + 5);
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
fn tree_json(tree: &egui_tiles::Tree<PanelId>) -> serde_json::Value {
    serde_json::to_value(tree).unwrap()
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
    let layout_after_move = {
        let tree = &harness.state().layout.tree;
        let ensemble = tree.tiles.find_pane(&PanelId::Ensemble).unwrap();
        assert_ne!(tree.tiles.parent_of(ensemble), analysis_parent, "the Ensemble tile moved");
        tree_json(tree)
    };
    // Restart: a new window from what this one remembered has the same layout.
    let (_, remembered) = restart(harness.state_mut());
    let mut restarted = harness_with(AppOptions::new(fixture_model()), remembered, Vec2::new(1280.0, 800.0));
    restarted.step();
    let layout = &restarted.state().layout;
    assert_eq!(tree_json(&layout.tree), layout_after_move);
    assert!(!layout.is_open(PanelId::Loss));
    assert!(layout.is_open(PanelId::Ensemble) && layout.is_open(PanelId::Original));
    // The View menu reopens the closed tile where it was, and Reset layout brings the default back.
    restarted.state_mut().layout.set_open(PanelId::Loss, true);
    assert!(restarted.state().layout.is_open(PanelId::Loss));
    restarted.state_mut().layout.reset();
    assert_eq!(
        tree_json(&restarted.state().layout.tree),
        tree_json(&mae_explorer::window::layout::Layout::default().tree)
    );
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
    // Start-up flags: another window size, ratio and seed; a ratio outside [0, 1] is refused before any window.
    let sized = folder.path().join("sized.png");
    let output = std::process::Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1600x1000x24", env!("CARGO_BIN_EXE_mae-explorer"), "--model"])
        .arg(fixture_model())
        .args(["--mask-ratio", "0.5", "--seed", "7", "--window-size", "1000x700", "--screenshot"])
        .arg(&sized)
        .output()
        .unwrap();
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(image::image_dimensions(&sized).unwrap(), (1000, 700));
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
        app.session.image.as_ref().unwrap().rgb.dimensions() == (30, 20) && app.session.is_up_to_date()
    });
    assert_eq!(harness.state().session.image.as_ref().unwrap().rgb.get_pixel(0, 0).0, [200, 30, 40]);

    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("dropped.png");
    image::RgbImage::from_pixel(12, 34, image::Rgb([1, 2, 3])).save(&path).unwrap();
    harness.input_mut().dropped_files.push(std::sync::Arc::new(DroppedPath(path)));
    step_until(&mut harness, "the dropped image's result", |app| {
        app.session.image.as_ref().unwrap().rgb.dimensions() == (12, 34) && app.session.is_up_to_date()
    });
}

#[test]
fn loading_another_model_from_the_model_field_switches_grid_and_results() {
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    // 24×24 input in 4-px patches, predicting per-patch-normalized pixels.
    let other = PathBuf::from(fixture_model()).with_file_name("tiny-p4-normpix").display().to_string();
    harness.state_mut().session.model_field = other.clone();
    harness.get_by_label("Load").click();
    step_until(&mut harness, "the second model's result", |app| {
        app.session.model_info().is_some_and(|info| info.name == "tiny-p4-normpix") && app.session.is_up_to_date()
    });
    let app = harness.state();
    let (rows, cols) = app.session.grid().unwrap();
    assert_eq!(app.session.result.as_ref().unwrap().grid, (rows, cols));
    assert_eq!((rows, cols), (6, 6));
    assert_eq!(app.session.settings.model.as_deref(), Some(other.as_str()));
    // Its reconstruction borrows the hidden patches' statistics, and the window says so.
    assert!(app.session.result.as_ref().unwrap().uses_target_statistics);
    harness.step();
    harness.get_by_label_contains("which the model never saw");
}

#[test]
fn a_grid_exported_from_the_window_equals_the_one_the_command_writes() {
    let photo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/photos/rocket.jpg");
    let mut harness = ready_harness(AppOptions::new(fixture_model()));
    harness.state_mut().open_image_file(photo.clone());
    step_until(&mut harness, "the photo's result", |app| {
        app.session.image.as_ref().is_some_and(|image| image.name == "rocket.jpg") && app.session.is_up_to_date()
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
    step_until(&mut harness, "the window's export", |app| app.export.running.is_none());
    assert_eq!(harness.state().export.error, None);

    let from_command = folder.path().join("command.png");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mae-explorer"))
        .args(["export", "--device", "cpu", "--model"])
        .arg(fixture_model())
        .arg("--image")
        .arg(&photo)
        .args(["--mask-ratios", "0.5,0.75", "--seeds", "0,1", "--tile-size", "64", "--colormap", "cividis"])
        .args(["--columns", "original,mask,reconstruction,pasted,loss,rollout"])
        .arg("--out")
        .arg(&from_command)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (window_bytes, command_bytes) = (std::fs::read(&from_window).unwrap(), std::fs::read(&from_command).unwrap());
    assert!(
        window_bytes == command_bytes,
        "the two grids differ ({} vs {} bytes)",
        window_bytes.len(),
        command_bytes.len()
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
        app.session.is_up_to_date() && app.session.result.as_ref().is_some_and(|result| result.heads.is_some())
    });
    harness.step();
    // tiny-p16's encoder has 2 layers of 5 heads: click the thumbnail of layer 1, head 3.
    let app = harness.state();
    let rect = app.panels.heads.gallery_rect.expect("the gallery was drawn");
    let geometry = app.session.result.as_ref().unwrap().heads.as_ref().unwrap().gallery.geometry.clone();
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
        app.session.is_up_to_date() && app.session.result.as_ref().is_some_and(|result| result.heads.is_some())
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
    assert_eq!(app.session.model_info().unwrap().name, mae_model::DEMO_MODEL_NAME);
    assert_eq!(app.session.result.as_ref().unwrap().grid, (14, 14));
    let notice = app.session.notice.as_ref().expect("a line about the real model");
    assert!(
        !notice.is_error && notice.text.contains("facebook/vit-mae-base") && notice.text.contains("HF_HUB_OFFLINE")
    );
    assert!(app.session.fetch.is_none(), "nothing is downloaded offline");
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
    app.session.is_up_to_date().then(|| app.session.result.as_ref().map(|shown| shown.grid)).flatten()
}

#[test]
fn online_the_demo_stands_in_until_the_default_model_is_downloaded_then_the_window_switches_keeping_the_job() {
    let hub = FakeHub::start(Weights::Whole);
    let cache = tempfile::tempdir().unwrap();
    let mut harness = harness(first_run_options(cache.path(), hub.settings(cache.path())));
    let image_before = harness.state().session.image.as_ref().expect("the sample photo").id;
    // The user's ratio and seed, set before either model is ready: the switch must keep them.
    harness.state_mut().settings().mask_ratio = 0.5;
    harness.state_mut().settings().seed = 7;

    step_until(&mut harness, "the downloaded model's reconstruction", |app| shown_grid(app) == Some(HUB_MODEL_GRID));
    let app = harness.state();
    assert_eq!(app.session.result.as_ref().unwrap().mask_spec, MaskSpec::Seed { ratio: 0.5, seed: 7 });
    assert_eq!(app.session.image.as_ref().unwrap().id, image_before, "the image is kept");
    assert!(app.session.fetch.is_none());
    assert_eq!(app.session.settings.model.as_deref(), Some(REPO), "the real model is remembered");
    let weights = hub.file_downloads().iter().filter(|path| path.ends_with("/model.safetensors")).count();
    assert_eq!(weights, 1, "downloaded once, then loaded from the cache: {:?}", hub.requests());
}

#[test]
fn a_model_the_user_chooses_while_the_default_downloads_is_never_replaced() {
    // The weights download stalls half-way: the demo stays on screen while the status line shows the progress.
    let hub = FakeHub::start(Weights::Stall);
    let cache = tempfile::tempdir().unwrap();
    let mut harness = harness(first_run_options(cache.path(), hub.settings(cache.path())));
    step_until(&mut harness, "the demo model's reconstruction", |app| shown_grid(app) == Some(DEMO_GRID));
    step_until(&mut harness, "download progress", |app| {
        app.session.fetch.as_ref().is_some_and(|fetch| fetch.progress.is_some())
    });
    harness.get_by_label_contains("the demo model meanwhile");
    assert_eq!(harness.state().session.settings.model, None, "the stand-in is not remembered");

    let (device, dtype) = (harness.state().session.device, harness.state().session.dtype);
    harness.state_mut().session.load_model(fixture_model(), device, dtype);
    assert!(harness.state().session.fetch.is_none(), "choosing a model abandons the background download");
    step_until(&mut harness, "the chosen model's reconstruction", |app| {
        shown_grid(app).is_some_and(|grid| grid != DEMO_GRID)
    });
    let chosen_grid = shown_grid(harness.state());
    // However long the window runs on, the chosen model stays.
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
    step_until(&mut harness, "the download to give up", |app| app.session.fetch.is_none());
    step_until(&mut harness, "the demo model's reconstruction", |app| shown_grid(app) == Some(DEMO_GRID));
    let notice = harness.state().session.notice.clone().expect("a line about the download");
    assert!(!notice.is_error && notice.text.contains("could not be downloaded"), "{}", notice.text);
    // Still usable: a new ratio gives a new result with the demo.
    harness.state_mut().settings().mask_ratio = 0.3;
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
    let image_before = harness.state().session.image.as_ref().unwrap().id;
    let folder = tempfile::tempdir().unwrap();
    let fifo = folder.path().join("stream.png");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut images: Vec<PathBuf> = std::fs::read_dir(bad.join("images")).unwrap().map(|e| e.unwrap().path()).collect();
    images.sort();
    images.push(fifo);
    for image in &images {
        harness.state_mut().session.notice = None;
        harness.state_mut().open_image_file(image.clone());
        step_until(&mut harness, "the image error", |app| app.session.notice.as_ref().is_some_and(|n| n.is_error));
        let notice = harness.state().session.notice.clone().unwrap();
        let name = image.file_name().unwrap().to_string_lossy().into_owned();
        assert!(notice.text.contains(&name), "{name}: {}", notice.text);
        assert_eq!(harness.state().session.image.as_ref().unwrap().id, image_before, "{name} replaced the picture");
    }
    let mut models: Vec<PathBuf> = std::fs::read_dir(bad.join("models")).unwrap().map(|e| e.unwrap().path()).collect();
    models.sort();
    for model in &models {
        harness.state_mut().session.notice = None;
        let (device, dtype) = (harness.state().session.device, harness.state().session.dtype);
        harness.state_mut().session.load_model(model.display().to_string(), device, dtype);
        step_until(&mut harness, "the model error", |app| {
            app.session.loading.is_none() && app.session.notice.as_ref().is_some_and(|n| n.is_error)
        });
        let notice = harness.state().session.notice.clone().unwrap();
        let name = model.file_name().unwrap().to_string_lossy().into_owned();
        assert!(notice.text.contains(&name) && notice.text.contains("still using tiny-p16"), "{name}: {}", notice.text);
    }
    // Still working: a new ratio gets a new result from the model that was in use.
    harness.get_by_role_and_label(egui::Role::Slider, RATIO_LABEL).set_value_accesskit(0.5);
    step_until(&mut harness, "a result after the bad inputs", |app| {
        shown_ratio(app) == Some(0.5) && app.session.is_up_to_date()
    });
    assert_eq!(harness.state().session.model_info().unwrap().name, "tiny-p16");
}

/// The Heads panel in a narrow tile: gallery and plot stay inside it (a control row running past the edge once
/// widened everything after it).
#[test]
fn the_heads_panel_fits_its_tile() {
    for size in [Vec2::new(1280.0, 800.0), Vec2::new(1600.0, 1000.0)] {
        let mut harness = harness_with(AppOptions::new(fixture_model()), Remembered::default(), size);
        harness.state_mut().layout.bring_to_front(PanelId::Heads);
        step_until(&mut harness, "the head gallery", |app| {
            app.session.is_up_to_date() && app.session.result.as_ref().is_some_and(|result| result.heads.is_some())
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
