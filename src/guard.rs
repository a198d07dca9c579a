//! Guards: never install something worse than what is there.
//!
//! An emptied or half-written tree (`etcdctl mkdir`, every backend's TTL running out) would
//! otherwise render into a live config. [`check`] is the policy, a pure function of the
//! resource's settings, the watched leaves and the leaf count the installed file was
//! rendered from; it admits the leaves to render or refuses with a typed [`Refusal`] that
//! says why, with the counts.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A resource's guards (conf.d fields `min_keys`, `max_shrink`).
#[derive(Debug, Clone, Default)]
pub struct Guards {
    /// Fewer leaves than this: refuse.
    pub min_keys: Option<u64>,
    /// Refuse a render that drops more than this share of the remembered leaves.
    pub max_shrink: Option<Percent>,
}

/// A share in percent, 0 to under 100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub f64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// The leaves to render.
#[derive(Debug)]
pub struct Admitted {
    /// The watched leaves themselves (not a copy).
    pub leaves: Arc<BTreeMap<String, String>>,
}

/// Why a render was refused; the target stays as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Refusal {
    TooFewKeys {
        leaves: u64,
        min_keys: u64,
    },
    ShrankTooMuch {
        leaves: u64,
        installed_from: u64,
        /// `max_shrink` as written.
        max_shrink: String,
    },
}

impl Refusal {
    /// Tells this refusal from another one, counts included, so the log says it once per
    /// change of state (see `watch::Problem`).
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooFewKeys { leaves, min_keys } => write!(
                f,
                "the watched key holds {leaves} {}, fewer than min_keys {min_keys}",
                plural(*leaves, "leaf", "leaves")
            ),
            Refusal::ShrankTooMuch {
                leaves,
                installed_from,
                max_shrink,
            } => write!(
                f,
                "the watched key holds {leaves} {}, the installed file was rendered from \
                 {installed_from}: dropping {} is more than max_shrink {max_shrink}",
                plural(*leaves, "leaf", "leaves"),
                installed_from.saturating_sub(*leaves)
            ),
        }
    }
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// The policy: `min_keys`, then `max_shrink` against `installed_from`, the leaves the
/// installed file was rendered from (`None`: unknown, e.g. first run, so not applied).
pub fn check(
    guards: &Guards,
    leaves: &Arc<BTreeMap<String, String>>,
    installed_from: Option<u64>,
) -> Result<Admitted, Refusal> {
    let count = leaves.len() as u64;
    if let Some(min_keys) = guards.min_keys.filter(|min| count < *min) {
        return Err(Refusal::TooFewKeys {
            leaves: count,
            min_keys,
        });
    }
    if let (Some(max), Some(before)) = (guards.max_shrink, installed_from) {
        let dropped = before.saturating_sub(count);
        if dropped as f64 > before as f64 * max.0 / 100.0 {
            return Err(Refusal::ShrankTooMuch {
                leaves: count,
                installed_from: before,
                max_shrink: max.to_string(),
            });
        }
    }
    Ok(Admitted {
        leaves: Arc::clone(leaves),
    })
}

/// [`check`] for one resource's passes: `--force` admits its first guarded render whatever
/// the guards say.
#[derive(Debug, Default)]
pub struct Gate {
    force: bool,
}

impl Gate {
    pub fn new(force: bool) -> Gate {
        Gate { force }
    }

    pub fn admit(
        &mut self,
        guards: &Guards,
        leaves: &Arc<BTreeMap<String, String>>,
        installed_from: Option<u64>,
        id: &str,
    ) -> Result<Admitted, Refusal> {
        let force = std::mem::take(&mut self.force);
        match check(guards, leaves, installed_from) {
            Err(refusal) if force => {
                log::warn!(target: id, "--force: rendering although {refusal}");
                Ok(Admitted {
                    leaves: Arc::clone(leaves),
                })
            }
            checked => checked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(pairs: &[(&str, &str)]) -> Arc<BTreeMap<String, String>> {
        Arc::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn four() -> Arc<BTreeMap<String, String>> {
        leaves(&[("/a", "1"), ("/b", "2"), ("/c", "3"), ("/d", "4")])
    }

    #[test]
    fn no_guards_admit_everything() {
        let admitted = check(&Guards::default(), &leaves(&[]), Some(10)).expect("admitted");
        assert!(admitted.leaves.is_empty());
    }

    #[test]
    fn min_keys_refuses_fewer_leaves_with_the_counts() {
        let guards = Guards {
            min_keys: Some(5),
            ..Guards::default()
        };
        let refusal = check(&guards, &four(), None).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "the watched key holds 4 leaves, fewer than min_keys 5"
        );
        let guards = Guards {
            min_keys: Some(4),
            ..Guards::default()
        };
        assert!(check(&guards, &four(), None).is_ok());
    }

    #[test]
    fn max_shrink_refuses_only_a_drop_of_more_than_its_share() {
        let guards = Guards {
            max_shrink: Some(Percent(50.0)),
            ..Guards::default()
        };
        assert!(
            check(&guards, &four(), Some(8)).is_ok(),
            "a drop of exactly 50%"
        );
        let refusal = check(&guards, &four(), Some(9)).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "the watched key holds 4 leaves, the installed file was rendered from 9: \
             dropping 5 is more than max_shrink 50%"
        );
        assert!(check(&guards, &four(), None).is_ok(), "nothing remembered");
        assert!(check(&guards, &four(), Some(2)).is_ok(), "growth");
    }
}
