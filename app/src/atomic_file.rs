//! Writing output files so that a failure never leaves a half-written file behind.
//!
//! Every writer (`dump`, `export`, `loss-curve`, the window's saves) writes into a temporary file in the target's
//! folder and renames it into place, so readers only ever see a whole file. The temporary file is made by
//! `tempfile` with a short name (`.tmpXXXXXX`), so any output name the file system accepts works, up to its
//! 255-byte limit, and with mode 0666 before the umask, so outputs get the same permissions as any file the
//! user creates (0644 under the usual umask), not `tempfile`'s private 0600.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::{DynamicImage, ImageFormat, RgbaImage};
use tempfile::NamedTempFile;

/// Refuses to replace an existing file unless `force`.
pub fn check_overwrite(path: &Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!("{} already exists; pass --force to overwrite it", path.display());
    }
    Ok(())
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

/// An empty temporary file in `folder`, created with the permissions a new file normally gets.
fn temporary_file_in(folder: &Path) -> std::io::Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode `open` is given; the kernel applies the umask to it, as for any file a program creates.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(folder)
}

/// Fails early when the output folder is missing or not writable, rather than after every forward pass.
pub fn check_output_folder(target: &Path) -> Result<()> {
    let folder = existing_output_folder(target)?;
    // Dropping the probe deletes it.
    temporary_file_in(&folder)
        .map(drop)
        .map_err(|e| anyhow::anyhow!("{}: cannot write to the output folder ({e})", folder.display()))
}

/// Calls `write` with the path of a temporary file beside `target` (it exists, empty; write into it, do not
/// replace it), then renames it into place. On any error the temporary file is removed and `target` is untouched.
/// Without `force` an existing `target` is never replaced, not even one that appeared while the output was being
/// computed.
pub fn write_output(target: &Path, force: bool, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let folder = existing_output_folder(target)?;
    let temporary = temporary_file_in(&folder)
        .map_err(|e| anyhow::anyhow!("{}: cannot write to the output folder ({e})", folder.display()))?;
    write(temporary.path())?;
    let placed = if force { temporary.persist(target) } else { temporary.persist_noclobber(target) };
    // On failure `placed` still owns the temporary file, and dropping it deletes it.
    placed.map(drop).map_err(|failure| {
        if failure.error.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{} already exists; pass --force to overwrite it", target.display())
        } else {
            anyhow::Error::new(failure.error).context(format!("{}: cannot move the file into place", target.display()))
        }
    })
}

/// Writes `bytes` as the whole content of `temporary` (a path [`write_output`] handed out).
pub fn write_bytes(temporary: &Path, bytes: &[u8], target: &Path) -> Result<()> {
    std::fs::write(temporary, bytes).with_context(|| format!("{}: cannot write the file", target.display()))
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
/// it atomically, replacing an existing `out` (the window asks before it gets here).
pub fn write_picture(picture: &RgbaImage, out: &Path) -> Result<()> {
    write_picture_output(picture, out, true)
}

/// [`write_picture`] for the CLI's `--out`: an existing `out` is replaced only with `force`.
pub fn write_picture_output(picture: &RgbaImage, out: &Path, force: bool) -> Result<()> {
    let format = picture_format(out)?;
    let mut bytes = Vec::new();
    DynamicImage::ImageRgba8(picture.clone())
        .to_rgb8()
        .write_to(&mut std::io::Cursor::new(&mut bytes), format)
        .with_context(|| format!("{}: cannot encode the picture", out.display()))?;
    write_output(out, force, |temporary| write_bytes(temporary, &bytes, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn failures_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let err = write_output(&target, true, |tmp| {
            std::fs::write(tmp, b"partial")?;
            bail!("boom")
        });
        assert!(err.is_err());
        assert!(names_in(dir.path()).is_empty());
        write_output(&target, true, |tmp| Ok(std::fs::write(tmp, b"whole")?)).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        assert!(check_overwrite(&target, false).is_err());
        assert!(check_overwrite(&target, true).is_ok());
        assert!(write_output(&dir.path().join("missing/out.bin"), true, |_| Ok(())).is_err());
    }

    #[test]
    fn without_force_an_existing_file_is_kept_even_if_it_appears_late() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        let error = write_output(&target, false, |tmp| {
            std::fs::write(&target, b"appeared meanwhile")?;
            Ok(std::fs::write(tmp, b"ours")?)
        })
        .unwrap_err();
        assert!(format!("{error:#}").contains("already exists; pass --force"), "{error:#}");
        assert_eq!(std::fs::read(&target).unwrap(), b"appeared meanwhile");
        assert_eq!(names_in(dir.path()), ["out.csv"]);
        write_output(&target, true, |tmp| Ok(std::fs::write(tmp, b"ours")?)).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"ours");
    }

    #[test]
    fn names_up_to_the_file_system_limit_work() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(format!("{}.png", "n".repeat(251)));
        assert_eq!(target.file_name().unwrap().len(), 255);
        check_output_folder(&target).unwrap();
        write_output(&target, false, |tmp| Ok(std::fs::write(tmp, b"x")?)).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"x");
    }

    #[cfg(unix)]
    #[test]
    fn outputs_get_the_permissions_of_any_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ordinary = dir.path().join("ordinary");
        std::fs::write(&ordinary, b"").unwrap();
        let target = dir.path().join("out.bin");
        write_output(&target, false, |tmp| Ok(std::fs::write(tmp, b"x")?)).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        // Whatever the umask of the test run, an output is created exactly like a plain new file.
        assert_eq!(mode(&target), mode(&ordinary));
    }
}
