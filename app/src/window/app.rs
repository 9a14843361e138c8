//! The window's frame: take in worker answers and files, handle input, draw the menu, status line, controls and
//! tiles, then send the one forward request that describes what should be on screen if it differs from the last
//! one sent. Nothing here repaints continuously: the worker wakes the window when an answer arrives.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui::{self, Key, Modifiers};
use mae_model::hub::HubSettings;

use super::export::ExportDialog;
use super::file_request::FileRequest;
use super::files::{DialogAnswer, ImageOrigin, Purpose, decode_sample};
use super::first_run::{self, FirstLoad, StartModel};
use super::frame_timer::FrameTimer;
use super::layout::Layout;
use super::panels::{self, PanelId, Panels};
use super::session::{Handled, MaskMode, Session};
use super::settings::{Remembered, ToRemember};
use super::system_dialog::SystemDialog;
use super::{controls, menu, screenshot, settings, status};
use crate::jobs::masks::MaskPicture;
use crate::worker::{ViewOptions, WorkerConfig};

/// Ratio change per ←/→ press: one patch of a 14×14 grid is ~0.005, so 0.01 moves about two patches.
const RATIO_NUDGE: f64 = 0.01;

/// How the window was started.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub model: StartModel,
    /// Where the Hugging Face cache is and whether the network may be used (from the environment, as Python
    /// resolves it; tests give their own).
    pub hub: HubSettings,
    pub device: mae_model::DeviceChoice,
    pub dtype: candle_core::DType,
    /// Image to open instead of the sample.
    pub image: Option<PathBuf>,
    /// Models to compare A with from the start (`--compare B,C`); without them, those remembered from the last
    /// run.
    pub compare: Vec<String>,
    pub worker: WorkerConfig,
    /// What is known about the system's file dialog; `None`: checked when the first dialog is asked for.
    pub system_dialog: Option<SystemDialog>,
    /// `--screenshot`: save a picture of the window once the first reconstruction is on screen, then close.
    pub screenshot: Option<screenshot::ScreenshotPlan>,
}

impl AppOptions {
    /// Options for tests and embedding: the given model on the CPU in f32, the sample image.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: StartModel::Chosen(model.into()),
            hub: HubSettings::from_env(),
            device: mae_model::DeviceChoice::Cpu,
            dtype: candle_core::DType::F32,
            image: None,
            compare: Vec::new(),
            worker: WorkerConfig::default(),
            system_dialog: None,
            screenshot: None,
        }
    }
}

pub struct MaeApp {
    pub session: Session,
    pub panels: Panels,
    pub layout: Layout,
    pub export: ExportDialog,
    /// Time of `show` (the window's own code) per frame.
    pub frame_timer: FrameTimer,
    /// Time of whole frames as eframe measures them (UI, tessellation, rendering); empty under tests.
    pub whole_frame_timer: FrameTimer,
    pub(super) screenshot: Option<screenshot::ScreenshotState>,
    /// An image named on the command line, read on the first frame (reading needs the window's context).
    pending_image: Option<PathBuf>,
}

impl std::fmt::Debug for MaeApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaeApp").field("session", &self.session).field("layout", &self.layout).finish_non_exhaustive()
    }
}

