//! RFC 2782 target order: ascending priority, then a weighted random pick within each
//! priority.

use super::SrvTarget;

/// Orders targets as RFC 2782 says: ascending priority; within one priority, a weighted random
/// pick repeated on the remaining targets (running-sum algorithm, weight-0 targets first so they
/// are chosen only when the random number is 0). When every weight in a priority is 0, the pick
/// is uniform. `random(n)` must return a uniform integer in `0..=n`.
pub fn order(mut targets: Vec<SrvTarget>, random: &mut dyn FnMut(u32) -> u32) -> Vec<SrvTarget> {
    targets.sort_by_key(|target| target.priority);
    let mut ordered = Vec::with_capacity(targets.len());
    for group in targets.chunk_by(|a, b| a.priority == b.priority) {
        ordered.extend(order_by_weight(group.to_vec(), random));
    }
    ordered
}

/// [`order`] with a random pick from `fastrand`.
pub fn order_randomly(targets: Vec<SrvTarget>) -> Vec<SrvTarget> {
    order(targets, &mut |n| fastrand::u32(0..=n))
}

fn order_by_weight(
    mut group: Vec<SrvTarget>,
    random: &mut dyn FnMut(u32) -> u32,
) -> Vec<SrvTarget> {
    group.sort_by_key(|target| target.weight != 0);
    let mut ordered = Vec::with_capacity(group.len());
    while !group.is_empty() {
        let last = group.len() - 1;
        let total = group.iter().fold(0u32, |sum, target| {
            sum.saturating_add(u32::from(target.weight))
        });
        let index = if total == 0 {
            usize::try_from(random(u32::try_from(last).unwrap_or(u32::MAX))).unwrap_or(last)
        } else {
            let pick = random(total);
            let mut running = 0u32;
            group
                .iter()
                .position(|target| {
                    running = running.saturating_add(u32::from(target.weight));
                    running >= pick
                })
                .unwrap_or(last)
        };
        ordered.push(group.remove(index.min(last)));
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, priority: u16, weight: u16) -> SrvTarget {
        SrvTarget {
            host: host.to_string(),
            port: 2379,
            priority,
            weight,
        }
    }

    /// A seeded linear congruential generator: deterministic, good enough for counting.
    fn seeded(mut state: u64) -> impl FnMut(u32) -> u32 {
        move |n| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % (u64::from(n) + 1)) as u32
        }
    }

    #[test]
    fn priority_order_always_holds() {
        let targets = vec![
            target("c", 20, 100),
            target("a1", 10, 60),
            target("z", 30, 0),
            target("a2", 10, 40),
            target("a3", 10, 0),
        ];
        let mut random = seeded(7);
        for _ in 0..1000 {
            let ordered = order(targets.clone(), &mut random);
            let priorities: Vec<u16> = ordered.iter().map(|t| t.priority).collect();
            assert_eq!(priorities, [10, 10, 10, 20, 30]);
            let mut hosts: Vec<&str> = ordered.iter().map(|t| t.host.as_str()).collect();
            hosts.sort_unstable();
            assert_eq!(hosts, ["a1", "a2", "a3", "c", "z"]);
        }
    }

    #[test]
    fn weights_give_the_expected_distribution() {
        let targets = vec![target("a", 10, 60), target("b", 10, 40)];
        let mut random = seeded(42);
        let runs = 10_000;
        let a_first = (0..runs)
            .filter(|_| order(targets.clone(), &mut random)[0].host == "a")
            .count();
        assert!(
            (5500..=6500).contains(&a_first),
            "a first {a_first} times of {runs}"
        );
    }

    #[test]
    fn zero_weight_targets_get_a_small_chance() {
        let targets = vec![target("heavy", 1, 100), target("zero", 1, 0)];
        let mut random = seeded(3);
        let zero_first = (0..10_000)
            .filter(|_| order(targets.clone(), &mut random)[0].host == "zero")
            .count();
        // Expected 10 000 / 101 ≈ 99.
        assert!(
            (30..=250).contains(&zero_first),
            "zero first {zero_first} times"
        );
    }

    #[test]
    fn running_sum_selection_follows_the_random_number() {
        let targets = vec![target("a", 0, 60), target("b", 0, 40), target("z", 0, 0)];
        // random = 0 picks the weight-0 target, which sits first in the running sum.
        let hosts =
            |ordered: Vec<SrvTarget>| ordered.into_iter().map(|t| t.host).collect::<Vec<_>>();
        assert_eq!(hosts(order(targets.clone(), &mut |_| 0)), ["z", "a", "b"]);
        // random = n picks the last target with a weight.
        assert_eq!(hosts(order(targets.clone(), &mut |n| n)), ["b", "a", "z"]);
        // An out-of-range random function cannot make order() panic.
        assert_eq!(order(targets, &mut |_| u32::MAX).len(), 3);
    }

    #[test]
    fn all_zero_weights_are_picked_uniformly() {
        let targets = vec![target("a", 0, 0), target("b", 0, 0)];
        let mut random = seeded(9);
        let a_first = (0..10_000)
            .filter(|_| order(targets.clone(), &mut random)[0].host == "a")
            .count();
        assert!((4500..=5500).contains(&a_first), "a first {a_first} times");
    }

    #[test]
    fn order_randomly_keeps_every_target_in_priority_order() {
        let targets = vec![target("b", 20, 5), target("a", 10, 0), target("c", 10, 7)];
        let ordered = order_randomly(targets);
        let priorities: Vec<u16> = ordered.iter().map(|t| t.priority).collect();
        assert_eq!(priorities, [10, 10, 20]);
    }
}
