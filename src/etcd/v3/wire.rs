//! How the v3 JSON gateway spells bytes and 64-bit integers.
//!
//! grpc-gateway encodes `bytes` fields (keys, values, range ends) as standard base64 and
//! 64-bit integers (revisions, lease ids, counts) as JSON strings, and leaves out every
//! field whose value is zero, false or empty. On input it accepts integers as strings or
//! numbers; reconfig sends strings, the gateway's own spelling. These helpers are the
//! `serde(with = ...)` adapters for those fields; a field that does not decode names
//! itself through serde's path in the error.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

/// A `bytes` field: base64 on the wire, raw bytes in reconfig.
pub mod bytes {
    use super::*;

    pub fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(deserializer)?;
        BASE64
            .decode(text.as_bytes())
            .map_err(|err| de::Error::custom(format!("not valid base64 ({err})")))
    }
}

/// Whether a `bytes` field is empty, so that it is left out as the gateway does.
pub fn is_empty(value: &[u8]) -> bool {
    value.is_empty()
}

/// Whether an integer or flag is zero/false, so that it is left out as the gateway does.
pub fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// A 64-bit integer field: a decimal string on the wire (a JSON number is accepted too).
pub mod int64 {
    use super::*;

    pub fn serialize<T: fmt::Display, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: FromStr + TryFrom<i64> + TryFrom<u64>,
        D: Deserializer<'de>,
    {
        deserializer.deserialize_any(IntegerVisitor(PhantomData))
    }

    struct IntegerVisitor<T>(PhantomData<T>);

    impl<T: FromStr + TryFrom<i64> + TryFrom<u64>> Visitor<'_> for IntegerVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer, as a decimal string")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            text.parse()
                .map_err(|_| E::custom(format!("{text:?} is not an integer in range")))
        }

        fn visit_i64<E: de::Error>(self, number: i64) -> Result<T, E> {
            T::try_from(number).map_err(|_| E::custom(format!("{number} is out of range")))
        }

        fn visit_u64<E: de::Error>(self, number: u64) -> Result<T, E> {
            T::try_from(number).map_err(|_| E::custom(format!("{number} is out of range")))
        }
    }
}
