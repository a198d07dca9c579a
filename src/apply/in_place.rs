//! In-place rewrite of a target that cannot be renamed over.
//!
//! A bind-mounted file (Docker's `/etc/hosts`, a file a Kubernetes volume mounts) is a mount
//! point: `rename(2)` over it fails with EBUSY. A target on another mount than its directory
//! entry fails with EXDEV. Such a file can only be rewritten through an open descriptor, which
//! loses rename's atomicity: a reader may see the file while it is being rewritten, and a
//! crash in the middle leaves it partial. So this is used only when rename cannot work, the
//! caller logs it, and it is guarded:
//!
//! - mode and ids are set first (a file turning secret is never readable with the new content
//!   under its old, wider mode);
//! - the new bytes are written over the old from offset 0 and the file is then cut to their
//!   length, so the file is never empty at any moment (an empty `/etc/hosts`, even briefly,
//!   breaks `localhost`); then fsync;
//! - the file is read back and compared with the staged bytes;
//! - on any failure the previous bytes, mode and ids (kept in memory) are written back.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::install::{Attributes, Current};

/// Whether a failed rename means "this target cannot be replaced, only rewritten".
pub(crate) fn rename_refused(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EBUSY | libc::EXDEV))
}

/// Writes the staged file's bytes into `target` with `attributes`; see the module doc.
pub(crate) fn rewrite(staged: &Path, target: &Path, attributes: &Attributes) -> io::Result<()> {
    let new = fs::read(staged)?;
    let mut file = OpenOptions::new().read(true).write(true).open(target)?;
    let previous = read_all(&mut file)?;
    match write_verified(&mut file, &new, attributes) {
        Ok(()) => Ok(()),
        Err(error) => {
            match write_verified(&mut file, &previous.bytes, &Attributes::of(&previous)) {
                Ok(()) => Err(error),
                Err(restore_error) => Err(io::Error::new(
                    error.kind(),
                    format!(
                        "{error}; writing the previous content back failed too ({restore_error}): \
                     the file may be partial, fix it by hand"
                    ),
                )),
            }
        }
    }
}

fn read_all(file: &mut File) -> io::Result<Current> {
    let meta = file.metadata()?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut bytes)?;
    Ok(Current {
        bytes,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

/// Attributes, then content (never empty in between), fsync, read back and compare.
fn write_verified(file: &mut File, content: &[u8], attributes: &Attributes) -> io::Result<()> {
    // chown before chmod: chown clears set-id bits. Preserved ids the process cannot keep
    // are left as they are: the file's own ids are the preserved ones here.
    attributes.ownership.apply_to(file)?;
    file.set_permissions(Permissions::from_mode(attributes.mode))?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(content)?;
    file.set_len(content.len() as u64)?;
    file.sync_all()?;
    let written = read_all(file)?;
    if written.bytes != content {
        return Err(io::Error::other(format!(
            "reading it back gave {} bytes that differ from the {} bytes written",
            written.bytes.len(),
            content.len()
        )));
    }
    Ok(())
}
