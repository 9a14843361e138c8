//! The bytes weights are read from: a file's memory map while that is safe, the binary itself, or a copy.
//!
//! Why a memory map: reading a checkpoint through it costs no copy (the kernel's page cache is the only place the
//! bytes live), so a 448 MB base model starts in milliseconds and counts once in the process's memory.
//!
//! Why the lease: a mapped file that is truncated or rewritten in place while we read it raises SIGBUS and kills the
//! process. On Linux we hold a read lease (`fcntl(F_SETLEASE, F_RDLCK)`) on every mapped file: a process that then
//! opens the file for writing or truncates it is held by the kernel (at most `/proc/sys/fs/lease-break-time`
//! seconds, 45 by default), and we are sent SIGIO. A watcher thread then copies the bytes into memory, moves every
//! reader over to the copy and closes the file (which releases the lease); only then does the writer go on. Readers
//! hold [`WeightBytes::read`]'s lock for one matrix product at a time, so the switch waits for at most one of them.
//!
//! Where no lease can be had (a file another user owns, a file already open for writing, a file system without
//! leases, an OS other than Linux) the file is read into memory at once: a copy, never a crash. Files the hub
//! downloads are renamed into place, which leaves a mapped old file untouched, so they keep being read in place.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{PoisonError, RwLock};

/// The bytes of one weights file, of a `'static` slice compiled into the binary, or of converted values.
pub struct WeightBytes {
    bytes: RwLock<Bytes>,
}

enum Bytes {
    /// Mapped, with a read lease held on `lease` (closing it releases the lease).
    #[cfg(target_os = "linux")]
    Mapped { map: memmap2::Mmap, lease: File },
    /// Compiled into the binary: nothing can change them.
    Static(&'static [u8]),
    /// A copy, as f32 words so that any 4-byte-aligned offset is aligned for f32; `len` bytes of it are the file.
    Copied { words: Vec<f32>, len: usize },
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            #[cfg(target_os = "linux")]
            Bytes::Mapped { map, .. } => map,
            Bytes::Static(bytes) => bytes,
            Bytes::Copied { words, len } => &bytemuck::cast_slice(words)[..*len],
        }
    }
}

impl std::fmt::Debug for WeightBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightBytes").field("in_place", &self.in_place()).finish_non_exhaustive()
    }
}

impl WeightBytes {
    /// Maps `path` under a read lease where the OS and file system allow one, else reads it into memory.
    pub fn open(path: &Path) -> io::Result<std::sync::Arc<WeightBytes>> {
        #[cfg(target_os = "linux")]
        if let Some(mapped) = lease::map_leased(path)? {
            return Ok(mapped);
        }
        Ok(std::sync::Arc::new(WeightBytes { bytes: RwLock::new(copy_of_file(path)?) }))
    }

    /// Weights converted on loading (another dtype, a PyTorch checkpoint), as f32 values.
    pub fn from_values(values: Vec<f32>) -> std::sync::Arc<WeightBytes> {
        let len = values.len() * 4;
        std::sync::Arc::new(WeightBytes { bytes: RwLock::new(Bytes::Copied { words: values, len }) })
    }

    /// Bytes that live as long as the program (`include_bytes!`).
    pub fn from_static(bytes: &'static [u8]) -> std::sync::Arc<WeightBytes> {
        std::sync::Arc::new(WeightBytes { bytes: RwLock::new(Bytes::Static(bytes)) })
    }

    /// Runs `f` on the bytes; a lease break waits until `f` returns before it switches to the copy.
    pub fn read<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let bytes = self.bytes.read().unwrap_or_else(PoisonError::into_inner);
        f(bytes.as_slice())
    }

    /// Whether the bytes are read where they lie (a memory map or the binary itself) rather than from a copy.
    pub fn in_place(&self) -> bool {
        !matches!(*self.bytes.read().unwrap_or_else(PoisonError::into_inner), Bytes::Copied { .. })
    }
}

/// Reads a whole file into f32-aligned memory.
fn copy_of_file(path: &Path) -> io::Result<Bytes> {
    let mut file = File::open(path)?;
    let len = usize::try_from(file.metadata()?.len())
        .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "file larger than the address space"))?;
    let mut words = vec![0f32; len.div_ceil(4)];
    file.read_exact(&mut bytemuck::cast_slice_mut(&mut words)[..len])?;
    Ok(Bytes::Copied { words, len })
}

