//! Measuring instruments: percentiles, a child's wall/CPU/peak RSS, /proc samples of a
//! running process, and inotify on the targets' directory.

use std::collections::HashSet;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Flag that turns the bench binary into the tiny spawner of [`run_measured`].
pub const SPAWNER_FLAG: &str = "--measure-child";

/// p50 / p90 / p95 / max of a set of samples (milliseconds unless said otherwise).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub max: f64,
    pub n: usize,
}

impl Stats {
    pub fn of(samples: &[f64]) -> Stats {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return Stats::default();
        }
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        Stats {
            p50: at(0.5),
            p90: at(0.9),
            p95: at(0.95),
            max: sorted[sorted.len() - 1],
            n: sorted.len(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"p50": self.p50, "p90": self.p90, "p95": self.p95, "max": self.max, "n": self.n})
    }
}

/// The median of some numbers (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    Stats::of(values).p50
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What one finished child cost.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub wall_ms: f64,
    pub cpu_ms: f64,
    pub max_rss_kb: u64,
    pub exit_code: i32,
}

/// Runs `program args…` to completion through a freshly exec'd copy of this bench binary,
/// which forks it and reads its rusage with wait4.
///
/// Why not wait4 from here: Linux folds the RSS high-water mark of the process that calls
/// exec into the child's `ru_maxrss`, so a child spawned by this (large) driver would report
/// the driver's own peak. The spawner is a fresh small process, so the figure is the tool's.
pub fn run_measured(program: &Path, args: &[String], stderr_file: &Path) -> Usage {
    let me = std::env::current_exe().expect("path of the bench binary");
    let stderr = std::fs::File::create(stderr_file).expect("stderr file");
    let out = Command::new(me)
        .arg(SPAWNER_FLAG)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(stderr)
        .output()
        .expect("run the spawner");
    let line = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<f64> = line
        .split_whitespace()
        .map(|f| f.parse().expect("spawner output is numbers"))
        .collect();
    assert_eq!(fields.len(), 4, "spawner said {line:?}");
    Usage {
        wall_ms: fields[0],
        cpu_ms: fields[1],
        max_rss_kb: fields[2] as u64,
        exit_code: fields[3] as i32,
    }
}

/// The spawner's main: runs `args[0] args[1..]`, prints `wall_ms cpu_ms maxrss_kb exit`.
pub fn spawner_main(args: &[OsString]) -> i32 {
    let Some((program, rest)) = args.split_first() else {
        eprintln!("{SPAWNER_FLAG} PROGRAM [ARGS…]");
        return 2;
    };
    let started = Instant::now();
    let child = match Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("cannot run {}: {e}", program.to_string_lossy());
            return 2;
        }
    };
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on the PID of the child spawned just above, which nothing else reaps.
    let reaped = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = ms(started.elapsed());
    if reaped < 0 {
        eprintln!("wait4: {}", std::io::Error::last_os_error());
        return 2;
    }
    let cpu = timeval_ms(usage.ru_utime) + timeval_ms(usage.ru_stime);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    println!("{wall:.3} {cpu:.3} {} {code}", usage.ru_maxrss);
    0
}

fn timeval_ms(t: libc::timeval) -> f64 {
    t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0
}

/// RSS and CPU of a running process, from /proc.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub threads: u64,
    /// utime + stime in milliseconds.
    pub cpu_ms: f64,
    /// cutime + cstime: what its children cost once it reaped them (its commands).
    pub children_cpu_ms: f64,
}

impl ProcSample {
    pub fn read(pid: i32) -> ProcSample {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let after = &stat[stat.rfind(')').expect("stat format") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field_sum = |a: usize, b: usize| -> f64 {
            (fields[a].parse::<u64>().unwrap_or(0) + fields[b].parse::<u64>().unwrap_or(0)) as f64
        };
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        ProcSample {
            rss_kb: field("VmRSS:"),
            hwm_kb: field("VmHWM:"),
            threads: field("Threads:"),
            cpu_ms: field_sum(11, 12) * 1000.0 / hz,
            children_cpu_ms: field_sum(13, 14) * 1000.0 / hz,
        }
    }
}

/// inotify on one directory: reports names renamed into it or closed after writing.
pub struct DirWatch {
    fd: i32,
}

impl DirWatch {
    pub fn new(dir: &Path) -> DirWatch {
        // SAFETY: plain syscalls; the fd is owned by the returned value and closed on drop.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        let path = CString::new(dir.as_os_str().as_bytes()).expect("dir path");
        let mask = libc::IN_MOVED_TO | libc::IN_CLOSE_WRITE;
        // SAFETY: fd is a valid inotify fd and path a NUL-terminated string.
        let wd = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), mask) };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        DirWatch { fd }
    }

    /// Waits until `deadline` for events; returns the names seen (empty on timeout).
    /// `overflowed` is set when the kernel queue overflowed (rescan everything).
    pub fn next(&self, deadline: Instant, overflowed: &mut bool) -> HashSet<String> {
        let mut names = HashSet::new();
        let left = deadline.saturating_duration_since(Instant::now());
        let mut poll = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, timeout) };
        if ready <= 0 {
            return names;
        }
        let mut buf = [0u8; 64 * 1024];
        loop {
            // SAFETY: reading into a buffer we own, of the length we pass.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            parse_events(&buf[..n as usize], &mut names, overflowed);
        }
        names
    }
}

fn parse_events(mut buf: &[u8], names: &mut HashSet<String>, overflowed: &mut bool) {
    const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
    while buf.len() >= HEADER {
        let mask = u32::from_ne_bytes(buf[4..8].try_into().expect("4 bytes"));
        let len = u32::from_ne_bytes(buf[12..16].try_into().expect("4 bytes")) as usize;
        if mask & libc::IN_Q_OVERFLOW != 0 {
            *overflowed = true;
        }
        let name = &buf[HEADER..HEADER + len];
        let name = name.split(|b| *b == 0).next().unwrap_or_default();
        if !name.is_empty() {
            names.insert(String::from_utf8_lossy(name).into_owned());
        }
        buf = &buf[HEADER + len..];
    }
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        // SAFETY: closing the fd this value owns.
        unsafe {
            libc::close(self.fd);
        }
    }
}
