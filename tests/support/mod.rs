//! Test fixtures: a real etcd (Debian's etcd-server) on loopback with random free ports
//! and a temp data dir, plus helpers to run the real binaries.
//!
//! Every fixture owns what it started: the etcd process is killed by PID and its data
//! removed on drop, even when the test panics; reconfig and the commands it ran are found and
//! killed by `procs`.
#![allow(dead_code)] // each test crate uses a different part of the fixtures

pub mod certs;
pub mod daemon;
pub mod dns;
pub mod fake_http;
pub mod procs;

use reconfig::etcd::v2::Client;
use reconfig::etcd::ClientOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

fn etcd_binary() -> String {
    std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".to_string())
}

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

    pub fn start_with(tls: Option<&ServerTls>, extra: Vec<String>) -> Etcd {
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
            };
            if etcd.launch(true) {
                return etcd;
            }
        }
        panic!("etcd did not start after 5 attempts; see the etcd.log files above");
    }

    /// Starts the members of a cluster of `n` on loopback; returns them once all answer.
    pub fn cluster(n: usize) -> Vec<Etcd> {
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
                extra_args: vec!["--initial-cluster-token".into(), format!("c{}", ports[0].0)],
                initial_cluster: initial_cluster.clone(),
                v3_only: false,
            })
            .collect();
        for member in &mut members {
            member.launch(false);
        }
        for member in &mut members {
            assert!(
                member.wait_healthy(Duration::from_secs(30)),
                "cluster member {} not healthy",
                member.name
            );
        }
        members
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

    pub fn put(&self, key: &str, value: &str) {
        self.client()
            .set(key, Some(value), &Default::default())
            .unwrap_or_else(|e| panic!("PUT {key}: {e}"));
    }

    pub fn delete(&self, key: &str, recursive: bool) {
        self.client()
            .delete(key, recursive, false)
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
