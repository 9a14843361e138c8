//! Opening the files a user names (images, configs, `.npy` arrays, checkpoints) so that none can block, stream
//! forever or fill memory before its format is even checked.
//!
//! A device (`/dev/zero`), a named pipe or a socket given as `--image` used to be read whole: gigabytes and many
//! seconds before "not an image". Here a file is opened without blocking, its type is taken from the open handle
//! (so it cannot be swapped in between), anything but a regular file is refused, and reading stops at a limit
//! that fits the kind of file.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::memory::format_bytes;

/// Largest image we decode, in pixels: PIL's own limit (`Image.open` raises `DecompressionBombError` above twice
/// `Image.MAX_IMAGE_PIXELS` = 89 478 485), so what HF cannot open we refuse too.
pub const MAX_PIXELS: u64 = 2 * 89_478_485;
/// Largest image file read: an uncompressed 16-bit RGBA picture at PIL's pixel limit ([`MAX_PIXELS`]) is ~1.4 GB,
/// any compressed photo is far smaller.
pub const MAX_IMAGE_FILE_BYTES: u64 = 1536 << 20;
/// Largest `config.json` / `preprocessor_config.json`: HF configs are a few kB; an ImageNet-21k label map makes
/// one about 1 MB.
pub const MAX_CONFIG_FILE_BYTES: u64 = 4 << 20;

/// Opens `path` for reading if it is a regular file (symbolic links followed), with its size; otherwise a sentence
/// saying what it is instead.
pub fn open_regular(path: &Path) -> Result<(File, u64), String> {
    let file = open_without_blocking(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "file not found".to_string(),
        _ => format!("cannot open the file ({e})"),
    })?;
    let metadata = file.metadata().map_err(|e| format!("cannot read the file's type ({e})"))?;
    if metadata.is_dir() {
        return Err("is a folder, not a file".into());
    }
    if !metadata.is_file() {
        return Err("is not a regular file (a device, pipe or socket); give a file saved on disk".into());
    }
    Ok((file, metadata.len()))
}

/// The whole content of the regular file `path`, refused without reading when it is larger than `limit` bytes (a
/// `kind` such as "an image file" names it in the message). The read itself is capped too, for files whose size
/// the system reports as 0 or that grow while being read.
pub fn read_limited(path: &Path, limit: u64, kind: &str) -> Result<Vec<u8>, String> {
    let (file, size) = open_regular(path)?;
    let too_large = || format!("the file is larger than {}, the most {kind} may be", format_bytes(limit));
    if size > limit {
        return Err(format!("the file is {}; {kind} may be at most {}", format_bytes(size), format_bytes(limit)));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read the file ({e})"))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Opening a named pipe for reading waits for a writer; `O_NONBLOCK` makes it return at once (on regular files the
/// flag changes nothing), so the type check can refuse it.
#[cfg(unix)]
fn open_without_blocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_without_blocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_pipes_and_folders_are_refused_before_reading() {
        let folder = tempfile::tempdir().unwrap();
        assert_eq!(read_limited(folder.path(), 10, "a test file").unwrap_err(), "is a folder, not a file");
        assert!(read_limited(&folder.path().join("missing"), 10, "x").unwrap_err().contains("not found"));
        #[cfg(unix)]
        {
            let error = read_limited(Path::new("/dev/zero"), 10, "x").unwrap_err();
            assert!(error.contains("not a regular file"), "{error}");
            let fifo = folder.path().join("fifo");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            if made.is_ok_and(|status| status.success()) {
                // Would block forever without O_NONBLOCK: nobody ever writes to it.
                assert!(read_limited(&fifo, 10, "x").unwrap_err().contains("not a regular file"));
            }
        }
    }

    #[test]
    fn the_limit_is_checked_before_and_while_reading() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("eleven");
        std::fs::write(&path, b"hello world").unwrap();
        assert_eq!(read_limited(&path, 11, "x").unwrap(), b"hello world");
        let error = read_limited(&path, 10, "a test file").unwrap_err();
        assert_eq!(error, "the file is 11 bytes; a test file may be at most 10 bytes");
        #[cfg(target_os = "linux")]
        {
            // Reported as 0 bytes long, yet has content: the cap on the read catches it.
            let error = read_limited(Path::new("/proc/self/maps"), 10, "a test file").unwrap_err();
            assert!(error.contains("larger than 10 bytes"), "{error}");
        }
    }
}
