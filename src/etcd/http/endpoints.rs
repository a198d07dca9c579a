//! The list of etcd endpoints, which one is in use, and rediscovery (for SRV).
//!
//! Requests go to the endpoint that worked last; on a transport failure the client moves
//! to the next one and remembers it. When every endpoint has failed, or when the
//! rediscovery interval has passed, the list is rebuilt from the discovery function
//! (SRV records), so a cluster that moves is followed without a restart.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Produces a fresh endpoint list, e.g. by resolving SRV records.
pub type Discover = Box<dyn Fn() -> Result<Vec<String>, String> + Send + Sync>;

pub struct Endpoints {
    state: Mutex<State>,
    discover: Option<Discover>,
    rediscover_every: Option<Duration>,
}

struct State {
    list: Vec<String>,
    current: usize,
    discovered_at: Instant,
    /// Counts the times discovery replaced the list.
    generation: u64,
}

impl Endpoints {
    pub fn new(
        list: Vec<String>,
        discover: Option<Discover>,
        rediscover_every: Option<Duration>,
    ) -> Endpoints {
        Endpoints {
            state: Mutex::new(State {
                list,
                current: 0,
                discovered_at: Instant::now(),
                generation: 0,
            }),
            discover,
            rediscover_every,
        }
    }

    /// The endpoints in the order to try them: the one in use first.
    pub fn in_order(&self) -> Vec<String> {
        if self.rediscovery_due() {
            self.rediscover();
        }
        let state = self.lock();
        let n = state.list.len();
        (0..n)
            .map(|i| state.list[(state.current + i) % n].clone())
            .collect()
    }

    /// Remembers `endpoint` as the one to use next time.
    pub fn mark_working(&self, endpoint: &str) {
        let mut state = self.lock();
        if let Some(pos) = state.list.iter().position(|e| e == endpoint) {
            state.current = pos;
        }
    }

    /// Rebuilds the list from discovery; returns false when there is none or it failed.
    pub fn rediscover(&self) -> bool {
        let Some(discover) = &self.discover else {
            return false;
        };
        let result = discover();
        let mut state = self.lock();
        state.discovered_at = Instant::now();
        match result {
            Ok(list) if !list.is_empty() => {
                if list != state.list {
                    log::info!("etcd endpoints discovered: {}", list.join(", "));
                    state.list = list;
                    state.current = 0;
                    state.generation += 1;
                }
                true
            }
            Ok(_) => {
                log::warn!(
                    "endpoint discovery found no endpoint; keeping {}",
                    state.list.join(", ")
                );
                false
            }
            Err(e) => {
                log::warn!(
                    "endpoint discovery failed: {e}; keeping {}",
                    state.list.join(", ")
                );
                false
            }
        }
    }

    /// Changes whenever discovery replaces the list: indexes read before may be another
    /// cluster's.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub fn can_rediscover(&self) -> bool {
        self.discover.is_some()
    }

    fn rediscovery_due(&self) -> bool {
        match self.rediscover_every {
            Some(every) if self.discover.is_some() => self.lock().discovered_at.elapsed() >= every,
            _ => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Turns `host:port`, `http://host:port/` or `https://host` into a base URL without a
/// trailing slash; a bare host:port gets `default_scheme`.
pub fn normalize_endpoint(raw: &str, default_scheme: &str) -> Result<String, String> {
    let given = raw.trim();
    if given.trim_end_matches('/').is_empty() {
        return Err("empty endpoint".to_string());
    }
    // The trailing slash goes after the scheme is split off: `http://` is a scheme
    // without a host, not the host `http:` with an empty port.
    let (scheme, rest) = given.split_once("://").unwrap_or((default_scheme, given));
    let rest = rest.trim_end_matches('/');
    let raw = format!("{scheme}://{rest}");
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "endpoint {given:?} has scheme {scheme:?}; use http:// or https://"
        ));
    }
    if rest.is_empty() {
        return Err(format!(
            "endpoint {given:?} has no host; give scheme://host:port, e.g. http://127.0.0.1:2379"
        ));
    }
    if rest.contains('/') || rest.contains(char::is_whitespace) {
        return Err(format!(
            "endpoint {given:?} must be scheme://host:port with no path"
        ));
    }
    check_host_port(given, rest)?;
    Ok(raw)
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`: a host that is not empty and does not look
/// like a flag (a flag given where a URL was expected), and a port of 1-65535 if any.
fn check_host_port(given: &str, authority: &str) -> Result<(), String> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    if host.is_empty() || host.starts_with('-') {
        return Err(format!(
            "endpoint {given:?} has no usable host; give scheme://host:port, e.g. http://127.0.0.1:2379"
        ));
    }
    if let Some(port) = port {
        if port.parse::<u16>().ok().filter(|p| *p > 0).is_none() {
            return Err(format!(
                "endpoint {given:?} has port {port:?}; use a port number 1-65535"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_without_a_usable_host_or_port_are_refused() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:2379", "http").as_deref(),
            Ok("http://127.0.0.1:2379")
        );
        assert_eq!(
            normalize_endpoint("https://[::1]:2379/", "http").as_deref(),
            Ok("https://[::1]:2379")
        );
        assert_eq!(
            normalize_endpoint("http://[::1]", "http").as_deref(),
            Ok("http://[::1]")
        );
        assert_eq!(
            normalize_endpoint("http://", "http"),
            Err("endpoint \"http://\" has no host; give scheme://host:port, e.g. http://127.0.0.1:2379".to_string())
        );
        for bad in [
            "http://",
            "https:///",
            "http://:2379",
            "--onetime",
            "http://h:",
            "http://h:0",
            "h:99999",
            "h:x",
        ] {
            assert!(normalize_endpoint(bad, "http").is_err(), "{bad}");
        }
    }

    #[test]
    fn failover_order_starts_at_the_working_endpoint() {
        let eps = Endpoints::new(vec!["a".into(), "b".into(), "c".into()], None, None);
        assert_eq!(eps.in_order(), ["a", "b", "c"]);
        eps.mark_working("c");
        assert_eq!(eps.in_order(), ["c", "a", "b"]);
    }

    #[test]
    fn rediscovery_replaces_the_list() {
        let eps = Endpoints::new(
            vec!["old".into()],
            Some(Box::new(|| {
                Ok(vec!["new1".to_string(), "new2".to_string()])
            })),
            None,
        );
        assert!(eps.rediscover());
        assert_eq!(eps.in_order(), ["new1", "new2"]);
        assert_eq!(eps.generation(), 1);
        assert!(eps.rediscover());
        assert_eq!(eps.generation(), 1, "the same list again is not a change");
    }

    #[test]
    fn endpoint_normalization() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:2379", "http").as_deref(),
            Ok("http://127.0.0.1:2379")
        );
        assert_eq!(
            normalize_endpoint("https://h:1/", "http").as_deref(),
            Ok("https://h:1")
        );
        assert!(normalize_endpoint("ftp://h", "http").is_err());
        assert!(normalize_endpoint("http://h/x", "http").is_err());
        assert!(normalize_endpoint(" ", "http").is_err());
    }
}
