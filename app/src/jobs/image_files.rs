//! Which files are images: the one extension list (folders, file dialogs and the in-window browser all use it),
//! the one folder walk, and what an image argument means — `--image` of `export` and `compare` (files, or folders
//! whose images become rows) and `--images` of `eval` (a folder, a list file or one image).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mae_model::input_file::{MAX_CONFIG_FILE_BYTES, read_limited};

use super::grid::{GridImage, GridImageSource};

/// File extensions taken from a folder and offered by the file dialogs (the decoder reads every one).
pub const IMAGE_EXTENSIONS: &[&str] =
    &["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "ppm", "pgm", "pnm", "tga", "ico", "qoi"];

/// Whether a file name ends in an image extension (any case).
pub fn has_image_extension(path: &Path) -> bool {
    let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    IMAGE_EXTENSIONS.contains(&extension.as_str())
}

/// Whether a folder entry counts as an image: an image extension and not hidden.
pub fn is_image_name(path: &Path) -> bool {
    let hidden = path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.'));
    !hidden && has_image_extension(path)
}

/// The images of `folder` (paths as found under it), sorted; with `recursive`, those of its subfolders too (hidden
/// folders and links to folders are not entered, so a link loop cannot hold the walk).
fn folder_images(folder: &Path, recursive: bool) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_owned()];
    while let Some(current) = pending.pop() {
        let entries =
            std::fs::read_dir(&current).with_context(|| format!("{}: cannot list the folder", current.display()))?;
        for entry in entries.filter_map(std::result::Result::ok) {
            let path = entry.path();
            let is_real_folder = entry.file_type().is_ok_and(|kind| kind.is_dir());
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if is_real_folder {
                if recursive && !hidden {
                    pending.push(path);
                }
            } else if path.is_file() && is_image_name(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The paths a list file names, one a line, as written (relative ones are relative to the current folder, as for
/// any path on the command line); blank lines and lines starting with `#` are skipped.
fn listed_images(list: &Path) -> Result<Vec<PathBuf>> {
    // A list of a million paths is well under this; anything larger is not a list.
    const MAX_LIST_BYTES: u64 = 64 * MAX_CONFIG_FILE_BYTES;
    let bytes = read_limited(list, MAX_LIST_BYTES, "a list of images")
        .map_err(|problem| anyhow::anyhow!("{}: {problem}", list.display()))?;
    let Ok(text) = String::from_utf8(bytes) else {
        bail!("{}: not a text file (a list of images has one path a line)", list.display());
    };
    Ok(text
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(PathBuf::from)
        .collect())
}

/// `--images DIR|LIST.txt|IMAGE`: a folder's images, a list file's paths, or one image file; sorted by path and
/// without repeats (the order shards are cut in).
pub fn images_argument(argument: &Path, recursive: bool) -> Result<Vec<PathBuf>> {
    let mut paths = if argument.is_dir() {
        folder_images(argument, recursive)?
    } else if argument.is_file() && is_image_name(argument) {
        vec![argument.to_owned()]
    } else if argument.exists() {
        listed_images(argument)?
    } else {
        bail!("{}: no such folder or list file", argument.display());
    };
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        bail!("{}: no images there ({})", argument.display(), IMAGE_EXTENSIONS.join(", "));
    }
    Ok(paths)
}

/// `--image` of `export` and `compare`: each file as given (a device or a pipe is refused by the image reader,
/// which says what it is), each folder as its images (sorted, hidden ones left out; one that holds none is an
/// error), every one a row captioned with its file name; an unreadable image of a folder is skipped with a warning.
pub fn grid_images(paths: &[PathBuf]) -> Result<Vec<GridImage>> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.is_dir() {
            let found = folder_images(path, false)?;
            if found.is_empty() {
                bail!("{}: the folder holds no images ({})", path.display(), IMAGE_EXTENSIONS.join(", "));
            }
            inputs.extend(found.into_iter().map(|path| grid_image(path, true)));
        } else if path.exists() {
            inputs.push(grid_image(path.clone(), false));
        } else {
            bail!("{}: image not found", path.display());
        }
    }
    Ok(inputs)
}

/// Rows are captioned with the file name, as the window captions the picture it opened.
fn grid_image(path: PathBuf, skip_if_unreadable: bool) -> GridImage {
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    GridImage { name, source: GridImageSource::File { path, skip_if_unreadable } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_lists_and_subfolders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        for name in ["b.png", "a.JPG", "notes.txt", ".c.png", "sub/d.webp", "sub/deeper/e.png", ".hidden/f.png"] {
            std::fs::write(root.join(name), b"x").unwrap();
        }
        let relative = |paths: Vec<PathBuf>| -> Vec<String> {
            paths.iter().map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned()).collect()
        };
        assert_eq!(relative(images_argument(root, false).unwrap()), ["a.JPG", "b.png"]);
        assert_eq!(
            relative(images_argument(root, true).unwrap()),
            ["a.JPG", "b.png", "sub/d.webp", "sub/deeper/e.png"]
        );
        let list = root.join("list.txt");
        std::fs::write(&list, "# images\nz.png\n\na.png\nz.png\n").unwrap();
        assert_eq!(images_argument(&list, false).unwrap(), [PathBuf::from("a.png"), PathBuf::from("z.png")]);
        assert_eq!(images_argument(&root.join("b.png"), false).unwrap(), [root.join("b.png")]);
        assert!(images_argument(&root.join("missing"), false).unwrap_err().to_string().contains("no such"));
        std::fs::write(&list, "# nothing\n").unwrap();
        assert!(images_argument(&list, false).unwrap_err().to_string().contains("no images"));
    }
}
