//! A real DNS server for SRV tests: dnsmasq (Debian's dnsmasq-base) on a free loopback
//! port, authoritative for `example.test` only, with records given on its command line.
//! The binaries under test find it through `RECONFIG_DNS_SERVER`.

use super::free_port;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// One SRV record: `NAME,TARGET,PORT,PRIORITY,WEIGHT` for dnsmasq's `--srv-host`.
pub fn srv(name: &str, target: &str, port: u16, priority: u16, weight: u16) -> String {
    format!("{name},{target},{port},{priority},{weight}")
}

pub struct Dnsmasq {
    child: Option<Child>,
    pub addr: SocketAddr,
}

impl Dnsmasq {
    /// Starts serving `records` (see [`srv`]) with a TTL of 1 s.
    pub fn start(records: &[String]) -> Dnsmasq {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut server = Dnsmasq { child: None, addr };
        server.serve(records);
        server
    }

    /// Replaces the records: dnsmasq reads `--srv-host` only at startup, so it is
    /// restarted on the same port.
    pub fn replace(&mut self, records: &[String]) {
        self.stop();
        self.serve(records);
    }

    /// The value of `RECONFIG_DNS_SERVER` that points at this server.
    pub fn env_value(&self) -> String {
        self.addr.to_string()
    }

    fn serve(&mut self, records: &[String]) {
        let child = Command::new(DNSMASQ)
            .args([
                "--no-daemon",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
            ])
            .args(["--listen-address=127.0.0.1", "--local=/example.test/"])
            .args(["--local-ttl=1", "--pid-file="])
            .arg(format!("--port={}", self.addr.port()))
            .args(records.iter().map(|r| format!("--srv-host={r}")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run dnsmasq: install dnsmasq-base (make test does)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        // Both transports: the binaries ask over UDP first, then TCP; a TCP listener alone
        // once let a query over UDP meet "connection refused".
        while TcpStream::connect(self.addr).is_err() || !answers_over_udp(self.addr) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("dnsmasq on {} exited at startup: {status}", self.addr);
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq did not start on {}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether a DNS server at `addr` answers a query over UDP (an A query for
/// `example.test`, whatever the answer) within 200 ms.
fn answers_over_udp(addr: SocketAddr) -> bool {
    const QUERY: &[u8] = &[
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 7, b'e', b'x',
        b'a', b'm', b'p', b'l', b'e', 4, b't', b'e', b's', b't', 0, 0x00, 0x01, 0x00, 0x01,
    ];
    let asked = UdpSocket::bind("127.0.0.1:0").and_then(|socket| {
        socket.connect(addr)?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        socket.send(QUERY)?;
        let mut answer = [0u8; 512];
        socket.recv(&mut answer)
    });
    // A DNS answer starts with a 12-byte header.
    asked.is_ok_and(|len| len >= 12)
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}
