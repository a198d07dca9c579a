//! Which files a resource renders: one `source`/`target` pair, or a `"templates"` list of
//! them installed as one group. Top-level `mode`, `owner` and `group` are the defaults of
//! every entry of the list.

use std::path::PathBuf;

use serde_json::Value;

use super::fields::{describe, Fields};
use super::{canonical_target, target_path};

/// Fields one entry of `"templates"` may have; any other is an error (a new field, so a typo
/// is refused rather than silently ignored).
const ENTRY_FIELDS: &[&str] = &["source", "target", "mode", "owner", "group"];

/// One template and the file it renders to.
#[derive(Debug)]
pub(super) struct TemplateFile {
    pub source: String,
    pub target: PathBuf,
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// The resource's files, in order: the single pair, or every entry of `"templates"`.
pub(super) fn template_files(fields: &Fields) -> Result<Vec<TemplateFile>, String> {
    let Some(list) = fields.get("templates") else {
        return Ok(vec![TemplateFile {
            source: fields.required_string("source")?.to_string(),
            target: target_path(fields.required_string("target")?)?,
            mode: fields.mode("mode")?,
            owner: fields.string("owner")?.map(str::to_string),
            group: fields.string("group")?.map(str::to_string),
        }]);
    };
    if let Some(single) = ["source", "target"]
        .into_iter()
        .find(|name| fields.get(name).is_some())
    {
        return Err(format!(
            "fields \"templates\" and \"{single}\" are both given: list every file in \"templates\" \
             (\"source\"/\"target\" are for a resource with one file)"
        ));
    }
    let Value::Array(entries) = list else {
        return Err(format!(
            "field \"templates\": expected a list like [{{\"source\": ..., \"target\": ...}}], found {}",
            describe(list)
        ));
    };
    if entries.is_empty() {
        return Err(
            "field \"templates\": is empty; list at least one {\"source\": ..., \"target\": ...}"
                .to_string(),
        );
    }
    let mut files: Vec<TemplateFile> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let in_entry =
            |message: String| format!("field \"templates\", entry {}: {message}", index + 1);
        let file = entry_file(entry, fields).map_err(in_entry)?;
        let canonical = canonical_target(&file.target);
        if let Some(earlier) = files.iter().position(|other| {
            other.target == file.target || canonical_target(&other.target) == canonical
        }) {
            return Err(in_entry(format!(
                "target {} is already the target of entry {}; each file can be written by one entry only",
                file.target.display(),
                earlier + 1
            )));
        }
        files.push(file);
    }
    Ok(files)
}

fn entry_file(entry: &Value, resource: &Fields) -> Result<TemplateFile, String> {
    let Value::Object(object) = entry else {
        return Err(format!(
            "expected an object like {{\"source\": ..., \"target\": ...}}, found {}",
            describe(entry)
        ));
    };
    let fields = Fields::new(object);
    if let Some(unknown) = fields.names().find(|name| !ENTRY_FIELDS.contains(name)) {
        return Err(format!(
            "unknown field \"{unknown}\" (an entry has: {})",
            ENTRY_FIELDS.join(", ")
        ));
    }
    let inherited = |name: &str| -> Result<Option<String>, String> {
        Ok(match fields.string(name)? {
            Some(value) => Some(value.to_string()),
            None => resource.string(name)?.map(str::to_string),
        })
    };
    Ok(TemplateFile {
        source: fields.required_string("source")?.to_string(),
        target: target_path(fields.required_string("target")?)?,
        mode: match fields.mode("mode")? {
            Some(mode) => Some(mode),
            None => resource.mode("mode")?,
        },
        owner: inherited("owner")?,
        group: inherited("group")?,
    })
}
