//! The consensus write-ahead log: length- and CRC-framed records, torn-tail recovery, repair.
//!
//! File `data/cs.wal/wal`, a sequence of records `u32 LE payload length | u32 LE crc32 of payload |
//! payload`. This module knows bytes only; the consensus driver defines what a payload means.
//!
//! Crash model: an append cut short by a crash leaves a *torn tail*, an incomplete or garbled last record
//! (possibly followed by zeros, when the file system extended the file before writing its data). [`Wal::open`]
//! cuts it off and reports it. A bad record with real data after it cannot come from a crash: that is
//! corruption, and [`Wal::open`] refuses to guess; [`repair`] keeps the good prefix and moves the rest
//! aside for inspection.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::fsutil::{self, FsError};

/// Largest payload of one record (a whole block proposal fits).
pub const MAX_WAL_RECORD_BYTES: usize = 32 * 1024 * 1024;

/// Bytes of a record header: length and CRC.
pub const RECORD_HEADER_BYTES: u64 = 8;

/// Buffer of the appender: consensus records are small, and a sync flushes it anyway.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Most `.corrupt-<secs>[-n]` names tried by [`repair`] before giving up (repairs in the same second).
const MAX_CORRUPT_NAME_TRIES: u32 = 100;

/// Why a WAL operation failed; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O operation on the log failed.
    #[error("consensus WAL {path}: cannot {op}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done, e.g. `read`, `truncate the torn tail`.
        op: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A durable replacement failed.
    #[error("consensus WAL {path}: {source}")]
    Fs {
        /// The log.
        path: PathBuf,
        /// The file-system error.
        #[source]
        source: FsError,
    },
    /// A bad record followed by more data: corruption, not a torn write.
    #[error(
        "consensus WAL {path} is corrupt at byte offset {offset} (record #{record_index}) with more data \
         after it; run `basalt wal repair --home {home}` to keep the {record_index} good records and move \
         the rest aside"
    )]
    Corrupt {
        /// The log.
        path: PathBuf,
        /// Offset of the first bad record.
        offset: u64,
        /// Index (0-based) of the first bad record = number of good records before it.
        record_index: usize,
        /// The node's home as guessed from `path` (`<home>` if the path is not `<home>/data/cs.wal/wal`).
        home: String,
    },
    /// An empty payload or one above [`MAX_WAL_RECORD_BYTES`] was appended.
    #[error("consensus WAL {path}: record of {len} bytes refused (must be 1..={max})")]
    BadRecordSize {
        /// The log.
        path: PathBuf,
        /// The payload's length.
        len: usize,
        /// [`MAX_WAL_RECORD_BYTES`].
        max: usize,
    },
    /// An earlier write failed part-way; appending more could corrupt the middle of the log.
    #[error("consensus WAL {path} is unusable after an earlier write error ({reason}); restart the node")]
    Broken {
        /// The log.
        path: PathBuf,
        /// The earlier error.
        reason: String,
    },
}

/// The torn tail cut off by [`Wal::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TruncatedTail {
    /// Where the log now ends (the end of the last good record).
    pub offset: u64,
    /// How many bytes were dropped.
    pub dropped_bytes: u64,
}

impl fmt::Display for TruncatedTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dropped {} bytes of an incomplete last record at byte offset {}",
            self.dropped_bytes, self.offset
        )
    }
}

/// What [`Wal::open`] found: the log ready for appends, every record, and the torn tail it cut off.
#[derive(Debug)]
pub struct WalOpen {
    /// The log, positioned at its end.
    pub wal: Wal,
    /// Every record's payload, in order.
    pub records: Vec<Vec<u8>>,
    /// Set if a torn tail was truncated (the caller logs a warning).
    pub truncated_tail: Option<TruncatedTail>,
}

/// The append side of the consensus WAL.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    writer: BufWriter<File>,
    len_bytes: u64,
    record_count: usize,
    /// Set when a write failed part-way: the file may end in a partial record.
    broken: Option<String>,
}

