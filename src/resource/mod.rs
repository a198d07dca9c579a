//! conf.d JSON → validated resources.
//!
//! Each `confdir/*.json` file describes one resource: which etcd key to watch, which template
//! renders it and which file it produces. [`load`] reads them all in file-name order; a bad file
//! is reported as one [`ConfigError`] and skipped, so one typo does not stop the other resources.

mod duplicates;
mod duration;
mod fields;
mod files;
mod guards;
mod keys;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::apply::{check_placeholders, FileSpec, InstallSpec};
use crate::guard::Guards;
use crate::template::{Context, Template, DEFAULT_RENDER_FUEL};

pub use duration::{parse_duration, parse_wait};
use fields::Fields;
use files::template_files;

/// One conf.d entry: what to watch in etcd, how to render it and how to install the result.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The conf.d file it came from.
    pub file: PathBuf,
    /// The (first) watched etcd key: prefix applied, `//` squeezed, starts with `/`; the
    /// template's `watched`.
    pub key: String,
    /// Every watched key, `key` first (`"keys"`, or just `key`); all are read for a render
    /// and their leaves together are the template's `data`.
    pub keys: Vec<String>,
    /// Applies to every key of `keys`.
    pub recursive: bool,
    /// Alias → etcd key, fetched on each render; watched too with `watch_altkeys`. Not
    /// prefixed.
    pub altkeys: BTreeMap<String, String>,
    pub watch_altkeys: bool,
    /// Quiescence: wait for the key to be quiet this long before rendering.
    pub wait: Option<Wait>,
    /// templatedir/source (of the first entry of `"templates"`).
    pub template_path: PathBuf,
    pub template: Arc<Template>,
    /// The further entries of `"templates"`, in order, each rendering to the file of the
    /// same place in `install.grouped`.
    pub grouped_templates: Vec<GroupedTemplate>,
    /// Undefined template values are errors instead of empty text.
    pub strict: bool,
    /// How the rendered text is installed, complete at load: the `id` field (defaults to the
    /// JSON file's path), target, mode, owner, group, mkdirs, check and reload commands,
    /// splay, and the commands' time limit (the `timeout` field, else the load options'
    /// default).
    pub install: InstallSpec,
    /// `min_keys`, `max_shrink`, `values`, `on_bad_value`: renders that are refused.
    pub guards: Guards,
    /// The daemon starts a reload no sooner than this after the previous one started; a
    /// reload owed sooner is deferred to then, never dropped. `--onetime` reloads at most
    /// once per run, so it does not apply there.
    pub min_reload_interval: Option<Duration>,
}

impl Resource {
    /// The `id` field, or the conf.d file's path: names the resource in logs.
    pub fn id(&self) -> &str {
        &self.install.id
    }

    /// The file it renders to (the first, for a resource with several templates).
    pub fn target(&self) -> &Path {
        &self.install.target
    }

