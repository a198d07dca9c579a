//! `{{src}}` and `{{target}}` in a check or reload command, bare or inside quotes; for a
//! resource with several templates also `{{src:N}}` and `{{target:N}}`, the N-th file's
//! (from 1; `{{src:1}}` is `{{src}}`).
//!
//! The paths never enter the shell's text: they are passed in the environment
//! (`RECONFIG_SRC`, `RECONFIG_TARGET` for the first file, `RECONFIG_SRC_N`,
//! `RECONFIG_TARGET_N` for the N-th from 2) and each placeholder becomes a reference to its
//! variable that is quoted right for where it stands, so `cat {{src}}`, `cat '{{src}}'` and
//! `cat "{{src}}"` all read the file whatever bytes its path holds (spaces, quotes, `$`,
//! backticks). Messages show the same command with the real paths, quoted the same way.

use std::ffi::OsString;
use std::path::Path;

use super::command::ShellCommand;

/// Placeholder for the staged file: a check using it runs before install.
pub(crate) const SRC: &str = "{{src}}";
/// Placeholder for the target path.
pub(crate) const TARGET: &str = "{{target}}";
/// Start of `{{src:N}}`; a check using it runs before install too.
const SRC_NUMBERED: &str = "{{src:";
/// Start of `{{target:N}}`.
const TARGET_NUMBERED: &str = "{{target:";

const SRC_VARIABLE: &str = "RECONFIG_SRC";
const TARGET_VARIABLE: &str = "RECONFIG_TARGET";

/// What one file gives the placeholders: its target and, before install, its staged copy.
pub(crate) struct FilePaths<'a> {
    pub target: &'a Path,
    /// `None`: `{{src}}` (and this file's `{{src:N}}`) are left as written.
    pub src: Option<&'a Path>,
}

/// Whether `command` names a staged file, so that it runs before install.
pub(crate) fn names_staged(command: &str) -> bool {
    command.contains(SRC) || command.contains(SRC_NUMBERED)
}

/// Checks every `{{src:N}}` and `{{target:N}}` of `command` names one of `files` files
/// (N from 1); the error says which placeholder is wrong and why.
pub fn check_numbered(command: &str, files: usize) -> Result<(), String> {
    for start in [SRC_NUMBERED, TARGET_NUMBERED] {
        for (at, _) in command.match_indices(start) {
            let rest = &command[at + start.len()..];
            let number = rest.split_once("}}").map(|(number, _)| number);
            let shown = number.map_or_else(
                || format!("{start}…"),
                |number| format!("{start}{number}}}}}"),
            );
            match number.and_then(|number| number.parse::<usize>().ok()) {
                Some(n) if (1..=files).contains(&n) => {}
                Some(n) => {
                    return Err(format!(
                        "{shown} names file {n}, but the resource has {files} (numbered from 1 in the order of \"templates\")"
                    ))
                }
                None => {
                    return Err(format!(
                        "{shown} is not a placeholder; write {start}N}}}} with N a file's number from 1"
                    ))
                }
            }
        }
    }
    Ok(())
}

/// One placeholder: its text, its variable and the path it stands for.
struct Placeholder<'a> {
    text: String,
    variable: String,
    path: &'a Path,
}

/// The placeholders `files` give: `{{target}}`/`{{src}}` and `{{target:1}}`/`{{src:1}}` for
/// the first (same variables), `{{target:N}}`/`{{src:N}}` for the others.
fn placeholders<'a>(files: &[FilePaths<'a>]) -> Vec<Placeholder<'a>> {
    let mut placeholders = Vec::with_capacity(files.len() * 2 + 2);
    for (index, file) in files.iter().enumerate() {
        let n = index + 1;
        let mut add = |text: String, variable: String, path| {
            placeholders.push(Placeholder {
                text,
                variable,
                path,
            })
        };
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("_{n}")
        };
        if n == 1 {
            add(TARGET.to_string(), TARGET_VARIABLE.to_string(), file.target);
        }
        add(
            format!("{TARGET_NUMBERED}{n}}}}}"),
            format!("{TARGET_VARIABLE}{suffix}"),
            file.target,
        );
        if let Some(src) = file.src {
            if n == 1 {
                add(SRC.to_string(), SRC_VARIABLE.to_string(), src);
            }
            add(
                format!("{SRC_NUMBERED}{n}}}}}"),
                format!("{SRC_VARIABLE}{suffix}"),
                src,
            );
        }
    }
    placeholders
}

