//! Getting pictures and folders into the window without ever blocking it: files are read and decoded on a
//! short-lived thread, rfd dialogs (which block their caller) run on their own thread, and the answers come
//! back over a channel that the window polls each frame.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use eframe::egui::{self, ColorImage};
use image::RgbImage;
use mae_model::preprocess::decode_rgb_image;

/// The sample photo shown at start: Chelsea the cat (public domain; see assets/LICENSES.md).
pub const SAMPLE_IMAGE: &[u8] = include_bytes!("../../../assets/chelsea.png");
pub const SAMPLE_NAME: &str = "chelsea.png (sample)";

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

/// A decoded picture, or the sentence saying why it could not be.
#[derive(Debug)]
pub struct LoadedImage {
    pub origin: ImageOrigin,
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

/// What a dialog thread answers.
#[derive(Debug)]
pub enum DialogAnswer {
    OpenImage(PathBuf),
    OpenModelFolder(PathBuf),
    SavePanels(PathBuf),
    SaveGrid(PathBuf),
    Cancelled,
}

/// Background file work: decoding and dialogs. Poll `images` and `dialogs` every frame.
#[derive(Debug)]
pub struct FileTasks {
    image_sender: Sender<LoadedImage>,
    pub images: Receiver<LoadedImage>,
    dialog_sender: Sender<DialogAnswer>,
    pub dialogs: Receiver<DialogAnswer>,
    /// A dialog is open (only one at a time, as desktop apps do).
    pub dialog_open: bool,
    /// Images being decoded.
    pub decoding: usize,
}

impl Default for FileTasks {
    fn default() -> Self {
        let (image_sender, images) = crossbeam_channel::unbounded();
        let (dialog_sender, dialogs) = crossbeam_channel::unbounded();
        Self { image_sender, images, dialog_sender, dialogs, dialog_open: false, decoding: 0 }
    }
}

impl FileTasks {
    /// Decodes bytes off the UI thread (large photos take a while).
    pub fn decode_bytes(&mut self, origin: ImageOrigin, bytes: Vec<u8>, ctx: &egui::Context) {
        self.decoding += 1;
        let sender = self.image_sender.clone();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let result = decode_rgb_image(&bytes).map(with_preview);
            let _ = sender.send(LoadedImage { origin, result });
            ctx.request_repaint();
        });
    }

    /// Reads and decodes a file off the UI thread.
    pub fn open_path(&mut self, path: PathBuf, ctx: &egui::Context) {
        self.decoding += 1;
        let sender = self.image_sender.clone();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let result = read_image_file(&path).map(with_preview);
            let _ = sender.send(LoadedImage { origin: ImageOrigin::File(path), result });
            ctx.request_repaint();
        });
    }

    /// A clipboard image arrives already decoded; alpha is dropped as PIL's `convert("RGB")` does.
    pub fn paste(&mut self, image: &ColorImage) {
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
        let _ = self.image_sender.send(LoadedImage { origin: ImageOrigin::Clipboard, result });
    }

    pub fn pick_image(&mut self, ctx: &egui::Context) {
        self.run_dialog(ctx, |dialog| {
            dialog
                .set_title("Open an image")
                .add_filter("Images", &["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"])
                .pick_file()
                .map_or(DialogAnswer::Cancelled, DialogAnswer::OpenImage)
        });
    }

    pub fn pick_model_folder(&mut self, ctx: &egui::Context) {
        self.run_dialog(ctx, |dialog| {
            dialog
                .set_title("Open a model folder (config.json + model.safetensors)")
                .pick_folder()
                .map_or(DialogAnswer::Cancelled, DialogAnswer::OpenModelFolder)
        });
    }

    pub fn pick_panels_destination(&mut self, ctx: &egui::Context, suggested_name: String) {
        self.run_dialog(ctx, move |dialog| {
            dialog
                .set_title("Save the four panels as one PNG")
                .add_filter("PNG image", &["png"])
                .set_file_name(suggested_name)
                .save_file()
                .map_or(DialogAnswer::Cancelled, DialogAnswer::SavePanels)
        });
    }

    pub fn pick_grid_destination(&mut self, ctx: &egui::Context, suggested_name: String) {
        self.run_dialog(ctx, move |dialog| {
            dialog
                .set_title("Export the comparison grid")
                .add_filter("PNG image", &["png"])
                .add_filter("JPEG image", &["jpg", "jpeg"])
                .set_file_name(suggested_name)
                .save_file()
                .map_or(DialogAnswer::Cancelled, DialogAnswer::SaveGrid)
        });
    }

    fn run_dialog(&mut self, ctx: &egui::Context, show: impl FnOnce(rfd::FileDialog) -> DialogAnswer + Send + 'static) {
        if self.dialog_open {
            return;
        }
        self.dialog_open = true;
        let sender = self.dialog_sender.clone();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let _ = sender.send(show(rfd::FileDialog::new()));
            ctx.request_repaint();
        });
    }
}

/// Reads an image file as the commands do (bounded read, regular files only, truncated JPEGs refused), with a
/// one-line reason on failure that names the file.
pub fn read_image_file(path: &Path) -> Result<RgbImage, String> {
    mae_model::preprocess::load_rgb_image(path).map_err(|error| error.to_string())
}

pub fn decode_sample() -> (Arc<RgbImage>, ColorImage) {
    with_preview(decode_rgb_image(SAMPLE_IMAGE).expect("the embedded sample image is a valid PNG"))
}
