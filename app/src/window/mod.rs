//! The MAE Explorer window (eframe/egui): tiles of panels (`panels/`, laid out by `layout.rs`), the control panel,
//! menus and status line, over a `Session` that holds what the panels share. All model work happens on the worker
//! thread (`crate::worker`); this module only draws, uploads pictures and asks.

pub mod app;
pub mod busy;
pub mod controls;
pub mod export;
pub mod file_browser;
pub mod file_request;
pub mod files;
pub mod first_run;
pub mod frame_timer;
pub mod job;
pub mod layout;
pub mod menu;
pub mod panels;
pub mod screenshot;
pub mod session;
pub mod settings;
pub mod status;
pub mod system_dialog;
pub mod text;
pub mod texture;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use eframe::egui;

pub use app::{AppOptions, MaeApp};

use crate::cli::{DEFAULT_MODEL, WindowArgs, WindowPanel};
use first_run::StartModel;
use panels::PanelId;

/// `--screenshot` gives up after this long without progress (no new picture, no sweep entry).
const SCREENSHOT_TIMEOUT: Duration = Duration::from_secs(120);
const APP_ID: &str = "mae-explorer";
/// The window's size at start (it remembers its size between runs) and with `--screenshot`.
const WINDOW_SIZE: [f32; 2] = [1280.0, 800.0];