/// `command` with the placeholders of `files` replaced (see [`FilePaths`]).
pub(crate) fn expand(command: &str, files: &[FilePaths]) -> ShellCommand {
    let placeholders = placeholders(files);
    let mut script = String::with_capacity(command.len());
    let mut display = String::with_capacity(command.len());
    let mut scanner = Scanner::default();
    let mut rest = command;
    while let Some(first) = rest.chars().next() {
        let found = placeholders
            .iter()
            .find(|placeholder| rest.starts_with(&placeholder.text));
        if let Some(placeholder) = found {
            let quoting = scanner.quoting();
            script.push_str(&reference(&placeholder.variable, quoting));
            display.push_str(&quoted(&placeholder.path.to_string_lossy(), quoting));
            rest = &rest[placeholder.text.len()..];
            continue;
        }
        let next = rest[first.len_utf8()..].chars().next();
        let taken = scanner.step(first, next);
        let (consumed, after) = rest.split_at(taken.min(rest.len()));
        script.push_str(consumed);
        display.push_str(consumed);
        rest = after;
    }
    // Every variable, used or not: commands may use them directly. `{{x:1}}` shares the
    // variable of `{{x}}`, set once.
    let mut env: Vec<(String, OsString)> = Vec::with_capacity(placeholders.len());
    for placeholder in &placeholders {
        if !env
            .iter()
            .any(|(variable, _)| *variable == placeholder.variable)
        {
            env.push((
                placeholder.variable.clone(),
                OsString::from(placeholder.path.as_os_str()),
            ));
        }
    }
    ShellCommand {
        script: OsString::from(script),
        display,
        env,
    }
}

/// The shell quoting around a placeholder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quoting {
    /// Unquoted, also inside `$(…)` or backticks.
    Bare,
    Single,
    Double,
}

/// A nesting level of the shell text being scanned.
enum Frame {
    /// Top level or inside `$(…)`: counts the plain parentheses opened inside it.
    Bare {
        parens: u32,
    },
    Double,
    Backtick,
}

/// Tracks the quoting of `sh` text one character at a time.
struct Scanner {
    frames: Vec<Frame>,
    in_single: bool,
}

impl Default for Scanner {
    fn default() -> Scanner {
        Scanner {
            frames: vec![Frame::Bare { parens: 0 }],
            in_single: false,
        }
    }
}

impl Scanner {
    fn quoting(&self) -> Quoting {
        if self.in_single {
            Quoting::Single
        } else if matches!(self.frames.last(), Some(Frame::Double)) {
            Quoting::Double
        } else {
            Quoting::Bare
        }
    }

    /// Takes in `current` (followed by `next`); returns how many bytes it consumed: a
    /// backslash takes the character it escapes along, `$(` both of its characters.
    fn step(&mut self, current: char, next: Option<char>) -> usize {
        let with_next = current.len_utf8() + next.map_or(0, char::len_utf8);
        if self.in_single {
            self.in_single = current != '\'';
            return current.len_utf8();
        }
        let in_double = matches!(self.frames.last(), Some(Frame::Double));
        match current {
            '\\' => return with_next,
            '$' if next == Some('(') => {
                self.frames.push(Frame::Bare { parens: 0 });
                return with_next;
            }
            '"' if in_double => self.pop(),
            '"' => self.frames.push(Frame::Double),
            '`' if matches!(self.frames.last(), Some(Frame::Backtick)) => self.pop(),
            '`' => self.frames.push(Frame::Backtick),
            '\'' if !in_double => self.in_single = true,
            '(' => {
                if let Some(Frame::Bare { parens }) = self.frames.last_mut() {
                    *parens += 1;
                }
            }
            ')' => match self.frames.last_mut() {
                Some(Frame::Bare { parens }) if *parens > 0 => *parens -= 1,
                Some(Frame::Bare { .. }) => self.pop(),
                _ => {}
            },
            _ => {}
        }
        current.len_utf8()
    }

