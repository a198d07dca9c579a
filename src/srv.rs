//! DNS SRV discovery of etcd endpoints (RFC 2782), with a small hand-rolled DNS client.
//!
//! Only one query type is needed, so a few hundred lines of wire format beat a resolver crate:
//! no async runtime, no extra dependencies, and every check (query id, question echo, name
//! compression bounds) is visible here.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Environment variable naming the DNS server (`ip:port`, or `ip` for port 53) to ask instead of
/// the nameservers in /etc/resolv.conf.
pub const DNS_SERVER_ENV: &str = "RECONFIG_DNS_SERVER";

const RESOLV_CONF: &str = "/etc/resolv.conf";
/// How long to wait for one UDP answer, and for each TCP step.
const TRY_TIMEOUT: Duration = Duration::from_secs(2);
/// UDP queries sent to one server before giving up on it.
const UDP_TRIES: u32 = 2;
const TYPE_SRV: u16 = 33;
const CLASS_IN: u16 = 1;
const HEADER_LEN: usize = 12;
const MAX_NAME_LEN: usize = 255;

/// One SRV record: where to connect, and its RFC 2782 priority and weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// Target host name, without the trailing dot.
    pub host: String,
    pub port: u16,
    pub priority: u16,
    pub weight: u16,
}

/// Why an SRV lookup failed. The message names the record and the server(s) asked.
#[derive(Debug)]
pub struct SrvError {
    record: String,
    problem: Problem,
}

#[derive(Debug)]
enum Problem {
    BadName(String),
    NoServer(String),
    Servers(Vec<(SocketAddr, Failure)>),
}

/// What went wrong with one server.
#[derive(Debug)]
enum Failure {
    NxDomain,
    NoRecords,
    Refused,
    ServFail,
    Rcode(u8),
    Timeout(String),
    Io(io::Error),
    Malformed(String),
}

impl Failure {
    /// The name has no SRV records: asking another server of the same resolver list is pointless.
    fn is_definitive(&self) -> bool {
        matches!(self, Failure::NxDomain | Failure::NoRecords)
    }

    fn describe(&self, record: &str, server: SocketAddr) -> String {
        match self {
            Failure::NxDomain => format!("no SRV record {record} at {server} (NXDOMAIN)"),
            Failure::NoRecords => format!("no SRV records for {record} at {server}"),
            Failure::Refused => format!("{server} refused the SRV query for {record} (REFUSED)"),
            Failure::ServFail => {
                format!("{server} could not answer the SRV query for {record} (SERVFAIL)")
            }
            Failure::Rcode(code) => {
                format!("{server} answered the SRV query for {record} with error code {code}")
            }
            Failure::Timeout(how) => format!("no answer from {server} for SRV {record} ({how})"),
            Failure::Io(err) => format!("SRV query for {record} to {server} failed: {err}"),
            Failure::Malformed(why) => {
                format!("bad DNS answer from {server} for SRV {record}: {why}")
            }
        }
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        Failure::Io(err)
    }
}

impl fmt::Display for SrvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            Problem::BadName(why) => {
                write!(f, "invalid SRV record name \"{}\": {why}", self.record)
            }
            Problem::NoServer(why) => write!(f, "cannot look up SRV {}: {why}", self.record),
            Problem::Servers(failures) => {
                let messages: Vec<String> = failures
                    .iter()
                    .map(|(server, failure)| failure.describe(&self.record, *server))
                    .collect();
                write!(f, "{}", messages.join("; "))
            }
        }
    }
}

impl std::error::Error for SrvError {}

/// `_etcd-client._tcp.DOMAIN`, or `_etcd-client-ssl._tcp.DOMAIN` when `tls`.
pub fn domain_record(domain: &str, tls: bool) -> String {
    let service = if tls {
        "_etcd-client-ssl"
    } else {
        "_etcd-client"
    };
    format!("{service}._tcp.{}", domain.trim_end_matches('.'))
}

