//! One file of an apply, before anything is written: where it really is, what it holds now,
//! the mode and ids it must get, and whether it needs installing at all.

use std::io;
use std::path::Path;

use super::error::{apply_error, io_error, ApplyError, ApplyErrorKind, Step};
use super::install::{self, Attributes, Current, ReadError, RealTarget};
use super::owner::{self, Ownership, WantedId};
use super::FileSpec;

/// Mode of a new file when the resource sets none.
const DEFAULT_MODE: u32 = 0o644;

pub(super) struct Member<'a> {
    pub file: &'a FileSpec,
    pub content: &'a str,
    pub target: RealTarget,
    pub current: Option<Current>,
    pub attributes: Attributes,
    /// How the file's mode and requested ids differ from the wanted ones, for the log.
    pub differences: Vec<String>,
}

impl<'a> Member<'a> {
    /// Follows symlinks, reads the current file and looks up the owner and group.
    pub(super) fn prepare(
        id: &str,
        file: &'a FileSpec,
        content: &'a str,
    ) -> Result<Member<'a>, ApplyError> {
        let error = |step, path: &Path, e| io_error(id, &file.target, step, path, e);
        let target = RealTarget::resolve(&file.target)
            .map_err(|e| error(Step::ResolveSymlinks, &file.target, e))?;
        let current = install::read_current(&target.path).map_err(|failure| match failure {
            ReadError::Io(e) => error(Step::ReadCurrent, &target.path, e),
            ReadError::NotARegularFile(what) => apply_error(
                id,
                &file.target,
                ApplyErrorKind::NotARegularFile {
                    path: target.path.clone(),
                    what,
                },
            ),
        })?;
        let attributes = wanted_attributes(id, file, current.as_ref())?;
        let differences = current
            .as_ref()
            .map(|current| attributes.differences(current))
            .unwrap_or_default();
        Ok(Member {
            file,
            content,
            target,
            current,
            attributes,
            differences,
        })
    }

    /// Same bytes: nothing to do, unless the resource asks for a mode or owner the file
    /// does not have (it was changed by hand, or the resource's fields were); then the
    /// file is installed again with them, checked and reloaded like any change.
    pub(super) fn needs_install(&self) -> bool {
        self.current_bytes() != Some(self.content.as_bytes()) || !self.differences.is_empty()
    }

    pub(super) fn current_bytes(&self) -> Option<&[u8]> {
        self.current
            .as_ref()
            .map(|current| current.bytes.as_slice())
    }

    /// ` (mode 0644 -> 0600)` for the log, or nothing.
    pub(super) fn attribute_change(&self) -> String {
        if self.differences.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.differences.join(", "))
        }
    }

    /// Creates the target's missing directories when `mkdirs` allows it.
    pub(super) fn ensure_directory(&self, id: &str, mkdirs: bool) -> Result<(), ApplyError> {
        match std::fs::metadata(&self.target.dir) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            // Exists, or an error the temp-file creation will report precisely.
            _ => return Ok(()),
        }
        if !mkdirs {
            let dir = self.target.dir.clone();
            let kind = ApplyErrorKind::DirectoryMissing { dir };
            return Err(apply_error(id, &self.file.target, kind));
        }
        install::create_dirs(&self.target.dir).map_err(|(dir, error)| {
            io_error(id, &self.file.target, Step::CreateDirectory, &dir, error)
        })
    }
}

/// Mode: spec, else current, else 0644. Ids: spec (must work), else current (preserved).
fn wanted_attributes(
    id: &str,
    file: &FileSpec,
    current: Option<&Current>,
) -> Result<Attributes, ApplyError> {
    let requested = |id| {
        Some(WantedId {
            id,
            requested: true,
        })
    };
    let preserved = |id| {
        Some(WantedId {
            id,
            requested: false,
        })
    };
    let uid = match &file.owner {
        Some(name) => requested(lookup(id, file, "owner", name, owner::user_id)?),
        None => current.and_then(|current| preserved(current.uid)),
    };
    let gid = match &file.group {
        Some(name) => requested(lookup(id, file, "group", name, owner::group_id)?),
        None => current.and_then(|current| preserved(current.gid)),
    };
    let mode = file
        .mode
        .or(current.map(|current| current.mode))
        .unwrap_or(DEFAULT_MODE);
    Ok(Attributes {
        mode,
        ownership: Ownership { uid, gid },
    })
}

fn lookup(
    id: &str,
    file: &FileSpec,
    field: &'static str,
    name: &str,
    resolve: fn(&str) -> io::Result<Option<u32>>,
) -> Result<u32, ApplyError> {
    let unknown = |lookup_error| ApplyErrorKind::UnknownId {
        field,
        name: name.to_string(),
        lookup_error,
    };
    match resolve(name) {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(apply_error(id, &file.target, unknown(None))),
        Err(error) => Err(apply_error(id, &file.target, unknown(Some(error)))),
    }
}
