//! Previous versions kept beside the target: `TARGET.1` (the newest) … `TARGET.N`.
//!
//! Numbered, not dated: the names are known in advance (`TARGET.1` is always the version the
//! current file replaced, ready to diff or copy back by hand), their count is bounded without
//! listing the directory or parsing dates, and a clock step cannot reorder them.
//!
//! They sit beside the real file (the end of the target's symlink chain), on its file system.
//! Each is written like a target: a complete temp file, named like the target's own temp
//! files so an interrupted write is removed at the next start, gets the replaced version's
//! mode and ids, and is then renamed into place. A backup is never made from the target's
//! inode (a hard link), since a bind-mounted target is rewritten in place.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::PathBuf;

use super::directory::{in_directory, sync_dir};
use super::install::{self, Attributes, Current, RealTarget};

/// Shifts `TARGET.1` … `TARGET.keep-1` up by one (the oldest, `TARGET.keep`, is replaced) and
/// writes `previous` as `TARGET.1`. Returns the path of `TARGET.1`. On error the target is
/// not concerned; some backups may have moved up already.
pub(crate) fn rotate(target: &RealTarget, previous: &Current, keep: u32) -> io::Result<PathBuf> {
    // Staged first: when it cannot be written, no backup is moved.
    let mut staged = install::stage(target, &previous.bytes, &Attributes::of(previous))
        .map_err(|failure| failure.error)?;
    for n in (1..keep).rev() {
        let (from, to) = (numbered(target, n), numbered(target, n + 1));
        match in_directory(&target.dir, || fs::rename(&from, &to)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    let newest = numbered(target, 1);
    staged.rename_to(&target.dir, &newest)?;
    sync_dir(&target.dir);
    Ok(newest)
}

/// `TARGET.n` beside the real target.
fn numbered(target: &RealTarget, n: u32) -> PathBuf {
    let mut name = OsString::from(&target.file_name);
    name.push(format!(".{n}"));
    target.dir.join(name)
}
