//! The DNS wire format of one SRV query and its answer, on the `simple-dns` crate: this
//! module only decides which answers are ours and what they say. Replies come from the
//! network, so nothing here may panic on any input (the `dns_answer` fuzz target checks).

use super::error::Failure;
use super::SrvTarget;
use simple_dns::rdata::RData;
use simple_dns::{Name, Packet, PacketFlag, Question, CLASS, RCODE, TYPE};

/// What one datagram or TCP message said about our query.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A response to another query (another id or question), or not a response at all.
    NotOurs,
    /// The answer did not fit: ask again over TCP.
    Truncated,
    Records(Vec<SrvTarget>),
}

/// A standard query (recursion desired) for the SRV records of `record`, or why the name
/// cannot be one.
pub fn build_query(id: u16, record: &str) -> Result<Vec<u8>, String> {
    check_name(record)?;
    let name = Name::new(record).map_err(|err| err.to_string())?;
    let mut packet = Packet::new_query(id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED);
    packet.questions.push(Question::new(
        name,
        TYPE::SRV.into(),
        CLASS::IN.into(),
        false,
    ));
    packet.build_bytes_vec().map_err(|err| err.to_string())
}

/// Letters, digits, `-` and `_` in dot-separated labels of 1 to 63 bytes, at most 255 bytes
/// in all: what a service record and a host name in a URL may hold.
fn check_name(name: &str) -> Result<(), String> {
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label must have 1 to 63 characters".to_string());
        }
        if !label.bytes().all(is_name_byte) {
            return Err("only letters, digits, '-' and '_' are allowed".to_string());
        }
    }
    if name.len() + 2 > MAX_NAME_LEN {
        return Err(format!("longer than {MAX_NAME_LEN} bytes"));
    }
    Ok(())
}

const MAX_NAME_LEN: usize = 255;

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// Reads `msg` as the answer to query `id` for `record` (compared without regard to case).
pub fn parse_reply(msg: &[u8], id: u16, record: &str) -> Result<Reply, Failure> {
    let Some(header) = msg.get(..4) else {
        return Ok(Reply::NotOurs);
    };
    let is_response = header[2] & 0x80 != 0;
    if u16::from_be_bytes([header[0], header[1]]) != id || !is_response {
        return Ok(Reply::NotOurs);
    }
    // Read before parsing: a truncated answer may end in the middle of a record.
    if header[2] & 0x02 != 0 {
        return Ok(Reply::Truncated);
    }
    let packet = Packet::parse(msg).map_err(|err| Failure::Malformed(err.to_string()))?;
    if !asks_for(&packet, record) {
        return Ok(Reply::NotOurs);
    }
    match packet.rcode() {
        RCODE::NoError => {}
        RCODE::ServerFailure => return Err(Failure::ServFail),
        RCODE::NameError => return Err(Failure::NxDomain),
        RCODE::Refused => return Err(Failure::Refused),
        code => return Err(Failure::Rcode(code as u16)),
    }
    let mut targets = Vec::new();
    for answer in &packet.answers {
        let RData::SRV(srv) = &answer.rdata else {
            continue;
        };
        if answer.class != CLASS::IN {
            continue;
        }
        let host = host_name(&srv.target)?;
        // The "." target means "no service here".
        if !host.is_empty() {
            targets.push(SrvTarget {
                host,
                port: srv.port,
                priority: srv.priority,
                weight: srv.weight,
            });
        }
    }
    match targets.is_empty() {
        true => Err(Failure::NoRecords),
        false => Ok(Reply::Records(targets)),
    }
}

/// Whether the packet's one question is ours.
fn asks_for(packet: &Packet, record: &str) -> bool {
    let [question] = packet.questions.as_slice() else {
        return false;
    };
    question.qtype == TYPE::SRV.into()
        && question.qclass == CLASS::IN.into()
        && dotted(&question.qname).is_some_and(|name| name.eq_ignore_ascii_case(record))
}

/// A target host as it will go into a URL, refused unless it is a plain host name.
fn host_name(name: &Name) -> Result<String, Failure> {
    dotted(name).ok_or_else(|| {
        Failure::Malformed(
            "SRV target has characters other than letters, digits, '-' and '_'".to_string(),
        )
    })
}

