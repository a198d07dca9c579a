//! Reading a v3 watch stream: one JSON object after another, as they arrive.
//!
//! The gateway sends each watch message as one JSON object followed by `\n`, in chunks that
//! need not line up with the messages; when etcd shuts down, the last object comes without
//! the newline. So the reader does not split on newlines or chunks: it scans the bytes for
//! the end of each top-level object (braces outside strings), whitespace between objects
//! allowed, none required. The scan resumes where it stopped, so a message arriving in many
//! reads costs one pass over its bytes, and a read that times out (silence on the stream)
//! can be retried without losing what was already read.
//!
//! Nothing is trusted: a byte that cannot start an object, a message over the size bound,
//! a stream that ends inside a message, or a message that is not a watch message is an
//! error naming what was wrong and at which byte of the stream.

use super::error::GatewayError;
use super::proto::WatchResponse;
use serde::Deserialize;
use std::fmt;
use std::io::{self, Read};

/// The bound on one watch message. A watch from far back in history gets every past event
/// in one message (observed: all of them, batched), so this is generous; a stream that
/// exceeds it is dropped and the caller reads the key again instead.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

const READ_SIZE: usize = 16 << 10;

/// One message of a watch stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `{"result": ...}`: a watch created or canceled, events, or a progress notification.
    Result(WatchResponse),
    /// `{"error": ...}`: the stream itself failed (etcd shutting down, a bad request body).
    Error(GatewayError),
}

/// Why the stream could not give its next message. Only [`StreamError::Read`] may be
/// retried (a read timeout); after any other error the stream is unusable.
#[derive(Debug)]
pub enum StreamError {
    Read(io::Error),
    /// A byte between messages that cannot start a JSON object.
    NotAnObject {
        offset: u64,
        found: u8,
    },
    TooLarge {
        offset: u64,
        limit: usize,
    },
    /// The stream ended inside a message.
    Truncated {
        offset: u64,
        bytes: usize,
    },
    /// A complete JSON object that is not a watch message.
    Invalid {
        offset: u64,
        detail: String,
    },
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            StreamError::Read(err) => write!(f, "reading the watch stream failed: {err}"),
            StreamError::NotAnObject { offset, found } => write!(
                f,
                "byte {offset} of the watch stream is {:?}, not the start of a JSON object",
                char::from(*found)
            ),
            StreamError::TooLarge { offset, limit } => write!(
                f,
                "the watch message at byte {offset} is larger than {limit} bytes"
            ),
            StreamError::Truncated { offset, bytes } => write!(
                f,
                "the watch stream ended inside the message at byte {offset} ({bytes} bytes of it)"
            ),
            StreamError::Invalid { offset, detail } => write!(
                f,
                "the watch message at byte {offset} is not a valid etcd v3 watch message: {detail}"
            ),
        }
    }
}

impl std::error::Error for StreamError {}

/// Where the scan for the end of the current object stands.
#[derive(Debug, Default)]
struct Scan {
    /// Bytes of `buffer` scanned so far (the object starts at 0).
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

/// Reads watch messages from any byte source (the HTTP response body).
pub struct MessageReader<R> {
    source: R,
    /// Bytes read but not yet handed out; the current object starts at 0.
    buffer: Vec<u8>,
    scan: Scan,
    /// Stream offset of `buffer[0]`.
    offset: u64,
    limit: usize,
}

impl<R: Read> MessageReader<R> {
    pub fn new(source: R) -> MessageReader<R> {
        MessageReader::with_limit(source, MAX_MESSAGE_BYTES)
    }

    /// A reader refusing messages over `limit` bytes.
    pub fn with_limit(source: R, limit: usize) -> MessageReader<R> {
        MessageReader {
            source,
            buffer: Vec::new(),
            scan: Scan::default(),
            offset: 0,
            limit,
        }
    }

    /// The next message, or `None` when the stream ended cleanly between messages.
    pub fn next_message(&mut self) -> Result<Option<Message>, StreamError> {
        loop {
            if let Some(end) = self.find_end()? {
                let object: Vec<u8> = self.buffer.drain(..end).collect();
                let offset = self.offset;
                self.offset += end as u64;
                self.scan = Scan::default();
                return parse(&object)
                    .map(Some)
                    .map_err(|detail| StreamError::Invalid { offset, detail });
            }
            if !self.fill()? {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                return Err(StreamError::Truncated {
                    offset: self.offset,
                    bytes: self.buffer.len(),
                });
            }
        }
    }

    /// Reads more bytes; false at the end of the stream.
    fn fill(&mut self) -> Result<bool, StreamError> {
        let start = self.buffer.len();
        self.buffer.resize(start + READ_SIZE, 0);
        let read = loop {
            match self.source.read(&mut self.buffer[start..]) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.buffer.truncate(start + *read.as_ref().unwrap_or(&0));
        Ok(read.map_err(StreamError::Read)? > 0)
    }

    /// The length of the complete object at the start of `buffer`, once it is all there.
    /// Drops whitespace before an object.
    fn find_end(&mut self) -> Result<Option<usize>, StreamError> {
        if self.scan.scanned == 0 {
            let blank = self
                .buffer
                .iter()
                .take_while(|byte| byte.is_ascii_whitespace())
                .count();
            self.buffer.drain(..blank);
            self.offset += blank as u64;
            match self.buffer.first() {
                None => return Ok(None),
                Some(b'{') => {}
                Some(&found) => {
                    return Err(StreamError::NotAnObject {
                        offset: self.offset,
                        found,
                    })
                }
            }
        }
        let within_limit = |length: usize| {
            if length > self.limit {
                return Err(StreamError::TooLarge {
                    offset: self.offset,
                    limit: self.limit,
                });
            }
            Ok(length)
        };
        let scan = &mut self.scan;
        for (at, &byte) in self.buffer.iter().enumerate().skip(scan.scanned) {
            if scan.in_string {
                match byte {
                    _ if scan.escaped => scan.escaped = false,
                    b'\\' => scan.escaped = true,
                    b'"' => scan.in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => scan.in_string = true,
                b'{' | b'[' => scan.depth += 1,
                b'}' | b']' => {
                    scan.depth = scan.depth.saturating_sub(1);
                    if scan.depth == 0 {
                        return within_limit(at + 1).map(Some);
                    }
                }
                _ => {}
            }
        }
        scan.scanned = self.buffer.len();
        within_limit(scan.scanned).map(|_| None)
    }
}

/// One complete object as a watch message.
fn parse(object: &[u8]) -> Result<Message, String> {
    /// `{"error": {...}}` (a stream cut by etcd) or `{"error": "...", "code": N}` (a
    /// request the gateway could not decode).
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ErrorField {
        Text(String),
        Detail {
            #[serde(default)]
            grpc_code: u32,
            #[serde(default)]
            message: String,
        },
    }
    #[derive(Deserialize)]
    struct Envelope {
        result: Option<WatchResponse>,
        error: Option<ErrorField>,
        #[serde(default)]
        code: u32,
    }
    let envelope: Envelope = serde_json::from_slice(object).map_err(|err| err.to_string())?;
    match (envelope.result, envelope.error) {
        (Some(result), _) => Ok(Message::Result(result)),
        (None, Some(ErrorField::Text(message))) => Ok(Message::Error(GatewayError {
            code: envelope.code,
            message,
        })),
        (None, Some(ErrorField::Detail { grpc_code, message })) => {
            Ok(Message::Error(GatewayError {
                code: grpc_code,
                message,
            }))
        }
        (None, None) => Err("neither \"result\" nor \"error\" in it".to_string()),
    }
}