/// Looks up the SRV records of `name` (answer order, see [`order`]).
///
/// Asks `resolver` when given. Otherwise asks the server in the environment variable
/// `RECONFIG_DNS_SERVER` (`ip:port` or `ip`) when it is set, else each `nameserver` of
/// /etc/resolv.conf in turn until one answers. Queries go over UDP (2 tries, 2 s each) and are
/// repeated over TCP when the answer is truncated.
pub fn lookup(name: &str, resolver: Option<SocketAddr>) -> Result<Vec<SrvTarget>, SrvError> {
    let record = name.trim_end_matches('.').to_string();
    let fail = |problem| SrvError {
        record: record.clone(),
        problem,
    };
    let query_name = encode_name(&record).map_err(|why| fail(Problem::BadName(why)))?;
    let servers = match resolver {
        Some(server) => vec![server],
        None => default_servers().map_err(|why| fail(Problem::NoServer(why)))?,
    };
    let mut random = random_source();
    let mut failures = Vec::new();
    for server in servers {
        let query = build_query(random_id(&mut random), &query_name);
        match query_server(server, &query, &record) {
            Ok(targets) => return Ok(targets),
            Err(failure) => {
                let definitive = failure.is_definitive();
                failures.push((server, failure));
                if definitive {
                    break;
                }
            }
        }
    }
    Err(fail(Problem::Servers(failures)))
}

fn random_id(random: &mut dyn FnMut(u32) -> u32) -> u16 {
    u16::try_from(random(u32::from(u16::MAX))).unwrap_or(0)
}

fn default_servers() -> Result<Vec<SocketAddr>, String> {
    if let Some(value) = std::env::var_os(DNS_SERVER_ENV) {
        let value = value.to_string_lossy();
        return parse_server(&value)
            .map(|server| vec![server])
            .ok_or_else(|| {
                format!("{DNS_SERVER_ENV}={value} is not an address (use ip:port or ip)")
            });
    }
    let text = std::fs::read_to_string(RESOLV_CONF)
        .map_err(|err| format!("cannot read {RESOLV_CONF}: {err} (or set {DNS_SERVER_ENV})"))?;
    let servers = resolv_conf_nameservers(&text);
    if servers.is_empty() {
        return Err(format!(
            "no nameserver in {RESOLV_CONF} (or set {DNS_SERVER_ENV}=ip:port)"
        ));
    }
    Ok(servers)
}

fn parse_server(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// The `nameserver` addresses of a resolv.conf, port 53. Scoped IPv6 addresses are skipped.
fn resolv_conf_nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(address)) => address.parse::<IpAddr>().ok(),
                _ => None,
            }
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The outcome of one well-formed answer to our query.
enum Reply {
    Truncated,
    Records(Vec<SrvTarget>),
}

fn query_server(server: SocketAddr, query: &[u8], record: &str) -> Result<Vec<SrvTarget>, Failure> {
    match query_udp(server, query, record)? {
        Reply::Records(targets) => Ok(targets),
        Reply::Truncated => match query_tcp(server, query, record)? {
            Reply::Records(targets) => Ok(targets),
            Reply::Truncated => Err(Failure::Malformed("answer truncated over TCP".to_string())),
        },
    }
}

fn query_udp(server: SocketAddr, query: &[u8], record: &str) -> Result<Reply, Failure> {
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
        if let Some(len) = receive_answer(&socket, &mut buf, query, record, deadline)? {
            return parse_reply(&buf[..len]);
        }
    }
    let secs = TRY_TIMEOUT.as_secs();
    Err(Failure::Timeout(format!(
        "{UDP_TRIES} UDP tries of {secs} s each"
    )))
}