/// Opens the window and runs until it is closed. With `--screenshot`, prints `forward_ms=<x>` (the forward pass
/// whose result is in the picture) on success, `models=<n>` (the models on screen, the first counted) and, with
/// models compared patch by patch, `wins=A:<n>,B:<m>,...`; with `--scrub N`, the sweep's and the scrub's figures.
pub fn run(args: &WindowArgs) -> Result<()> {
    let launched = std::time::Instant::now();
    let screenshot = args.screenshot.as_ref().map(|path| screenshot::ScreenshotPlan {
        path: path.clone(),
        timeout: SCREENSHOT_TIMEOUT,
        outcome: Arc::new(Mutex::new(None)),
        launched,
        ratio_steps: args.ratio_steps,
        scrub_steps: args.scrub,
    });
    if let Some(plan) = &screenshot
        && let Some(folder) = plan.path.parent().filter(|folder| !folder.as_os_str().is_empty())
        && !folder.is_dir()
    {
        bail!("{}: the folder for the screenshot does not exist", folder.display());
    }
    if let Some(ratio) = args.mask_ratio {
        mae_model::masking::check_ratio(ratio)?;
    }
    check_compared(args)?;
    let size = args.window_size.map_or(WINDOW_SIZE, |(width, height)| [width as f32, height as f32]);
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("MAE Explorer")
            .with_app_id(APP_ID)
            .with_inner_size(size)
            .with_min_inner_size([720.0, 480.0])
            .with_drag_and_drop(true),
        // A screenshot run must look the same whatever was used last, and must not change what is remembered.
        persist_window: screenshot.is_none(),
        ..Default::default()
    };
    let outcome = screenshot.as_ref().map(|plan| plan.outcome.clone());
    let args = args.clone();
    eframe::run_native(
        APP_ID,
        options,
        Box::new(move |creation| {
            let mut remembered =
                if screenshot.is_none() { settings::load(creation.storage) } else { settings::Remembered::default() };
            let options = start_options(&args, &mut remembered, screenshot);
            let mut app = MaeApp::new(options, remembered);
            if let Some(folder) = &args.evaluate {
                app.panels.dataset.folder = folder.display().to_string();
                app.panels.dataset.start_when_ready = true;
                app.layout.bring_to_front(PanelId::Dataset);
            }
            for panel in &args.panel {
                app.layout.bring_to_front(match panel {
                    WindowPanel::Attention => PanelId::Attention,
                    WindowPanel::Loss => PanelId::Loss,
                    WindowPanel::Ensemble => PanelId::Ensemble,
                    WindowPanel::Heads => PanelId::Heads,
                    WindowPanel::Compare => PanelId::Compare,
                    WindowPanel::Dataset => PanelId::Dataset,
                });
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|error| anyhow!("the window could not be opened: {error}"))?;
    let Some(outcome) = outcome else { return Ok(()) };
    match outcome.lock().map_err(|_| anyhow!("the screenshot state was lost"))?.take() {
        Some(Ok(captured)) => {
            println!("forward_ms={:.1}", captured.forward_ms);
            println!("models={}", captured.models);
            if let Some(wins) = captured.wins {
                println!("wins={wins}");
            }
            println!("first_picture_ms={:.1}", captured.first_picture_ms);
            if let (Some(warm), Some(latency)) = (captured.warm_forward_ms, captured.latency_ms) {
                println!("warm_forward_ms={warm:.1}");
                println!("latency_ms={latency:.1}");
            }
            if let Some(scrub) = captured.scrub {
                println!("sweep_fill_ms={:.1}", scrub.sweep_fill_ms);
                println!("sweep_forwards={}", per_model(&scrub.sweep_forwards));
                println!("sweep_cache_bytes={}", per_model(&scrub.sweep_cache_bytes));
                println!("scrub_frame_ms={:.2}", scrub.frame_ms);
                println!("scrub_step_ms={:.1}", scrub.step_ms);
                println!("scrub_forwards={}", scrub.forwards);
            }
            Ok(())
        }
        Some(Err(error)) => bail!("no screenshot: {error}"),
        None => bail!("no screenshot: the window was closed before a reconstruction was on screen"),
    }
}

/// A figure per model: the number alone for one model, `A:<x>,B:<y>` for several.
fn per_model<T: std::fmt::Display>(values: &[(char, T)]) -> String {
    match values {
        [(_, value)] => value.to_string(),
        _ => values.iter().map(|(letter, value)| format!("{letter}:{value}")).collect::<Vec<_>>().join(","),
    }
}

/// `--compare`: at most three models beside the first, none of them the first again.
fn check_compared(args: &WindowArgs) -> Result<()> {
    let Some(compared) = &args.compare else { return Ok(()) };
    let count = 1 + compared.0.len();
    if count > crate::worker::MAX_MODELS {
        bail!(
            "{count} models in all (--model and {} in --compare): the window holds at most {} (A and three compared)",
            compared.0.len(),
            crate::worker::MAX_MODELS
        );
    }
    if let Some(first) = &args.model
        && let Some(again) = compared.0.iter().find(|model| crate::cli::same_model_argument(first, model))
    {
        bail!("--compare names the first model ({first}) again, as {again}: each model is loaded once");
    }
    Ok(())
}

/// How the window starts: the command line's model, device, dtype, ratio and seed win over what the last run
/// remembered (which `remembered` is updated with), and those over the defaults.
fn start_options(
    args: &WindowArgs,
    remembered: &mut settings::Remembered,
    screenshot: Option<screenshot::ScreenshotPlan>,
) -> AppOptions {
    let session = &mut remembered.session;
    if let Some(ratio) = args.mask_ratio {
        session.mask_ratio = ratio;
    }
    if let Some(seed) = args.seed {
        session.seed = seed;
    }
    if let Some(size) = args.size {
        session.size = size;
    }
    let model = match args.model.clone().or_else(|| session.model.clone()) {
        Some(model) => StartModel::Chosen(model),
        None => StartModel::Default { hub_id: DEFAULT_MODEL.into() },
    };
    let device = args.device.unwrap_or_else(|| session.device.parse().unwrap_or_default());
    let dtype = args.dtype.unwrap_or_else(|| session.dtype.parse().unwrap_or_default()).dtype();
    let hub = mae_model::hub::HubSettings::from_env();
    AppOptions {
        model,
        hub,
        device,
        dtype,
        image: args.image.clone(),
        compare: args.compare.as_ref().map(|list| list.0.clone()).unwrap_or_default(),
        worker: Default::default(),
        system_dialog: None,
        screenshot,
    }
}

#[cfg(test)]
mod tests {
    use candle_core::DType;
    use clap::Parser;
    use mae_model::DeviceChoice;

    use super::*;
    use crate::cli::Cli;

    #[test]
    fn the_command_line_wins_over_what_was_remembered() {
        let mut remembered = settings::Remembered::default();
        remembered.session.mask_ratio = 0.3;
        remembered.session.seed = 11;
        remembered.session.model = Some("remembered/model".into());
        let cli =
            Cli::try_parse_from(["mae-explorer", "--mask-ratio", "0.55", "--seed", "7", "--dtype", "bf16"]).unwrap();
        let options = start_options(&cli.window, &mut remembered, None);
        assert_eq!((remembered.session.mask_ratio, remembered.session.seed), (0.55, 7));
        assert_eq!(options.model, StartModel::Chosen("remembered/model".into()));
        assert_eq!(options.dtype, DType::BF16);
        let cli = Cli::try_parse_from(["mae-explorer", "--model", "other/model", "--device", "cpu"]).unwrap();
        let options = start_options(&cli.window, &mut remembered, None);
        assert_eq!((options.model, options.device), (StartModel::Chosen("other/model".into()), DeviceChoice::Cpu));
        let options = start_options(
            &Cli::try_parse_from(["mae-explorer"]).unwrap().window,
            &mut settings::Remembered::default(),
            None,
        );
        assert_eq!(options.model, StartModel::Default { hub_id: DEFAULT_MODEL.into() }, "nothing named: the default");
        assert_eq!(remembered.session.seed, 7, "not given: kept");
        assert!(Cli::try_parse_from(["mae-explorer", "--window-size", "10x10"]).is_err());
        assert_eq!(
            Cli::try_parse_from(["mae-explorer", "--window-size", "1920x1080"]).unwrap().window.window_size,
            Some((1920, 1080))
        );
    }
}
