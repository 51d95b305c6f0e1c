//! [`RollingFile`]: a log file rotating by size and time.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind};
use crate::fmt::time::compact_utc;

/// The default size at which a log file rotates: 100 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// The default number of rotated files kept: 10.
pub const DEFAULT_MAX_FILES: usize = 10;

/// How often a file is rotated regardless of size (UTC boundaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Period {
    /// At the start of every minute (mostly for tests).
    Minutely,
    /// At the start of every hour.
    Hourly,
    /// At midnight UTC.
    Daily,
}

impl Period {
    fn seconds(self) -> u64 {
        match self {
            Period::Minutely => 60,
            Period::Hourly => 3600,
            Period::Daily => 86_400,
        }
    }
}

/// Configures a [`RollingFile`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RollingFileBuilder {
    path: PathBuf,
    max_bytes: Option<u64>,
    period: Option<Period>,
    max_files: usize,
}

impl RollingFileBuilder {
    /// Rotate before the file would grow past this size, or never with
    /// `None`. Defaults to [`DEFAULT_MAX_FILE_BYTES`] (100 MiB).
    ///
    /// ```
    /// let file = corrlog::output::RollingFile::builder("app.log").max_bytes(Some(10 << 20));
    /// # drop(file);
    /// ```
    pub fn max_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_bytes = bytes.map(|b| b.max(1));
        self
    }

    /// Rotate at each period boundary, or only by size with `None`.
    /// Defaults to `None`.
    ///
    /// ```
    /// use corrlog::output::{Period, RollingFile};
    ///
    /// let file = RollingFile::builder("app.log").period(Some(Period::Daily));
    /// # drop(file);
    /// ```
    pub fn period(mut self, period: Option<Period>) -> Self {
        self.period = period;
        self
    }

    /// How many rotated files to keep (the active one not counted); older
    /// ones are deleted. Defaults to [`DEFAULT_MAX_FILES`] (10).
    ///
    /// ```
    /// let file = corrlog::output::RollingFile::builder("app.log").max_files(3);
    /// # drop(file);
    /// ```
    pub fn max_files(mut self, n: usize) -> Self {
        self.max_files = n;
        self
    }

    /// Creates the folder if needed and opens the active file.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OpenLogFile`] when the folder or file cannot be
    /// created or opened for appending.
    pub fn open(self) -> Result<RollingFile, Error> {
        let open_err = |source| {
            Error::new(ErrorKind::OpenLogFile {
                path: self.path.clone(),
                source,
            })
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(open_err)?;
        }
        let file = open_append(&self.path).map_err(open_err)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let period_index = self.period.map_or(0, |p| now_secs() / p.seconds());
        Ok(RollingFile {
            path: self.path,
            file,
            size,
            max_bytes: self.max_bytes,
            period: self.period,
            period_index,
            max_files: self.max_files,
        })
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An append-only log file with rotation. Implements `io::Write`; give it
/// to a [`Pipeline`](super::Pipeline), which writes whole lines.
///
/// The active file is the path given; a rotated file is renamed to
/// `<name>.<UTC time of rotation>`, e.g. `app.log.20260121T103000Z` (with a
/// `-001` suffix if two rotations fall in the same second), so old files
/// sort by age. Files are opened in append mode. Rotation happens between
/// lines, never inside one; a single line larger than the size limit is
/// written whole to a file of its own.
///
/// ```
/// use corrlog::output::{Period, RollingFile};
///
/// let dir = std::env::temp_dir().join(format!("corrlog-doc-{}", std::process::id()));
/// let file = RollingFile::builder(dir.join("app.log"))
///     .max_bytes(Some(10 * 1024 * 1024))
///     .period(Some(Period::Daily))
///     .max_files(7)
///     .open()?;
/// # drop(file);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), corrlog::Error>(())
/// ```
#[derive(Debug)]
pub struct RollingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: Option<u64>,
    period: Option<Period>,
    period_index: u64,
    max_files: usize,
}

impl RollingFile {
    /// A builder for a file at `path`, rotating at
    /// [`DEFAULT_MAX_FILE_BYTES`] (100 MiB) and keeping
    /// [`DEFAULT_MAX_FILES`] (10) old files: the same defaults as
    /// [`Output::file`](crate::Output::file) and `CORRLOG_FILE`.
    pub fn builder(path: impl Into<PathBuf>) -> RollingFileBuilder {
        RollingFileBuilder {
            path: path.into(),
            max_bytes: Some(DEFAULT_MAX_FILE_BYTES),
            period: None,
            max_files: DEFAULT_MAX_FILES,
        }
    }

    /// The active file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the active file aside, opens a new one, prunes old files.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let stamp = compact_utc(now_secs());
        let base = format!("{}.{stamp}", self.file_name());
        let mut target = self.path.with_file_name(&base);
        let mut n = 0;
        while target.exists() {
            n += 1;
            target = self.path.with_file_name(format!("{base}-{n:03}"));
        }
        fs::rename(&self.path, &target)?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        self.prune();
        Ok(())
    }

    fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The rotated files, oldest first: `<name>.<YYYYMMDDTHHMMSSZ>`, with
    /// `-NNN` when several rotations fall in one second. Other files
    /// beside it (`app.log.lock`, a compressed `app.log.1.gz`) are never
    /// counted or pruned.
    pub fn rotated_files(&self) -> Vec<PathBuf> {
        let prefix = format!("{}.", self.file_name());
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|name| name.strip_prefix(&prefix))
                    .is_some_and(is_rotation_suffix)
            })
            .map(|e| e.path())
            .collect();
        files.sort();
        files
    }

    fn prune(&self) {
        let files = self.rotated_files();
        if files.len() > self.max_files {
            for old in &files[..files.len() - self.max_files] {
                let _ = fs::remove_file(old);
            }
        }
    }

    fn period_changed(&mut self) -> bool {
        match self.period {
            Some(p) => {
                let index = now_secs() / p.seconds();
                if index != self.period_index {
                    self.period_index = index;
                    true
                } else {
                    false
                }
            }
            None => false,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }
}

