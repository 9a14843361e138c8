//! The in-window file browser: every file dialog of the app (images, model folders and weights files, the saved
//! pictures, grid exports) falls back to it where the system's dialog cannot open (see `system_dialog.rs`), and
//! File → "Browse files in the window…" opens it at any time. A path field (type or paste, Enter goes there or
//! opens the file), Up and Home, the folder's entries (folders first, images marked), and for saving a file-name
//! field and a question before an existing file is replaced.
//!
//! Written here rather than taken from a crate: egui_file 0.29 (the kept dialog crate on egui 0.37) has no Home
//! button, does not mark images, replaces an existing file without asking, prints its errors to stdout instead of
//! showing them, and draws itself as a window whose contents cannot be extended with any of that;
//! egui-file-dialog 0.15 is still on egui 0.36.

use std::path::{Path, PathBuf};

use eframe::egui::{self, Color32, Key};

use super::file_request::FileRequest;
use super::text;
use crate::jobs::image_files::has_image_extension;

/// Labels of the browser's fields and buttons (tests find them by these).
pub const PATH_LABEL: &str = "Path";
pub const FILE_NAME_LABEL: &str = "File name";
pub const REPLACE_LABEL: &str = "Replace";

const ERROR_COLOR: Color32 = Color32::from_rgb(230, 90, 80);
/// Height of the list of entries.
const LIST_HEIGHT: f32 = 280.0;

/// How the browser ended.
#[derive(Debug, PartialEq, Eq)]
pub enum BrowserOutcome {
    Chosen(PathBuf),
    Cancelled,
}

/// One entry of the folder shown.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    is_folder: bool,
}

impl Entry {
    fn is_image(&self) -> bool {
        !self.is_folder && has_image_extension(Path::new(&self.name))
    }

    /// The line in the list: folders and images marked (in words and signs every font has: the window's
    /// default fonts have no emoji).
    fn line(&self) -> String {
        let name = text::shortened(&self.name, text::NAME_CHARS);
        if self.is_folder {
            format!("{name}/")
        } else if self.is_image() {
            format!("{name} · image")
        } else {
            name
        }
    }
}

/// The browser for one request.
#[derive(Debug)]
pub struct FileBrowser {
    pub request: FileRequest,
    /// Why the system's dialog was not used, in one line (none when the menu asked for the browser).
    note: Option<String>,
    folder: PathBuf,
    /// The path field as typed.
    pub path_field: String,
    entries: Result<Vec<Entry>, String>,
    selected: Option<String>,
    /// Saving: the name of the file to write in `folder`.
    pub file_name: String,
    /// Saving: an existing file waiting for "Replace" or "Cancel".
    pub confirm_replace: Option<PathBuf>,
    show_hidden: bool,
    error: Option<String>,
}

impl FileBrowser {
    pub fn new(request: FileRequest, folder: PathBuf, note: Option<String>) -> Self {
        let file_name = request.suggested_name().unwrap_or_default().to_owned();
        let mut browser = Self {
            request,
            note,
            folder: PathBuf::new(),
            path_field: String::new(),
            entries: Ok(Vec::new()),
            selected: None,
            file_name,
            confirm_replace: None,
            show_hidden: false,
            error: None,
        };
        browser.enter(folder);
        browser
    }

    /// The folder shown.
    /// Whether names starting with a dot are listed.
    pub fn shows_hidden(&self) -> bool {
        self.show_hidden
    }

    pub fn folder(&self) -> &Path {
        &self.folder
    }

    fn saving(&self) -> bool {
        self.request.suggested_name().is_some()
    }

    /// Shows `folder`'s entries (folders first, then by name, ignoring case).
    fn enter(&mut self, folder: PathBuf) {
        // Without `..` and links in it, so Up goes to the real parent.
        let folder = folder.canonicalize().unwrap_or(folder);
        self.entries = list_folder(&folder, self.show_hidden);
        self.path_field = folder.display().to_string();
        self.folder = folder;
        self.selected = None;
        self.error = None;
    }

