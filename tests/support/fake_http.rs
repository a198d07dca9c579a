//! FAKE HTTP servers for faults a real etcd cannot produce: an endpoint that accepts and
//! never answers, one that sends truncated or invalid JSON, one that answers with a
//! proxy's HTML error page. They are not etcd and make no attempt to behave like it beyond
//! the one broken answer they give to every request.
//!
//! Each server is a [`Loopback`]: it stops, closing every connection it holds, when
//! dropped.

use super::loopback::{Held, Loopback};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the fake does with every connection.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Accepts, reads the request, never answers (a wedged process or a black-holed proxy).
    Hang,
    /// Reads the request, writes these raw bytes (status line, headers and body), closes.
    Raw(Vec<u8>),
}

impl Behaviour {
    /// A complete HTTP/1.1 answer with a correct Content-Length.
    pub fn answer(status: &str, content_type: &str, body: &str) -> Behaviour {
        Behaviour::Raw(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nX-Etcd-Index: 7\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }

    /// 200 with JSON cut off in the middle; Content-Length matches what is sent.
    pub fn truncated_json() -> Behaviour {
        Behaviour::answer(
            "200 OK",
            "application/json",
            r#"{"action":"get","node":{"key":"/svc","dir":true,"nodes":[{"key":"/svc/a","val"#,
        )
    }

    /// 200 that promises more body than it sends, then closes.
    pub fn short_body() -> Behaviour {
        Behaviour::Raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Etcd-Index: 7\r\n\
              Content-Length: 500\r\nConnection: close\r\n\r\n{\"action\":\"get\",\"node\":"
                .to_vec(),
        )
    }

    /// 200 whose body is valid JSON of the wrong shape.
    pub fn wrong_json() -> Behaviour {
        Behaviour::answer("200 OK", "application/json", r#"{"hello":["world"]}"#)
    }

    /// A load balancer's HTML error page.
    pub fn html_error_page() -> Behaviour {
        Behaviour::answer(
            "502 Bad Gateway",
            "text/html",
            "<html><head><title>502 Bad Gateway</title></head>\
             <body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n",
        )
    }
}

pub struct FakeServer {
    server: Loopback,
    requests: Arc<AtomicUsize>,
}

impl FakeServer {
    pub fn start(behaviour: Behaviour) -> FakeServer {
        let requests = Arc::new(AtomicUsize::new(0));
        let server = Loopback::start({
            let requests = requests.clone();
            move |stream, held| {
                requests.fetch_add(1, Ordering::SeqCst);
                serve(stream, &behaviour, held);
            }
        });
        FakeServer { server, requests }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Connections accepted so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve(mut stream: TcpStream, behaviour: &Behaviour, held: &Held) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    read_request_head(&mut stream);
    match behaviour {
        Behaviour::Hang => held.hold(&stream),
        Behaviour::Raw(bytes) => {
            let _ = stream.write_all(bytes);
            let _ = stream.flush();
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Reads until the blank line that ends the request head (GETs carry no body).
fn read_request_head(stream: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}