    /// Leaves the innermost frame; the top level is never left (unbalanced text).
    fn pop(&mut self) {
        if self.frames.len() > 1 {
            self.frames.pop();
        }
    }
}

/// What `sh` runs in place of a placeholder: the variable, expanded as one word.
fn reference(variable: &str, quoting: Quoting) -> String {
    match quoting {
        Quoting::Bare => format!("\"${{{variable}}}\""),
        Quoting::Double => format!("${{{variable}}}"),
        // Close the single quotes, expand in double quotes, reopen.
        Quoting::Single => format!("'\"${{{variable}}}\"'"),
    }
}

/// The path as it would be written in that place: what messages show.
fn quoted(path: &str, quoting: Quoting) -> String {
    match quoting {
        Quoting::Bare if path.bytes().all(is_plain) && !path.is_empty() => path.to_string(),
        Quoting::Bare => format!("'{}'", path.replace('\'', "'\\''")),
        Quoting::Single => path.replace('\'', "'\\''"),
        Quoting::Double => path.chars().fold(String::new(), |mut out, c| {
            if matches!(c, '\\' | '"' | '$' | '`') {
                out.push('\\');
            }
            out.push(c);
            out
        }),
    }
}

/// Bytes a path may hold and still be written without quotes.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"/._-+,:@%=".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET_PATH: &str = "/etc/my app/it's \"$x\" `y`.conf";
    const SRC_PATH: &str = "/etc/my app/.it.reconfig-1-0.tmp";

    fn one(target: &'static str, src: Option<&'static str>) -> Vec<FilePaths<'static>> {
        vec![FilePaths {
            target: Path::new(target),
            src: src.map(Path::new),
        }]
    }

    fn expanded(command: &str) -> ShellCommand {
        expand(command, &one(TARGET_PATH, Some(SRC_PATH)))
    }

    fn script(command: &str) -> String {
        expanded(command).script.to_string_lossy().into_owned()
    }

    /// What `sh -c` prints for the expanded command, with the paths in its environment.
    fn shell_output(command: &ShellCommand) -> String {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command.script)
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("sh");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    #[test]
    fn each_quoting_gets_a_reference_that_stays_one_word() {
        assert_eq!(script("cat {{src}}"), "cat \"${RECONFIG_SRC}\"");
        assert_eq!(script("cat \"{{src}}\""), "cat \"${RECONFIG_SRC}\"");
        assert_eq!(script("cat '{{src}}'"), "cat ''\"${RECONFIG_SRC}\"''");
        assert_eq!(
            script("test -s \"{{target}}.d\""),
            "test -s \"${RECONFIG_TARGET}.d\""
        );
        assert_eq!(script("echo '\"' {{src}}"), "echo '\"' \"${RECONFIG_SRC}\"");
        assert_eq!(
            script("echo \"'\" {{src}}"),
            "echo \"'\" \"${RECONFIG_SRC}\""
        );
        assert_eq!(script("echo \\\" {{src}}"), "echo \\\" \"${RECONFIG_SRC}\"");
    }

    #[test]
    fn every_quoting_passes_the_exact_path_through_sh() {
        for command in [
            "printf '%s|' {{src}} {{target}}",
            "printf '%s|' \"{{src}}\" \"{{target}}\"",
            "printf '%s|' '{{src}}' '{{target}}'",
            "printf '%s|' \"$(printf %s {{src}})\" \"`printf %s '{{target}}'`\"",
            "printf '%s|' \"$(printf %s \"{{src}}\")\" $(printf %s \"{{target}}\" | tr ' ' _)",
        ] {
            let output = shell_output(&expanded(command));
            let second = if command.contains("tr ' ' _") {
                TARGET_PATH.replace(' ', "_")
            } else {
                TARGET_PATH.to_string()
            };
            assert_eq!(output, format!("{SRC_PATH}|{second}|"), "{command}");
        }
    }

    #[test]
    fn the_displayed_command_has_the_real_paths_and_runs_the_same() {
        let plain = expand(
            "haproxy -c -f {{src}} && test -s \"{{target}}\"",
            &one(
                "/etc/haproxy/haproxy.cfg",
                Some("/etc/haproxy/.haproxy.cfg.reconfig-7-0.tmp"),
            ),
        );
        assert_eq!(
            plain.display,
            "haproxy -c -f /etc/haproxy/.haproxy.cfg.reconfig-7-0.tmp && test -s \"/etc/haproxy/haproxy.cfg\""
        );
        for command in [
            "printf '%s|' {{src}} {{target}}",
            "printf '%s|' \"{{src}}\" \"{{target}}\"",
            "printf '%s|' '{{src}}' '{{target}}'",
        ] {
            let shown = expanded(command);
            let as_shown = ShellCommand {
                script: OsString::from(&shown.display),
                display: String::new(),
                env: Vec::new(),
            };
            assert_eq!(
                shell_output(&as_shown),
                format!("{SRC_PATH}|{TARGET_PATH}|"),
                "{}",
                shown.display
            );
        }
    }

    #[test]
    fn src_is_left_alone_without_a_staged_file() {
        let command = expand("x {{src}} {{target}}", &one("/t", None));
        assert_eq!(
            command.script.to_string_lossy(),
            "x {{src}} \"${RECONFIG_TARGET}\""
        );
        assert_eq!(command.display, "x {{src}} /t");
        assert_eq!(command.env.len(), 1);
    }

    #[test]
    fn numbered_placeholders_name_each_file_of_a_group() {
        let files = [
            FilePaths {
                target: Path::new("/etc/a b.conf"),
                src: Some(Path::new("/etc/.a.tmp")),
            },
            FilePaths {
                target: Path::new("/etc/b.conf"),
                src: Some(Path::new("/etc/.b'.tmp")),
            },
        ];
        let command = expand(
            "printf '%s|' {{src}} {{src:1}} '{{src:2}}' \"{{target:2}}\" {{target:1}}",
            &files,
        );
        assert_eq!(
            shell_output(&command),
            "/etc/.a.tmp|/etc/.a.tmp|/etc/.b'.tmp|/etc/b.conf|/etc/a b.conf|"
        );
        let variables: Vec<&str> = command.env.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(
            variables,
            [
                "RECONFIG_TARGET",
                "RECONFIG_SRC",
                "RECONFIG_TARGET_2",
                "RECONFIG_SRC_2"
            ]
        );
        // After install the sources are gone: `{{src:N}}` stays as written.
        let installed = [
            FilePaths {
                target: Path::new("/a"),
                src: None,
            },
            FilePaths {
                target: Path::new("/b"),
                src: None,
            },
        ];
        assert_eq!(
            expand("x {{src:2}} {{target:2}}", &installed).display,
            "x {{src:2}} /b"
        );
    }

    #[test]
    fn numbered_placeholders_out_of_range_or_malformed_are_refused() {
        assert_eq!(
            check_numbered("x {{src:1}} {{target:2}} {{src}}", 2),
            Ok(())
        );
        assert_eq!(
            check_numbered("x {{src:3}}", 2).unwrap_err(),
            "{{src:3}} names file 3, but the resource has 2 (numbered from 1 in the order of \"templates\")"
        );
        assert!(check_numbered("x {{target:0}}", 2)
            .unwrap_err()
            .contains("names file 0"));
        assert!(check_numbered("x {{src:a}}", 2)
            .unwrap_err()
            .starts_with("{{src:a}} is not a placeholder"));
        assert!(check_numbered("x {{src:1", 2).is_err());
    }

    #[test]
    fn unbalanced_text_and_non_ascii_do_not_panic() {
        for command in ["\"{{src}}", "'{{src}}", ")) {{src}} \\", "é{{src}}ü`", "$("] {
            let _ = expanded(command);
        }
        assert_eq!(script("é {{src}}"), "é \"${RECONFIG_SRC}\"");
    }
}
