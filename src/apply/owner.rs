//! Owner and group of the installed file: name lookup and the chown policy.
//!
//! Policy: an owner/group the resource *asks for* must be applied, or the install fails. When
//! the resource asks for nothing we *preserve* the current file's ids. A process that is not
//! root cannot give a file away (chown to another uid, or to a group it is not in, fails with
//! EPERM); in that case preserving is impossible, and refusing would mean never updating a
//! file the operator deliberately let an unprivileged reconfig write. So for preserved ids
//! only, EPERM is logged as a warning and the file keeps reconfig's own ids. Every other error
//! fails the install.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::fs::{fchown, MetadataExt};

/// One id to give the staged file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WantedId {
    pub id: u32,
    /// Asked for by the resource (must succeed), rather than preserved from the old file.
    pub requested: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ownership {
    pub uid: Option<WantedId>,
    pub gid: Option<WantedId>,
}

/// Which of the two ids could not be preserved (see the module policy).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotPreserved {
    Uid { wanted: u32, actual: u32 },
    Gid { wanted: u32, actual: u32 },
}

impl Ownership {
    /// Gives `file` the wanted ids, calling fchown only for an id that differs.
    /// Returns the preserved ids that could not be kept (to be logged by the caller).
    pub(crate) fn apply_to(&self, file: &File) -> io::Result<Vec<NotPreserved>> {
        let meta = file.metadata()?;
        let mut skipped = Vec::new();
        if let Some(wanted) = self.uid.filter(|wanted| wanted.id != meta.uid()) {
            if !tolerated(fchown(file, Some(wanted.id), None), wanted)? {
                skipped.push(NotPreserved::Uid {
                    wanted: wanted.id,
                    actual: meta.uid(),
                });
            }
        }
        if let Some(wanted) = self.gid.filter(|wanted| wanted.id != meta.gid()) {
            if !tolerated(fchown(file, None, Some(wanted.id)), wanted)? {
                skipped.push(NotPreserved::Gid {
                    wanted: wanted.id,
                    actual: meta.gid(),
                });
            }
        }
        Ok(skipped)
    }
}

/// Ok(true) when the chown worked, Ok(false) when it hit EPERM on a preserved id.
fn tolerated(result: io::Result<()>, wanted: WantedId) -> io::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(error) if !wanted.requested && error.raw_os_error() == Some(libc::EPERM) => Ok(false),
        Err(error) => Err(error),
    }
}

/// A user name (or numeric uid) → uid; `Ok(None)` when unknown.
pub(crate) fn user_id(name: &str) -> io::Result<Option<u32>> {
    match lookup(name, getpwnam)? {
        Some(uid) => Ok(Some(uid)),
        None => Ok(numeric(name)),
    }
}

/// A group name (or numeric gid) → gid; `Ok(None)` when unknown.
pub(crate) fn group_id(name: &str) -> io::Result<Option<u32>> {
    match lookup(name, getgrnam)? {
        Some(gid) => Ok(Some(gid)),
        None => Ok(numeric(name)),
    }
}

/// Like chown(1): a name is looked up first, then all-digit text is taken as an id.
fn numeric(name: &str) -> Option<u32> {
    if name.bytes().all(|byte| byte.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// Result of one reentrant lookup attempt with a given buffer.
enum Attempt {
    Found(u32),
    NotFound,
    BufferTooSmall,
}

const MAX_BUFFER: usize = 1 << 20;

fn lookup(
    name: &str,
    attempt: fn(&CString, &mut [libc::c_char]) -> io::Result<Attempt>,
) -> io::Result<Option<u32>> {
    let Ok(name) = CString::new(name) else {
        return Ok(None);
    };
    let mut buffer = vec![0 as libc::c_char; 1024];
    loop {
        match attempt(&name, &mut buffer)? {
            Attempt::Found(id) => return Ok(Some(id)),
            Attempt::NotFound => return Ok(None),
            Attempt::BufferTooSmall if buffer.len() < MAX_BUFFER => {
                buffer.resize(buffer.len() * 2, 0);
            }
            Attempt::BufferTooSmall => return Err(io::Error::from_raw_os_error(libc::ERANGE)),
        }
    }
}

/// Interprets the return of getpwnam_r/getgrnam_r. Some libcs report "no such entry" as an
/// errno instead of 0 with a null result; those count as not found.
fn interpret(rc: libc::c_int, found: bool, id: u32) -> io::Result<Attempt> {
    match rc {
        0 if found => Ok(Attempt::Found(id)),
        libc::ERANGE => Ok(Attempt::BufferTooSmall),
        0 | libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => Ok(Attempt::NotFound),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

fn getpwnam(name: &CString, buffer: &mut [libc::c_char]) -> io::Result<Attempt> {
    // SAFETY: passwd is plain data that getpwnam_r fills in.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; the buffer length is its real length.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    interpret(rc, !result.is_null(), entry.pw_uid)
}

fn getgrnam(name: &CString, buffer: &mut [libc::c_char]) -> io::Result<Attempt> {
    // SAFETY: group is plain data that getgrnam_r fills in.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; the buffer length is its real length.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    interpret(rc, !result.is_null(), entry.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_numeric_ids_resolve() {
        assert_eq!(user_id("root").unwrap(), Some(0));
        assert_eq!(group_id("root").unwrap(), Some(0));
        assert_eq!(user_id("4242").unwrap(), Some(4242));
        assert_eq!(group_id("4242").unwrap(), Some(4242));
    }

    #[test]
    fn unknown_names_are_none() {
        assert_eq!(user_id("no-such-user-reconfig").unwrap(), None);
        assert_eq!(group_id("no-such-group-reconfig").unwrap(), None);
        assert_eq!(user_id("bad\0name").unwrap(), None);
        assert_eq!(user_id("").unwrap(), None);
    }

    #[test]
    fn eperm_is_tolerated_only_for_preserved_ids() {
        let eperm = || Err(io::Error::from_raw_os_error(libc::EPERM));
        let preserved = WantedId {
            id: 5,
            requested: false,
        };
        let requested = WantedId {
            id: 5,
            requested: true,
        };
        assert!(!tolerated(eperm(), preserved).unwrap());
        assert!(tolerated(eperm(), requested).is_err());
        let eio = Err(io::Error::from_raw_os_error(libc::EIO));
        assert!(tolerated(eio, preserved).is_err());
        assert!(tolerated(Ok(()), requested).unwrap());
    }
}