impl Wal {
    /// Opens (creating the directory and file if missing) and reads the whole log. A torn tail is
    /// truncated (file `set_len` + fsync) and reported; a bad record with data after it is
    /// [`WalError::Corrupt`]. A stale `<path>.tmp` from an interrupted [`Wal::rewrite`] is ignored and
    /// removed.
    pub fn open(path: &Path) -> Result<WalOpen, WalError> {
        let dir = fsutil::parent_dir(path);
        let fs_err = |source| WalError::Fs {
            path: path.to_path_buf(),
            source,
        };
        if !dir.exists() {
            fs::create_dir_all(dir)
                .map_err(|source| io_err(dir, "create the directory", source))?;
            fsutil::fsync_dir(fsutil::parent_dir(dir)).map_err(fs_err)?;
        }
        let tmp = fsutil::tmp_path(path);
        if tmp.exists() {
            // An interrupted rewrite: the rename never happened, so `path` is still the whole truth.
            fs::remove_file(&tmp)
                .map_err(|source| io_err(&tmp, "remove the stale temporary file", source))?;
        }
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| io_err(path, "open", source))?;
        if !existed {
            // A new file's name must be durable before records synced into it can be relied on.
            fsutil::fsync_dir(dir).map_err(fs_err)?;
        }
        let len = file_len(&file, path)?;
        let scan = scan(&mut file, len, path, true)?;
        let mut truncated_tail = None;
        match scan.end {
            ScanEnd::Clean => {}
            ScanEnd::Torn => {
                file.set_len(scan.good_len)
                    .map_err(|source| io_err(path, "truncate the torn tail", source))?;
                file.sync_all()
                    .map_err(|source| io_err(path, "fsync after truncating", source))?;
                truncated_tail = Some(TruncatedTail {
                    offset: scan.good_len,
                    dropped_bytes: scan.file_len - scan.good_len,
                });
            }
            ScanEnd::Corrupt => {
                return Err(WalError::Corrupt {
                    path: path.to_path_buf(),
                    offset: scan.good_len,
                    record_index: scan.record_count,
                    home: home_of(path),
                })
            }
        }
        file.seek(SeekFrom::Start(scan.good_len))
            .map_err(|source| io_err(path, "seek to the end", source))?;
        let wal = Wal {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
            len_bytes: scan.good_len,
            record_count: scan.record_count,
            broken: None,
        };
        Ok(WalOpen {
            wal,
            records: scan.records,
            truncated_tail,
        })
    }

    /// Appends a record to the buffer (not yet durable: see [`Wal::sync`]). Payloads must be
    /// 1..=[`MAX_WAL_RECORD_BYTES`] bytes (an empty one would be indistinguishable from zero fill).
    pub fn append(&mut self, payload: &[u8]) -> Result<(), WalError> {
        self.check_usable()?;
        let len = check_payload(&self.path, payload)?;
        let header = header(len, payload);
        let written = self
            .writer
            .write_all(&header)
            .and_then(|()| self.writer.write_all(payload));
        if let Err(source) = written {
            return Err(self.fail("append", source));
        }
        self.len_bytes += RECORD_HEADER_BYTES + u64::from(len);
        self.record_count += 1;
        Ok(())
    }

    /// Flushes the buffer and fdatasyncs the file; returns how long that took (for the metrics).
    pub fn sync(&mut self) -> Result<Duration, WalError> {
        self.check_usable()?;
        let started = Instant::now();
        if let Err(source) = self.writer.flush() {
            return Err(self.fail("flush", source));
        }
        if let Err(source) = self.writer.get_ref().sync_data() {
            return Err(self.fail("fdatasync", source));
        }
        Ok(started.elapsed())
    }

    /// [`Wal::append`] then [`Wal::sync`].
    pub fn append_sync(&mut self, payload: &[u8]) -> Result<Duration, WalError> {
        self.append(payload)?;
        self.sync()
    }

    /// Atomically replaces the log with `records` (temporary file, fsync, rename, directory fsync); after
    /// a crash the log is either the old one or the new one. Also clears an earlier write error.
    pub fn rewrite(&mut self, records: &[Vec<u8>]) -> Result<(), WalError> {
        let mut total: usize = 0;
        for payload in records {
            check_payload(&self.path, payload)?;
            total = total.saturating_add(payload.len() + RECORD_HEADER_BYTES as usize);
        }
        let mut bytes = Vec::with_capacity(total);
        for payload in records {
            let len = check_payload(&self.path, payload)?;
            bytes.extend_from_slice(&header(len, payload));
            bytes.extend_from_slice(payload);
        }
        fsutil::write_durably(&self.path, &bytes).map_err(|source| WalError::Fs {
            path: self.path.clone(),
            source,
        })?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|source| io_err(&self.path, "reopen after a rewrite", source))?;
        file.seek(SeekFrom::End(0))
            .map_err(|source| io_err(&self.path, "seek to the end", source))?;
        // The old file was replaced: drop its writer without flushing anything left in its buffer.
        let old = std::mem::replace(
            &mut self.writer,
            BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
        );
        let _ = old.into_parts();
        self.len_bytes = bytes.len() as u64;
        self.record_count = records.len();
        self.broken = None;
        Ok(())
    }

    /// Bytes in the log, including buffered appends.
    pub fn len_bytes(&self) -> u64 {
        self.len_bytes
    }

    /// Records in the log, including buffered appends.
    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_usable(&self) -> Result<(), WalError> {
        match &self.broken {
            Some(reason) => Err(WalError::Broken {
                path: self.path.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn fail(&mut self, op: &'static str, source: io::Error) -> WalError {
        self.broken = Some(format!("{op}: {source}"));
        io_err(&self.path, op, source)
    }
}

/// What [`repair`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairReport {
    /// The log.
    pub path: PathBuf,
    /// Good records kept.
    pub kept_records: usize,
    /// Bytes kept (the good prefix).
    pub kept_bytes: u64,
    /// Bytes moved aside (0 if the log was clean).
    pub moved_bytes: u64,
    /// Where they went, if anywhere.
    pub moved_to: Option<PathBuf>,
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.moved_to {
            None => write!(
                f,
                "{}: clean, {} records ({} bytes), nothing to repair",
                self.path.display(),
                self.kept_records,
                self.kept_bytes
            ),
            Some(to) => write!(
                f,
                "{}: kept {} good records ({} bytes); moved the {} bytes after them to {}",
                self.path.display(),
                self.kept_records,
                self.kept_bytes,
                self.moved_bytes,
                to.display()
            ),
        }
    }
}

/// `basalt wal repair`: keeps the longest good prefix of the log and moves everything after it to
/// `<path>.corrupt-<unix secs>` (fsynced before the log is truncated, so nothing is lost in a crash).
pub fn repair(path: &Path) -> Result<RepairReport, WalError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| io_err(path, "open", source))?;
    let len = file_len(&file, path)?;
    let scan = scan(&mut file, len, path, false)?;
    let mut report = RepairReport {
        path: path.to_path_buf(),
        kept_records: scan.record_count,
        kept_bytes: scan.good_len,
        moved_bytes: scan.file_len - scan.good_len,
        moved_to: None,
    };
    if scan.good_len == scan.file_len {
        return Ok(report);
    }
    let (aside_path, mut aside) = create_aside(path)?;
    file.seek(SeekFrom::Start(scan.good_len))
        .map_err(|source| io_err(path, "seek to the bad record", source))?;
    io::copy(
        &mut (&mut file).take(scan.file_len - scan.good_len),
        &mut aside,
    )
    .map_err(|source| io_err(&aside_path, "copy the bad bytes", source))?;
    aside
        .sync_all()
        .map_err(|source| io_err(&aside_path, "fsync", source))?;
    fsutil::fsync_dir(fsutil::parent_dir(path)).map_err(|source| WalError::Fs {
        path: path.to_path_buf(),
        source,
    })?;
    file.set_len(scan.good_len)
        .map_err(|source| io_err(path, "truncate", source))?;
    file.sync_all()
        .map_err(|source| io_err(path, "fsync after truncating", source))?;
    report.moved_to = Some(aside_path);
    Ok(report)
}

