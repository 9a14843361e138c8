//! What every panel shares, in parts that each own one thing: the settings, the model slot, the image slot, the
//! mask state, the worker with its forward passes and the result on screen, the notice, the file work and the
//! panels' outbox. Panels read the parts and ask through them; the session itself only does what spans parts
//! (loading a model, sending the forward request the screen describes, taking in worker responses).

mod forwards;
mod image_slot;
mod mask_state;
mod messages;
mod model_slot;
mod settings;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use eframe::egui;
use mae_model::hub::HubSettings;
use mae_model::{MaskSpec, ModelLocation, SizeRule};

pub use forwards::Forwards;
pub use image_slot::ImageSlot;
pub use mask_state::MaskState;
pub use messages::{Messages, Notice, PanelCommand};
pub use model_slot::{Loading, ModelSlot, ModelState};
pub use settings::{MAX_RECENT_FILES, MaskMode, SessionSettings};

use super::files::{FileTasks, ImageOrigin};
use super::first_run::{Fetch, FetchEvent};
use super::texture::{Upload, filtering};
use crate::jobs::masks::MaskPicture;
use crate::render::attention::Query;
use crate::worker::{
    ForwardResult, LoadRequest, MAX_MODELS, ModelInfo, Request, Response, ViewOptions, WorkerConfig, model_letter,
};

pub struct Session {
    pub settings: SessionSettings,
    /// The window's models, never empty: the first (A) is the one every panel shows, the others (B, C, D) are
    /// compared with it. A compared model still loading is the last (one loads at a time, so the loaded ones keep
    /// the places they have in the worker's list).
    pub models: Vec<ModelSlot>,
    /// Compared models still to load, in order (`--compare B,C`, or the comparison remembered).
    queued_compares: std::collections::VecDeque<String>,
    /// A swap asked of the worker: its request id and the place that comes first.
    pending_swap: Option<(u64, usize)>,
    /// Why a compared model could not be loaded (a screenshot run fails with it).
    pub compare_failure: Option<String>,
    pub image: ImageSlot,
    pub mask: MaskState,
    pub forwards: Forwards,
    pub files: FileTasks,
    pub messages: Messages,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("model", &self.model().state)
            .field("settings", &self.settings)
            .field("result", &self.result().map(|result| result.id))
            .field("sent", &self.forwards.last_sent_id())
            .field("notice", &self.messages.notice)
            .finish_non_exhaustive()
    }
}

/// What the session did with a worker response.
pub enum Handled {
    /// Consumed.
    Done,
    /// A new model is in use: the panels must hear of it.
    ModelLoaded(ModelInfo),
    /// A compared model is in: the Compare panel comes to the front.
    CompareLoaded,
    /// Not the session's: the panels may want it.
    ForPanels(Response),
}

impl Session {
    /// Starts the worker; `worker.notify` is called (besides waking the window) after every response.
    pub fn new(settings: SessionSettings, hub: HubSettings, worker: WorkerConfig) -> Self {
        let settings = settings.sanitized();
        let mut files = FileTasks::default();
        if let Some(recent) = settings.recent_files.first() {
            files.remember_folder_of(recent);
        }
        let mut session = Self {
            models: vec![ModelSlot::new(&settings, hub)],
            queued_compares: Default::default(),
            pending_swap: None,
            compare_failure: None,
            settings,
            image: ImageSlot::default(),
            mask: MaskState::default(),
            forwards: Forwards::spawn(worker),
            files,
            messages: Messages::default(),
        };
        session.restore_mask_picture();
        session
    }

    /// Reads the remembered mask picture again when the session starts in `Image` mode; without it, the session
    /// starts with random masks and says why.
    fn restore_mask_picture(&mut self) {
        if self.settings.mask_mode != MaskMode::Image {
            return;
        }
        let Some(path) = self.settings.mask_picture.clone() else {
            self.settings.mask_mode = MaskMode::Random;
            return;
        };
        match MaskPicture::read(&path) {
            Ok(picture) => self.set_mask_picture(picture, Some(path)),
            Err(error) => {
                self.settings.mask_mode = MaskMode::Random;
                self.show_error(format!("the last mask picture could not be read ({error:#}): back to random masks"));
            }
        }
    }

    /// The first model: the one every panel shows.
    pub fn model(&self) -> &ModelSlot {
        &self.models[0]
    }

    pub fn model_mut(&mut self) -> &mut ModelSlot {
        &mut self.models[0]
    }

