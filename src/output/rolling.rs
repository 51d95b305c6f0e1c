//! [`RollingFile`]: a log file rotating by size and time.

use std::fmt;
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

/// The default permissions of a log file: owner read-write, group read.
pub const DEFAULT_FILE_MODE: u32 = 0o640;

/// The default permissions of a folder corrlog creates for its log files.
pub const DEFAULT_DIR_MODE: u32 = 0o750;

/// How often a file is rotated regardless of size (UTC boundaries).
///
/// ```
/// use corrlog::output::{Period, RollingFile};
///
/// let hourly = RollingFile::builder("app.log").period(Some(Period::Hourly));
/// # drop(hourly);
/// ```
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

/// Opens the active file for appending: how [`RollingFile`] does it, or a
/// stand-in in tests.
type Opener = fn(&Path, u32) -> io::Result<File>;

/// Opens `path` for appending, created with `mode` (on Unix), never
/// through a symbolic link at `path` itself.
fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode).custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Configures a [`RollingFile`].
#[derive(Clone)]
#[must_use]
pub struct RollingFileBuilder {
    path: PathBuf,
    max_bytes: Option<u64>,
    period: Option<Period>,
    max_files: usize,
    file_mode: u32,
    dir_mode: u32,
    opener: Opener,
}

