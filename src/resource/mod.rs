//! conf.d JSON → validated resources.
//!
//! Each `confdir/*.json` file describes one resource: which etcd key to watch, which template
//! renders it and which file it produces. [`load`] reads them all in file-name order; a bad file
//! is reported as one [`ConfigError`] and skipped, so one typo does not stop the other resources.

mod duplicates;
mod duration;
mod fields;
mod guards;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::apply::InstallSpec;
use crate::guard::Guards;
use crate::template::{Template, DEFAULT_RENDER_FUEL};

pub use duration::{parse_duration, parse_wait};
use fields::Fields;

/// One conf.d entry: what to watch in etcd, how to render it and how to install the result.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The conf.d file it came from.
    pub file: PathBuf,
    /// The watched etcd key: prefix applied, `//` squeezed, starts with `/`.
    pub key: String,
    pub recursive: bool,
    /// Alias → etcd key, fetched (not watched) on each render. Not prefixed.
    pub altkeys: BTreeMap<String, String>,
    /// Quiescence: wait for the key to be quiet this long before rendering.
    pub wait: Option<Wait>,
    /// templatedir/source.
    pub template_path: PathBuf,
    pub template: Arc<Template>,
    /// Undefined template values are errors instead of empty text.
    pub strict: bool,
    /// How the rendered text is installed, complete at load: the `id` field (defaults to the
    /// JSON file's path), target, mode, owner, group, mkdirs, check and reload commands,
    /// splay, and the commands' time limit (the `timeout` field, else the load options'
    /// default).
    pub install: InstallSpec,
    /// `min_keys`, `max_shrink`, `values`, `on_bad_value`: renders that are refused.
    pub guards: Guards,
}

impl Resource {
    /// The `id` field, or the conf.d file's path: names the resource in logs.
    pub fn id(&self) -> &str {
        &self.install.id
    }

    /// The file it renders to.
    pub fn target(&self) -> &Path {
        &self.install.target
    }
}

/// Quiescence: render after `min` without changes, but no later than `max` after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub min: Duration,
    pub max: Duration,
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub confdir: PathBuf,
    pub templatedir: PathBuf,
    /// Prepended to every resource's `key` (not to `altkeys`).
    pub prefix: String,
    /// Used for resources without a `wait` field.
    pub default_wait: Option<Wait>,
    /// Time limit of the check and reload commands of resources without a `timeout` field.
    pub default_command_timeout: Duration,
}

/// The valid resources, and one problem per file that was skipped.
#[derive(Debug)]
pub struct Loaded {
    pub resources: Vec<Resource>,
    pub problems: Vec<ConfigError>,
}

/// A conf.d file (or the conf.d directory itself) that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every field a conf.d file may have; others are warned about and ignored.
const KNOWN_FIELDS: &[&str] = &[
    "id",
    "key",
    "source",
    "target",
    "recursive",
    "pattern",
    "altkeys",
    "checkcmd",
    "reloadcmd",
    "mode",
    "owner",
    "group",
    "mkdirs",
    "splay",
    "timeout",
    "strict",
    "wait",
    "render_fuel",
    "min_keys",
    "max_shrink",
    "values",
    "on_bad_value",
];

/// Loads every `*.json` file of `opts.confdir`, in file-name order.
///
/// Fails only when the directory itself cannot be read (the caller adds what to check, e.g.
/// the option that named it); bad files end up in [`Loaded::problems`].
pub fn load(opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let files = json_files(&opts.confdir)?;
    let mut loaded = Loaded {
        resources: Vec::new(),
        problems: Vec::new(),
    };
    let mut targets = TargetRegistry::default();
    for file in files {
        let outcome = load_file(&file, opts).and_then(|resource| {
            targets.claim(&resource)?;
            Ok(resource)
        });
        match outcome {
            Ok(resource) => loaded.resources.push(resource),
            Err(message) => loaded.problems.push(ConfigError { file, message }),
        }
    }
    Ok(loaded)
}