    /// Renders every template from one context, in the order of [`InstallSpec::files`].
    /// `capacity`: room to allocate for all the texts together. A render error names its
    /// template file.
    pub fn render_all(&self, context: &Context, capacity: usize) -> Result<Vec<String>, String> {
        let share = capacity / (1 + self.grouped_templates.len());
        std::iter::once(&self.template)
            .chain(
                self.grouped_templates
                    .iter()
                    .map(|grouped| &grouped.template),
            )
            .map(|template| {
                template
                    .render_with_capacity(context, share)
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// Every (key, recursive) to watch: the keys, then the altkeys with `watch_altkeys`
    /// (read recursively, so watched so).
    pub fn watched_keys(&self) -> Vec<(&str, bool)> {
        let keys = self.keys.iter().map(|key| (key.as_str(), self.recursive));
        let altkeys = self
            .altkeys
            .values()
            .filter(|_| self.watch_altkeys)
            .map(|key| (key.as_str(), true));
        keys.chain(altkeys).collect()
    }

    /// How many keys a render reads: the keys and the altkeys.
    pub fn reads(&self) -> usize {
        self.keys.len() + self.altkeys.len()
    }

    /// Each target and the template that renders it, for the log: `/a (template t.tmpl)`.
    pub fn files_text(&self) -> String {
        let mut files = vec![(self.target(), self.template_path.as_path())];
        for (file, grouped) in self.install.grouped.iter().zip(&self.grouped_templates) {
            files.push((&file.target, &grouped.template_path));
        }
        let described: Vec<String> = files
            .iter()
            .map(|(target, template)| {
                format!("{} (template {})", target.display(), template.display())
            })
            .collect();
        described.join(", ")
    }
}

/// A further template of a resource with several: see [`Resource::grouped_templates`].
#[derive(Debug, Clone)]
pub struct GroupedTemplate {
    /// templatedir/source.
    pub template_path: PathBuf,
    pub template: Arc<Template>,
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
    "keys",
    "watch_altkeys",
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
    "backup",
    "templates",
    "min_keys",
    "max_shrink",
    "values",
    "on_bad_value",
    "min_reload_interval",
];

/// The most `backup` may keep: more is a typo or a job for version control, and each one
/// costs a rename on every change.
const MAX_BACKUPS: u64 = 100;

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
    let keys = keys::parse(&opts.prefix, fields)?;
    let key = keys.first().cloned().ok_or("no key")?;
    let mut files = template_files(fields)?.into_iter();
    let first = files.next().ok_or("no template")?;
    let altkeys = fields.string_map("altkeys")?;
    if let Some((alias, bad)) = altkeys.iter().find(|(_, key)| !key.starts_with('/')) {
        return Err(format!(
            "field \"altkeys\": entry \"{alias}\" is {bad:?}; etcd keys start with '/'"
        ));
    }
    let strict = fields.bool("strict")?;
    let pattern = fields.string("pattern")?;
    let fuel = fields
        .positive_integer("render_fuel")?
        .unwrap_or(DEFAULT_RENDER_FUEL);
    let load = |source: &str| -> Result<(PathBuf, Arc<Template>), String> {
        let template_path = opts.templatedir.join(source);
        let mut template = load_template(&template_path, &opts.templatedir, pattern, strict)?;
        template.set_render_fuel(fuel, format!("render_fuel in {}", file.display()));
        Ok((template_path, Arc::new(template)))
    };
    let (template_path, template) = load(&first.source)?;
    let mut grouped = Vec::new();
    let mut grouped_templates = Vec::new();
    for (index, more) in files.enumerate() {
        let (template_path, template) = load(&more.source)
            .map_err(|err| format!("field \"templates\", entry {}: {err}", index + 2))?;
        grouped_templates.push(GroupedTemplate {
            template_path,
            template,
        });
        grouped.push(FileSpec {
            target: more.target,
            mode: more.mode,
            owner: more.owner,
            group: more.group,
        });
    }
    let wait = match fields.get("wait") {
        Some(value) => Some(parse_wait(value).map_err(|err| format!("field \"wait\": {err}"))?),
        None => opts.default_wait,
    };
    let files_count = 1 + grouped.len();
    for name in ["checkcmd", "reloadcmd"] {
        if let Some(command) = fields.string(name)? {
            check_placeholders(command, files_count)
                .map_err(|err| format!("field \"{name}\": {err}"))?;
        }
    }
    let install = InstallSpec {
        id: fields
            .string("id")?
            .map_or_else(|| file.display().to_string(), str::to_string),
        target: first.target,
        mode: first.mode,
        owner: first.owner,
        group: first.group,
        grouped,
        mkdirs: fields.bool("mkdirs")?,
        checkcmd: fields.string("checkcmd")?.map(str::to_string),
        reloadcmd: fields.string("reloadcmd")?.map(str::to_string),
        splay: fields.duration("splay")?.unwrap_or(Duration::ZERO),
        command_timeout: command_timeout(fields)?.unwrap_or(opts.default_command_timeout),
        backups: backups(fields)?,
    };
    Ok(Resource {
        file: file.to_path_buf(),
        key,
        keys,
        recursive: fields.bool("recursive")?,
        altkeys,
        watch_altkeys: fields.bool("watch_altkeys")?,
        wait,
        template_path,
        template,
        grouped_templates,
        strict,
        install,
        guards: guards::parse(fields)?,
        min_reload_interval: fields
            .duration("min_reload_interval")?
            .filter(|interval| !interval.is_zero()),
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

fn backups(fields: &Fields) -> Result<u32, String> {
    match fields.positive_integer("backup")? {
        None => Ok(0),
        Some(keep) if keep <= MAX_BACKUPS => Ok(keep as u32),
        Some(keep) => Err(format!(
            "field \"backup\": {keep} is more than the {MAX_BACKUPS} previous versions reconfig keeps; keep the history in version control"
        )),
    }
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
    /// Claims every target of `resource`, or none when one is taken.
    fn claim(&mut self, resource: &Resource) -> Result<(), String> {
        let files = resource.install.files();
        for file in &files {
            self.check_free(&file.target)?;
        }
        for file in files {
            self.claimed.push((
                file.target.clone(),
                canonical_target(&file.target),
                resource.id().to_string(),
                resource.file.clone(),
            ));
        }
        Ok(())
    }

    fn check_free(&self, target: &Path) -> Result<(), String> {
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