    /// What Enter in the path field does: a folder is shown; a file is opened (or, saving, written to).
    fn go_to_typed_path(&mut self) -> Option<BrowserOutcome> {
        let typed = self.path_field.trim();
        let path = match typed.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => home_folder().join(rest.trim_start_matches('/')),
            _ => self.folder.join(typed),
        };
        if path.is_dir() {
            self.enter(path);
            return None;
        }
        if self.saving() {
            let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else {
                self.error = Some(format!("{}: not a file name", path.display()));
                return None;
            };
            if !folder.is_dir() {
                self.error = Some(format!("{}: no such folder", folder.display()));
                return None;
            }
            self.file_name = name.to_string_lossy().into_owned();
            self.enter(folder.to_owned());
            return self.save();
        }
        if path.exists() {
            Some(BrowserOutcome::Chosen(path.canonicalize().unwrap_or(path)))
        } else {
            self.error = Some(format!("{}: no such file or folder", path.display()));
            None
        }
    }

    /// Saving: the file named in the file-name field, once replacing an existing one is confirmed.
    fn save(&mut self) -> Option<BrowserOutcome> {
        let name = self.file_name.trim();
        if name.is_empty() || name.contains('/') {
            self.error = Some("type a file name (without folders) to save to".into());
            return None;
        }
        let path = self.folder.join(name);
        if path.is_dir() {
            self.error = Some(format!("{}: is a folder", path.display()));
            None
        } else if path.exists() {
            self.confirm_replace = Some(path);
            None
        } else {
            Some(BrowserOutcome::Chosen(path))
        }
    }

    /// The Open button: the selected file, or for a model the selected (else the shown) folder.
    fn open_selected(&mut self) -> Option<BrowserOutcome> {
        let selected = self.selected.as_ref().map(|name| self.folder.join(name));
        match (&self.request, selected) {
            (FileRequest::OpenModel, Some(path)) => Some(BrowserOutcome::Chosen(path)),
            (FileRequest::OpenModel, None) => Some(BrowserOutcome::Chosen(self.folder.clone())),
            // A folder to evaluate: the selected one if it is a folder, else the one shown.
            (FileRequest::OpenDatasetFolder, Some(path)) if path.is_dir() => Some(BrowserOutcome::Chosen(path)),
            (FileRequest::OpenDatasetFolder, _) => Some(BrowserOutcome::Chosen(self.folder.clone())),
            (_, Some(path)) if path.is_dir() => {
                self.enter(path);
                None
            }
            (_, Some(path)) => Some(BrowserOutcome::Chosen(path)),
            (_, None) => {
                self.error = Some("select a file first".into());
                None
            }
        }
    }

    /// Draws the browser window; `Some` once the user chose or cancelled.
    pub fn show(&mut self, ctx: &egui::Context) -> Option<BrowserOutcome> {
        let mut open = true;
        let screen = ctx.content_rect();
        let outcome = egui::Window::new(self.request.title())
            .id(egui::Id::unique("in-window file browser"))
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .default_width(560.0_f32.min(screen.width() - 40.0))
            .max_width(screen.width() - 40.0)
            .show(ctx, |ui| self.contents(ui))
            .and_then(|response| response.inner.flatten());
        let escape = ctx.input(|input| input.key_pressed(Key::Escape));
        if !open || escape {
            return Some(BrowserOutcome::Cancelled);
        }
        outcome
    }

    fn contents(&mut self, ui: &mut egui::Ui) -> Option<BrowserOutcome> {
        if let Some(note) = &self.note {
            let color = ui.visuals().weak_text_color();
            text::wrapped_message(ui, note, color, ui.available_width(), None);
        }
        let mut outcome = None;
        ui.horizontal(|ui| {
            let parent = self.folder.parent().map(Path::to_owned);
            if ui.add_enabled(parent.is_some(), egui::Button::new("Up")).on_hover_text("The folder above").clicked()
                && let Some(parent) = parent
            {
                self.enter(parent);
            }
            if ui.button("Home").on_hover_text(home_folder().display().to_string()).clicked() {
                self.enter(home_folder());
            }
            let label = ui.label(PATH_LABEL);
            let field = ui
                .add(egui::TextEdit::singleline(&mut self.path_field).desired_width(f32::INFINITY))
                .labelled_by(label.id)
                .on_hover_text("Type or paste a folder or file; Enter goes there (a file is opened)");
            if field.lost_focus() && ui.input(|input| input.key_pressed(Key::Enter)) {
                outcome = self.go_to_typed_path();
            }
        });
        if ui.checkbox(&mut self.show_hidden, "Hidden files").on_hover_text("Names starting with a dot").changed() {
            self.enter(self.folder.clone());
        }
        outcome = outcome.or_else(|| self.entry_list(ui));
        if self.saving() {
            ui.horizontal(|ui| {
                let label = ui.label(FILE_NAME_LABEL);
                let field = ui
                    .add(egui::TextEdit::singleline(&mut self.file_name).desired_width(f32::INFINITY))
                    .labelled_by(label.id);
                if field.lost_focus() && ui.input(|input| input.key_pressed(Key::Enter)) {
                    outcome = outcome.take().or_else(|| self.save());
                }
            });
        }
        if let Some(error) = &self.error {
            text::wrapped_message(ui, error, ERROR_COLOR, ui.available_width(), None);
        }
        if let Some(existing) = self.confirm_replace.clone() {
            outcome = outcome.or_else(|| self.replace_question(ui, &existing));
        } else {
            outcome = outcome.or_else(|| self.buttons(ui));
        }
        outcome
    }

    /// The folder's entries: a click selects, a double click opens a folder or chooses a file.
    fn entry_list(&mut self, ui: &mut egui::Ui) -> Option<BrowserOutcome> {
        let entries = match &self.entries {
            Ok(entries) => entries.clone(),
            Err(error) => {
                text::wrapped_message(ui, error, ERROR_COLOR, ui.available_width(), None);
                return None;
            }
        };
        let mut outcome = None;
        egui::Frame::group(ui.style()).show(ui, |ui| {
            let row_height = ui.spacing().interact_size.y;
            egui::ScrollArea::vertical().max_height(LIST_HEIGHT).auto_shrink([false, false]).show_rows(
                ui,
                row_height,
                entries.len(),
                |ui, rows| {
                    for entry in &entries[rows] {
                        let is_selected = self.selected.as_deref() == Some(entry.name.as_str());
                        let response = ui.selectable_label(is_selected, entry.line());
                        let response = if entry.name.chars().count() > text::NAME_CHARS {
                            response.on_hover_text(&entry.name)
                        } else {
                            response
                        };
                        if response.clicked() {
                            self.selected = Some(entry.name.clone());
                            self.error = None;
                            if self.saving() && !entry.is_folder {
                                self.file_name = entry.name.clone();
                            }
                        }
                        if response.double_clicked() {
                            let path = self.folder.join(&entry.name);
                            if entry.is_folder {
                                self.enter(path);
                            } else if self.saving() {
                                outcome = self.save();
                            } else {
                                outcome = Some(BrowserOutcome::Chosen(path));
                            }
                            break;
                        }
                    }
                },
            );
            if entries.is_empty() {
                ui.weak("(empty folder)");
            }
        });
        outcome
    }

    fn buttons(&mut self, ui: &mut egui::Ui) -> Option<BrowserOutcome> {
        let mut outcome = None;
        ui.horizontal(|ui| {
            let (action, hover) = match self.request {
                FileRequest::OpenImage => ("Open", "Open the selected picture (or enter the selected folder)"),
                FileRequest::OpenMask => ("Open mask", "Use the selected picture as the mask (white = masked)"),
                FileRequest::OpenModel => ("Open model", "Load the selected folder or weights file, else this folder"),
                FileRequest::OpenDatasetFolder => ("Choose folder", "Evaluate the selected folder, else this folder"),
                FileRequest::SaveMask { .. }
                | FileRequest::SavePanels { .. }
                | FileRequest::SaveGrid { .. }
                | FileRequest::SaveAnimation { .. }
                | FileRequest::SaveDatasetGrid { .. } => ("Save", "Save in this folder under the file name"),
            };
            if ui.button(action).on_hover_text(hover).clicked() {
                outcome = if self.saving() { self.save() } else { self.open_selected() };
            }
            if ui.button("Cancel").on_hover_text("Close without choosing (Esc)").clicked() {
                outcome = Some(BrowserOutcome::Cancelled);
            }
        });
        outcome
    }

    fn replace_question(&mut self, ui: &mut egui::Ui, existing: &Path) -> Option<BrowserOutcome> {
        let name = existing.file_name().map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        let question =
            format!("{} already exists in this folder. Replace it?", text::shortened(&name, text::NAME_CHARS));
        text::wrapped_message(ui, &question, ERROR_COLOR, ui.available_width(), None);
        let mut outcome = None;
        ui.horizontal(|ui| {
            if ui.button(REPLACE_LABEL).on_hover_text(existing.display().to_string()).clicked() {
                outcome = Some(BrowserOutcome::Chosen(existing.to_owned()));
            }
            if ui.button("Keep it").on_hover_text("Choose another name").clicked() {
                self.confirm_replace = None;
            }
        });
        outcome
    }
}