impl fmt::Debug for RollingFileBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RollingFileBuilder")
            .field("path", &self.path)
            .field("max_bytes", &self.max_bytes)
            .field("period", &self.period)
            .field("max_files", &self.max_files)
            .field("file_mode", &format_args!("{:o}", self.file_mode))
            .field("dir_mode", &format_args!("{:o}", self.dir_mode))
            .finish()
    }
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

    /// The permissions a new log file is created with (Unix; the umask
    /// still applies). Defaults to [`DEFAULT_FILE_MODE`] (`0o640`): log
    /// lines carry request data, so others may not read them. An existing
    /// file keeps its permissions.
    ///
    /// ```
    /// let file = corrlog::output::RollingFile::builder("app.log").file_mode(0o600);
    /// # drop(file);
    /// ```
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.file_mode = mode;
        self
    }

    /// The permissions of the folders created for the log file (Unix; the
    /// umask still applies). Defaults to [`DEFAULT_DIR_MODE`] (`0o750`).
    ///
    /// ```
    /// let file = corrlog::output::RollingFile::builder("logs/app.log").dir_mode(0o700);
    /// # drop(file);
    /// ```
    pub fn dir_mode(mut self, mode: u32) -> Self {
        self.dir_mode = mode;
        self
    }

    #[cfg(test)]
    pub(crate) fn opener(mut self, opener: Opener) -> Self {
        self.opener = opener;
        self
    }

    /// Creates the folder if needed and opens the active file.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::SymlinkLogFile`] when the path is a symbolic link
    /// (corrlog never follows one there: whoever can write the folder
    /// could point it at another file), and [`ErrorKind::OpenLogFile`] when
    /// the folder or file cannot be created or opened for appending.
    pub fn open(self) -> Result<RollingFile, Error> {
        let open_err = |source: io::Error| {
            let kind = if is_symlink(&self.path) {
                ErrorKind::SymlinkLogFile {
                    path: self.path.clone(),
                }
            } else {
                ErrorKind::OpenLogFile {
                    path: self.path.clone(),
                    source,
                }
            };
            Error::new(kind)
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, self.dir_mode);
            builder.create(dir).map_err(open_err)?;
        }
        let file = (self.opener)(&self.path, self.file_mode).map_err(open_err)?;
        let period_index = self.period.map_or(0, |p| now_secs() / p.seconds());
        let mut rolling = RollingFile {
            path: self.path,
            active: None,
            max_bytes: self.max_bytes,
            period: self.period,
            period_index,
            max_files: self.max_files,
            file_mode: self.file_mode,
            opener: self.opener,
            deferred_error: None,
        };
        rolling.adopt(file);
        Ok(rolling)
    }
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Which file a path names, to notice when it is deleted or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    #[cfg(unix)]
    fn of(meta: &fs::Metadata) -> Option<Identity> {
        use std::os::unix::fs::MetadataExt;
        Some(Identity {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    #[cfg(not(unix))]
    fn of(_meta: &fs::Metadata) -> Option<Identity> {
        None
    }
}

/// The open active file.
#[derive(Debug)]
struct Active {
    file: File,
    size: u64,
    identity: Option<Identity>,
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
    /// `None` after an open failed: the next write tries again.
    active: Option<Active>,
    max_bytes: Option<u64>,
    period: Option<Period>,
    period_index: u64,
    max_files: usize,
    file_mode: u32,
    opener: Opener,
    /// A rotation that failed while the lines still went out, reported by
    /// the next `flush` (the pipeline counts it, and no line as lost).
    deferred_error: Option<io::Error>,
}

impl RollingFile {
    /// A builder for a file at `path`, rotating at
    /// [`DEFAULT_MAX_FILE_BYTES`] (100 MiB) and keeping
    /// [`DEFAULT_MAX_FILES`] (10) old files: the same defaults as
    /// [`Destination::File`](super::Destination::File) and `CORRLOG_FILE`.
    ///
    /// ```
    /// let file = corrlog::output::RollingFile::builder("/var/log/app/app.log");
    /// # drop(file);
    /// ```
    pub fn builder(path: impl Into<PathBuf>) -> RollingFileBuilder {
        RollingFileBuilder {
            path: path.into(),
            max_bytes: Some(DEFAULT_MAX_FILE_BYTES),
            period: None,
            max_files: DEFAULT_MAX_FILES,
            file_mode: DEFAULT_FILE_MODE,
            dir_mode: DEFAULT_DIR_MODE,
            opener: open_append,
        }
    }

    /// The active file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn adopt(&mut self, file: File) {
        let meta = file.metadata().ok();
        self.active = Some(Active {
            size: meta.as_ref().map_or(0, fs::Metadata::len),
            identity: meta.as_ref().and_then(Identity::of),
            file,
        });
    }

    /// Makes sure lines go to the file the path names now: opens it if the
    /// last open failed, or if the file was deleted or replaced (moved
    /// aside by another tool) since it was opened.
    fn ensure_open(&mut self) -> io::Result<&mut Active> {
        let current = match &self.active {
            None => false,
            Some(active) => match (fs::symlink_metadata(&self.path), active.identity) {
                (Err(e), _) if e.kind() == io::ErrorKind::NotFound => false,
                (Ok(meta), Some(id)) => Identity::of(&meta) == Some(id),
                // Unknown: keep the file we have.
                _ => true,
            },
        };
        if !current {
            self.active = None;
            let file = (self.opener)(&self.path, self.file_mode)?;
            self.adopt(file);
        }
        match self.active.as_mut() {
            Some(active) => Ok(active),
            None => Err(io::Error::other("log file not open")),
        }
    }

    /// Renames the active file aside, opens a new one, prunes old files.
    /// If the rename fails, the current file is kept (over its limit) and
    /// the error reported by the next `flush`: lines are never dropped for
    /// a rotation. If the new file cannot be opened, the error is returned
    /// and the next write tries again.
    fn rotate(&mut self) -> io::Result<()> {
        if let Some(active) = self.active.as_mut() {
            active.file.flush()?;
        }
        let stamp = compact_utc(now_secs());
        let base = format!("{}.{stamp}", self.file_name());
        let mut target = self.path.with_file_name(&base);
        let mut n = 0;
        while target.exists() {
            n += 1;
            target = self.path.with_file_name(format!("{base}-{n:03}"));
        }
        match fs::rename(&self.path, &target) {
            Ok(()) => {}
            // Deleted under us: nothing to keep, start a new file.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                // Keep writing where we are; try again at the next
                // boundary.
                if let Some(active) = self.active.as_mut() {
                    active.size = 0;
                }
                self.deferred_error = Some(e);
                return Ok(());
            }
        }
        self.active = None;
        let file = (self.opener)(&self.path, self.file_mode)?;
        self.adopt(file);
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
        // `write_lines` made sure of the file; a rotation opened a new one
        // or returned its error.
        let Some(active) = self.active.as_mut() else {
            return Err(io::Error::other("log file not open"));
        };
        active.file.write_all(bytes)?;
        active.size += bytes.len() as u64;
        Ok(())
    }

    fn size(&self) -> u64 {
        self.active.as_ref().map_or(0, |a| a.size)
    }

    /// Writes whole lines of `buf`, rotating between lines as needed;
    /// returns how many bytes went out before an error, if one came.
    fn write_lines(&mut self, buf: &[u8], done: &mut usize) -> io::Result<()> {
        self.ensure_open()?;
        if self.period_changed() && self.size() > 0 {
            self.rotate()?;
        }
        while *done < buf.len() {
            let rest = &buf[*done..];
            let room = match self.max_bytes {
                Some(max) => max.saturating_sub(self.size()) as usize,
                None => usize::MAX,
            };
            if rest.len() <= room {
                self.put(rest)?;
                *done = buf.len();
                break;
            }
            match rest[..room].iter().rposition(|&b| b == b'\n') {
                // Fill this file up to a line boundary, then rotate.
                Some(i) => {
                    self.put(&rest[..=i])?;
                    *done += i + 1;
                    self.rotate()?;
                }
                None if self.size() > 0 => self.rotate()?,
                // One line larger than the limit: a file of its own.
                None => {
                    let end = rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(rest.len(), |i| i + 1);
                    self.put(&rest[..end])?;
                    *done += end;
                    if *done < buf.len() {
                        self.rotate()?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Write for RollingFile {
    /// Writes `buf` (whole lines), rotating between lines as needed. After
    /// an error part way, returns the bytes written before it, so a caller
    /// counts exactly what reached the file; the next call reports the
    /// error.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut done = 0;
        match self.write_lines(buf, &mut done) {
            Err(e) if done == 0 => Err(e),
            _ => Ok(done),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(active) = self.active.as_mut() {
            active.file.flush()?;
        }
        match self.deferred_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
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

    fn lines_in(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .filter_map(|p| fs::read_to_string(p).ok())
            .flat_map(|t| t.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }

    fn all_files(f: &RollingFile) -> Vec<PathBuf> {
        let mut files = f.rotated_files();
        files.push(f.path().to_path_buf());
        files
    }

    fn line(n: u32) -> Vec<u8> {
        format!("{{\"n\":{n:04}}}\n").into_bytes()
    }

    #[test]
    fn a_deleted_file_is_reopened_and_rotation_goes_on() {
        let dir = temp_dir("deleted");
        let path = dir.join("app.log");
        let mut f = RollingFile::builder(&path)
            .max_bytes(Some(60))
            .max_files(100)
            .open()
            .unwrap();
        // 7 lines: a full rotated file and 2 lines in the active one.
        for n in 0..7 {
            f.write_all(&line(n)).unwrap();
        }
        fs::remove_file(&path).unwrap();
        // Every later line reaches a file that exists, rotation included.
        for n in 7..50 {
            f.write_all(&line(n)).unwrap();
        }
        f.flush().unwrap();
        let kept = lines_in(&all_files(&f));
        for n in 7..50 {
            let want = String::from_utf8(line(n)).unwrap();
            assert!(kept.contains(&want.trim().to_owned()), "line {n} lost");
        }
        assert!(f.rotated_files().len() >= 5);
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_rotation_after_the_file_was_deleted_starts_a_new_one() {
        let dir = temp_dir("deleted-rotate");
        let path = dir.join("app.log");
        let mut f = RollingFile::builder(&path).open().unwrap();
        f.write_all(b"before\n").unwrap();
        // Deleted between the check before a write and the rotation.
        fs::remove_file(&path).unwrap();
        f.rotate().unwrap();
        // Not a failed rotation: nothing to report.
        f.flush().unwrap();
        f.write_all(b"after\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "after\n");
        assert!(f.rotated_files().is_empty(), "nothing to archive");
        fs::remove_dir_all(dir).ok();
    }

    static FAIL_OPENS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Opens like `RollingFile` does, unless told to fail (as with EMFILE
    /// when descriptors run out).
    fn flaky_open(path: &Path, mode: u32) -> io::Result<File> {
        if FAIL_OPENS.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(24)); // EMFILE
        }
        open_append(path, mode)
    }

    #[test]
    fn a_failed_open_is_retried_and_every_line_is_counted() {
        use crate::fmt::Sink;
        use crate::output::Pipeline;
        use std::sync::atomic::Ordering::SeqCst;
        use std::time::Duration;

        let dir = temp_dir("emfile");
        let file = RollingFile::builder(dir.join("app.log"))
            .max_bytes(Some(60))
            .max_files(100)
            .opener(flaky_open)
            .open()
            .unwrap();
        let (p, guard) = Pipeline::builder(file).batch_delay(Duration::ZERO).start();
        let mut n = 0;
        let mut send = |count: u32| {
            for _ in 0..count {
                p.write_line(&line(n));
                n += 1;
            }
            p.flush(Duration::from_secs(5));
        };
        send(10);
        // Descriptors run out: the next rotation cannot open a new file.
        FAIL_OPENS.store(true, SeqCst);
        send(20);
        // They come back: the next write opens the file again.
        FAIL_OPENS.store(false, SeqCst);
        send(20);
        let report = guard.shutdown(Duration::from_secs(5));
        let stats = report.stats;
        assert_eq!(stats.submitted, 50);
        assert!(stats.failed > 0, "{stats:?}");
        assert!(stats.write_errors > 0, "{stats:?}");
        assert_eq!(stats.written + stats.failed, 50, "{stats:?}");
        // Exactly the lines counted as written are on disk, once each, and
        // every line after the recovery is among them.
        let probe = RollingFile::builder(dir.join("app.log"))
            .max_files(100)
            .open()
            .unwrap();
        let on_disk = lines_in(&all_files(&probe));
        assert_eq!(on_disk.len() as u64, stats.written, "{stats:?}");
        let unique: std::collections::HashSet<_> = on_disk.iter().collect();
        assert_eq!(unique.len(), on_disk.len());
        for n in 30..50 {
            let want = String::from_utf8(line(n)).unwrap();
            assert!(
                on_disk.contains(&want.trim().to_owned()),
                "line {n} lost after recovery"
            );
        }
        // No file grew past its limit (60 bytes = 5 lines of 12).
        for path in all_files(&probe) {
            assert!(
                fs::metadata(&path).unwrap().len() <= 60,
                "{}",
                path.display()
            );
        }
        fs::remove_dir_all(dir).ok();
    }

    #[cfg(unix)]
    #[test]
    fn files_and_folders_are_private_and_symlinks_are_refused() {
        use std::os::unix::fs::{symlink, PermissionsExt};

        let dir = temp_dir("modes");
        let path = dir.join("logs").join("app.log");
        let mut f = RollingFile::builder(&path)
            .max_bytes(Some(20))
            .open()
            .unwrap();
        f.write_all(b"0123456789\n0123456789\n").unwrap();
        for p in all_files(&f) {
            let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o027, 0, "{}: {mode:o}", p.display());
            assert_eq!(mode & 0o600, 0o600, "{}: {mode:o}", p.display());
        }
        let folder = fs::metadata(dir.join("logs")).unwrap().permissions().mode() & 0o777;
        assert_eq!(folder & 0o027, 0, "{folder:o}");

        // A link at the log path is refused at start, with a clear error,
        // and its target is left alone.
        let target = dir.join("elsewhere");
        fs::write(&target, b"keep\n").unwrap();
        let link = dir.join("linked.log");
        symlink(&target, &link).unwrap();
        let err = RollingFile::builder(&link).open().unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::SymlinkLogFile { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"keep\n");

        // A link put in place of the active file later is not followed
        // either: the write fails (and is counted by the pipeline).
        fs::remove_file(&path).unwrap();
        symlink(&target, &path).unwrap();
        assert!(f.write_all(b"secret line\n").is_err());
        assert_eq!(fs::read(&target).unwrap(), b"keep\n");
        fs::remove_dir_all(dir).ok();
    }
}
