//! The log's one seam to storage: every file operation of segments and indexes goes through
//! [`Disk`] (DESIGN.md, simulation-ready). [`FsDisk`] is the real file system; [`SimDisk`] is an
//! in-memory disk that loses unsynced writes on [`SimDisk::crash`] and injects I/O errors.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// An fsync in flight. `'static` so that callers can await it without holding any lock.
pub type SyncFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'static>>;

/// One open file: appended at its end, read at any position.
pub trait DiskFile: Send + Sync + fmt::Debug {
    /// Appends `data` at the end of the file.
    fn append(&self, data: &[u8]) -> io::Result<()>;
    /// Fills `buf` from `position`; `UnexpectedEof` when the file is shorter.
    fn read_at(&self, position: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Current length in bytes, including unsynced writes.
    fn len(&self) -> io::Result<u64>;
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Cuts the file to `len` bytes.
    fn truncate(&self, len: u64) -> io::Result<()>;
    /// Makes every write so far durable. Async: the real disk runs the fsync off the runtime.
    fn sync(&self) -> SyncFuture;
    /// Makes every write so far durable, blocking the caller (startup and shutdown only).
    fn sync_blocking(&self) -> io::Result<()>;
}

/// A directory entry from [`Disk::list_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
}

/// Every file-system operation the log needs. Object safe; shared as `Arc<dyn Disk>`.
pub trait Disk: Send + Sync + fmt::Debug {
    /// Opens `path` for reading and appending; creates it (empty) when `create` is set.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn DiskFile>>;
    /// Replaces the content of `path` with `data` (created when missing). Not synced.
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Whole content of a file.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = self.open(path, false)?;
        let len = usize::try_from(file.len()?).map_err(io::Error::other)?;
        let mut buf = vec![0; len];
        file.read_at(0, &mut buf)?;
        Ok(buf)
    }
    fn exists(&self, path: &Path) -> bool;
    fn file_len(&self, path: &Path) -> io::Result<u64>;
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Entries of a directory, sorted by name.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals of entries of `path` durable.
    fn sync_dir(&self, path: &Path) -> SyncFuture;
    fn sync_dir_blocking(&self, path: &Path) -> io::Result<()>;
}

// ---------------------------------------------------------------------------------------------
// The real file system.

/// [`Disk`] on `std::fs`. Writes go to the page cache on the caller's thread; fsyncs run on
/// tokio's blocking pool so that a slow disk never stalls the runtime.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsDisk;

impl FsDisk {
    pub fn new() -> Self {
        FsDisk
    }
}

#[derive(Debug)]
struct FsFile {
    file: Arc<std::fs::File>,
}

impl DiskFile for FsFile {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        // The file is opened with O_APPEND: every write lands at the end.
        (&*self.file).write_all(data)
    }

    fn read_at(&self, position: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, position)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync(&self) -> SyncFuture {
        let file = Arc::clone(&self.file);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || file.sync_data())
                .await
                .map_err(io::Error::other)?
        })
    }

    fn sync_blocking(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

fn fsync_dir(path: &Path) -> io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

impl Disk for FsDisk {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn DiskFile>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(create)
            .open(path)?;
        Ok(Arc::new(FsFile {
            file: Arc::new(file),
        }))
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        std::fs::write(path, data)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            // Names that are not UTF-8 are not ours.
            if let Ok(name) = entry.file_name().into_string() {
                out.push(DirEntry {
                    name,
                    is_dir: entry.file_type()?.is_dir(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> SyncFuture {
        let path = path.to_path_buf();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || fsync_dir(&path))
                .await
                .map_err(io::Error::other)?
        })
    }

    fn sync_dir_blocking(&self, path: &Path) -> io::Result<()> {
        fsync_dir(path)
    }
}

// ---------------------------------------------------------------------------------------------
// The simulated disk.

/// Contents of one simulated inode: what a crash keeps and what it loses.
#[derive(Debug, Default)]
struct SimFileData {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Set when bytes below the durable length changed (truncate), so the next fsync copies
    /// the whole file instead of just the appended tail.
    rewritten: bool,
}

impl SimFileData {
    fn make_durable(&mut self) {
        if self.rewritten || self.data.len() < self.durable.len() {
            self.durable = self.data.clone();
        } else {
            let from = self.durable.len();
            self.durable.extend_from_slice(&self.data[from..]);
        }
        self.rewritten = false;
    }
}

#[derive(Debug, Default)]
struct SimInode {
    content: Mutex<SimFileData>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn every later disk call into a second panic.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Default)]
struct SimNamespace {
    /// Names as the running process sees them.
    files: BTreeMap<PathBuf, Arc<SimInode>>,
    dirs: BTreeSet<PathBuf>,
    /// Names as they were at the last fsync of their directory: what a crash keeps.
    durable_files: BTreeMap<PathBuf, Arc<SimInode>>,
    durable_dirs: BTreeSet<PathBuf>,
}

#[derive(Debug, Default)]
struct SimShared {
    ns: Mutex<SimNamespace>,
    fail_writes: AtomicBool,
    fail_syncs: AtomicBool,
    file_syncs: AtomicU64,
    /// Latency of each async fsync, in microseconds (0 = complete at once).
    sync_delay_us: AtomicU64,
}

/// In-memory [`Disk`] for tests and simulation. Each file keeps its durable bytes (as of its
/// last fsync) and its current bytes; each directory keeps its durable entries (as of its last
/// fsync). [`SimDisk::crash`] throws away everything not durable. Clones share one disk.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    shared: Arc<SimShared>,
}

