//! Template delimiters from a resource's `pattern`.

use minijinja::syntax::{SyntaxConfig, SyntaxConfigBuilder};

const PATTERN_HELP: &str = "a valid pattern is a start and an end marker separated by a space, \
     like \"<% %>\" (blocks <% %>, values <%= %>, comments <%# %>) or \"#% %#\"";

/// The syntax for `pattern`: standard Jinja delimiters when there is none, otherwise
/// blocks `START END`, values `START= END`, comments `START# END`.
///
/// Blocks alone on a line leave no blank line (trim + lstrip), and the template's final
/// newline is kept: both matter for config files.
pub(super) fn syntax_for(pattern: Option<&str>) -> Result<SyntaxConfig, String> {
    let mut builder = SyntaxConfig::builder();
    builder
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true);
    if let Some(pattern) = pattern {
        let (start, end) = markers_of(pattern)?;
        set_delimiters(&mut builder, start, end);
    }
    builder
        .build()
        .map_err(|err| format!("invalid pattern {}: {err}; {PATTERN_HELP}", quoted(pattern)))
}

fn markers_of(pattern: &str) -> Result<(&str, &str), String> {
    let markers: Vec<&str> = pattern.split_whitespace().collect();
    match markers.as_slice() {
        [start, end] if start == end => Err(format!(
            "invalid pattern {}: the start and end markers are identical; {PATTERN_HELP}",
            quoted(Some(pattern))
        )),
        [start, end] => Ok((start, end)),
        _ => Err(format!(
            "invalid pattern {}: expected exactly two markers, found {}; {PATTERN_HELP}",
            quoted(Some(pattern)),
            markers.len()
        )),
    }
}

fn set_delimiters(builder: &mut SyntaxConfigBuilder, start: &str, end: &str) {
    builder
        .block_delimiters(start.to_string(), end.to_string())
        .variable_delimiters(format!("{start}="), end.to_string())
        .comment_delimiters(format!("{start}#"), end.to_string());
}

fn quoted(pattern: Option<&str>) -> String {
    match pattern {
        Some(pattern) => format!("{pattern:?}"),
        None => "(standard Jinja)".to_string(),
    }
}
