//! The flag table: every flag of both binaries, described once. `--help`
//! ([`Command::help`]), the man pages (`man`) and the shell completions (`completion`) are
//! all made from it, so they cannot drift apart. The parsers (`reconfig::parse`,
//! `etcd_util::parse`, `connection::flag`) read the flags; tests/packaging.rs checks that
//! each flag of the table is one they accept.
//!
//! Adding a flag is one entry in its command's table, e.g.
//! `Flag::long("force", Value::None, "install even when the content is the same"),`
//! (plus its arm in the parser).

/// What follows a flag: shown after it in `--help` and the man page, completed by shells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A switch: no value.
    None,
    /// Free text such as a key or a number, shown as the name; nothing to complete.
    Text(&'static str),
    /// A file name, completed from the file system.
    File(&'static str),
    /// A directory name, completed from the file system.
    Dir(&'static str),
    /// One word of a fixed list (shown as the name), completed from the list.
    OneOf(&'static str, &'static [&'static str]),
}

impl Value {
    /// What `--help` shows after the flag; `None` for a switch.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Value::None => None,
            Value::Text(name) | Value::File(name) | Value::Dir(name) | Value::OneOf(name, _) => {
                Some(name)
            }
        }
    }
}

/// One flag: `--long`, maybe `-s`, its value and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub short: Option<char>,
    pub long: &'static str,
    pub value: Value,
    /// What it does, one paragraph; a `\n` starts a new line in `--help` and the man page.
    pub help: &'static str,
    /// Other long spellings the parser accepts, shown as "(also --x)".
    pub also: &'static [&'static str],
}

impl Flag {
    pub const fn long(long: &'static str, value: Value, help: &'static str) -> Flag {
        Flag {
            short: None,
            long,
            value,
            help,
            also: &[],
        }
    }

    pub const fn short(self, short: char) -> Flag {
        Flag {
            short: Some(short),
            ..self
        }
    }

    pub const fn also(self, also: &'static [&'static str]) -> Flag {
        Flag { also, ..self }
    }

    /// Every spelling the shells should offer: `-s`, `--long` and the other long ones.
    pub fn spellings(&self) -> Vec<String> {
        let mut all: Vec<String> = self.short.map(|c| format!("-{c}")).into_iter().collect();
        all.push(format!("--{}", self.long));
        all.extend(self.also.iter().map(|a| format!("--{a}")));
        all
    }

    /// The help text with the other spellings named.
    pub fn full_help(&self) -> String {
        if self.also.is_empty() {
            return self.help.to_string();
        }
        let also: Vec<String> = self.also.iter().map(|a| format!("--{a}")).collect();
        format!("{} (also {})", self.help, also.join(", "))
    }

    /// `-c, --cfgdir DIR` or `    --confdir DIR`, as the left column of `--help`.
    fn help_spec(&self) -> String {
        let short = match self.short {
            Some(c) => format!("-{c}, "),
            None => "    ".to_string(),
        };
        match self.value.name() {
            Some(name) => format!("{short}--{} {name}", self.long),
            None => format!("{short}--{}", self.long),
        }
    }
}

/// A group of flags under a heading ("" for the command's own flags).
#[derive(Debug, Clone, Copy)]
pub struct Group {
    pub title: &'static str,
    pub flags: &'static [Flag],
}

/// A titled paragraph after the flags: in `--help` as it is, in the man page as a section.
#[derive(Debug, Clone, Copy)]
pub struct Note {
    pub man_section: &'static str,
    pub text: &'static str,
}

/// One binary's command line, as `--help` and its man page describe it.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    pub name: &'static str,
    /// The man page's NAME line.
    pub summary: &'static str,
    /// Synopsis lines, each starting with the name.
    pub usage: &'static [&'static str],
    /// What the command does, one paragraph or more (separated by a blank line).
    pub about: &'static str,
    pub groups: &'static [Group],
    pub notes: &'static [Note],
    pub exit_codes: &'static [(i32, &'static str)],
}

/// Width `--help` wraps its text to.
const HELP_WIDTH: usize = 92;

impl Command {
    pub fn flags(&self) -> impl Iterator<Item = &'static Flag> + '_ {
        self.groups.iter().flat_map(|group| group.flags.iter())
    }

    /// The text of `--help`.
    pub fn help(&self) -> String {
        let mut out = String::new();
        for (i, line) in self.usage.iter().enumerate() {
            let lead = if i == 0 { "Usage: " } else { "       " };
            out.push_str(&format!("{lead}{line}\n"));
        }
        for paragraph in self.about.split("\n\n") {
            out.push('\n');
            push_wrapped(&mut out, "", "", paragraph, HELP_WIDTH);
        }
        for group in self.groups {
            out.push('\n');
            if !group.title.is_empty() {
                out.push_str(&format!("{}:\n", group.title));
            }
            push_flags(&mut out, group.flags);
        }
        for note in self.notes {
            out.push('\n');
            push_wrapped(&mut out, "", "", note.text, HELP_WIDTH);
        }
        out.push_str("\nExit codes:\n");
        for (code, meaning) in self.exit_codes {
            push_wrapped(
                &mut out,
                &format!("  {code}  "),
                "     ",
                meaning,
                HELP_WIDTH,
            );
        }
        out
    }
}

/// The flags in two columns; the second starts after the widest first column.
fn push_flags(out: &mut String, flags: &[Flag]) {
    let specs: Vec<String> = flags.iter().map(Flag::help_spec).collect();
    let column = specs.iter().map(|s| s.len()).max().unwrap_or(0) + 4;
    for (flag, spec) in flags.iter().zip(&specs) {
        let first = format!("  {spec:<width$}", width = column - 2);
        push_wrapped(
            out,
            &first,
            &" ".repeat(column),
            &flag.full_help(),
            HELP_WIDTH,
        );
    }
}

/// `text` wrapped at `width`, its first line after `first`, the others after `rest`; a
/// `\n` in `text` forces a new line.
fn push_wrapped(out: &mut String, first: &str, rest: &str, text: &str, width: usize) {
    let mut line = first.to_string();
    let mut empty = true;
    for (i, part) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        for word in part.split_whitespace() {
            if !empty && line.len() + 1 + word.len() > width {
                out.push_str(line.trim_end());
                out.push('\n');
                line = rest.to_string();
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
            empty = false;
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_help_wraps_under_its_column() {
        let flags = [
            Flag::long("cfgdir", Value::Dir("DIR"), "top-level dir").short('c'),
            Flag::long(
                "wait",
                Value::Text("MIN"),
                "one two three four five six seven eight nine ten eleven twelve thirteen \
                 fourteen fifteen sixteen seventeen",
            ),
        ];
        let mut out = String::new();
        push_flags(&mut out, &flags);
        assert_eq!(
            out,
            "  -c, --cfgdir DIR  top-level dir\n      \
             --wait MIN    one two three four five six seven eight nine ten eleven twelve \
             thirteen\n                    fourteen fifteen sixteen seventeen\n"
        );
    }

    #[test]
    fn a_newline_in_help_starts_a_new_line() {
        let mut out = String::new();
        push_wrapped(&mut out, "> ", "  ", "GET: a\nDEL: b", 80);
        assert_eq!(out, "> GET: a\n  DEL: b\n");
    }
}