fn create_aside(path: &Path) -> Result<(PathBuf, File), WalError> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = format!("{}.corrupt-{secs}", path.display());
    let mut last_err = None;
    for n in 0..MAX_CORRUPT_NAME_TRIES {
        let candidate = if n == 0 {
            PathBuf::from(&base)
        } else {
            PathBuf::from(format!("{base}-{n}"))
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(file) => return Ok((candidate, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(source) => return Err(io_err(&candidate, "create", source)),
        }
    }
    Err(io_err(
        Path::new(&base),
        "create (every name taken)",
        last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)),
    ))
}

/// How a scan of the log ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScanEnd {
    /// At a record boundary at the end of the file.
    Clean,
    /// At a bad or incomplete last record (possibly followed by zeros only): a torn write.
    Torn,
    /// At a bad record followed by more data.
    Corrupt,
}

struct Scan {
    /// Payloads of the good records (only if asked for).
    records: Vec<Vec<u8>>,
    record_count: usize,
    /// End of the last good record.
    good_len: u64,
    file_len: u64,
    end: ScanEnd,
}

fn file_len(file: &File, path: &Path) -> Result<u64, WalError> {
    Ok(file
        .metadata()
        .map_err(|source| io_err(path, "stat", source))?
        .len())
}

/// Reads records from the start of `file` (`file_len` bytes) until the first bad one, never allocating
/// more than the bytes actually left in the file (nor above [`MAX_WAL_RECORD_BYTES`]).
fn scan<F: Read + Seek>(
    file: &mut F,
    file_len: u64,
    path: &Path,
    keep_records: bool,
) -> Result<Scan, WalError> {
    file.seek(SeekFrom::Start(0))
        .map_err(|source| io_err(path, "seek to the start", source))?;
    let mut reader = BufReader::with_capacity(WRITE_BUFFER_BYTES, &mut *file);
    let mut records = Vec::new();
    let mut record_count = 0usize;
    let mut offset: u64 = 0;
    let bad_at = loop {
        let left = file_len - offset;
        if left == 0 {
            break None;
        }
        if left < RECORD_HEADER_BYTES {
            break Some(offset);
        }
        let mut head = [0u8; RECORD_HEADER_BYTES as usize];
        reader
            .read_exact(&mut head)
            .map_err(|source| io_err(path, "read", source))?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let len_usize = len as usize;
        if len == 0
            || len_usize > MAX_WAL_RECORD_BYTES
            || u64::from(len) > left - RECORD_HEADER_BYTES
        {
            break Some(offset);
        }
        let mut payload = vec![0u8; len_usize];
        reader
            .read_exact(&mut payload)
            .map_err(|source| io_err(path, "read", source))?;
        if crc32fast::hash(&payload) != crc {
            break Some(offset);
        }
        offset += RECORD_HEADER_BYTES + u64::from(len);
        record_count += 1;
        if keep_records {
            records.push(payload);
        }
    };
    drop(reader);
    let end = match bad_at {
        None => ScanEnd::Clean,
        Some(bad) => classify_bad(file, path, bad, file_len)?,
    };
    Ok(Scan {
        records,
        record_count,
        good_len: offset,
        file_len,
        end,
    })
}

