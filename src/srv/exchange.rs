//! Asking one DNS server: UDP first (2 tries), TCP when the answer was truncated. Datagrams
//! that do not answer our query (stale or spoofed) are dropped while the try lasts.

use super::error::Failure;
use super::wire::{self, Reply};
use super::SrvTarget;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// How long to wait for one UDP answer, and for each TCP step.
const TRY_TIMEOUT: Duration = Duration::from_secs(2);
/// UDP queries sent to one server before giving up on it.
const UDP_TRIES: u32 = 2;

/// The SRV targets `server` gives for the query `query` (id `id`, for `record`).
pub(super) fn query_server(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    record: &str,
) -> Result<Vec<SrvTarget>, Failure> {
    match query_udp(server, query, id, record)? {
        Reply::Records(targets) => Ok(targets),
        _ => match query_tcp(server, query, id, record)? {
            Reply::Records(targets) => Ok(targets),
            Reply::Truncated => Err(Failure::Malformed("answer truncated over TCP".to_string())),
            Reply::NotOurs => Err(Failure::Malformed(
                "the TCP answer does not match the query".to_string(),
            )),
        },
    }
}

/// Records or `Truncated`; never `NotOurs`.
fn query_udp(server: SocketAddr, query: &[u8], id: u16, record: &str) -> Result<Reply, Failure> {
    let local = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(server)?;
    let mut buf = vec![0u8; 65535];
    for _ in 0..UDP_TRIES {
        socket.send(query)?;
        let deadline = Instant::now() + TRY_TIMEOUT;
        if let Some(reply) = receive_answer(&socket, &mut buf, id, record, deadline)? {
            return Ok(reply);
        }
    }
    let secs = TRY_TIMEOUT.as_secs();
    Err(Failure::Timeout(format!(
        "{UDP_TRIES} UDP tries of {secs} s each"
    )))
}

/// Waits until `deadline` for a datagram answering our query; others are dropped.
fn receive_answer(
    socket: &UdpSocket,
    buf: &mut [u8],
    id: u16,
    record: &str,
    deadline: Instant,
) -> Result<Option<Reply>, Failure> {
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(None);
        }
        socket.set_read_timeout(Some(remaining))?;
        let len = match socket.recv(buf) {
            Ok(len) => len,
            Err(err) if is_timeout(&err) => return Ok(None),
            Err(err) => return Err(Failure::Io(err)),
        };
        match wire::parse_reply(&buf[..len], id, record)? {
            Reply::NotOurs => continue,
            reply => return Ok(Some(reply)),
        }
    }
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn query_tcp(server: SocketAddr, query: &[u8], id: u16, record: &str) -> Result<Reply, Failure> {
    let timeout = |err: io::Error| match is_timeout(&err) {
        true => Failure::Timeout(format!("TCP, {} s", TRY_TIMEOUT.as_secs())),
        false => Failure::Io(err),
    };
    let mut stream = TcpStream::connect_timeout(&server, TRY_TIMEOUT).map_err(timeout)?;
    stream.set_read_timeout(Some(TRY_TIMEOUT))?;
    stream.set_write_timeout(Some(TRY_TIMEOUT))?;
    let len =
        u16::try_from(query.len()).map_err(|_| Failure::Malformed("query too long".into()))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).map_err(timeout)?;
    let mut len_bytes = [0u8; 2];
    stream.read_exact(&mut len_bytes).map_err(timeout)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len_bytes))];
    stream.read_exact(&mut answer).map_err(timeout)?;
    wire::parse_reply(&answer, id, record)
}
