//! Files the xtask writes: atomically (a temp file next to the target, fsynced, then
//! renamed), and private temp folders with random names, created exclusively (never an
//! existing folder, never through a symlink).

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Random hex from the kernel.
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Replaces `path` with `content` so that a reader sees the old or the new file, never a
/// part; on failure the temp file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", random_hex(6)?));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself reaches the disk with the folder.
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Why [`read_small`] refused a file; each caller words it for its own file.
#[derive(Debug)]
pub enum SmallFileError {
    /// It cannot be looked at or opened.
    Unreadable(std::io::Error),
    /// Not a regular file (a folder, a FIFO, a device).
    NotAFile,
    /// Opened, but reading it failed.
    Read(std::io::Error),
    /// Over the size limit.
    TooBig,
    NotUtf8,
}

/// A small text file (VERSION, a key file): refused when it is not a regular file or over
/// `max` bytes, so that a planted FIFO or a huge file cannot stall or exhaust the xtask.
pub fn read_small(path: &Path, max: u64) -> Result<String, SmallFileError> {
    use SmallFileError::*;
    // Checked before opening: opening a FIFO would wait for a writer.
    if !std::fs::metadata(path).map_err(Unreadable)?.is_file() {
        return Err(NotAFile);
    }
    let f = std::fs::File::open(path).map_err(Unreadable)?;
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf).map_err(Read)?;
    if buf.len() as u64 > max {
        return Err(TooBig);
    }
    String::from_utf8(buf).map_err(|_| NotUtf8)
}

/// Mode 0600 on a file of ours.
pub fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))
}

/// A private folder (mode 0700) with a random name under `parent`, created exclusively;
/// removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(parent: &Path, prefix: &str) -> Result<TempDir> {
        let path = parent.join(format!("{prefix}{}", random_hex(8)?));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new private file inside (mode 0600, created exclusively).
    pub fn write_private(&self, name: &str, content: &[u8]) -> Result<PathBuf> {
        let p = self.path.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .with_context(|| format!("cannot create {}", p.display()))?;
        f.write_all(content)?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_no_temp_file() {
        let d = TempDir::new(&std::env::temp_dir(), "pp-files-test-").unwrap();
        let f = d.path().join("VERSION");
        write_atomic(&f, b"v1.0.0\n", 0o644).unwrap();
        write_atomic(&f, b"v1.0.1\n", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "v1.0.1\n");
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // A target that cannot be replaced (a folder): an error, and no temp file left.
        std::fs::create_dir(d.path().join("dir")).unwrap();
        std::fs::write(d.path().join("dir/x"), "").unwrap();
        assert!(write_atomic(&d.path().join("dir"), b"x", 0o644).is_err());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn small_files_only() {
        let d = TempDir::new(&std::env::temp_dir(), "pp-files-test-").unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"1234").unwrap();
        assert_eq!(read_small(&f, 4).unwrap(), "1234");
        assert!(matches!(read_small(&f, 3), Err(SmallFileError::TooBig)));
        assert!(matches!(read_small(d.path(), 4), Err(SmallFileError::NotAFile)));
        assert!(matches!(
            read_small(&d.path().join("none"), 4),
            Err(SmallFileError::Unreadable(_))
        ));
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(matches!(read_small(&f, 4), Err(SmallFileError::NotUtf8)));
    }

    #[test]
    fn temp_dirs_are_private_and_new() {
        use std::os::unix::fs::PermissionsExt;
        let d = TempDir::new(&std::env::temp_dir(), "pp-files-test-").unwrap();
        let mode = std::fs::metadata(d.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let p = d.write_private("password", b"x").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        // A planted name (here: a symlink) is never written through.
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("planted")).unwrap();
        assert!(d.write_private("planted", b"x").is_err());
        let kept = d.path().to_path_buf();
        drop(d);
        assert!(!kept.exists());
    }
}
