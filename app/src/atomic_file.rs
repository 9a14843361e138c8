//! Writing output files so that a failure never leaves a half-written file behind.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::{DynamicImage, ImageFormat, RgbaImage};

/// Refuses to replace an existing file unless `force`.
pub fn check_overwrite(path: &Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!("{} already exists; pass --force to overwrite it", path.display());
    }
    Ok(())
}

/// A temporary file next to `target` (same folder, so the final rename is atomic).
pub fn temporary_path(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// The folder `target` will be written into, or why it cannot be.
fn existing_output_folder(target: &Path) -> Result<PathBuf> {
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    if !folder.is_dir() {
        bail!("{}: the output folder does not exist", folder.display());
    }
    Ok(folder)
}

/// Fails early when the output folder is missing or not writable, rather than after every forward pass.
pub fn check_output_folder(target: &Path) -> Result<()> {
    let folder = existing_output_folder(target)?;
    let probe = temporary_path(target);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| anyhow::anyhow!("{}: cannot write to the output folder ({e})", folder.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Calls `write` on a temporary path beside `target`, then renames it into place; on any error the
/// temporary file is removed and `target` is untouched.
pub fn write_atomically(target: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    existing_output_folder(target)?;
    let temporary = temporary_path(target);
    let result = write(&temporary).and_then(|()| {
        std::fs::rename(&temporary, target)
            .with_context(|| format!("{}: cannot move the file into place", target.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// The picture format an output's extension names (.png, .jpg/.jpeg, .webp).
pub fn picture_format(out: &Path) -> Result<ImageFormat> {
    let extension = out.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "png" => Ok(ImageFormat::Png),
        "jpg" | "jpeg" => Ok(ImageFormat::Jpeg),
        "webp" => Ok(ImageFormat::WebP),
        _ => bail!("{}: unsupported output format (use a .png, .jpg or .webp file name)", out.display()),
    }
}

/// Encodes `picture` in the format its extension names (opaque: alpha is dropped, so JPEG works too) and writes
/// it atomically.
pub fn write_picture(picture: &RgbaImage, out: &Path) -> Result<()> {
    let format = picture_format(out)?;
    let mut bytes = Vec::new();
    DynamicImage::ImageRgba8(picture.clone())
        .to_rgb8()
        .write_to(&mut std::io::Cursor::new(&mut bytes), format)
        .with_context(|| format!("{}: cannot encode the picture", out.display()))?;
    write_atomically(out, |temporary| {
        std::fs::write(temporary, &bytes).with_context(|| format!("{}: cannot write the file", out.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let err = write_atomically(&target, |tmp| {
            std::fs::write(tmp, b"partial")?;
            bail!("boom")
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomically(&target, |tmp| Ok(std::fs::write(tmp, b"whole")?)).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        assert!(check_overwrite(&target, false).is_err());
        assert!(check_overwrite(&target, true).is_ok());
        assert!(write_atomically(&dir.path().join("missing/out.bin"), |_| Ok(())).is_err());
    }
}