/// Copies bytes into f32-aligned memory.
fn copy_of_bytes(bytes: &[u8]) -> Bytes {
    let mut words = vec![0f32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut(&mut words)[..bytes.len()].copy_from_slice(bytes);
    Bytes::Copied { words, len: bytes.len() }
}

#[cfg(target_os = "linux")]
mod lease {
    //! The read leases and the thread that answers their breaks.

    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::path::Path;
    use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

    use super::{Bytes, WeightBytes, copy_of_bytes};

    /// Every file mapped under a lease that may still be read.
    static LEASED: Mutex<Vec<Weak<WeightBytes>>> = Mutex::new(Vec::new());
    /// Whether SIGIO reaches the watcher thread (registered once; without it a lease break would kill us).
    static WATCHER: OnceLock<bool> = OnceLock::new();

    /// Maps `path` under a read lease; `None` when no lease can be had (the caller copies instead).
    pub(super) fn map_leased(path: &Path) -> io::Result<Option<Arc<WeightBytes>>> {
        if !*WATCHER.get_or_init(start_watcher) {
            return Ok(None);
        }
        let file = File::open(path)?;
        // SAFETY: fcntl on a descriptor we own, with integer arguments only.
        #[allow(unsafe_code)]
        let leased = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_RDLCK) } == 0;
        if !leased {
            return Ok(None);
        }
        // SAFETY: the map is read-only, and the lease makes the kernel hold any writer or truncation of the file
        // until the watcher has moved every reader to a copy (module comment).
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file)? };
        let mapped = Arc::new(WeightBytes { bytes: std::sync::RwLock::new(Bytes::Mapped { map, lease: file }) });
        LEASED.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::downgrade(&mapped));
        // A break that came before the file was listed found nothing to do; look once more now that it is.
        copy_if_breaking(&mapped);
        Ok(Some(mapped))
    }

    fn start_watcher() -> bool {
        let Ok(mut signals) = signal_hook::iterator::Signals::new([libc::SIGIO]) else { return false };
        std::thread::Builder::new()
            .name("weights-lease".into())
            .spawn(move || {
                for _ in signals.forever() {
                    let live: Vec<Arc<WeightBytes>> = {
                        let mut leased = LEASED.lock().unwrap_or_else(PoisonError::into_inner);
                        leased.retain(|file| file.strong_count() > 0);
                        leased.iter().filter_map(Weak::upgrade).collect()
                    };
                    live.iter().for_each(|file| copy_if_breaking(file));
                }
            })
            .is_ok()
    }

    /// Someone wants to write `file` (SIGIO does not say which file, so every leased one is asked): copy it and
    /// close it, which releases the lease and lets the writer go on.
    fn copy_if_breaking(file: &WeightBytes) {
        let mut bytes = file.bytes.write().unwrap_or_else(PoisonError::into_inner);
        let Bytes::Mapped { map, lease } = &*bytes else { return };
        // SAFETY: fcntl on a descriptor the map entry owns, with integer arguments only.
        #[allow(unsafe_code)]
        let held = unsafe { libc::fcntl(lease.as_raw_fd(), libc::F_GETLEASE) };
        // While a break is pending the kernel already reports the lease as F_UNLCK.
        if held != libc::F_RDLCK {
            let copy = copy_of_bytes(map);
            *bytes = copy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_bytes_are_read_in_place() {
        let file = WeightBytes::from_static(b"abcdef");
        assert!(file.in_place());
        assert_eq!(file.read(<[u8]>::to_vec), b"abcdef");
    }

    /// Truncating and rewriting a mapped file must neither crash the reader nor change what it reads.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_truncated_while_mapped_is_copied_first() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        let original: Vec<u8> = (0..3 * 4096 + 5).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &original).unwrap();
        let file = WeightBytes::open(&path).unwrap();
        assert!(file.in_place(), "a file we own on a local file system is mapped under a lease");
        // The kernel holds this open until the watcher has copied the bytes and released the lease.
        let mut writer = std::fs::OpenOptions::new().write(true).truncate(true).open(&path).unwrap();
        writer.write_all(b"rewritten").unwrap();
        drop(writer);
        assert!(!file.in_place(), "the break switched the readers to a copy");
        assert_eq!(file.read(<[u8]>::to_vec), original);
    }
}