/// A bad record at `bad` is a torn tail if it is the last one (its header is incomplete, or its plausible
/// length reaches the end of the file) or if only zero fill follows it. Otherwise real data follows it:
/// corruption. A length of 0 or above [`MAX_WAL_RECORD_BYTES`] is never written by [`Wal::append`] and a
/// crash cannot produce one (unwritten pages read as zeros; a header cut at a page boundary only loses
/// high bytes), so unless only zeros follow it is corruption even at the end of the log.
///
/// A header whose write stopped inside its length field, in a file the file system had already extended
/// with zeros, keeps only the length's low bytes — a length shorter than the record had, so the record
/// seems to end before the file does — and a zero checksum; everything after the header is zero fill.
/// That is a torn tail too (found by the simulation: such a log made the node refuse to start).
///
/// Known limit: a corrupted length in a middle record that happens to claim past the end of the file
/// looks exactly like a torn tail, so the records after it are dropped (and reported) rather than refused.
fn classify_bad<F: Read + Seek>(
    file: &mut F,
    path: &Path,
    bad: u64,
    file_len: u64,
) -> Result<ScanEnd, WalError> {
    let left = file_len - bad;
    if left < RECORD_HEADER_BYTES {
        return Ok(ScanEnd::Torn);
    }
    file.seek(SeekFrom::Start(bad))
        .map_err(|source| io_err(path, "seek to the bad record", source))?;
    let mut head = [0u8; RECORD_HEADER_BYTES as usize];
    file.read_exact(&mut head)
        .map_err(|source| io_err(path, "read", source))?;
    let len = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
    if len != 0 && len <= MAX_WAL_RECORD_BYTES as u64 && RECORD_HEADER_BYTES + len >= left {
        // The last record: incomplete, or complete with a bad checksum (a torn write of its payload).
        return Ok(ScanEnd::Torn);
    }
    if only_zeros_from(file, path, bad)? {
        return Ok(ScanEnd::Torn);
    }
    let checksum_unwritten = head[4..] == [0u8; 4];
    if checksum_unwritten && only_zeros_from(file, path, bad + RECORD_HEADER_BYTES)? {
        return Ok(ScanEnd::Torn);
    }
    Ok(ScanEnd::Corrupt)
}