/// The regular `*.json` files of `confdir`, sorted by file name.
fn json_files(confdir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let unreadable = |err: std::io::Error| ConfigError {
        file: confdir.to_path_buf(),
        message: format!("cannot read the conf.d directory: {err}"),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(confdir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.extension().is_some_and(|ext| ext == "json") && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Parses and validates one conf.d file; the error is the message for its [`ConfigError`].
fn load_file(file: &Path, opts: &LoadOptions) -> Result<Resource, String> {
    let text =
        std::fs::read_to_string(file).map_err(|err| format!("cannot read the file: {err}"))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|err| format!("not valid JSON: {err}"))?;
    if let Some(repeated) = duplicates::find(&text) {
        log::warn!("{}: {repeated}", file.display());
    }
    let Value::Object(object) = &json else {
        return Err(format!(
            "expected a JSON object like {{\"key\": ..., \"source\": ..., \"target\": ...}}, found {}",
            fields::describe(&json)
        ));
    };
    let fields = Fields::new(object);
    warn_unknown_fields(file, &fields);
    resource_from(file, &fields, opts)
}

fn warn_unknown_fields(file: &Path, fields: &Fields) {
    for name in fields.names().filter(|name| !KNOWN_FIELDS.contains(name)) {
        log::warn!(
            "{}: unknown field \"{name}\" ignored (known fields: {})",
            file.display(),
            KNOWN_FIELDS.join(", ")
        );
    }
}

fn resource_from(file: &Path, fields: &Fields, opts: &LoadOptions) -> Result<Resource, String> {
    let key = watched_key(&opts.prefix, fields.required_string("key")?)?;
    let source = fields.required_string("source")?;
    let target = target_path(fields.required_string("target")?)?;
    let altkeys = fields.string_map("altkeys")?;
    if let Some((alias, bad)) = altkeys.iter().find(|(_, key)| !key.starts_with('/')) {
        return Err(format!(
            "field \"altkeys\": entry \"{alias}\" is {bad:?}; etcd keys start with '/'"
        ));
    }
    let strict = fields.bool("strict")?;
    let pattern = fields.string("pattern")?;
    let template_path = opts.templatedir.join(source);
    let mut template = load_template(&template_path, &opts.templatedir, pattern, strict)?;
    let fuel = fields
        .positive_integer("render_fuel")?
        .unwrap_or(DEFAULT_RENDER_FUEL);
    template.set_render_fuel(fuel, format!("render_fuel in {}", file.display()));
    let wait = match fields.get("wait") {
        Some(value) => Some(parse_wait(value).map_err(|err| format!("field \"wait\": {err}"))?),
        None => opts.default_wait,
    };
    let install = InstallSpec {
        id: fields
            .string("id")?
            .map_or_else(|| file.display().to_string(), str::to_string),
        target,
        mode: fields.mode("mode")?,
        owner: fields.string("owner")?.map(str::to_string),
        group: fields.string("group")?.map(str::to_string),
        mkdirs: fields.bool("mkdirs")?,
        checkcmd: fields.string("checkcmd")?.map(str::to_string),
        reloadcmd: fields.string("reloadcmd")?.map(str::to_string),
        splay: fields.duration("splay")?.unwrap_or(Duration::ZERO),
        command_timeout: command_timeout(fields)?.unwrap_or(opts.default_command_timeout),
    };
    Ok(Resource {
        file: file.to_path_buf(),
        key,
        recursive: fields.bool("recursive")?,
        altkeys,
        wait,
        template_path,
        template: Arc::new(template),
        strict,
        install,
        guards: guards::parse(fields)?,
    })
}

/// The key as written must start with '/'; the result has the prefix applied, repeated
/// slashes squeezed and no trailing slash (etcd names a directory without one).
fn watched_key(prefix: &str, key: &str) -> Result<String, String> {
    if !key.starts_with('/') {
        return Err(format!(
            "field \"key\": {key:?} must start with '/' (e.g. \"/{}\")",
            key.trim_start_matches('/')
        ));
    }
    let mut full = String::with_capacity(prefix.len() + key.len() + 1);
    for segment in format!("/{prefix}/{key}")
        .split('/')
        .filter(|s| !s.is_empty())
    {
        full.push('/');
        full.push_str(segment);
    }
    if full.is_empty() {
        full.push('/');
    }
    Ok(full)
}

fn target_path(target: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(target);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(format!(
            "field \"target\": {target:?} must be an absolute path (it must not depend on the directory reconfig runs in)"
        ))
    }
}

fn load_template(
    template_path: &Path,
    templatedir: &Path,
    pattern: Option<&str>,
    strict: bool,
) -> Result<Template, String> {
    if !template_path.is_file() {
        return Err(format!(
            "field \"source\": template file {} not found (source is looked up in the template directory {})",
            template_path.display(),
            templatedir.display()
        ));
    }
    Template::load(template_path, pattern, strict).map_err(|err| err.to_string())
}

fn command_timeout(fields: &Fields) -> Result<Option<Duration>, String> {
    match fields.duration("timeout")? {
        Some(timeout) if timeout.is_zero() => Err(
            "field \"timeout\": must be longer than 0 (remove the field for no time limit)"
                .to_string(),
        ),
        timeout => Ok(timeout),
    }
}

/// Remembers which targets are taken, so that two resources never write the same file.
#[derive(Default)]
struct TargetRegistry {
    /// (target as written, its canonical form, resource id, conf.d file)
    claimed: Vec<(PathBuf, PathBuf, String, PathBuf)>,
}

impl TargetRegistry {
    fn claim(&mut self, resource: &Resource) -> Result<(), String> {
        let target = resource.target();
        let canonical = canonical_target(target);
        let taken = self
            .claimed
            .iter()
            .find(|(written, other_canonical, _, _)| {
                written == target || *other_canonical == canonical
            });
        if let Some((written, _, id, file)) = taken {
            return Err(format!(
                "target {} is already the target of resource \"{id}\" ({}, target {}); \
                 two resources cannot write the same file, so this one is skipped",
                target.display(),
                file.display(),
                written.display()
            ));
        }
        self.claimed.push((
            target.to_path_buf(),
            canonical,
            resource.id().to_string(),
            resource.file.clone(),
        ));
        Ok(())
    }
}

/// The target with symlinks and `..` resolved as far as the filesystem allows: the file itself
/// when it exists, else its directory plus the file name, else the path as written.
fn canonical_target(target: &Path) -> PathBuf {
    if let Ok(canonical) = target.canonicalize() {
        return canonical;
    }
    match (target.parent(), target.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map(|dir| dir.join(name))
            .unwrap_or_else(|_| target.to_path_buf()),
        _ => target.to_path_buf(),
    }
}

#[cfg(test)]
mod tests;