/// Waits until `deadline` for a datagram answering `query`; others (stale or spoofed) are dropped.
fn receive_answer(
    socket: &UdpSocket,
    buf: &mut [u8],
    query: &[u8],
    record: &str,
    deadline: Instant,
) -> Result<Option<usize>, Failure> {
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(None);
        }
        socket.set_read_timeout(Some(remaining))?;
        match socket.recv(buf) {
            Ok(len) if answers_query(&buf[..len], query, record) => return Ok(Some(len)),
            Ok(_) => continue,
            Err(err) if is_timeout(&err) => return Ok(None),
            Err(err) => return Err(Failure::Io(err)),
        }
    }
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn query_tcp(server: SocketAddr, query: &[u8], record: &str) -> Result<Reply, Failure> {
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
    if !answers_query(&answer, query, record) {
        return Err(Failure::Malformed(
            "the TCP answer does not match the query".into(),
        ));
    }
    parse_reply(&answer)
}

fn encode_name(name: &str) -> Result<Vec<u8>, String> {
    let mut encoded = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label must have 1 to 63 characters".to_string());
        }
        if !label.bytes().all(is_name_byte) {
            return Err("only letters, digits, '-' and '_' are allowed".to_string());
        }
        encoded.push(label.len() as u8);
        encoded.extend_from_slice(label.as_bytes());
    }
    encoded.push(0);
    if encoded.len() > MAX_NAME_LEN {
        return Err(format!("longer than {MAX_NAME_LEN} bytes"));
    }
    Ok(encoded)
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// A standard query (recursion desired) for the SRV records of the wire-format `name`.
fn build_query(id: u16, name: &[u8]) -> Vec<u8> {
    let mut query = Vec::with_capacity(HEADER_LEN + name.len() + 4);
    query.extend_from_slice(&id.to_be_bytes());
    query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    query.extend_from_slice(name);
    query.extend_from_slice(&TYPE_SRV.to_be_bytes());
    query.extend_from_slice(&CLASS_IN.to_be_bytes());
    query
}

fn read_u16(msg: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]))
}

/// True when `msg` is a response with our query's id and the same single question.
fn answers_query(msg: &[u8], query: &[u8], record: &str) -> bool {
    let is_response = msg.get(2).is_some_and(|flags| flags & 0x80 != 0);
    if msg.get(..2) != query.get(..2) || !is_response || read_u16(msg, 4) != Some(1) {
        return false;
    }
    match read_name(msg, HEADER_LEN) {
        Ok((name, next)) => {
            name.eq_ignore_ascii_case(record)
                && read_u16(msg, next) == Some(TYPE_SRV)
                && read_u16(msg, next + 2) == Some(CLASS_IN)
        }
        Err(_) => false,
    }
}

/// Parses a response already known to answer our query (see [`answers_query`]).
fn parse_reply(msg: &[u8]) -> Result<Reply, Failure> {
    let malformed = |why: &str| Failure::Malformed(why.to_string());
    let flags = read_u16(msg, 2).ok_or_else(|| malformed("short header"))?;
    if flags & 0x0200 != 0 {
        return Ok(Reply::Truncated);
    }
    match (flags & 0x000f) as u8 {
        0 => {}
        2 => return Err(Failure::ServFail),
        3 => return Err(Failure::NxDomain),
        5 => return Err(Failure::Refused),
        code => return Err(Failure::Rcode(code)),
    }
    let answer_count = read_u16(msg, 6).ok_or_else(|| malformed("short header"))?;
    let (_, question_end) = read_name(msg, HEADER_LEN).map_err(Failure::Malformed)?;
    let mut pos = question_end + 4;
    let mut targets = Vec::new();
    for _ in 0..answer_count {
        let (target, next) = read_record(msg, pos).map_err(Failure::Malformed)?;
        targets.extend(target);
        pos = next;
    }
    match targets.is_empty() {
        true => Err(Failure::NoRecords),
        false => Ok(Reply::Records(targets)),
    }
}

