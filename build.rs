//! Facts about this build for `--version` (src/cli/version.rs): the git commit, the target
//! triple and the build date, passed to the compiler as environment variables.
//!
//! The date honours `SOURCE_DATE_EPOCH` (reproducible builds: `make dist` sets it to the
//! commit's time), so two builds of one commit give the same bytes. Outside a git checkout
//! (a release tarball) the commit is "unknown".

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let commit = git_commit(Path::new(&manifest_dir)).unwrap_or_else(|| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=RECONFIG_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=RECONFIG_BUILD_TARGET={target}");
    println!("cargo:rustc-env=RECONFIG_BUILD_DATE={}", build_date());
}

/// `git` run in the source directory; `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| text.trim().to_string())
}

/// The abbreviated commit of HEAD, only when the source directory is the top of a git
/// checkout: a release tarball unpacked inside some other repository must not report that
/// repository's commit. Asks cargo to run this script again when HEAD moves.
fn git_commit(dir: &Path) -> Option<String> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    let same_dir = std::fs::canonicalize(&top).ok()? == std::fs::canonicalize(dir).ok()?;
    if !same_dir {
        return None;
    }
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        let path = git(
            dir,
            &["rev-parse", "--path-format=absolute", "--git-path", &name],
        );
        if let Some(path) = path.filter(|p| Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    git(dir, &["rev-parse", "--short=12", "HEAD"]).filter(|c| !c.is_empty())
}

/// The UTC date (YYYY-MM-DD) of `SOURCE_DATE_EPOCH` when set and not empty, else of now.
fn build_date() -> String {
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let seconds = match epoch.filter(|text| !text.trim().is_empty()) {
        Some(text) => match text.trim().parse::<i64>() {
            Ok(seconds) => seconds,
            Err(_) => panic!(
                "SOURCE_DATE_EPOCH={text:?} is not a whole number of seconds since 1970; \
                 fix or unset it"
            ),
        },
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