    /// The models compared with the first (loaded or loading), with their places in the list.
    pub fn compared(&self) -> impl Iterator<Item = (usize, &ModelSlot)> {
        self.models.iter().enumerate().skip(1)
    }

    /// How panels upload their pictures now.
    pub fn upload(&self) -> Upload<'_> {
        Upload { filtering: filtering(self.settings.nearest_filtering), created: &self.messages.textures_created }
    }

    /// The result on screen.
    pub fn result(&self) -> Option<&ForwardResult> {
        self.forwards.result.as_ref()
    }

    /// Whether the picture on screen answers the newest request.
    pub fn is_up_to_date(&self) -> bool {
        self.forwards.is_up_to_date()
    }

    /// Whether the result on screen was computed for the image now open.
    pub fn result_is_current(&self) -> bool {
        self.result().map(|result| result.image_id) == self.image.id()
    }

    /// Loads the model the user chose, on the device and dtype the model slot holds; the current one stays in use
    /// until the new one is ready. A model that cannot even be named (`ModelLocation` refuses it) is an error at
    /// once. A first-run download in the background is abandoned: the user's choice is never replaced.
    pub fn load_model(&mut self, model: String) {
        if let Some(fetch) = self.model_mut().fetch.take() {
            fetch.cancel();
        }
        let hub = self.model().hub().clone();
        self.request_load(model, true, hub);
    }

    /// Starts with the built-in demo while `hub_id` downloads in the background (first run, online), and switches
    /// to it once it is in the cache.
    pub fn start_with_demo_while_fetching(&mut self, hub_id: String) {
        let hub = self.model().hub().clone();
        self.request_load(super::first_run::demo(), false, hub.clone());
        let fetch = Fetch::start(hub_id, hub, self.forwards.waker());
        self.model_mut().fetch = Some(fetch);
    }

    /// Starts with the built-in demo because `why` (first run, offline).
    pub fn start_with_demo(&mut self, why: String) {
        let hub = self.model().hub().clone();
        self.request_load(super::first_run::demo(), false, hub);
        self.show_info(why);
    }

    fn request_load(&mut self, model: String, remember: bool, hub: HubSettings) {
        let location: ModelLocation = match model.parse() {
            Ok(location) => location,
            Err(error) => {
                self.show_error(format!("{error}"));
                return;
            }
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let (device, dtype) = (self.model().device, self.model().dtype);
        let load = LoadRequest { location, device, dtype, cancel: cancel.clone(), hub, index: 0 };
        let id = self.forwards.request(|id| Request::LoadModel { id, load });
        self.model_mut().started_loading(id, model, remember, cancel);
    }

    /// Compares the first model with `models` too, loaded one after another in this order (after any still
    /// loading), each on the first model's device and dtype; each is remembered for the next start once in.
    pub fn compare_with(&mut self, models: impl IntoIterator<Item = String>) {
        self.queued_compares.extend(models);
        self.load_next_compare();
    }

    /// Starts the next queued comparison, unless one is loading or the window holds all it can.
    fn load_next_compare(&mut self) {
        if self.compared().any(|(_, slot)| slot.loading.is_some()) {
            return;
        }
        let Some(model) = self.queued_compares.pop_front() else { return };
        let index = self.models.len();
        if index >= MAX_MODELS {
            self.queued_compares.clear();
            self.show_error(format!(
                "{model}: the window holds at most {MAX_MODELS} models (A and three compared); close one first"
            ));
            return;
        }
        let letter = model_letter(index);
        let location: ModelLocation = match model.parse() {
            Ok(location) => location,
            Err(error) => {
                self.show_error(format!("model {letter}: {error}"));
                self.load_next_compare();
                return;
            }
        };
        let mut slot = ModelSlot::beside(self.model());
        let (device, dtype) = (self.model().device, self.model().dtype);
        let cancel = Arc::new(AtomicBool::new(false));
        let hub = slot.hub().clone();
        let load = LoadRequest { location, device, dtype, cancel: cancel.clone(), hub, index };
        let id = self.forwards.request(|id| Request::LoadModel { id, load });
        slot.started_loading(id, model, true, cancel);
        self.models.push(slot);
    }

    /// Ends the comparison with the model at `index` (1 or more): it is freed and not loaded again at the next
    /// start; the ones after it move up a place.
    pub fn close_compared(&mut self, index: usize) {
        if index == 0 || index >= self.models.len() {
            return;
        }
        let slot = self.models.remove(index);
        slot.cancel_load();
        if slot.info().is_some() {
            self.forwards.request(|_| Request::CloseModel { index });
        }
        self.remember_compared();
        self.load_next_compare();
    }

    /// Asks the worker to make the model at `index` the first and the first take its place (answered `Swapped`).
    pub fn swap_with_first(&mut self, index: usize) {
        let ready = self.models.get(index).is_some_and(|slot| slot.info().is_some());
        if index > 0 && ready && self.model().info().is_some() {
            let id = self.forwards.request(|id| Request::SwapWithFirst { id, index });
            self.pending_swap = Some((id, index));
        }
    }

    /// The compared models the next start loads again: those loaded now.
    fn remember_compared(&mut self) {
        self.settings.compare_models =
            self.compared().filter(|(_, slot)| slot.info().is_some()).map(|(_, slot)| slot.arg.clone()).collect();
    }

    /// The generation of every loaded model, in the list's order.
    fn model_generations(&self) -> Vec<u64> {
        self.models.iter().filter(|slot| slot.info().is_some()).map(|slot| slot.generation).collect()
    }

    /// The names of the loaded models, in the list's order (the first is the one every panel shows).
    pub fn model_names(&self) -> Vec<String> {
        self.models.iter().filter_map(|slot| slot.info().map(|info| info.name.clone())).collect()
    }

    /// What the loaded model at `index` of the list is.
    pub fn model_info(&self, index: usize) -> Option<&ModelInfo> {
        self.models.iter().filter_map(ModelSlot::info).nth(index)
    }

    /// Takes in what the background download reported: on success the session switches to the downloaded model
    /// (image, ratio, seed and mask stay as they are); on failure the demo stays and a line says why.
    pub fn poll_fetch(&mut self) {
        let Some(fetch) = self.model_mut().fetch.as_mut() else { return };
        let mut finished = None;
        while let Ok(event) = fetch.events.try_recv() {
            match event {
                FetchEvent::Progress(progress) => fetch.progress = Some(progress),
                other => finished = Some(other),
            }
        }
        let Some(event) = finished else { return };
        let hub_id = fetch.hub_id.clone();
        self.model_mut().fetch = None;
        match event {
            FetchEvent::Done => {
                // The files are in the cache: load them from there, with no second round trip to the hub.
                let cached = HubSettings { offline: true, ..self.model().hub().clone() };
                self.request_load(hub_id, true, cached);
            }
            FetchEvent::Failed(error) => self.show_info(format!(
                "Showing the small built-in demo model: {hub_id} could not be downloaded ({error}). Load it from the \
                 model field when you are online."
            )),
            FetchEvent::Progress(_) => {}
        }
    }

    pub fn set_image(&mut self, origin: ImageOrigin, rgb: Arc<image::RgbImage>, preview: egui::ColorImage) {
        if let ImageOrigin::File(path) = &origin {
            self.settings.remember_file(path.clone());
        }
        let grid_before = self.grid();
        let id = self.forwards.next_id();
        self.image.set(id, origin.display_name(), rgb, preview, self.settings.size);
        // At the picture's own size, another picture may be cut into another grid.
        self.fit_masks_to_grid(grid_before);
    }

    /// Feeds the picture at `size` from now on (the Size control, `--size`).
    pub fn set_size(&mut self, size: SizeRule) {
        if size == self.settings.size {
            return;
        }
        let grid_before = self.grid();
        self.settings.size = size;
        let id = self.forwards.next_id();
        self.image.resize(id, size);
        self.fit_masks_to_grid(grid_before);
    }

    /// The (height, width) the first model takes the picture on screen at, with the chosen size; `None` without a
    /// model, or when the size cannot be used with it (the worker's refusal says why).
    pub fn input_size(&self) -> Option<(usize, usize)> {
        let info = self.model().info()?;
        let model_size = info.image_size;
        let picture = self
            .image
            .input
            .as_ref()
            .map_or((model_size.1 as u32, model_size.0 as u32), |image| image.rgb.dimensions());
        let size = self.settings.size.input_size(picture, info.patch_size, model_size, &info.name).ok()?;
        Some((size.height, size.width))
    }

    /// The patch grid (rows, columns) the first model cuts the picture on screen into, at the chosen size.
    pub fn grid(&self) -> Option<(usize, usize)> {
        let patch = self.model().info()?.patch_size;
        self.input_size().map(|(height, width)| (height / patch, width / patch))
    }

    /// The painted mask and the mask picture cut to the grid of the picture on screen (a new model, picture or
    /// size may change it from `grid_before`); a painted mask or query patch of another grid names other places, so
    /// painting starts again and the query goes back to CLS.
    fn fit_masks_to_grid(&mut self, grid_before: Option<(usize, usize)>) {
        self.fit_mask_picture();
        if self.grid() != grid_before {
            self.mask.painted.clear();
            self.settings.query = Query::Cls;
            if self.settings.mask_mode == MaskMode::Painted {
                self.fit_painted_mask();
            }
        }
    }

    /// The mask the controls describe.
    pub fn mask_spec(&self) -> Option<MaskSpec> {
        self.mask.spec(&self.settings, self.grid())
    }

    /// Uses `picture` as the mask (switching to `Image` mode); `path` is remembered for the next start.
    pub fn set_mask_picture(&mut self, picture: MaskPicture, path: Option<PathBuf>) {
        self.mask.set_picture(picture);
        self.settings.mask_picture = path;
        self.settings.mask_mode = MaskMode::Image;
        self.fit_mask_picture();
    }

    /// Cuts the mask picture into the current model's patches; one that cannot be is dropped for random masks.
    fn fit_mask_picture(&mut self) {
        let (Some(info), Some(size)) = (self.models[0].info(), self.input_size()) else { return };
        let patch = info.patch_size;
        if let Err(error) = self.mask.fit_picture_to(size, patch) {
            self.show_error(format!("{error}; back to random masks"));
            self.settings.mask_mode = MaskMode::Random;
        }
    }

    /// The mask on screen, as a picture of the model's input size (white = masked), for File → Save mask….
    pub fn mask_on_screen_picture(&self) -> Option<image::GrayImage> {
        let result = self.result()?;
        let first = result.first();
        Some(mae_model::mask_picture::mask_to_picture(&first.masked_patches(), first.grid, first.patch_size))
    }

    pub fn set_mask_mode(&mut self, mode: MaskMode) {
        if mode == MaskMode::Painted && self.settings.mask_mode != MaskMode::Painted {
            // Painting starts from whatever mask is on screen.
            self.mask.painted.clear();
            self.fit_painted_mask();
        }
        self.settings.mask_mode = mode;
    }

    /// Makes the painted mask match the model's grid, starting from the mask on screen when there is one.
    fn fit_painted_mask(&mut self) {
        let Some(grid) = self.grid() else { return };
        let on_screen = self.result().map(|result| result.first().masked_patches());
        self.mask.fit_painted_to(grid, on_screen, &self.settings);
    }

    /// Painted mode: start again from the random mask of the current seed and ratio.
    pub fn reset_painted_to_random(&mut self) {
        if let Some(grid) = self.grid() {
            self.mask.paint_random(grid, &self.settings);
        }
    }

    /// Flips one patch of the painted mask (switching to painted mode).
    pub fn toggle_patch(&mut self, patch: usize) {
        self.set_mask_mode(MaskMode::Painted);
        self.mask.toggle(patch);
    }

    pub fn nudge_ratio(&mut self, delta: f64) {
        let ratio = ((self.settings.mask_ratio + delta) * 1000.0).round() / 1000.0;
        self.settings.mask_ratio = ratio.clamp(0.0, 1.0);
    }

    pub fn new_random_seed(&mut self) {
        // Seeds people can read and type again; the time is a fine source of variety here.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let mut next = u64::from(nanos) % 100_000;
        if next == self.settings.seed {
            next = (next + 1) % 100_000;
        }
        self.settings.seed = next;
    }

    pub fn show_error(&mut self, text: impl Into<String>) {
        self.messages.notice = Some(Notice { text: text.into(), is_error: true, expanded: false });
    }

    pub fn show_info(&mut self, text: impl Into<String>) {
        self.messages.notice = Some(Notice { text: text.into(), is_error: false, expanded: false });
    }

    /// Sends the forward request that describes what should be on screen, unless it was already sent.
    pub fn send_forward_if_changed(&mut self, view: ViewOptions) {
        let (Some(image), Some(mask)) = (self.image.input.clone(), self.mask_spec()) else { return };
        if self.model().info().is_none() {
            return;
        }
        let generations = self.model_generations();
        self.forwards.send_if_changed(generations, image, mask, view);
    }

    /// Takes in a worker response: model loads and forward results are the session's; the rest goes on to the
    /// panels.
    pub fn handle(&mut self, response: Response) -> Handled {
        let loading_id = self.model().loading.as_ref().map(|loading| loading.id);
        // A compared model's load: its place in the list.
        let compared_load = |id: u64| {
            self.models.iter().skip(1).position(|slot| slot.loading.as_ref().is_some_and(|loading| loading.id == id))
        };
        let compared = response.request_id().and_then(compared_load).map(|position| position + 1);
        match response {
            Response::ModelLoading { progress, .. } if compared.is_some() => {
                if let Some(loading) = compared.and_then(|index| self.models[index].loading.as_mut()) {
                    loading.progress = progress;
                }
                Handled::Done
            }
            Response::ModelLoaded { info, .. } if compared.is_some() => {
                if let Some(index) = compared {
                    self.models[index].loaded(*info);
                }
                self.remember_compared();
                self.load_next_compare();
                Handled::CompareLoaded
            }
            Response::Failed { error, .. } if compared.is_some() => {
                let index = compared.unwrap_or_default();
                let model = self.models.remove(index).arg;
                let message = format!("model {} ({model}) could not be loaded: {error}", model_letter(index));
                self.compare_failure = Some(message.clone());
                self.show_error(message);
                self.load_next_compare();
                Handled::Done
            }
            Response::Swapped { id } => {
                if let Some((_, index)) = self.pending_swap.take().filter(|(swap_id, _)| *swap_id == id)
                    && index < self.models.len()
                {
                    let (first, rest) = self.models.split_at_mut(1);
                    first[0].swap_models(&mut rest[index - 1]);
                    self.settings.model = Some(self.model().arg.clone());
                    self.remember_compared();
                }
                match self.model().info() {
                    Some(info) => Handled::ModelLoaded(info.clone()),
                    None => Handled::Done,
                }
            }
            Response::ModelLoading { id, progress } if Some(id) == loading_id => {
                if let Some(loading) = self.model_mut().loading.as_mut() {
                    loading.progress = progress;
                }
                Handled::Done
            }
            Response::ModelLoaded { id, info } if Some(id) == loading_id => {
                let grid_before = self.grid();
                if self.model_mut().loaded((*info).clone()) {
                    self.settings.model = Some(self.model().arg.clone());
                }
                self.settings.device = self.model().device.name().into();
                self.settings.dtype = mae_model::dtype_name(self.model().dtype).into();
                self.fit_masks_to_grid(grid_before);
                Handled::ModelLoaded(*info)
            }
            Response::Failed { id, error } if Some(id) == loading_id => {
                self.model_mut().loading = None;
                match &self.model().state {
                    // A model is in use: say the new one failed and keep going with the old one.
                    ModelState::Ready(info) => {
                        let name = info.name.clone();
                        self.show_error(format!("{error} (still using {name})"));
                    }
                    _ => {
                        // Offer what the cache holds instead (a directory listing: quick).
                        let slot = self.model_mut();
                        slot.cached_models();
                        slot.state = ModelState::Failed(error);
                    }
                }
                Handled::Done
            }
            // Answers to loads that were replaced by a newer choice.
            Response::ModelLoading { .. } | Response::ModelLoaded { .. } => Handled::Done,
            Response::Forward(result) => {
                let overlay_error = result.models.iter().find_map(|model| {
                    let error = model.overlay_error.as_ref()?;
                    Some(if model.index == 0 {
                        error.clone()
                    } else {
                        format!("model {}: {error}", model_letter(model.index))
                    })
                });
                if self.forwards.take_result(*result)
                    && let Some(error) = overlay_error
                {
                    self.show_error(error);
                }
                Handled::Done
            }
            Response::Sweep(report) => {
                self.forwards.sweep = Some(*report);
                Handled::Done
            }
            Response::Failed { id, error } if Some(id) == self.forwards.last_sent_id() => {
                self.show_error(format!("the model could not run: {error}"));
                self.forwards.last_error = Some(error);
                Handled::Done
            }
            Response::Restarted { message } => {
                self.show_error(message.clone());
                // Whatever was in flight is lost: ask again.
                self.forwards.forget_sent();
                Handled::ForPanels(Response::Restarted { message })
            }
            other => Handled::ForPanels(other),
        }
    }
}