fn only_zeros_from<F: Read + Seek>(file: &mut F, path: &Path, from: u64) -> Result<bool, WalError> {
    file.seek(SeekFrom::Start(from))
        .map_err(|source| io_err(path, "seek", source))?;
    let mut reader = BufReader::with_capacity(WRITE_BUFFER_BYTES, &mut *file);
    let mut chunk = [0u8; 8192];
    loop {
        let n = reader
            .read(&mut chunk)
            .map_err(|source| io_err(path, "read", source))?;
        if n == 0 {
            return Ok(true);
        }
        if chunk[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
    }
}

/// One record as [`Wal::append`] writes it (header, then payload): for the simulation, which keeps a log's
/// bytes in memory and tears them the way a crash does.
pub fn frame(path: &Path, payload: &[u8]) -> Result<Vec<u8>, WalError> {
    let len = check_payload(path, payload)?;
    let mut out = Vec::with_capacity(RECORD_HEADER_BYTES as usize + payload.len());
    out.extend_from_slice(&header(len, payload));
    out.extend_from_slice(payload);
    Ok(out)
}

/// What a log's bytes hold, read as [`Wal::open`] reads a file.
#[derive(Debug)]
pub struct LogContents {
    /// Every good record's payload, in order.
    pub records: Vec<Vec<u8>>,
    /// Bytes of the good records: [`Wal::open`] cuts a torn tail off here.
    pub good_len: u64,
    /// Set if the bytes end in a torn tail.
    pub truncated_tail: Option<TruncatedTail>,
}

/// Reads a log held in memory exactly as [`Wal::open`] reads the file (`path` only names it in errors):
/// the good records, a torn tail reported (not cut: the bytes are the caller's), corruption refused.
pub fn read_log(path: &Path, bytes: &[u8]) -> Result<LogContents, WalError> {
    let mut cursor = io::Cursor::new(bytes);
    let scan = scan(&mut cursor, bytes.len() as u64, path, true)?;
    match scan.end {
        ScanEnd::Clean => Ok(LogContents {
            records: scan.records,
            good_len: scan.good_len,
            truncated_tail: None,
        }),
        ScanEnd::Torn => Ok(LogContents {
            records: scan.records,
            good_len: scan.good_len,
            truncated_tail: Some(TruncatedTail {
                offset: scan.good_len,
                dropped_bytes: scan.file_len - scan.good_len,
            }),
        }),
        ScanEnd::Corrupt => Err(WalError::Corrupt {
            path: path.to_path_buf(),
            offset: scan.good_len,
            record_index: scan.record_count,
            home: home_of(path),
        }),
    }
}

fn check_payload(path: &Path, payload: &[u8]) -> Result<u32, WalError> {
    match u32::try_from(payload.len()) {
        Ok(len) if len > 0 && payload.len() <= MAX_WAL_RECORD_BYTES => Ok(len),
        _ => Err(WalError::BadRecordSize {
            path: path.to_path_buf(),
            len: payload.len(),
            max: MAX_WAL_RECORD_BYTES,
        }),
    }
}

fn header(len: u32, payload: &[u8]) -> [u8; RECORD_HEADER_BYTES as usize] {
    let mut out = [0u8; RECORD_HEADER_BYTES as usize];
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out
}

/// `<home>` from `<home>/data/cs.wal/wal`, for the repair hint.
fn home_of(path: &Path) -> String {
    let dir = path.parent();
    let data = dir.and_then(Path::parent);
    let fits = dir.and_then(Path::file_name).is_some_and(|n| n == "cs.wal")
        && data.and_then(Path::file_name).is_some_and(|n| n == "data");
    match data.and_then(Path::parent) {
        Some(home) if fits => {
            let shown = home.display().to_string();
            if shown.is_empty() {
                ".".to_owned()
            } else {
                shown
            }
        }
        _ => "<home>".to_owned(),
    }
}

fn io_err(path: &Path, op: &'static str, source: io::Error) -> WalError {
    WalError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}
