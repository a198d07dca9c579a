//! v3 authentication: a token from `/v3/auth/authenticate`, sent as the raw
//! `Authorization` header, fetched again when etcd says it is invalid or expired.

use super::super::http::Authorizer;
use super::super::options::Credentials;
use std::sync::Mutex;

/// The token every request carries; shared by every request of one client.
pub struct TokenAuth {
    pub credentials: Credentials,
    token: Mutex<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// Not fetched yet, or refused by etcd: fetch one before the next request.
    Missing,
    Valid(String),
    /// etcd has auth off: requests go without a token.
    NotNeeded,
}

impl TokenAuth {
    pub fn new(credentials: Credentials) -> TokenAuth {
        TokenAuth {
            credentials,
            token: Mutex::new(Token::Missing),
        }
    }

    pub fn current(&self) -> Token {
        match self.token.lock() {
            Ok(token) => token.clone(),
            Err(_) => Token::Missing,
        }
    }

    pub fn set(&self, token: Token) {
        if let Ok(mut slot) = self.token.lock() {
            *slot = token;
        }
    }
}

impl Authorizer for TokenAuth {
    fn header(&self) -> Option<String> {
        match self.current() {
            Token::Valid(token) => Some(token),
            Token::Missing | Token::NotNeeded => None,
        }
    }
}
