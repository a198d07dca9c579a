//! MiniJinja environment for resource templates.
//!
//! A [`Template`] is compiled once (when conf.d is loaded) and rendered many times, once per
//! etcd snapshot. The template sees the original tool's variables, `reconfig.data`,
//! `reconfig.altdata` and `reconfig.watched`, plus the top-level shortcuts `data`, `altdata`
//! and `watched`. The data maps are handed to MiniJinja as shared objects (no copy per render)
//! and always iterate in key order, so the same data gives byte-identical output.
//!
//! Every render is bounded by MiniJinja's fuel (about one unit per instruction and per 64
//! bytes of data made): a loop driven by a bad value in etcd fails the render instead of
//! holding a render thread for hours.

mod data;
mod error;
mod helpers;
mod syntax;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use minijinja::value::Value;
use minijinja::{context, AutoEscape, Environment, UndefinedBehavior};

use data::DataMap;
pub use error::TemplateError;

/// The fuel of one render unless the resource sets `render_fuel`. The examples' haproxy
/// template over 10 000 keys uses 140 000 (14 per key), so this leaves room for 700 000
/// keys, or for templates doing 70 times more work per key; a runaway loop stops after
/// about a second (release build, one core).
pub const DEFAULT_RENDER_FUEL: u64 = 10_000_000;

/// A compiled template: immutable, cheap to share between threads (`Arc<Template>`).
pub struct Template {
    env: Environment<'static>,
    name: String,
    /// The fuel of one render.
    fuel: u64,
    /// Where the user raises `fuel`, for the error of a render that used it up.
    fuel_setting: String,
}

/// What one render sees: the data of the resource's snapshot.
pub struct Context<'a> {
    /// Full etcd key → value of every leaf under the watched key.
    pub data: &'a Arc<BTreeMap<String, String>>,
    /// Alias (from `altkeys`) → (full key → value).
    pub altdata: &'a BTreeMap<String, Arc<BTreeMap<String, String>>>,
    /// The watched key with the prefix applied.
    pub watched: &'a str,
}

impl Template {
    /// Reads and compiles the file once. `name` in errors is the file path as given.
    pub fn load(
        path: &Path,
        pattern: Option<&str>,
        strict: bool,
    ) -> Result<Template, TemplateError> {
        let name = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|err| {
            TemplateError::without_line(&name, format!("cannot read the template file: {err}"))
        })?;
        Template::from_source(&name, source, pattern, strict)
    }

    /// Compiles `source`; `name` is what errors call the template (normally its path).
    pub fn from_source(
        name: &str,
        source: String,
        pattern: Option<&str>,
        strict: bool,
    ) -> Result<Template, TemplateError> {
        let syntax = syntax::syntax_for(pattern)
            .map_err(|reason| TemplateError::without_line(name, reason))?;
        let mut env = prototype().clone();
        env.set_syntax(syntax);
        env.set_undefined_behavior(if strict {
            UndefinedBehavior::Strict
        } else {
            UndefinedBehavior::Lenient
        });
        env.set_fuel(Some(DEFAULT_RENDER_FUEL));
        env.add_template_owned(name.to_string(), source)
            .map_err(|err| TemplateError::from_minijinja(name, &err))?;
        Ok(Template {
            env,
            name: name.to_string(),
            fuel: DEFAULT_RENDER_FUEL,
            fuel_setting: "render_fuel in the resource's conf.d file".to_string(),
        })
    }

    /// Bounds each render to `fuel` units instead of [`DEFAULT_RENDER_FUEL`]; `setting`
    /// tells the user where to raise it (e.g. `render_fuel in conf.d/app.json`).
    pub fn set_render_fuel(&mut self, fuel: u64, setting: String) {
        self.env.set_fuel(Some(fuel));
        self.fuel = fuel;
        self.fuel_setting = setting;
    }

    /// Renders the template with one snapshot's data.
    pub fn render(&self, ctx: &Context) -> Result<String, TemplateError> {
        self.render_with_capacity(ctx, 0)
    }

    /// [`Template::render`] into an output allocated once with room for `capacity` bytes
    /// (the length of the previous render) instead of grown from nothing: a 32 KB config
    /// otherwise costs a dozen reallocations, the larger ones each an `mmap`/`munmap` pair
    /// with musl's allocator.
    pub fn render_with_capacity(
        &self,
        ctx: &Context,
        capacity: usize,
    ) -> Result<String, TemplateError> {
        let failed = |err: minijinja::Error| {
            let error = TemplateError::from_minijinja(&self.name, &err);
            if error::is_out_of_fuel(&err) {
                error.with_reason(format!(
                    "render stopped after {} fuel units: raise {} if the template is meant to do that much work",
                    self.fuel, self.fuel_setting
                ))
            } else {
                error
            }
        };
        let template = self.env.get_template(&self.name).map_err(failed)?;
        if capacity == 0 {
            // Unknown size (a first render): MiniJinja's own path. Growing the sized
            // output from nothing instead made `--onetime` with 100 × 10 000 keys 3 times
            // slower (769 → 2 241 ms, make bench).
            return template.render(context_value(ctx)).map_err(failed);
        }
        let mut output = Vec::with_capacity(capacity);
        template
            .render_captured_to(context_value(ctx), &mut output)
            .map_err(failed)?;
        // Only `str`s are written to the output, so it is UTF-8.
        String::from_utf8(output).map_err(|err| {
            TemplateError::without_line(&self.name, format!("rendered text is not UTF-8: {err}"))
        })
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .field("fuel", &self.fuel)
            .finish_non_exhaustive()
    }
}

/// The settings and functions every template shares. Cloning it shares its function
/// tables instead of registering them again: 300 bytes per template instead of 18 KB,
/// which for 100 resources was 1.7 MB of the daemon's resident memory.
fn prototype() -> &'static Environment<'static> {
    static PROTOTYPE: OnceLock<Environment<'static>> = OnceLock::new();
    PROTOTYPE.get_or_init(|| {
        let mut env = Environment::new();
        // Runtime errors then carry a source excerpt and name the undefined variable.
        env.set_debug(true);
        // Config files are not HTML: a template named `*.html` or `*.json` must not escape.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        minijinja_contrib::add_to_environment(&mut env);
        helpers::register(&mut env);
        env
    })
}

/// Builds the render context. The maps are shared, not copied: only the small altdata
/// index map is built per render.
fn context_value(ctx: &Context) -> Value {
    let data = DataMap::value(ctx.data);
    let altdata: BTreeMap<String, Value> = ctx
        .altdata
        .iter()
        .map(|(alias, map)| (alias.clone(), DataMap::value(map)))
        .collect();
    let altdata = Value::from(altdata);
    let watched = Value::from(ctx.watched);
    context! {
        reconfig => context! { data => data.clone(), altdata => altdata.clone(), watched => watched.clone() },
        data => data,
        altdata => altdata,
        watched => watched,
    }
}

#[cfg(test)]
mod tests;
