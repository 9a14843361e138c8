//! Getting pictures and folders into the window without ever blocking it: files are read and decoded on a
//! short-lived thread, file dialogs run on their own thread, and the answers come back over a channel that the
//! window polls each frame. This is the one place that decides between the system's file dialog (rfd, which
//! blocks its caller) and the in-window browser (`file_browser.rs`): the system's where it can open
//! (`system_dialog.rs`, checked once on the dialog thread), else the browser, saying why in one line.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crossbeam_channel::{Receiver, Sender};
use eframe::egui::{self, ColorImage};
use image::RgbImage;
use mae_model::preprocess::decode_rgb_image;

use super::file_browser::{BrowserOutcome, FileBrowser, home_folder};
use super::file_request::FileRequest;
use super::system_dialog::{self, SystemDialog};

/// The sample photo shown at start: Chelsea the cat (public domain; see assets/LICENSES.md).
const SAMPLE_IMAGE: &[u8] = include_bytes!("../../../assets/chelsea.png");
const SAMPLE_NAME: &str = "chelsea.png (sample)";

/// Where a picture came from, for titles, errors and the recent-files list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageOrigin {
    Sample,
    File(PathBuf),
    Clipboard,
}

impl ImageOrigin {
    pub fn display_name(&self) -> String {
        match self {
            ImageOrigin::Sample => SAMPLE_NAME.into(),
            ImageOrigin::File(path) => {
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
            }
            ImageOrigin::Clipboard => "pasted image".into(),
        }
    }
}

/// What a picture being read will be: the image the model sees, or a mask (white = masked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Image,
    Mask,
}

/// A decoded picture, or the sentence saying why it could not be.
#[derive(Debug)]
pub struct LoadedImage {
    pub origin: ImageOrigin,
    pub purpose: Purpose,
    /// The picture and a small preview of it (shown until the model's result arrives).
    pub result: Result<(Arc<RgbImage>, ColorImage), String>,
}

/// Longest side of the preview shown before the model has seen a new picture.
const PREVIEW_SIDE: u32 = 448;

/// A downscaled copy for the screen, made off the UI thread for big photos.
pub fn preview(rgb: &RgbImage) -> ColorImage {
    let scale = (PREVIEW_SIDE as f32 / rgb.width().max(rgb.height()) as f32).min(1.0);
    let (width, height) = (((rgb.width() as f32 * scale) as u32).max(1), ((rgb.height() as f32 * scale) as u32).max(1));
    let small = if scale < 1.0 { image::imageops::thumbnail(rgb, width, height) } else { rgb.clone() };
    ColorImage::from_rgb([small.width() as usize, small.height() as usize], small.as_raw())
}

fn with_preview(rgb: RgbImage) -> (Arc<RgbImage>, ColorImage) {
    let small = preview(&rgb);
    (Arc::new(rgb), small)
}

/// What a file dialog answers.
#[derive(Debug)]
pub enum DialogAnswer {
    Chosen(FileRequest, PathBuf),
    Cancelled,
    /// The system's dialog cannot open here (why, in one line): the in-window browser takes the request.
    NoSystemDialog(FileRequest, String),
}

/// Background file work: decoding and dialogs. Poll `images` and `dialogs` every frame.
#[derive(Debug)]
pub struct FileTasks {
    image_sender: Sender<LoadedImage>,
    pub images: Receiver<LoadedImage>,
    dialog_sender: Sender<DialogAnswer>,
    pub dialogs: Receiver<DialogAnswer>,
    /// A system dialog is open (only one at a time, as desktop apps do).
    pub dialog_open: bool,
    /// The in-window file browser, while it is open.
    pub browser: Option<FileBrowser>,
    /// Whether the system's dialog can open here: checked on the first dialog's thread, then known.
    system_dialog: Arc<OnceLock<SystemDialog>>,
    /// The folder of the last file opened or chosen, where the in-window browser starts.
    pub last_folder: Option<PathBuf>,
    /// Images being decoded.
    pub decoding: usize,
}

impl Default for FileTasks {
    fn default() -> Self {
        let (image_sender, images) = crossbeam_channel::unbounded();
        let (dialog_sender, dialogs) = crossbeam_channel::unbounded();
        Self {
            image_sender,
            images,
            dialog_sender,
            dialogs,
            dialog_open: false,
            browser: None,
            system_dialog: Arc::default(),
            last_folder: None,
            decoding: 0,
        }
    }
}

