//! The content-addressed blob store: a component is stored under its blake3 digest, written atomically (temp file,
//! fsync, rename, fsync of the directory), and checked against its digest every time it is read.

use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{RegistryError, Result, io};

/// A blake3 digest, shown as `blake3:<hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// Parses `blake3:<hex>` or bare hex.
    pub fn parse(s: &str) -> Option<Digest> {
        let hex = s.strip_prefix("blake3:").unwrap_or(s);
        blake3::Hash::from_hex(hex)
            .ok()
            .map(|h| Digest(*h.as_bytes()))
    }

    /// 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blake3:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A temp file this old was left by a crashed write, not one in progress.
pub const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(600);

/// Blobs under `<root>/<first two hex>/<hex>.wasm`.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (and creates) the store; removes temp files a crashed install left behind.
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobStore> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io(&root))?;
        let store = BlobStore { root };
        store.remove_temp_files();
        Ok(store)
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root.join(&hex[..2]).join(format!("{hex}.wasm"))
    }

    /// Stores `bytes`; returns its digest. Storing the same content twice is a no-op.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let path = self.path(&digest);
        if let Ok(existing) = fs::read(&path)
            && Digest::of(&existing) == digest
        {
            return Ok(digest);
        }
        write_atomic(&path, bytes)?;
        Ok(digest)
    }

    /// Reads a blob and checks its digest: a corrupted blob is an error, never served.
    pub fn get(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path(digest);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RegistryError::BlobMissing {
                    digest: digest.to_string(),
                    path,
                });
            }
            Err(e) => return Err(io(&path)(e)),
        };
        if Digest::of(&bytes) != *digest {
            return Err(RegistryError::BlobCorrupt {
                digest: digest.to_string(),
                path,
            });
        }
        Ok(bytes)
    }

    /// Deletes a blob (used when no installed version refers to it any more).
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn remove_temp_files(&self) {
        let Ok(dirs) = fs::read_dir(&self.root) else {
            return;
        };
        for dir in dirs.flatten() {
            let Ok(files) = fs::read_dir(dir.path()) else {
                continue;
            };
            for f in files.flatten() {
                // Only leftovers: another process (or thread) may be writing a fresh temp file right now.
                let stale = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_TEMP);
                if f.file_name().to_string_lossy().ends_with(".tmp") && stale {
                    let _ = fs::remove_file(f.path());
                }
            }
        }
    }
}

/// Writes `data` to `path` so that readers see either nothing or all of it: temp file in the same directory, fsync,
/// rename, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic_mode(path, data, 0o644)
}

/// [`write_atomic`] with the file's permission bits (e.g. 0o600 for secrets).
pub fn write_atomic_mode(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    // `x.sig` has the parent "" (not "."): fsync the current directory then.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and per write, so concurrent writers of the same file never share a temp file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_corruption_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path()).expect("open");
        let d = store.put(b"hello").expect("put");
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(store.get(&d).expect("get"), b"hello");
        assert_eq!(store.put(b"hello").expect("again"), d);
        fs::write(store.path(&d), b"hellO").expect("corrupt");
        assert!(matches!(
            store.get(&d),
            Err(RegistryError::BlobCorrupt { .. })
        ));
        store.delete(&d).expect("delete");
        assert!(matches!(
            store.get(&d),
            Err(RegistryError::BlobMissing { .. })
        ));
    }

    #[test]
    fn digest_round_trips() {
        let d = Digest::of(b"x");
        assert_eq!(Digest::parse(&d.to_string()), Some(d));
        assert_eq!(Digest::parse(&d.hex()), Some(d));
        assert_eq!(Digest::parse("blake3:zz"), None);
    }
}