/// Entries of `folder`, folders first; hidden ones (a leading dot) only when asked for.
fn list_folder(folder: &Path, show_hidden: bool) -> Result<Vec<Entry>, String> {
    let read = std::fs::read_dir(folder).map_err(|error| format!("{}: cannot be read ({error})", folder.display()))?;
    let mut entries: Vec<Entry> = read
        .flatten()
        .map(|entry| Entry {
            name: entry.file_name().to_string_lossy().into_owned(),
            // Followed through links: a link to a folder is entered like one.
            is_folder: entry.path().is_dir(),
        })
        .filter(|entry| show_hidden || !entry.name.starts_with('.'))
        .collect();
    entries
        .sort_by(|a, b| b.is_folder.cmp(&a.is_folder).then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase())));
    Ok(entries)
}

/// The user's home folder (the file system root where there is none).
pub fn home_folder() -> PathBuf {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|home| !home.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder_with_files() -> tempfile::TempDir {
        let folder = tempfile::tempdir().unwrap();
        for name in ["b.png", "A.JPG", "notes.txt", ".hidden.png"] {
            std::fs::write(folder.path().join(name), "").unwrap();
        }
        std::fs::create_dir(folder.path().join("zebra")).unwrap();
        std::fs::create_dir(folder.path().join("Alpha")).unwrap();
        folder
    }

    #[test]
    fn folders_come_first_images_are_marked_hidden_files_only_when_asked() {
        let folder = folder_with_files();
        let lines: Vec<String> = list_folder(folder.path(), false).unwrap().iter().map(Entry::line).collect();
        assert_eq!(lines, ["Alpha/", "zebra/", "A.JPG · image", "b.png · image", "notes.txt"]);
        assert_eq!(list_folder(folder.path(), true).unwrap().len(), 6);
        let missing = folder.path().join("missing");
        assert!(list_folder(&missing, false).unwrap_err().contains("cannot be read"));
    }

    #[test]
    fn a_typed_path_enters_a_folder_or_chooses_a_file() {
        let temporary = folder_with_files();
        let folder = temporary.path().canonicalize().unwrap();
        let mut browser = FileBrowser::new(FileRequest::OpenImage, PathBuf::from("/"), None);
        browser.path_field = folder.join("zebra").display().to_string();
        assert_eq!(browser.go_to_typed_path(), None);
        assert_eq!(browser.folder(), folder.join("zebra"));
        // Relative to the folder shown.
        browser.path_field = "../b.png".into();
        assert_eq!(browser.go_to_typed_path(), Some(BrowserOutcome::Chosen(folder.join("b.png"))));
        browser.path_field = "nothing-here.png".into();
        assert_eq!(browser.go_to_typed_path(), None);
        assert!(browser.error.as_deref().unwrap().contains("no such file or folder"));
    }

    #[test]
    fn saving_over_an_existing_file_asks_first() {
        let temporary = folder_with_files();
        let folder = temporary.path().canonicalize().unwrap();
        let request = FileRequest::SavePanels { suggested_name: "b.png".into() };
        let mut browser = FileBrowser::new(request, folder.clone(), None);
        assert_eq!(browser.save(), None);
        assert_eq!(browser.confirm_replace, Some(folder.join("b.png")));
        browser.confirm_replace = None;
        browser.file_name = "new.png".into();
        assert_eq!(browser.save(), Some(BrowserOutcome::Chosen(folder.join("new.png"))));
        browser.file_name = "zebra".into();
        assert_eq!(browser.save(), None, "a folder is not overwritten");
        // A full path typed in the path field saves there.
        browser.path_field = folder.join("zebra/inside.png").display().to_string();
        assert_eq!(browser.go_to_typed_path(), Some(BrowserOutcome::Chosen(folder.join("zebra/inside.png"))));
    }
}
