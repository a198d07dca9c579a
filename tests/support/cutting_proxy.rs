//! A TCP proxy in front of a real etcd that loses the end of ONE watch request on the
//! way: the first `POST /v3/watch` whose body holds several watch requests reaches etcd
//! with its first one only, as if something between the client and etcd dropped the rest
//! (etcd's own HTTP server did exactly that at random before the client asked it to close
//! such connections; a proxy could). Everything else passes through untouched.
//!
//! It is a [`Loopback`] that relays each connection on a thread of its own, and closes
//! every connection it holds when dropped.

use super::loopback::Loopback;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct CuttingProxy {
    server: Loopback,
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    /// A proxy to the etcd listening on `etcd_port`.
    pub fn start(etcd_port: u16) -> CuttingProxy {
        let cuts = Arc::new(AtomicUsize::new(0));
        let server = Loopback::start({
            let cuts = cuts.clone();
            move |client, held| {
                let Ok(etcd) = TcpStream::connect(("127.0.0.1", etcd_port)) else {
                    return;
                };
                held.hold(&client);
                held.hold(&etcd);
                let cuts = cuts.clone();
                std::thread::spawn(move || relay(client, etcd, &cuts));
            }
        });
        CuttingProxy { server, cuts }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// How many watch requests lost their end here (at most one).
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

/// Passes the first request of a connection on (cut, when it is the first several-watch
/// request), then everything both ways.
fn relay(client: TcpStream, mut etcd: TcpStream, cuts: &AtomicUsize) {
    let (Ok(mut answers), Ok(mut to_client)) = (etcd.try_clone(), client.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut answers, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    let mut requests = BufReader::new(client);
    let Some((head, body)) = read_request(&mut requests) else {
        return;
    };
    let (head, body) = match first_of_several(&head, &body) {
        Some(first)
            if cuts
                .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok() =>
        {
            (with_content_length(&head, first.len()), first)
        }
        _ => (head, body),
    };
    if etcd.write_all(head.as_bytes()).is_err() || etcd.write_all(&body).is_err() {
        return;
    }
    let _ = std::io::copy(&mut requests, &mut etcd);
    let _ = etcd.shutdown(Shutdown::Write);
}

/// The head (with its blank line) and the `Content-Length` body of one request.
fn read_request(requests: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if requests.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    requests.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// The first JSON message of a watch request body that holds more than one.
fn first_of_several(head: &str, body: &[u8]) -> Option<Vec<u8>> {
    if !head.starts_with("POST /v3/watch ") {
        return None;
    }
    let mut messages = serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>();
    messages.next()?.ok()?;
    let first_ends = messages.byte_offset();
    messages.next()?.ok()?;
    Some(body[..first_ends].to_vec())
}

fn with_content_length(head: &str, length: usize) -> String {
    head.lines()
        .map(|line| match line.split_once(':') {
            Some((name, _)) if name.eq_ignore_ascii_case("content-length") => {
                format!("{name}: {length}\r\n")
            }
            _ => format!("{line}\r\n"),
        })
        .collect()
}