impl MaeApp {
    /// A window with the remembered state (default state for tests: `Remembered::default()`).
    pub fn new(options: AppOptions, remembered: Remembered) -> Self {
        let session = Session::new(remembered.session, options.hub.clone(), options.worker.clone());
        let mut app = Self {
            session,
            panels: remembered.panels,
            layout: Layout::restored(remembered.layout),
            export: ExportDialog::new(remembered.export),
            frame_timer: FrameTimer::default(),
            whole_frame_timer: FrameTimer::default(),
            screenshot: options.screenshot.map(screenshot::ScreenshotState::new),
            pending_image: None,
        };
        if let Some(known) = options.system_dialog {
            app.session.files.assume_system_dialog(known);
        }
        app.session.model_mut().device = options.device;
        app.session.model_mut().dtype = options.dtype;
        match options.model.first_load(&options.hub) {
            FirstLoad::Model(model) => app.session.load_model(model),
            FirstLoad::DemoWhileFetching { hub_id, offline: true } => {
                app.session.start_with_demo(first_run::offline_message(&hub_id));
            }
            FirstLoad::DemoWhileFetching { hub_id, offline: false } => {
                app.session.start_with_demo_while_fetching(hub_id);
            }
        }
        // After A's load: the worker loads in order, so each is checked against the memory those before it hold.
        let compare =
            if options.compare.is_empty() { app.session.settings.compare_models.clone() } else { options.compare };
        app.session.compare_with(compare);
        match options.image {
            // Read on a thread like any other file; the sample is shown meanwhile only if that fails.
            Some(path) => app.pending_image = Some(path),
            None => {
                let (rgb, preview) = decode_sample();
                app.session.set_image(ImageOrigin::Sample, rgb, preview);
            }
        }
        app
    }

    /// Opens an image file as File → Open does (read and decoded off the UI thread).
    pub fn open_image_file(&mut self, path: PathBuf) {
        match self.session.forwards.repaint_context() {
            Some(ctx) => self.session.files.open_path(path, Purpose::Image, &ctx),
            None => self.pending_image = Some(path),
        }
    }

    /// Sends the grid export the Export dialog describes, to be written to `path`.
    pub fn export_grid_to(&mut self, path: PathBuf) {
        self.export.export_grid_to(path, &mut self.session, &self.panels.attention.view);
    }

    /// Sends the animation the Export dialog describes, to be written to `path`.
    pub fn export_animation_to(&mut self, path: PathBuf) {
        self.export.export_animation_to(path, &mut self.session, &self.panels.attention.view);
    }

    /// One frame: everything the window does. `eframe::App::ui` and the tests both call this.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let frame_start = Instant::now();
        let ctx = ui.ctx().clone();
        self.session.forwards.attach(&ctx);
        let theme = if self.session.settings.dark_theme { egui::Theme::Dark } else { egui::Theme::Light };
        if ctx.theme() != theme {
            ctx.set_theme(theme);
        }
        if let Some(path) = self.pending_image.take() {
            self.session.files.open_path(path, Purpose::Image, &ctx);
        }
        self.receive_worker_responses();
        self.session.poll_fetch();
        self.receive_files(&ctx);
        self.export.receive_saves(&mut self.session);
        self.handle_input(&ctx);

        let targets = menu::MenuTargets {
            session: &mut self.session,
            export: &mut self.export,
            layout: &mut self.layout,
            panels: &self.panels,
        };
        menu::menu_bar(targets, ui);
        status::status_bar(&mut self.session, [&self.frame_timer, &self.whole_frame_timer], ui);
        // The slider says every frame whether it is held; hidden, it is not.
        self.session.forwards.held_by_pointer = false;
        if self.session.settings.show_controls {
            controls::control_panel(&mut self.session, ui);
        }
        // No margin around the tiles: they draw their own frames, and every pixel goes to the pictures.
        let tiles_frame = egui::Frame::central_panel(ui.style()).inner_margin(0.0);
        egui::CentralPanel::default().frame(tiles_frame).show(ui, |ui| {
            // Fixed before anything is drawn: a widget that overflows the panel widens the panel's `Ui`, and the
            // tiles would take that width too. They get exactly the area under the banners.
            let area = ui.max_rect();
            status::banners(&mut self.session, ui);
            let tiles_area = egui::Rect::from_min_max(egui::pos2(area.left(), ui.cursor().top()), area.max);
            ui.scope_builder(egui::UiBuilder::new().max_rect(tiles_area), |ui| {
                self.layout.ui(ui, &mut self.panels, &mut self.session);
            });
        });
        self.export.window(&ctx, &mut self.session, &self.panels.attention.view);
        self.session.files.show_browser(&ctx);
        self.deliver_commands();