#[derive(Debug)]
struct SimFile {
    inode: Arc<SimInode>,
    shared: Arc<SimShared>,
}

fn injected(what: &str) -> io::Error {
    // ENOSPC is what a full disk returns; StorageFull maps to it.
    io::Error::new(
        io::ErrorKind::StorageFull,
        format!("simulated {what} failure"),
    )
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} does not exist", path.display()),
    )
}

impl SimFile {
    fn check_writes(&self) -> io::Result<()> {
        if self.shared.fail_writes.load(Ordering::SeqCst) {
            return Err(injected("write"));
        }
        Ok(())
    }

    fn sync_now(&self) -> io::Result<()> {
        if self.shared.fail_syncs.load(Ordering::SeqCst) {
            return Err(injected("fsync"));
        }
        lock(&self.inode.content).make_durable();
        self.shared.file_syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl DiskFile for SimFile {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        self.check_writes()?;
        lock(&self.inode.content).data.extend_from_slice(data);
        Ok(())
    }

    fn read_at(&self, position: u64, buf: &mut [u8]) -> io::Result<()> {
        let c = lock(&self.inode.content);
        let start = usize::try_from(position).map_err(io::Error::other)?;
        let end = start.checked_add(buf.len());
        match end {
            Some(end) if end <= c.data.len() => {
                buf.copy_from_slice(&c.data[start..end]);
                Ok(())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end of simulated file",
            )),
        }
    }

    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.inode.content).data.len() as u64)
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        // Shrinking needs no space, so a full disk still allows it (as ftruncate does).
        let len = usize::try_from(len).map_err(io::Error::other)?;
        let mut c = lock(&self.inode.content);
        if len < c.durable.len() {
            c.rewritten = true;
        }
        c.data.resize(len, 0);
        Ok(())
    }

    fn sync(&self) -> SyncFuture {
        let delay_us = self.shared.sync_delay_us.load(Ordering::SeqCst);
        if delay_us == 0 {
            let r = self.sync_now();
            return Box::pin(async move { r });
        }
        // A slow fsync covers what was written when it started.
        let snapshot = lock(&self.inode.content).data.clone();
        let inode = Arc::clone(&self.inode);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_micros(delay_us)).await;
            if shared.fail_syncs.load(Ordering::SeqCst) {
                return Err(injected("fsync"));
            }
            let mut c = lock(&inode.content);
            if snapshot.len() >= c.durable.len() {
                c.durable = snapshot;
                c.rewritten = false;
            }
            shared.file_syncs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }

    fn sync_blocking(&self) -> io::Result<()> {
        self.sync_now()
    }
}

