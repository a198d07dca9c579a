//! `{{src}}` and `{{target}}` in a check or reload command, bare or inside quotes.
//!
//! The paths never enter the shell's text: they are passed in the environment
//! (`RECONFIG_SRC`, `RECONFIG_TARGET`) and each placeholder becomes a reference to its variable
//! that is quoted right for where it stands, so `cat {{src}}`, `cat '{{src}}'` and
//! `cat "{{src}}"` all read the file whatever bytes its path holds (spaces, quotes, `$`,
//! backticks). Messages show the same command with the real paths, quoted the same way.

use std::ffi::OsString;
use std::path::Path;

use super::command::ShellCommand;

/// Placeholder for the staged file: a check using it runs before install.
pub(crate) const SRC: &str = "{{src}}";
/// Placeholder for the target path.
pub(crate) const TARGET: &str = "{{target}}";

const SRC_VARIABLE: &str = "RECONFIG_SRC";
const TARGET_VARIABLE: &str = "RECONFIG_TARGET";

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

/// `command` with `{{target}}` and (when given) `{{src}}` replaced; without `staged`, a
/// `{{src}}` is left as written.
pub(crate) fn expand(command: &str, target: &Path, staged: Option<&Path>) -> ShellCommand {
    let mut placeholders = vec![(TARGET, TARGET_VARIABLE, target)];
    if let Some(staged) = staged {
        placeholders.push((SRC, SRC_VARIABLE, staged));
    }
    let mut script = String::with_capacity(command.len());
    let mut display = String::with_capacity(command.len());
    let mut scanner = Scanner::default();
    let mut rest = command;
    while let Some(first) = rest.chars().next() {
        let found = placeholders
            .iter()
            .find(|(text, _, _)| rest.starts_with(text));
        if let Some(&(text, variable, path)) = found {
            let quoting = scanner.quoting();
            script.push_str(&reference(variable, quoting));
            display.push_str(&quoted(&path.to_string_lossy(), quoting));
            rest = &rest[text.len()..];
            continue;
        }
        let next = rest[first.len_utf8()..].chars().next();
        let taken = scanner.step(first, next);
        let (consumed, after) = rest.split_at(taken.min(rest.len()));
        script.push_str(consumed);
        display.push_str(consumed);
        rest = after;
    }
    let env = placeholders
        .iter()
        .map(|&(_, variable, path)| (variable, OsString::from(path.as_os_str())))
        .collect();
    ShellCommand {
        script: OsString::from(script),
        display,
        env,
    }
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

    fn expanded(command: &str) -> ShellCommand {
        expand(command, Path::new(TARGET_PATH), Some(Path::new(SRC_PATH)))
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
            Path::new("/etc/haproxy/haproxy.cfg"),
            Some(Path::new("/etc/haproxy/.haproxy.cfg.reconfig-7-0.tmp")),
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
        let command = expand("x {{src}} {{target}}", Path::new("/t"), None);
        assert_eq!(
            command.script.to_string_lossy(),
            "x {{src}} \"${RECONFIG_TARGET}\""
        );
        assert_eq!(command.display, "x {{src}} /t");
        assert_eq!(command.env.len(), 1);
    }

    #[test]
    fn unbalanced_text_and_non_ascii_do_not_panic() {
        for command in ["\"{{src}}", "'{{src}}", ")) {{src}} \\", "é{{src}}ü`", "$("] {
            let _ = expanded(command);
        }
        assert_eq!(script("é {{src}}"), "é \"${RECONFIG_SRC}\"");
    }
}