/// Reads the resource record at `pos`: an SRV target if it is one (the "." target, meaning
/// "no service here", is dropped), and the position of the next record.
fn read_record(msg: &[u8], pos: usize) -> Result<(Option<SrvTarget>, usize), String> {
    let fixed = skip_name(msg, pos)?;
    let short = || "record cut short".to_string();
    let rtype = read_u16(msg, fixed).ok_or_else(short)?;
    let class = read_u16(msg, fixed + 2).ok_or_else(short)?;
    let data_len = usize::from(read_u16(msg, fixed + 8).ok_or_else(short)?);
    let data = fixed + 10;
    let end = data + data_len;
    if end > msg.len() {
        return Err(short());
    }
    if rtype != TYPE_SRV || class != CLASS_IN {
        return Ok((None, end));
    }
    let field = |offset| {
        read_u16(msg, data + offset)
            .filter(|_| data_len >= 7)
            .ok_or_else(short)
    };
    let (priority, weight, port) = (field(0)?, field(2)?, field(4)?);
    let (host, target_end) = read_name(msg, data + 6)?;
    if target_end != end {
        return Err("SRV record length does not match its target name".to_string());
    }
    let target = (!host.is_empty()).then_some(SrvTarget {
        host,
        port,
        priority,
        weight,
    });
    Ok((target, end))
}

/// Walks the name at `pos` (labels and compression pointers) and returns where it ends.
fn skip_name(msg: &[u8], mut pos: usize) -> Result<usize, String> {
    loop {
        let len = *msg
            .get(pos)
            .ok_or("name runs past the end of the message")?;
        match len {
            0 => return Ok(pos + 1),
            l if l & 0xc0 == 0xc0 => return Ok(pos + 2),
            l if l & 0xc0 != 0 => return Err(format!("unknown label type {l:#x}")),
            l => pos += 1 + usize::from(l),
        }
    }
}

/// Reads a possibly compressed name at `pos`: the dotted name (no trailing dot, "" for the root)
/// and the position just after it in the record. Pointers must point backwards, so no loops.
fn read_name(msg: &[u8], start: usize) -> Result<(String, usize), String> {
    let mut labels: Vec<&str> = Vec::new();
    let mut pos = start;
    let mut end_in_record = None;
    let mut total_len = 1;
    loop {
        let len = *msg
            .get(pos)
            .ok_or("name runs past the end of the message")?;
        if len == 0 {
            let end = end_in_record.unwrap_or(pos + 1);
            return Ok((labels.join("."), end));
        }
        if len & 0xc0 == 0xc0 {
            let target = usize::from(read_u16(msg, pos).ok_or("name pointer cut short")? & 0x3fff);
            if target >= pos {
                return Err("name compression pointer does not point backwards".to_string());
            }
            end_in_record.get_or_insert(pos + 2);
            pos = target;
            continue;
        }
        if len & 0xc0 != 0 {
            return Err(format!("unknown label type {len:#x}"));
        }
        let label = msg
            .get(pos + 1..pos + 1 + usize::from(len))
            .ok_or("name runs past the end of the message")?;
        total_len += 1 + label.len();
        if total_len > MAX_NAME_LEN {
            return Err(format!("name longer than {MAX_NAME_LEN} bytes"));
        }
        if !label.iter().all(|byte| is_name_byte(*byte)) {
            return Err("name has characters other than letters, digits, '-' and '_'".to_string());
        }
        labels.push(std::str::from_utf8(label).map_err(|err| err.to_string())?);
        pos += 1 + label.len();
    }
}

/// Orders targets as RFC 2782 says: ascending priority; within one priority, a weighted random
/// pick repeated on the remaining targets (running-sum algorithm, weight-0 targets first so they
/// are chosen only when the random number is 0). When every weight in a priority is 0, the pick
/// is uniform. `random(n)` must return a uniform integer in `0..=n`.
pub fn order(mut targets: Vec<SrvTarget>, random: &mut dyn FnMut(u32) -> u32) -> Vec<SrvTarget> {
    targets.sort_by_key(|target| target.priority);
    let mut ordered = Vec::with_capacity(targets.len());
    for group in targets.chunk_by(|a, b| a.priority == b.priority) {
        ordered.extend(order_by_weight(group.to_vec(), random));
    }
    ordered
}