impl SimDisk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later write, truncate and file creation fail like a full disk (ENOSPC).
    pub fn fail_writes(&self, fail: bool) {
        self.shared.fail_writes.store(fail, Ordering::SeqCst);
    }

    /// Makes every later fsync (of files and directories) fail.
    pub fn fail_syncs(&self, fail: bool) {
        self.shared.fail_syncs.store(fail, Ordering::SeqCst);
    }

    /// Makes every async file fsync take `delay` (to let concurrent appenders pile up).
    pub fn set_sync_delay(&self, delay: std::time::Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.shared.sync_delay_us.store(us, Ordering::SeqCst);
    }

    /// Number of successful file fsyncs so far.
    pub fn file_sync_count(&self) -> u64 {
        self.shared.file_syncs.load(Ordering::SeqCst)
    }

    /// Power loss: every file goes back to its bytes at its last fsync, and every directory to
    /// its entries at its last fsync (unsynced creations, renames and removals are undone).
    /// Handles opened before the crash must not be used afterwards.
    pub fn crash(&self) {
        let mut ns = lock(&self.shared.ns);
        let durable_dirs = ns.durable_dirs.clone();
        let files: BTreeMap<PathBuf, Arc<SimInode>> = ns
            .durable_files
            .iter()
            .filter(|(path, _)| path.parent().is_some_and(|p| durable_dirs.contains(p)))
            .map(|(p, i)| (p.clone(), Arc::clone(i)))
            .collect();
        for inode in files.values() {
            let mut c = lock(&inode.content);
            c.data = c.durable.clone();
            c.rewritten = false;
        }
        ns.files = files.clone();
        ns.durable_files = files;
        ns.dirs = durable_dirs;
    }

    /// Power loss that also tears: like [`SimDisk::crash`], but each file keeps a random
    /// prefix of its unsynced appended bytes (as a disk that wrote some sectors would), drawn
    /// from `rng`.
    pub fn crash_tearing(&self, rng: &mut impl rand::Rng) {
        {
            let ns = lock(&self.shared.ns);
            for inode in ns.durable_files.values() {
                let mut c = lock(&inode.content);
                let extends = c.data.len() > c.durable.len() && c.data.starts_with(&c.durable);
                if extends {
                    let keep = rng.gen_range(c.durable.len()..=c.data.len());
                    c.durable = c.data[..keep].to_vec();
                }
            }
        }
        self.crash();
    }

    /// Bytes of a file as the process sees them (tests use this to tear or corrupt data).
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let ns = lock(&self.shared.ns);
        ns.files
            .get(path)
            .map(|inode| lock(&inode.content).data.clone())
    }

    fn check_writes(&self) -> io::Result<()> {
        if self.shared.fail_writes.load(Ordering::SeqCst) {
            return Err(injected("write"));
        }
        Ok(())
    }

    fn sync_dir_now(&self, path: &Path) -> io::Result<()> {
        if self.shared.fail_syncs.load(Ordering::SeqCst) {
            return Err(injected("directory fsync"));
        }
        let mut ns = lock(&self.shared.ns);
        if !ns.dirs.contains(path) {
            return Err(not_found(path));
        }
        let in_dir = |p: &Path| p.parent() == Some(path);
        // The directory itself is treated as durable once synced: a simplification that
        // spares tests from syncing every ancestor.
        ns.durable_dirs.insert(path.to_path_buf());
        let current_dirs: Vec<PathBuf> = ns.dirs.iter().filter(|d| in_dir(d)).cloned().collect();
        ns.durable_dirs.retain(|d| !in_dir(d));
        ns.durable_dirs.extend(current_dirs);
        let current_files: Vec<(PathBuf, Arc<SimInode>)> = ns
            .files
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, i)| (p.clone(), Arc::clone(i)))
            .collect();
        ns.durable_files.retain(|p, _| !in_dir(p));
        ns.durable_files.extend(current_files);
        Ok(())
    }

    fn parent_exists(ns: &SimNamespace, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(parent) if ns.dirs.contains(parent) => Ok(()),
            Some(parent) => Err(not_found(parent)),
            None => Err(not_found(path)),
        }
    }
}

impl Disk for SimDisk {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn DiskFile>> {
        let mut ns = lock(&self.shared.ns);
        let inode = match ns.files.get(path) {
            Some(inode) => Arc::clone(inode),
            None if create => {
                self.check_writes()?;
                Self::parent_exists(&ns, path)?;
                let inode = Arc::new(SimInode::default());
                ns.files.insert(path.to_path_buf(), Arc::clone(&inode));
                inode
            }
            None => return Err(not_found(path)),
        };
        Ok(Arc::new(SimFile {
            inode,
            shared: Arc::clone(&self.shared),
        }))
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.check_writes()?;
        let file = self.open(path, true)?;
        file.truncate(0)?;
        file.append(data)
    }

