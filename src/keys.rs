//! A pass's data when a resource watches several keys (`"keys"`): every key is read, and
//! the template's `data` is the union of their leaves.
//!
//! Each key is its own read (through the generation's shared reads in the daemon): on v2
//! and v3 alike, each read holds at least the index the pass was asked for, so every change
//! that made the pass due is in the data; the keys are not read at one single index.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Full key → value of every leaf at or under one key.
pub type Leaves = Arc<BTreeMap<String, String>>;

/// The union of the keys' leaves.
pub struct Union {
    /// `None` when none of the keys exists.
    pub data: Option<Leaves>,
    /// The lowest index of the reads: every key's data holds every change up to it.
    pub index: u64,
}

/// Reads every key of `keys` with `read` ((leaves or `None` when missing, index)) and
/// joins them. One key's read is used as it is, without a copy.
pub fn read_all<'k, E>(
    keys: impl IntoIterator<Item = &'k str>,
    mut read: impl FnMut(&str) -> Result<(Option<Leaves>, u64), E>,
) -> Result<Union, E> {
    let mut union: Option<Union> = None;
    for key in keys {
        let (data, index) = read(key)?;
        union = Some(match union {
            None => Union { data, index },
            Some(had) => Union {
                data: join(had.data, data),
                index: had.index.min(index),
            },
        });
    }
    Ok(union.unwrap_or(Union {
        data: None,
        index: 0,
    }))
}

fn join(a: Option<Leaves>, b: Option<Leaves>) -> Option<Leaves> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let mut joined = Arc::unwrap_or_clone(a);
            joined.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
            Some(Arc::new(joined))
        }
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(pairs: &[(&str, &str)]) -> Option<Leaves> {
        Some(Arc::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
    }

    #[test]
    fn the_union_holds_every_existing_keys_leaves_and_the_lowest_index() {
        let reads = BTreeMap::from([
            ("/a", (leaves(&[("/a/1", "x")]), 7)),
            ("/b", (None, 9)),
            ("/c", (leaves(&[("/c/1", "y")]), 5)),
        ]);
        let union =
            read_all(["/a", "/b", "/c"], |key| Ok::<_, ()>(reads[key].clone())).expect("no error");
        assert_eq!(union.data, leaves(&[("/a/1", "x"), ("/c/1", "y")]));
        assert_eq!(union.index, 5);
        let none = read_all(["/b"], |key| Ok::<_, ()>(reads[key].clone())).expect("no error");
        assert_eq!(none.data, None);
    }
}
