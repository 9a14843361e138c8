//! What a file dialog is asked for: one request that the system's dialog (`files.rs`) or the in-window browser
//! (`file_browser.rs`) answers, with its title, suggested name and the system dialog it opens.

use std::path::PathBuf;

use crate::jobs::image_files::IMAGE_EXTENSIONS;

/// What a file dialog is for. The one request goes to the system's dialog or to the in-window browser, and its
/// answer comes back the same way from either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileRequest {
    OpenImage,
    /// A model folder (config.json + weights), or one weights file in the in-window browser.
    OpenModel,
    /// A folder of images for the Dataset panel.
    OpenDatasetFolder,
    /// A picture that becomes the mask (white = masked).
    OpenMask,
    SaveMask {
        suggested_name: String,
    },
    SavePanels {
        suggested_name: String,
    },
    SaveGrid {
        suggested_name: String,
    },
    /// An animation of the Export dialog's grid (GIF or APNG).
    SaveAnimation {
        suggested_name: String,
    },
    /// The Dataset panel's grid of its worst images.
    SaveDatasetGrid {
        suggested_name: String,
    },
}

impl FileRequest {
    pub fn title(&self) -> &'static str {
        match self {
            FileRequest::OpenImage => "Open an image",
            FileRequest::OpenModel => "Open a model folder (config.json + model.safetensors)",
            FileRequest::OpenDatasetFolder => "Choose a folder of images to evaluate",
            FileRequest::OpenMask => "Open a mask picture (white = masked)",
            FileRequest::SaveMask { .. } => "Save the mask as a picture (white = masked)",
            FileRequest::SavePanels { .. } => "Save the four pictures as one PNG",
            FileRequest::SaveGrid { .. } => "Export the comparison grid",
            FileRequest::SaveAnimation { .. } => "Export the animation (.gif or .png)",
            FileRequest::SaveDatasetGrid { .. } => "Export the worst images as a grid",
        }
    }

    /// The file name a save starts with; `None` when opening.
    pub fn suggested_name(&self) -> Option<&str> {
        match self {
            FileRequest::SaveMask { suggested_name }
            | FileRequest::SavePanels { suggested_name }
            | FileRequest::SaveGrid { suggested_name }
            | FileRequest::SaveAnimation { suggested_name }
            | FileRequest::SaveDatasetGrid { suggested_name } => Some(suggested_name),
            FileRequest::OpenImage
            | FileRequest::OpenModel
            | FileRequest::OpenDatasetFolder
            | FileRequest::OpenMask => None,
        }
    }

    /// The system's dialog for this request (blocks until it closes; `None` for a cancel, or a dialog that could
    /// not open).
    pub(super) fn show_system_dialog(&self) -> Option<PathBuf> {
        let dialog = rfd::FileDialog::new().set_title(self.title());
        match self {
            FileRequest::OpenImage | FileRequest::OpenMask => dialog.add_filter("Images", IMAGE_EXTENSIONS).pick_file(),
            FileRequest::OpenModel | FileRequest::OpenDatasetFolder => dialog.pick_folder(),
            FileRequest::SaveMask { suggested_name } | FileRequest::SavePanels { suggested_name } => {
                dialog.add_filter("PNG image", &["png"]).set_file_name(suggested_name).save_file()
            }
            FileRequest::SaveGrid { suggested_name } | FileRequest::SaveDatasetGrid { suggested_name } => dialog
                .add_filter("PNG image", &["png"])
                .add_filter("JPEG image", &["jpg", "jpeg"])
                .set_file_name(suggested_name)
                .save_file(),
            FileRequest::SaveAnimation { suggested_name } => dialog
                .add_filter("GIF animation", &["gif"])
                .add_filter("Animated PNG", &["png"])
                .set_file_name(suggested_name)
                .save_file(),
        }
    }
}