impl FileTasks {
    /// Decodes bytes off the UI thread (large photos take a while).
    pub fn decode_bytes(&mut self, origin: ImageOrigin, purpose: Purpose, bytes: Vec<u8>, ctx: &egui::Context) {
        self.decoding += 1;
        let sender = self.image_sender.clone();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let result = decode_rgb_image(&bytes).map(with_preview);
            let _ = sender.send(LoadedImage { origin, purpose, result });
            ctx.request_repaint();
        });
    }

    /// Reads and decodes a file off the UI thread.
    pub fn open_path(&mut self, path: PathBuf, purpose: Purpose, ctx: &egui::Context) {
        self.remember_folder_of(&path);
        self.decoding += 1;
        let sender = self.image_sender.clone();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let result = read_image_file(&path).map(with_preview);
            let _ = sender.send(LoadedImage { origin: ImageOrigin::File(path), purpose, result });
            ctx.request_repaint();
        });
    }

    /// A clipboard image arrives already decoded; alpha is dropped as PIL's `convert("RGB")` does.
    pub fn paste(&mut self, image: &ColorImage, purpose: Purpose) {
        let [width, height] = image.size;
        let result = if width == 0 || height == 0 {
            Err("the clipboard image is empty".to_string())
        } else {
            let rgb: Vec<u8> = image.pixels.iter().flat_map(|pixel| [pixel.r(), pixel.g(), pixel.b()]).collect();
            RgbImage::from_raw(width as u32, height as u32, rgb)
                .map(with_preview)
                .ok_or_else(|| "the clipboard image has an inconsistent size".to_string())
        };
        self.decoding += 1;
        let _ = self.image_sender.send(LoadedImage { origin: ImageOrigin::Clipboard, purpose, result });
    }

    /// Asks the user for a file: in the system's dialog where it can open, else in the in-window browser.
    pub fn ask(&mut self, request: FileRequest, ctx: &egui::Context) {
        if self.dialog_open || self.browser.is_some() {
            return;
        }
        if let Some(SystemDialog::Unavailable(why)) = self.system_dialog.get() {
            let why = why.clone();
            self.browse_in_window(request, Some(why));
            return;
        }
        self.dialog_open = true;
        let (sender, known, ctx) = (self.dialog_sender.clone(), self.system_dialog.clone(), ctx.clone());
        std::thread::spawn(move || {
            // The first check may wait for the bus for a few seconds: here, never on the UI thread.
            let answer = match known.get_or_init(system_dialog::detect) {
                SystemDialog::Available => match request.show_system_dialog() {
                    Some(path) => DialogAnswer::Chosen(request, path),
                    None => DialogAnswer::Cancelled,
                },
                SystemDialog::Unavailable(why) => DialogAnswer::NoSystemDialog(request, why.clone()),
            };
            let _ = sender.send(answer);
            ctx.request_repaint();
        });
    }

    /// Takes what is known about the system's dialog instead of checking (tests, and embedding without one).
    pub fn assume_system_dialog(&mut self, known: SystemDialog) {
        self.system_dialog = Arc::new(OnceLock::from(known));
    }

    /// Opens the in-window browser for `request` where the last file was, with `note` saying why it is used.
    pub fn browse_in_window(&mut self, request: FileRequest, note: Option<String>) {
        let start = self
            .last_folder
            .clone()
            .filter(|folder| folder.is_dir())
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(home_folder);
        self.browser = Some(FileBrowser::new(request, start, note));
    }

    /// Draws the in-window browser while it is open; its choice is answered as a dialog's.
    pub fn show_browser(&mut self, ctx: &egui::Context) {
        let Some(outcome) = self.browser.as_mut().and_then(|browser| browser.show(ctx)) else { return };
        let Some(browser) = self.browser.take() else { return };
        let answer = match outcome {
            BrowserOutcome::Chosen(path) => DialogAnswer::Chosen(browser.request, path),
            BrowserOutcome::Cancelled => DialogAnswer::Cancelled,
        };
        let _ = self.dialog_sender.send(answer);
        ctx.request_repaint();
    }

    /// The next browser starts in the folder of `path`.
    pub fn remember_folder_of(&mut self, path: &Path) {
        if let Some(folder) = path.parent().filter(|folder| !folder.as_os_str().is_empty()) {
            self.last_folder = Some(folder.to_owned());
        }
    }
}

/// Reads an image file as the commands do (bounded read, regular files only, truncated JPEGs refused), with a
/// one-line reason on failure that names the file.
fn read_image_file(path: &Path) -> Result<RgbImage, String> {
    mae_model::preprocess::load_rgb_image(path).map_err(|error| error.to_string())
}

pub fn decode_sample() -> (Arc<RgbImage>, ColorImage) {
    with_preview(decode_rgb_image(SAMPLE_IMAGE).expect("the embedded sample image is a valid PNG"))
}