fn order_by_weight(
    mut group: Vec<SrvTarget>,
    random: &mut dyn FnMut(u32) -> u32,
) -> Vec<SrvTarget> {
    group.sort_by_key(|target| target.weight != 0);
    let mut ordered = Vec::with_capacity(group.len());
    while !group.is_empty() {
        let last = group.len() - 1;
        let total = group.iter().fold(0u32, |sum, target| {
            sum.saturating_add(u32::from(target.weight))
        });
        let index = if total == 0 {
            usize::try_from(random(u32::try_from(last).unwrap_or(u32::MAX))).unwrap_or(last)
        } else {
            let pick = random(total);
            let mut running = 0u32;
            group
                .iter()
                .position(|target| {
                    running = running.saturating_add(u32::from(target.weight));
                    running >= pick
                })
                .unwrap_or(last)
        };
        ordered.push(group.remove(index.min(last)));
    }
    ordered
}

/// A small non-cryptographic random source (xorshift64*) seeded from the time, the process id
/// and a per-process counter; good for [`order`] and DNS query ids, not for secrets.
/// The returned function gives a uniform integer in `0..=n`.
pub fn random_source() -> impl FnMut(u32) -> u32 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0);
    let seed =
        nanos ^ (u64::from(std::process::id()) << 32) ^ CALLS.fetch_add(1, Ordering::Relaxed);
    let mut state = splitmix64(seed) | 1;
    move |n| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let value = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        // The modulo bias is at most 2^32 / 2^64: irrelevant here.
        u32::try_from(value % (u64::from(n) + 1)).unwrap_or(n)
    }
}