impl Write for RollingFile {
    /// Writes all of `buf` (whole lines), rotating between lines as
    /// needed. Either everything is written or an error is returned.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.period_changed() && self.size > 0 {
            self.rotate()?;
        }
        let mut rest = buf;
        while !rest.is_empty() {
            let room = match self.max_bytes {
                Some(max) => max.saturating_sub(self.size) as usize,
                None => usize::MAX,
            };
            if rest.len() <= room {
                self.put(rest)?;
                break;
            }
            match rest[..room].iter().rposition(|&b| b == b'\n') {
                // Fill this file up to a line boundary, then rotate.
                Some(i) => {
                    self.put(&rest[..=i])?;
                    rest = &rest[i + 1..];
                    self.rotate()?;
                }
                None if self.size > 0 => self.rotate()?,
                // One line larger than the limit: it gets a file of its own.
                None => {
                    let end = rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(rest.len(), |i| i + 1);
                    self.put(&rest[..end])?;
                    rest = &rest[end..];
                    if !rest.is_empty() {
                        self.rotate()?;
                    }
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Whether `s` is the suffix `rotate` gives a file: `YYYYMMDDTHHMMSSZ`,
/// then optionally `-` and digits.
fn is_rotation_suffix(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 16 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..8) && b[8] == b'T' && digits(9..15) && b[15] == b'Z') {
        return false;
    }
    match &b[16..] {
        [] => true,
        [b'-', rest @ ..] => !rest.is_empty() && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "corrlog-rolling-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn pruning_leaves_other_files_alone() {
        let dir = temp_dir("others");
        let others = [
            "app.log.lock",
            "app.log.1.gz",
            "app.log.20260101T000000Z.gz",
        ];
        for name in others {
            fs::write(dir.join(name), b"keep me").unwrap();
        }
        let mut f = RollingFile::builder(dir.join("app.log"))
            .max_bytes(Some(10))
            .max_files(1)
            .open()
            .unwrap();
        for _ in 0..5 {
            f.write_all(b"0123456789\n").unwrap();
        }
        f.flush().unwrap();
        assert_eq!(f.rotated_files().len(), 1);
        for name in others {
            assert_eq!(fs::read(dir.join(name)).unwrap(), b"keep me", "{name}");
        }
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn rotation_suffixes() {
        assert!(is_rotation_suffix("20261129T030405Z"));
        assert!(is_rotation_suffix("20261129T030405Z-001"));
        assert!(is_rotation_suffix("20261129T030405Z-1234"));
        assert!(!is_rotation_suffix("20261129T030405Z-"));
        assert!(!is_rotation_suffix("20261129T030405Z.gz"));
        assert!(!is_rotation_suffix("lock"));
        assert!(!is_rotation_suffix("1.gz"));
    }

    #[test]
    fn rotates_by_size_between_lines_and_keeps_max_files() {
        let dir = temp_dir("size");
        let mut f = RollingFile::builder(dir.join("app.log"))
            .max_bytes(Some(100))
            .max_files(3)
            .open()
            .unwrap();
        let line = [b'x'; 29]; // 30 bytes with the newline
        let mut all = Vec::new();
        for _ in 0..40 {
            all.extend_from_slice(&line);
            all.push(b'\n');
        }
        f.write_all(&all).unwrap();
        f.flush().unwrap();
        let rotated = f.rotated_files();
        assert_eq!(rotated.len(), 3);
        for path in rotated.iter().chain([&dir.join("app.log")]) {
            let text = fs::read_to_string(path).unwrap();
            assert!(text.len() <= 100, "{}", text.len());
            assert!(text.lines().all(|l| l.len() == 29));
        }
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_line_larger_than_the_limit_is_written_whole() {
        let dir = temp_dir("big");
        let mut f = RollingFile::builder(dir.join("app.log"))
            .max_bytes(Some(10))
            .open()
            .unwrap();
        f.write_all(b"short\n").unwrap();
        f.write_all(b"a line much longer than ten bytes\nnext\n")
            .unwrap();
        let mut texts: Vec<String> = f
            .rotated_files()
            .iter()
            .map(|p| fs::read_to_string(p).unwrap())
            .collect();
        texts.push(fs::read_to_string(dir.join("app.log")).unwrap());
        assert_eq!(
            texts,
            vec!["short\n", "a line much longer than ten bytes\n", "next\n"]
        );
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn rotates_when_the_period_changes() {
        let dir = temp_dir("period");
        let mut f = RollingFile::builder(dir.join("app.log"))
            .period(Some(Period::Hourly))
            .open()
            .unwrap();
        f.write_all(b"first hour\n").unwrap();
        // As if the hour had turned since the last write.
        f.period_index -= 1;
        f.write_all(b"next hour\n").unwrap();
        let rotated = f.rotated_files();
        assert_eq!(rotated.len(), 1);
        assert_eq!(fs::read_to_string(&rotated[0]).unwrap(), "first hour\n");
        assert_eq!(
            fs::read_to_string(dir.join("app.log")).unwrap(),
            "next hour\n"
        );
        let name = rotated[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with("app.log.") && name.ends_with('Z'),
            "{name}"
        );
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn an_unwritable_folder_is_a_clear_error() {
        let err = RollingFile::builder("/proc/corrlog-cannot-exist/app.log")
            .open()
            .unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::OpenLogFile { .. }));
        assert!(
            err.to_string().contains("check that its folder exists"),
            "{err}"
        );
    }
}
