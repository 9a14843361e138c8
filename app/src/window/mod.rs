//! The MAE Explorer window (eframe/egui): four panels, controls, attention and loss sections, painted masks,
//! export. All model work happens on the worker thread (`crate::worker`); this module only draws and asks.

pub mod analysis;
pub mod app;
pub mod controls;
pub mod export;
pub mod files;
pub mod frame_timer;
pub mod menu;
pub mod panels;
pub mod screenshot;
pub mod settings;
pub mod textures;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use eframe::egui;

pub use app::{AppOptions, MaeApp, ModelState};
pub use settings::Settings;

use crate::cli::{DEFAULT_MODEL, WindowArgs, WindowPanel};

/// `--screenshot` gives up after this long without a reconstruction on screen.
pub const SCREENSHOT_TIMEOUT: Duration = Duration::from_secs(120);
const APP_ID: &str = "mae-explorer";

/// The settings saved by the last run (defaults when there are none or they cannot be read).
pub fn load_settings(storage: Option<&dyn eframe::Storage>) -> Settings {
    storage.and_then(|storage| eframe::get_value::<Settings>(storage, eframe::APP_KEY)).unwrap_or_default().sanitized()
}

/// Opens the window and runs until it is closed.
pub fn run(args: &WindowArgs) -> Result<()> {
    let screenshot = args.screenshot.as_ref().map(|path| screenshot::ScreenshotPlan {
        path: path.clone(),
        timeout: SCREENSHOT_TIMEOUT,
        outcome: Arc::new(Mutex::new(None)),
    });
    if let Some(plan) = &screenshot
        && let Some(folder) = plan.path.parent().filter(|folder| !folder.as_os_str().is_empty())
        && !folder.is_dir()
    {
        bail!("{}: the folder for the screenshot does not exist", folder.display());
    }
    let size = if screenshot.is_some() { [1600.0, 1000.0] } else { [1440.0, 900.0] };
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
            let mut settings = if screenshot.is_none() { load_settings(creation.storage) } else { Settings::default() };
            for panel in &args.panel {
                match panel {
                    WindowPanel::Attention => settings.show_attention = true,
                    WindowPanel::Loss => settings.show_loss = true,
                }
            }
            let model = args.model.clone().or_else(|| settings.model.clone()).unwrap_or_else(|| DEFAULT_MODEL.into());
            let device = args.device.clone().or_else(|| settings.device.clone()).unwrap_or_else(|| "auto".into());
            let app_options = AppOptions {
                model,
                device,
                image: args.image.clone(),
                settings,
                worker: Default::default(),
                screenshot,
            };
            Ok(Box::new(MaeApp::new(app_options)))
        }),
    )
    .map_err(|error| anyhow!("the window could not be opened: {error}"))?;
    match outcome {
        None => Ok(()),
        Some(outcome) => match outcome.lock().map_err(|_| anyhow!("the screenshot state was lost"))?.take() {
            Some(Ok(())) => Ok(()),
            Some(Err(error)) => bail!("no screenshot: {error}"),
            None => bail!("no screenshot: the window was closed before a reconstruction was on screen"),
        },
    }
}