/// Spreads the bits of a seed that differs in few bits between calls.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, priority: u16, weight: u16) -> SrvTarget {
        SrvTarget {
            host: host.to_string(),
            port: 2379,
            priority,
            weight,
        }
    }

    /// A seeded linear congruential generator: deterministic, good enough for counting.
    fn seeded(mut state: u64) -> impl FnMut(u32) -> u32 {
        move |n| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % (u64::from(n) + 1)) as u32
        }
    }

    #[test]
    fn priority_order_always_holds() {
        let targets = vec![
            target("c", 20, 100),
            target("a1", 10, 60),
            target("z", 30, 0),
            target("a2", 10, 40),
            target("a3", 10, 0),
        ];
        let mut random = seeded(7);
        for _ in 0..1000 {
            let ordered = order(targets.clone(), &mut random);
            let priorities: Vec<u16> = ordered.iter().map(|t| t.priority).collect();
            assert_eq!(priorities, [10, 10, 10, 20, 30]);
            let mut hosts: Vec<&str> = ordered.iter().map(|t| t.host.as_str()).collect();
            hosts.sort_unstable();
            assert_eq!(hosts, ["a1", "a2", "a3", "c", "z"]);
        }
    }

    #[test]
    fn weights_give_the_expected_distribution() {
        let targets = vec![target("a", 10, 60), target("b", 10, 40)];
        let mut random = seeded(42);
        let runs = 10_000;
        let a_first = (0..runs)
            .filter(|_| order(targets.clone(), &mut random)[0].host == "a")
            .count();
        assert!(
            (5500..=6500).contains(&a_first),
            "a first {a_first} times of {runs}"
        );
    }

    #[test]
    fn zero_weight_targets_get_a_small_chance() {
        let targets = vec![target("heavy", 1, 100), target("zero", 1, 0)];
        let mut random = seeded(3);
        let zero_first = (0..10_000)
            .filter(|_| order(targets.clone(), &mut random)[0].host == "zero")
            .count();
        // Expected 10 000 / 101 ≈ 99.
        assert!(
            (30..=250).contains(&zero_first),
            "zero first {zero_first} times"
        );
    }

    #[test]
    fn running_sum_selection_follows_the_random_number() {
        let targets = vec![target("a", 0, 60), target("b", 0, 40), target("z", 0, 0)];
        // random = 0 picks the weight-0 target, which sits first in the running sum.
        let hosts =
            |ordered: Vec<SrvTarget>| ordered.into_iter().map(|t| t.host).collect::<Vec<_>>();
        assert_eq!(hosts(order(targets.clone(), &mut |_| 0)), ["z", "a", "b"]);
        // random = n picks the last target with a weight.
        assert_eq!(hosts(order(targets.clone(), &mut |n| n)), ["b", "a", "z"]);
        // An out-of-range random function cannot make order() panic.
        assert_eq!(order(targets, &mut |_| u32::MAX).len(), 3);
    }

    #[test]
    fn all_zero_weights_are_picked_uniformly() {
        let targets = vec![target("a", 0, 0), target("b", 0, 0)];
        let mut random = seeded(9);
        let a_first = (0..10_000)
            .filter(|_| order(targets.clone(), &mut random)[0].host == "a")
            .count();
        assert!((4500..=5500).contains(&a_first), "a first {a_first} times");
    }

    #[test]
    fn random_source_stays_in_range_and_varies() {
        let mut random = random_source();
        let values: Vec<u32> = (0..1000).map(|_| random(9)).collect();
        assert!(values.iter().all(|v| *v <= 9));
        assert!((0..=9).all(|digit| values.contains(&digit)));
        assert_ne!(random_source()(u32::MAX), random_source()(u32::MAX));
    }

    #[test]
    fn domain_record_names() {
        assert_eq!(
            domain_record("example.com", false),
            "_etcd-client._tcp.example.com"
        );
        assert_eq!(
            domain_record("example.com.", true),
            "_etcd-client-ssl._tcp.example.com"
        );
    }

    #[test]
    fn resolv_conf_nameservers_are_parsed() {
        let text = "# comment\nsearch example.com\nnameserver 10.0.0.1\nnameserver ::1\n\
                    nameserver fe80::1%eth0\noptions ndots:2\n";
        let servers: Vec<String> = resolv_conf_nameservers(text)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(servers, ["10.0.0.1:53", "[::1]:53"]);
    }

    #[test]
    fn server_addresses_accept_a_missing_port() {
        assert_eq!(
            parse_server("127.0.0.1:5353"),
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_server("127.0.0.1"),
            Some("127.0.0.1:53".parse().unwrap())
        );
        assert_eq!(parse_server("dns.example"), None);
    }

    #[test]
    fn bad_names_are_rejected_before_any_query() {
        let err = lookup("_etcd._tcp..example", Some("127.0.0.1:9".parse().unwrap())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid SRV record name \"_etcd._tcp..example\": each dot-separated label must have 1 to 63 characters"
        );
    }

    const NAME: &str = "_etcd-client._tcp.ex.test";

    /// A response to `build_query(0x1234, NAME)` holding `answers` (already encoded).
    fn response(flags: u16, answer_count: u16, answers: &[u8]) -> Vec<u8> {
        let mut msg = build_query(0x1234, &encode_name(NAME).unwrap());
        msg[2..4].copy_from_slice(&flags.to_be_bytes());
        msg[6..8].copy_from_slice(&answer_count.to_be_bytes());
        msg.extend_from_slice(answers);
        msg
    }

    /// An SRV answer whose owner is a pointer to the question name (offset 12).
    fn srv_answer(priority: u16, weight: u16, port: u16, target: &[u8]) -> Vec<u8> {
        let mut rr = vec![0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 5];
        rr.extend_from_slice(&((6 + target.len()) as u16).to_be_bytes());
        for value in [priority, weight, port] {
            rr.extend_from_slice(&value.to_be_bytes());
        }
        rr.extend_from_slice(target);
        rr
    }

    fn records(msg: &[u8]) -> Vec<SrvTarget> {
        match parse_reply(msg) {
            Ok(Reply::Records(targets)) => targets,
            Ok(Reply::Truncated) => panic!("unexpected truncation"),
            Err(failure) => panic!(
                "{}",
                failure.describe(NAME, "127.0.0.1:53".parse().unwrap())
            ),
        }
    }

    #[test]
    fn answers_with_compressed_targets_are_parsed() {
        // Target "etcd" + pointer to "ex.test" inside the question (offset 12 + 13 + 5 = 30).
        let mut answers = srv_answer(10, 60, 2379, b"\x04etcd\xc0\x1e");
        answers.extend(srv_answer(20, 0, 2380, b"\x01b\x02ex\x04test\x00"));
        let msg = response(0x8180, 2, &answers);
        assert!(answers_query(
            &msg,
            &build_query(0x1234, &encode_name(NAME).unwrap()),
            NAME
        ));
        assert_eq!(
            records(&msg),
            [
                SrvTarget {
                    host: "etcd.ex.test".into(),
                    port: 2379,
                    priority: 10,
                    weight: 60
                },
                SrvTarget {
                    host: "b.ex.test".into(),
                    port: 2380,
                    priority: 20,
                    weight: 0
                },
            ]
        );
    }

    #[test]
    fn answers_to_another_query_are_not_ours() {
        let query = build_query(0x1234, &encode_name(NAME).unwrap());
        let mut other_id = response(0x8180, 0, &[]);
        other_id[1] = 0x35;
        assert!(!answers_query(&other_id, &query, NAME));
        assert!(!answers_query(
            &response(0x8180, 0, &[]),
            &query,
            "_other._tcp.ex.test"
        ));
        assert!(
            !answers_query(&query, &query, NAME),
            "a query is not a response"
        );
        assert!(answers_query(
            &response(0x8180, 0, &[]),
            &query,
            &NAME.to_uppercase()
        ));
    }

    #[test]
    fn rcodes_and_empty_answers_are_failures() {
        assert!(matches!(
            parse_reply(&response(0x8183, 0, &[])),
            Err(Failure::NxDomain)
        ));
        assert!(matches!(
            parse_reply(&response(0x8185, 0, &[])),
            Err(Failure::Refused)
        ));
        assert!(matches!(
            parse_reply(&response(0x8182, 0, &[])),
            Err(Failure::ServFail)
        ));
        assert!(matches!(
            parse_reply(&response(0x8180, 0, &[])),
            Err(Failure::NoRecords)
        ));
        let dot_only = srv_answer(0, 0, 0, b"\x00");
        assert!(matches!(
            parse_reply(&response(0x8180, 1, &dot_only)),
            Err(Failure::NoRecords)
        ));
        assert!(matches!(
            parse_reply(&response(0x8380, 0, &[])),
            Ok(Reply::Truncated)
        ));
    }

    #[test]
    fn compression_loops_and_overruns_are_malformed() {
        let looping = srv_answer(1, 1, 1, b"\x01a\xc0\x3f");
        let msg = response(0x8180, 1, &looping);
        assert!(matches!(parse_reply(&msg), Err(Failure::Malformed(_))));
        let mut cut = response(0x8180, 1, &srv_answer(1, 1, 1, b"\x04etcd\x00"));
        cut.truncate(cut.len() - 3);
        assert!(matches!(parse_reply(&cut), Err(Failure::Malformed(_))));
    }

    #[test]
    fn non_srv_records_in_the_answer_are_skipped() {
        let mut answers = vec![0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 5, 0, 2, 0xc0, 12]; // a CNAME
        answers.extend(srv_answer(1, 2, 3, b"\x01x\x00"));
        assert_eq!(
            records(&response(0x8180, 2, &answers)),
            [SrvTarget {
                host: "x".into(),
                port: 3,
                priority: 1,
                weight: 2
            }]
        );
    }
}