        self.session.send_forward_if_changed(self.view_options());
        screenshot::advance(&mut self.screenshot, &mut self.session, self.panels.any_busy(), &ctx);
        let frame_time = frame_start.elapsed();
        self.frame_timer.record(frame_time);
        if let Some(screenshot) = self.screenshot.as_mut() {
            screenshot.frame_drawn(frame_time);
        }
    }

    /// What the panels on screen want drawn with every forward pass (a panel behind another tab costs nothing;
    /// bringing it forward re-draws the cached forward pass).
    fn view_options(&self) -> ViewOptions {
        let mut view = ViewOptions { masked_style: self.session.settings.masked_style, ..ViewOptions::default() };
        for panel in self.layout.visible_panels() {
            self.panels.get(panel).add_view(&mut view, &self.session);
        }
        view
    }

    fn receive_worker_responses(&mut self) {
        while let Some(response) = self.session.forwards.next_response() {
            match self.session.handle(response) {
                Handled::Done => {}
                Handled::CompareLoaded => self.layout.bring_to_front(PanelId::Compare),
                Handled::ModelLoaded(info) => {
                    let session = &mut self.session;
                    self.panels.each_mut(|_, panel| panel.on_model_loaded(&info, session));
                }
                Handled::ForPanels(response) => {
                    self.export.on_response(&response, &mut self.session);
                    let session = &mut self.session;
                    self.panels.each_mut(|_, panel| panel.on_response(&response, session));
                }
            }
        }
    }

    /// Requests panels made of each other during the frame.
    fn deliver_commands(&mut self) {
        for command in self.session.messages.take_commands() {
            self.panels.each_mut(|_, panel| panel.on_command(&command));
            self.layout.bring_to_front(panels::addressee(&command));
        }
    }

    fn receive_files(&mut self, ctx: &egui::Context) {
        let session = &mut self.session;
        while let Ok(loaded) = session.files.images.try_recv() {
            session.files.decoding = session.files.decoding.saturating_sub(1);
            match loaded.result {
                Ok((rgb, _)) if loaded.purpose == Purpose::Mask => {
                    session.messages.notice = None;
                    let path = match &loaded.origin {
                        ImageOrigin::File(path) => Some(path.clone()),
                        _ => None,
                    };
                    let picture = MaskPicture { name: loaded.origin.display_name(), rgb };
                    session.set_mask_picture(picture, path);
                }
                Ok((rgb, preview)) => {
                    session.messages.notice = None;
                    session.set_image(loaded.origin, rgb, preview);
                }
                Err(problem) => {
                    // The picture on screen stays; only the message changes.
                    let what = if loaded.purpose == Purpose::Mask { "the mask picture " } else { "" };
                    let message = format!("could not open {what}{}: {problem}", loaded.origin.display_name());
                    session.show_error(message.clone());
                    if session.image.input.is_none() && loaded.purpose == Purpose::Image {
                        // The picture asked for on the command line: a screenshot run must not pass without it.
                        session.image.startup_error = Some(message);
                        let (rgb, preview) = decode_sample();
                        session.set_image(ImageOrigin::Sample, rgb, preview);
                    }
                }
            }
        }
        while let Ok(answer) = session.files.dialogs.try_recv() {
            session.files.dialog_open = false;
            match answer {
                DialogAnswer::Chosen(request, path) => {
                    session.files.remember_folder_of(&path);
                    match request {
                        FileRequest::OpenImage => session.files.open_path(path, Purpose::Image, ctx),
                        FileRequest::OpenMask => session.files.open_path(path, Purpose::Mask, ctx),
                        FileRequest::SaveMask { .. } => self.export.save_mask(path, session),
                        FileRequest::OpenModel => session.load_model(path.display().to_string()),
                        FileRequest::OpenDatasetFolder => {
                            self.panels.dataset.folder = path.display().to_string();
                            self.panels.dataset.evaluate(session);
                        }
                        FileRequest::SavePanels { .. } => self.export.save_pictures(path, session),
                        FileRequest::SaveDatasetGrid { .. } => {
                            self.panels.dataset.export_worst(path, session);
                        }
                        FileRequest::SaveGrid { .. } => {
                            self.export.export_grid_to(path, session, &self.panels.attention.view);
                        }
                        FileRequest::SaveAnimation { .. } => {
                            self.export.export_animation_to(path, session, &self.panels.attention.view);
                        }
                    }
                }
                DialogAnswer::NoSystemDialog(request, why) => session.files.browse_in_window(request, Some(why)),
                DialogAnswer::Cancelled => {}
            }
        }
    }

    fn handle_input(&mut self, ctx: &egui::Context) {
        let (dropped, pasted_images, pasted_text) = ctx.input(|input| {
            let mut images = Vec::new();
            let mut texts = Vec::new();
            for event in &input.events {
                match event {
                    egui::Event::PasteImage(image) => images.push(image.clone()),
                    egui::Event::Paste(text) => texts.push(text.clone()),
                    _ => {}
                }
            }
            (input.raw.dropped_files.clone(), images, texts)
        });
        let session = &mut self.session;
        // winit cannot say which panel a drop landed on: while the mask comes from a picture, a dropped or pasted
        // picture becomes the mask.
        let purpose = if session.settings.mask_mode == MaskMode::Image { Purpose::Mask } else { Purpose::Image };
        for file in dropped {
            let path = file.path().to_path_buf();
            if path.is_dir() {
                session.load_model(path.display().to_string());
            } else if path.as_os_str().is_empty() {
                match file.bytes() {
                    Ok(bytes) => session.files.decode_bytes(ImageOrigin::Clipboard, purpose, bytes, ctx),
                    Err(problem) => session.show_error(format!("could not read the dropped file: {problem}")),
                }
            } else {
                session.files.open_path(path, purpose, ctx);
            }
        }
        for image in pasted_images {
            session.files.paste(&image, purpose);
        }
        // Pasting a path (copied from a file manager) opens it, when no text field has focus.
        let typing = ctx.memory(|memory| memory.focused().is_some());
        if !typing {
            for text in pasted_text {
                let path = PathBuf::from(text.trim().trim_start_matches("file://"));
                if path.is_file() {
                    session.files.open_path(path, purpose, ctx);
                }
            }
        }
        let (mut save, mut nudge) = (false, 0.0);
        ctx.input_mut(|input| {
            if input.consume_shortcut(&menu::OPEN_SHORTCUT) {
                session.files.ask(FileRequest::OpenImage, ctx);
            }
            if input.consume_shortcut(&menu::EXPORT_SHORTCUT) {
                self.export.open = true;
            }
            save = input.consume_shortcut(&menu::SAVE_PICTURES_SHORTCUT);
            if !typing {
                if input.consume_key(Modifiers::NONE, Key::R) {
                    session.new_random_seed();
                }
                if input.consume_key(Modifiers::NONE, Key::ArrowRight) {
                    nudge += RATIO_NUDGE;
                }
                if input.consume_key(Modifiers::NONE, Key::ArrowLeft) {
                    nudge -= RATIO_NUDGE;
                }
            }
        });
        if nudge != 0.0 {
            session.nudge_ratio(nudge);
        }
        if save {
            self.export.ask_where_to_save_pictures(session, ctx);
        }
    }
}

impl eframe::App for MaeApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        // eframe measures the whole previous frame: our UI code plus tessellation and rendering.
        if let Some(seconds) = frame.info().cpu_usage {
            self.whole_frame_timer.record(Duration::from_secs_f32(seconds));
        }
        self.show(ui);
    }

    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        if self.screenshot.is_some() {
            screenshot::ignore_pointer(raw_input);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.screenshot.is_none() {
            let state = ToRemember {
                session: &self.session.settings,
                panels: &self.panels,
                layout: Some(&self.layout.tree),
                export: &self.export.settings,
            };
            settings::save(storage, &state);
        }
    }

    fn persist_egui_memory(&self) -> bool {
        self.screenshot.is_none()
    }
}
