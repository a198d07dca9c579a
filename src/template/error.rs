//! The error of loading or rendering a template.

use std::error::Error as StdError;
use std::fmt;

/// A template could not be compiled or rendered.
///
/// Display is one line: `<template file>:<line>: <reason>` (no line when it is unknown, e.g.
/// an unreadable file or a bad pattern). [`TemplateError::excerpt`] has the multi-line source
/// excerpt with a caret, for logs at debug level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    file: String,
    line: Option<usize>,
    reason: String,
    excerpt: Option<String>,
}

impl TemplateError {
    pub(super) fn without_line(file: &str, reason: String) -> TemplateError {
        TemplateError {
            file: file.to_string(),
            line: None,
            reason,
            excerpt: None,
        }
    }

    pub(super) fn from_minijinja(file: &str, err: &minijinja::Error) -> TemplateError {
        let excerpt = err
            .template_source()
            .map(|_| err.display_debug_info().to_string());
        TemplateError {
            file: err.name().unwrap_or(file).to_string(),
            line: err.line().filter(|line| *line > 0),
            reason: reason_of(err),
            excerpt: excerpt.filter(|text| !text.trim().is_empty()),
        }
    }

    /// The same error with another reason (file, line and excerpt kept).
    pub(super) fn with_reason(self, reason: String) -> TemplateError {
        TemplateError { reason, ..self }
    }

    /// The template file (as given to [`super::Template::load`]).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The 1-based line the error is on, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What went wrong, without the file and line.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// A numbered source excerpt pointing at the error, when available.
    pub fn excerpt(&self) -> Option<&str> {
        self.excerpt.as_deref()
    }
}

/// Whether the render stopped because it used up its fuel, here or in an error it wraps
/// (a failed call inside a macro or an include).
pub(super) fn is_out_of_fuel(err: &minijinja::Error) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(error) = current {
        if error
            .downcast_ref::<minijinja::Error>()
            .is_some_and(|inner| inner.kind() == minijinja::ErrorKind::OutOfFuel)
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// The kind and detail of a MiniJinja error plus the errors it wraps, without its own
/// "(in name:line)" suffix: our Display puts file and line first.
fn reason_of(err: &minijinja::Error) -> String {
    let mut reason = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    let mut source = err.source();
    while let Some(inner) = source {
        reason.push_str(": ");
        if let Some(inner_jinja) = inner.downcast_ref::<minijinja::Error>() {
            reason.push_str(&reason_of(inner_jinja));
            break;
        }
        reason.push_str(&inner.to_string());
        source = inner.source();
    }
    reason
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "template {}, line {}: {}", self.file, line, self.reason),
            None => write!(f, "template {}: {}", self.file, self.reason),
        }
    }
}

impl StdError for TemplateError {}