    fn exists(&self, path: &Path) -> bool {
        let ns = lock(&self.shared.ns);
        ns.files.contains_key(path) || ns.dirs.contains(path)
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        let ns = lock(&self.shared.ns);
        let inode = ns.files.get(path).ok_or_else(|| not_found(path))?;
        let len = lock(&inode.content).data.len() as u64;
        Ok(len)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut ns = lock(&self.shared.ns);
        if ns.dirs.contains(path) {
            return Ok(());
        }
        self.check_writes()?;
        for ancestor in path.ancestors() {
            if ancestor.as_os_str().is_empty() {
                continue;
            }
            ns.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let ns = lock(&self.shared.ns);
        if !ns.dirs.contains(path) {
            return Err(not_found(path));
        }
        let name_of = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
        let mut out: Vec<DirEntry> = ns
            .dirs
            .iter()
            .filter(|d| d.parent() == Some(path))
            .filter_map(|d| name_of(d).map(|name| DirEntry { name, is_dir: true }))
            .chain(
                ns.files
                    .keys()
                    .filter(|f| f.parent() == Some(path))
                    .filter_map(|f| {
                        name_of(f).map(|name| DirEntry {
                            name,
                            is_dir: false,
                        })
                    }),
            )
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check_writes()?;
        let mut ns = lock(&self.shared.ns);
        Self::parent_exists(&ns, to)?;
        let inode = ns.files.remove(from).ok_or_else(|| not_found(from))?;
        ns.files.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut ns = lock(&self.shared.ns);
        ns.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut ns = lock(&self.shared.ns);
        if !ns.dirs.contains(path) {
            return Err(not_found(path));
        }
        ns.files.retain(|p, _| !p.starts_with(path));
        ns.dirs.retain(|d| !d.starts_with(path));
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> SyncFuture {
        let r = self.sync_dir_now(path);
        Box::pin(async move { r })
    }

    fn sync_dir_blocking(&self, path: &Path) -> io::Result<()> {
        self.sync_dir_now(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn sim_crash_drops_unsynced_bytes_but_keeps_synced_ones() {
        let disk = SimDisk::new();
        disk.create_dir_all(&p("/d")).expect("mkdir");
        let f = disk.open(&p("/d/a"), true).expect("create");
        disk.sync_dir_blocking(&p("/d")).expect("sync dir");
        f.append(b"hello").expect("append");
        f.sync_blocking().expect("sync");
        f.append(b" world").expect("append");
        disk.crash();
        assert_eq!(disk.file_bytes(&p("/d/a")), Some(b"hello".to_vec()));
    }

    #[test]
    fn sim_sync_after_truncate_below_durable_keeps_the_rewritten_bytes() {
        let disk = SimDisk::new();
        disk.create_dir_all(&p("/d")).expect("mkdir");
        let f = disk.open(&p("/d/a"), true).expect("create");
        disk.sync_dir_blocking(&p("/d")).expect("sync dir");
        f.append(b"abcdef").expect("append");
        f.sync_blocking().expect("sync");
        f.truncate(2).expect("truncate");
        f.append(b"XY").expect("append");
        f.sync_blocking().expect("sync");
        f.append(b"lost").expect("append");
        disk.crash();
        assert_eq!(disk.file_bytes(&p("/d/a")), Some(b"abXY".to_vec()));
    }

    #[test]
    fn sim_crash_drops_file_whose_directory_was_not_synced() {
        let disk = SimDisk::new();
        disk.create_dir_all(&p("/d")).expect("mkdir");
        disk.sync_dir_blocking(&p("/d")).expect("sync dir");
        let f = disk.open(&p("/d/a"), true).expect("create");
        f.append(b"x").expect("append");
        f.sync_blocking().expect("sync");
        disk.crash();
        assert!(!disk.exists(&p("/d/a")));
    }

    #[test]
    fn sim_crash_undoes_unsynced_rename_and_removal() {
        let disk = SimDisk::new();
        disk.create_dir_all(&p("/d")).expect("mkdir");
        disk.write_file(&p("/d/a"), b"1").expect("write");
        disk.write_file(&p("/d/b"), b"2").expect("write");
        disk.open(&p("/d/a"), false)
            .and_then(|f| f.sync_blocking())
            .expect("sync a");
        disk.open(&p("/d/b"), false)
            .and_then(|f| f.sync_blocking())
            .expect("sync b");
        disk.sync_dir_blocking(&p("/d")).expect("sync dir");
        disk.rename(&p("/d/a"), &p("/d/c")).expect("rename");
        disk.remove_file(&p("/d/b")).expect("remove");
        disk.crash();
        let names: Vec<String> = disk
            .list_dir(&p("/d"))
            .expect("list")
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn sim_fail_writes_returns_storage_full_and_changes_nothing() {
        let disk = SimDisk::new();
        disk.create_dir_all(&p("/d")).expect("mkdir");
        let f = disk.open(&p("/d/a"), true).expect("create");
        disk.fail_writes(true);
        let err = f.append(b"x").expect_err("must fail");
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(f.len().expect("len"), 0);
        disk.fail_writes(false);
        f.append(b"x").expect("append works again");
    }

    #[test]
    fn fs_disk_round_trip_and_listing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = FsDisk;
        let sub = dir.path().join("t-0");
        disk.create_dir_all(&sub).expect("mkdir");
        let f = disk.open(&sub.join("0.log"), true).expect("open");
        f.append(b"abc").expect("append");
        f.append(b"def").expect("append");
        let mut buf = [0u8; 4];
        f.read_at(1, &mut buf).expect("read");
        assert_eq!(&buf, b"bcde");
        f.truncate(2).expect("truncate");
        f.append(b"Z").expect("append after truncate");
        assert_eq!(disk.read_file(&sub.join("0.log")).expect("read"), b"abZ");
        f.sync_blocking().expect("sync");
        disk.sync_dir_blocking(&sub).expect("sync dir");
        let entries = disk.list_dir(dir.path()).expect("list");
        assert_eq!(
            entries,
            vec![DirEntry {
                name: "t-0".into(),
                is_dir: true
            }]
        );
    }
}
