//! When to retry after an error.

use std::time::Duration;

/// Capped exponential backoff with ±20 % jitter, so many resources retrying against a
/// recovering etcd do not hit it in lockstep.
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);

    pub fn new(max: Duration) -> Backoff {
        Backoff {
            next: Backoff::FIRST.min(max),
            max,
        }
    }

    pub fn reset(&mut self) {
        self.next = Backoff::FIRST.min(self.max);
    }

    pub fn next_pause(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // A factor in [0.8, 1.2).
        base.mul_f64(0.8 + fastrand::f64() * 0.4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_bounded_jitter() {
        let mut backoff = Backoff::new(Duration::from_secs(4));
        let waits: Vec<Duration> = (0..6).map(|_| backoff.next_pause()).collect();
        let bases = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0];
        for (wait, base) in waits.iter().zip(bases) {
            let secs = wait.as_secs_f64();
            assert!(
                secs >= base * 0.8 - 1e-9 && secs < base * 1.2,
                "{secs} vs {base}"
            );
        }
        backoff.reset();
        assert!(backoff.next_pause() < Duration::from_millis(600));
    }
}
