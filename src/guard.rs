//! Guards: never install something worse than what is there.
//!
//! An emptied or half-written tree (`etcdctl mkdir`, every backend's TTL running out) or a
//! value carrying config directives (`10.0.0.5:80\n  stats enable`) would otherwise render
//! into a live config. [`check`] is the policy, a pure function of the resource's
//! settings, the watched leaves and the leaf count the installed file was rendered from; it
//! admits the leaves to render (perhaps without the bad ones) or refuses with a typed
//! [`Refusal`] that says why, with the counts.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A resource's guards (conf.d fields `min_keys`, `max_shrink`, `values`, `on_bad_value`).
#[derive(Debug, Clone, Default)]
pub struct Guards {
    /// Fewer leaves than this: refuse.
    pub min_keys: Option<u64>,
    /// Refuse a render that drops more than this share of the remembered leaves.
    pub max_shrink: Option<Percent>,
    pub values: Option<ValueRule>,
}

/// A share in percent, 0 to under 100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub f64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// Every watched value must match `pattern` as a whole.
#[derive(Debug, Clone)]
pub struct ValueRule {
    /// As written in conf.d, for messages.
    pub pattern: String,
    /// `pattern` anchored at both ends.
    pub regex: regex_lite::Regex,
    pub on_mismatch: OnBadValue,
}

impl ValueRule {
    /// The whole value must match, so a pattern written without `^...$` cannot be
    /// satisfied by a good prefix followed by injected lines.
    pub fn new(pattern: &str, on_mismatch: OnBadValue) -> Result<ValueRule, regex_lite::Error> {
        Ok(ValueRule {
            pattern: pattern.to_string(),
            regex: regex_lite::Regex::new(&format!("^(?:{pattern})$"))?,
            on_mismatch,
        })
    }
}

/// What a value that does not match does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnBadValue {
    /// Nothing is rendered (the default: the safe choice).
    #[default]
    Refuse,
    /// The render goes on without the offending keys.
    Skip,
}

/// The leaves to render.
#[derive(Debug)]
pub struct Admitted {
    /// The watched leaves themselves (not a copy) unless some were skipped.
    pub leaves: Arc<BTreeMap<String, String>>,
    /// Keys left out for their value (`on_bad_value: skip`), sorted.
    pub skipped: Vec<String>,
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
    BadValues {
        /// The offending keys, sorted.
        keys: Vec<String>,
        pattern: String,
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
            Refusal::BadValues { keys, pattern } => write!(
                f,
                "the value of {} does not match values {pattern:?}",
                keys.join(", ")
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

/// The policy: values first (skipped keys do not count as leaves), then `min_keys`, then
/// `max_shrink` against `installed_from`, the leaves the installed file was rendered from
/// (`None`: unknown, e.g. first run, so not applied).
pub fn check(
    guards: &Guards,
    leaves: &Arc<BTreeMap<String, String>>,
    installed_from: Option<u64>,
) -> Result<Admitted, Refusal> {
    let mut admitted = Admitted {
        leaves: Arc::clone(leaves),
        skipped: Vec::new(),
    };
    if let Some(rule) = &guards.values {
        let bad: Vec<String> = leaves
            .iter()
            .filter(|(_, value)| !rule.regex.is_match(value))
            .map(|(key, _)| key.clone())
            .collect();
        if !bad.is_empty() && rule.on_mismatch == OnBadValue::Refuse {
            return Err(Refusal::BadValues {
                keys: bad,
                pattern: rule.pattern.clone(),
            });
        }
        if !bad.is_empty() {
            let mut kept = BTreeMap::clone(leaves);
            for key in &bad {
                kept.remove(key);
            }
            admitted.leaves = Arc::new(kept);
            admitted.skipped = bad;
        }
    }
    let count = admitted.leaves.len() as u64;
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
    Ok(admitted)
}

/// [`check`] for one resource's passes: `--force` admits its first guarded render whatever
/// the guards say, and skipped keys are logged once per set of keys.
#[derive(Debug, Default)]
pub struct Gate {
    force: bool,
    skipped: Vec<String>,
}

impl Gate {
    pub fn new(force: bool) -> Gate {
        Gate {
            force,
            skipped: Vec::new(),
        }
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
                    skipped: Vec::new(),
                })
            }
            Ok(admitted) => {
                if admitted.skipped != self.skipped {
                    if !admitted.skipped.is_empty() {
                        let pattern = guards.values.as_ref().map_or("", |rule| &rule.pattern);
                        log::warn!(target: id, "rendering without {}: the value does not match values {pattern:?} (on_bad_value: skip)", admitted.skipped.join(", "));
                    }
                    self.skipped.clone_from(&admitted.skipped);
                }
                Ok(admitted)
            }
            refused => refused,
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

    #[test]
    fn a_bad_value_refuses_naming_its_key_or_is_skipped() {
        let mut data = BTreeMap::clone(&four());
        data.insert("/evil".into(), "10.0.0.5:80\n  stats enable".into());
        let data = Arc::new(data);
        let rule = |policy| ValueRule::new("[0-9.]+:?[0-9]*", policy).expect("regex");
        let guards = Guards {
            values: Some(rule(OnBadValue::Refuse)),
            ..Guards::default()
        };
        assert_eq!(
            check(&guards, &data, None).unwrap_err(),
            Refusal::BadValues {
                keys: vec!["/evil".into()],
                pattern: "[0-9.]+:?[0-9]*".into()
            }
        );
        let guards = Guards {
            values: Some(rule(OnBadValue::Skip)),
            min_keys: Some(5),
            ..Guards::default()
        };
        // The skipped key does not count towards min_keys.
        assert_eq!(
            check(&guards, &data, None).unwrap_err(),
            Refusal::TooFewKeys {
                leaves: 4,
                min_keys: 5
            }
        );
        let guards = Guards {
            values: Some(rule(OnBadValue::Skip)),
            ..Guards::default()
        };
        let admitted = check(&guards, &data, None).expect("admitted");
        assert_eq!(admitted.leaves, four());
        assert_eq!(admitted.skipped, vec!["/evil".to_string()]);
    }

    #[test]
    fn a_pattern_matches_the_whole_value_even_without_anchors() {
        let rule = ValueRule::new("[0-9.]+:[0-9]+", OnBadValue::Refuse).expect("regex");
        assert!(rule.regex.is_match("10.0.0.5:80"));
        assert!(!rule.regex.is_match("10.0.0.5:80\n  stats enable"));
        assert!(!rule.regex.is_match("x10.0.0.5:80"));
        let anchored = ValueRule::new("^[0-9.]+:[0-9]+$", OnBadValue::Refuse).expect("regex");
        assert!(anchored.regex.is_match("10.0.0.5:80"));
        assert!(!anchored.regex.is_match("10.0.0.5:80\n  stats enable"));
    }
}