/// The labels joined with dots ("" for the root), if every byte is a plain name byte.
fn dotted(name: &Name) -> Option<String> {
    let mut labels = Vec::new();
    for label in name.as_bytes() {
        if label.is_empty() || !label.iter().all(|byte| is_name_byte(*byte)) {
            return None;
        }
        labels.push(std::str::from_utf8(label).ok()?);
    }
    Some(labels.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "_etcd-client._tcp.ex.test";
    const ID: u16 = 0x1234;

    /// A response to `build_query(ID, NAME)` holding `answers` (already encoded).
    fn response(flags: u16, answer_count: u16, answers: &[u8]) -> Vec<u8> {
        let mut msg = build_query(ID, NAME).expect("query");
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

    fn target(host: &str, port: u16, priority: u16, weight: u16) -> SrvTarget {
        SrvTarget {
            host: host.into(),
            port,
            priority,
            weight,
        }
    }

    fn records(msg: &[u8]) -> Vec<SrvTarget> {
        match parse_reply(msg, ID, NAME) {
            Ok(Reply::Records(targets)) => targets,
            other => panic!("not records: {other:?}"),
        }
    }

    #[test]
    fn the_query_is_a_standard_srv_question() {
        let query = build_query(ID, NAME).expect("query");
        assert_eq!(&query[..4], &[0x12, 0x34, 0x01, 0x00], "id, RD set");
        assert_eq!(&query[4..12], &[0, 1, 0, 0, 0, 0, 0, 0], "one question");
        assert_eq!(&query[12..17], b"\x0c_etc");
        assert_eq!(&query[query.len() - 4..], &[0, 33, 0, 1], "SRV, IN");
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(
            build_query(ID, "_etcd._tcp..example"),
            Err("each dot-separated label must have 1 to 63 characters".to_string())
        );
        assert_eq!(
            build_query(ID, "a b.example"),
            Err("only letters, digits, '-' and '_' are allowed".to_string())
        );
        let long = vec!["abcdefghij"; 24].join(".");
        assert_eq!(
            build_query(ID, &long),
            Err("longer than 255 bytes".to_string())
        );
    }

    #[test]
    fn answers_with_compressed_targets_are_parsed() {
        // Target "etcd" + pointer to "ex.test" inside the question (offset 12 + 13 + 5 = 30).
        let mut answers = srv_answer(10, 60, 2379, b"\x04etcd\xc0\x1e");
        answers.extend(srv_answer(20, 0, 2380, b"\x01b\x02ex\x04test\x00"));
        assert_eq!(
            records(&response(0x8180, 2, &answers)),
            [
                target("etcd.ex.test", 2379, 10, 60),
                target("b.ex.test", 2380, 20, 0)
            ]
        );
    }

    #[test]
    fn answers_to_another_query_are_not_ours() {
        let mut other_id = response(0x8180, 0, &[]);
        other_id[1] = 0x35;
        assert_eq!(parse_reply(&other_id, ID, NAME).ok(), Some(Reply::NotOurs));
        let other_name = parse_reply(&response(0x8180, 0, &[]), ID, "_other._tcp.ex.test");
        assert_eq!(other_name.ok(), Some(Reply::NotOurs));
        let query = build_query(ID, NAME).expect("query");
        let not_a_response = parse_reply(&query, ID, NAME);
        assert_eq!(not_a_response.ok(), Some(Reply::NotOurs));
        assert_eq!(parse_reply(&[0x12], ID, NAME).ok(), Some(Reply::NotOurs));
        // The name is compared without regard to case.
        let upper = parse_reply(&response(0x8180, 0, &[]), ID, &NAME.to_uppercase());
        assert!(matches!(upper, Err(Failure::NoRecords)));
    }

    #[test]
    fn rcodes_and_empty_answers_are_failures() {
        let reply =
            |flags, count, answers: &[u8]| parse_reply(&response(flags, count, answers), ID, NAME);
        assert!(matches!(reply(0x8183, 0, &[]), Err(Failure::NxDomain)));
        assert!(matches!(reply(0x8185, 0, &[]), Err(Failure::Refused)));
        assert!(matches!(reply(0x8182, 0, &[]), Err(Failure::ServFail)));
        assert!(matches!(reply(0x8184, 0, &[]), Err(Failure::Rcode(4))));
        assert!(matches!(reply(0x8180, 0, &[]), Err(Failure::NoRecords)));
        let dot_only = srv_answer(0, 0, 0, b"\x00");
        assert!(matches!(
            reply(0x8180, 1, &dot_only),
            Err(Failure::NoRecords)
        ));
        assert!(matches!(reply(0x8380, 0, &[]), Ok(Reply::Truncated)));
    }

    #[test]
    fn compression_loops_and_overruns_are_malformed() {
        let looping = srv_answer(1, 1, 1, b"\x01a\xc0\x3f");
        let msg = response(0x8180, 1, &looping);
        assert!(matches!(
            parse_reply(&msg, ID, NAME),
            Err(Failure::Malformed(_))
        ));
        let mut cut = response(0x8180, 1, &srv_answer(1, 1, 1, b"\x04etcd\x00"));
        cut.truncate(cut.len() - 3);
        assert!(matches!(
            parse_reply(&cut, ID, NAME),
            Err(Failure::Malformed(_))
        ));
    }

    #[test]
    fn targets_that_are_not_host_names_are_malformed() {
        let msg = response(0x8180, 1, &srv_answer(1, 1, 1, b"\x03a/b\x00"));
        assert!(matches!(
            parse_reply(&msg, ID, NAME),
            Err(Failure::Malformed(_))
        ));
    }

    #[test]
    fn non_srv_records_in_the_answer_are_skipped() {
        let mut answers = vec![0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 5, 0, 2, 0xc0, 12]; // a CNAME
        answers.extend(srv_answer(1, 2, 3, b"\x01x\x00"));
        assert_eq!(
            records(&response(0x8180, 2, &answers)),
            [target("x", 3, 1, 2)]
        );
    }
}
