//! The status document as a table for people (`reconfig status`).

use super::document::{Document, Mode, ResourceStatus, State};

/// One line per resource: id, state, index, age of the last change, and the last error
/// (its kind, age and text on one line, shortened), under a line saying who wrote the
/// document and when. `--json` has the whole text.
pub fn table(document: &Document, now: u64) -> String {
    let mode = match document.mode {
        Mode::Daemon => "daemon",
        Mode::Onetime => "onetime run",
    };
    let mut out = format!(
        "reconfig {mode}, pid {}, written {}\n",
        document.pid,
        age(Some(document.written_at), now)
    );
    let rows: Vec<[String; 5]> = document.resources.iter().map(|r| row(r, now)).collect();
    let header = ["RESOURCE", "STATE", "INDEX", "CHANGED", "ERROR"].map(str::to_string);
    let mut widths = header.clone().map(|cell| cell.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
            if column + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if document.resources.is_empty() {
        out.push_str("(no resource is running)\n");
    }
    out
}

fn row(resource: &ResourceStatus, now: u64) -> [String; 5] {
    let mut state = match resource.state {
        State::Starting => "starting",
        State::Ok => "ok",
        State::Error => "error",
    }
    .to_string();
    if resource.reload_pending {
        state.push_str(", reload pending");
    }
    if !resource.watch_connected && resource.state != State::Starting {
        state.push_str(", etcd unreachable");
    }
    let error = resource.error.as_ref().map_or_else(String::new, |error| {
        format!(
            "{} since {}: {}",
            error.kind,
            age(Some(error.since), now),
            one_line(&error.text)
        )
    });
    [
        resource.id.clone(),
        state,
        resource
            .applied_index
            .map_or_else(|| "-".to_string(), |index| index.to_string()),
        age(resource.changed_at, now),
        error,
    ]
}

/// Longest error text shown in the table, in characters.
const ERROR_WIDTH: usize = 160;

/// `text` with its lines joined by " | " (a check's output follows its command on the next
/// lines), cut to [`ERROR_WIDTH`] characters.
fn one_line(text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    match joined.char_indices().nth(ERROR_WIDTH) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

/// "5s ago", "3m ago", "2h ago", "4d ago"; "-" for never.
fn age(at: Option<u64>, now: u64) -> String {
    let Some(at) = at else {
        return "-".to_string();
    };
    let secs = now.saturating_sub(at);
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86_399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::super::document::{Counters, LastError};
    use super::*;

    fn status(id: &str, state: State) -> ResourceStatus {
        ResourceStatus {
            id: id.to_string(),
            target: format!("/etc/{id}.conf"),
            key: format!("/{id}"),
            state,
            applied_index: Some(42),
            applied_at: Some(1000),
            changed_at: Some(940),
            error: None,
            check: None,
            reload: None,
            reloaded_at: None,
            watch_connected: true,
            reload_pending: false,
            counters: Counters::default(),
        }
    }

    #[test]
    fn one_aligned_line_per_resource_with_the_error_first_line() {
        let mut failing = status("haproxy", State::Error);
        failing.error = Some(LastError {
            kind: "check".to_string(),
            text: "cannot install /etc/haproxy.cfg: the check failed; its output:\n  line 3: bad\n"
                .to_string(),
            since: 880,
        });
        failing.reload_pending = true;
        let document = Document {
            version: 1,
            pid: 7,
            mode: Mode::Daemon,
            written_at: 998,
            resources: vec![failing, status("web", State::Ok)],
        };
        assert_eq!(
            table(&document, 1000),
            "reconfig daemon, pid 7, written 2s ago\n\
             RESOURCE  STATE                  INDEX  CHANGED  ERROR\n\
             haproxy   error, reload pending  42     1m ago   check since 2m ago: cannot install /etc/haproxy.cfg: the check failed; its output: | line 3: bad\n\
             web       ok                     42     1m ago\n"
        );
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        let long = "é".repeat(ERROR_WIDTH + 5);
        let shown = one_line(&long);
        assert_eq!(shown.chars().count(), ERROR_WIDTH + 1);
        assert!(shown.ends_with("é…"));
        assert_eq!(one_line("short"), "short");
    }

    #[test]
    fn ages() {
        assert_eq!(age(None, 5), "-");
        assert_eq!(age(Some(5), 5), "0s ago");
        assert_eq!(age(Some(0), 7200), "2h ago");
        assert_eq!(age(Some(0), 200_000), "2d ago");
    }
}
