//! v2 authentication: the same Basic credentials on every request.

use super::super::http::Authorizer;
use super::super::options::Credentials;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

pub struct BasicAuth {
    header: String,
}

impl BasicAuth {
    pub fn new(credentials: &Credentials) -> BasicAuth {
        let pair = format!("{}:{}", credentials.user, credentials.password);
        BasicAuth {
            header: format!("Basic {}", BASE64.encode(pair)),
        }
    }
}

impl Authorizer for BasicAuth {
    fn header(&self) -> Option<String> {
        Some(self.header.clone())
    }
}
