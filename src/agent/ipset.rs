//! Which rules list an IP: the rules' CIDRs flattened into sorted, disjoint address ranges,
//! each with the set of rules whose CIDRs cover it, found by binary search.
//!
//! IPv4 networks are stored as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), the form records keep
//! client IPs in, so one table of `u128` answers both.

#![forbid(unsafe_code)]

use super::rules::MAX_RULES;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr};

/// A set of rule indexes.
pub type RuleSet = [u64; MAX_RULES / 64];

pub fn insert(set: &mut RuleSet, rule: usize) {
    set[rule / 64] |= 1 << (rule % 64);
}

/// The address range of a network as `u128` (inclusive bounds).
fn bounds(net: &IpNet) -> (u128, u128) {
    let v6 = |a: IpAddr| match a {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    };
    (v6(net.network()), v6(net.broadcast()))
}

/// Sorted disjoint ranges: `starts[i]..starts[i+1]` is covered by the rules in
/// `sets[set_of[i]]` (the empty set where no rule's CIDR reaches).
#[derive(Debug, Default)]
pub struct IpTable {
    starts: Vec<u128>,
    set_of: Vec<u32>,
    sets: Vec<RuleSet>,
}

impl IpTable {
    /// Builds the table from `(rule, network)` pairs.
    pub fn new(nets: impl Iterator<Item = (usize, IpNet)>) -> IpTable {
        // A sweep over range starts (+1) and ends (-1), counting how many CIDRs of each rule
        // cover the current address.
        let mut events: Vec<(u128, bool, usize)> = Vec::new();
        for (rule, net) in nets {
            let (lo, hi) = bounds(&net);
            events.push((lo, true, rule));
            if let Some(after) = hi.checked_add(1) {
                events.push((after, false, rule));
            }
        }
        events.sort_unstable();
        let mut table = IpTable {
            starts: vec![0],
            set_of: vec![0],
            sets: vec![[0; MAX_RULES / 64]],
        };
        let mut cover = vec![0u32; MAX_RULES];
        let mut i = 0;
        while i < events.len() {
            let at = events[i].0;
            while i < events.len() && events[i].0 == at {
                let (_, start, rule) = events[i];
                if start {
                    cover[rule] += 1;
                } else {
                    cover[rule] -= 1;
                }
                i += 1;
            }
            let mut set = [0; MAX_RULES / 64];
            for (rule, n) in cover.iter().enumerate() {
                if *n > 0 {
                    insert(&mut set, rule);
                }
            }
            table.push(at, set);
        }
        table
    }

    fn push(&mut self, start: u128, set: RuleSet) {
        let id = match self.sets.iter().position(|s| *s == set) {
            Some(id) => id,
            None => {
                self.sets.push(set);
                self.sets.len() - 1
            }
        };
        let id = u32::try_from(id).expect("distinct rule sets are bounded by the CIDR count");
        if self.set_of.last() == Some(&id) {
            return;
        }
        if self.starts.last() == Some(&start) {
            self.set_of.pop();
            self.starts.pop();
            if self.set_of.last() == Some(&id) {
                return;
            }
        }
        self.starts.push(start);
        self.set_of.push(id);
    }

    /// The rules whose CIDRs hold `ip`.
    #[inline]
    pub fn rules_of(&self, ip: Ipv6Addr) -> &RuleSet {
        let ip = u128::from(ip);
        let i = self.starts.partition_point(|&s| s <= ip) - 1;
        &self.sets[self.set_of[i] as usize]
    }

    /// Number of disjoint ranges.
    pub fn ranges(&self) -> usize {
        self.starts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(nets: &[(usize, &str)]) -> IpTable {
        IpTable::new(nets.iter().map(|(r, n)| (*r, n.parse().unwrap())))
    }

    fn rules(t: &IpTable, ip: &str) -> Vec<usize> {
        let ip = match ip.parse::<IpAddr>().unwrap() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let set = t.rules_of(ip);
        (0..MAX_RULES)
            .filter(|r| set[r / 64] & (1 << (r % 64)) != 0)
            .collect()
    }

    #[test]
    fn overlapping_nested_and_adjacent_networks() {
        let t = table(&[
            (3, "10.0.0.0/8"),
            (1, "10.1.0.0/16"),
            (1, "10.1.2.0/24"),
            (2, "10.2.0.0/16"),
            (2, "10.3.0.0/16"),
            (0, "2001:db8::/32"),
            (5, "::/0"),
        ]);
        assert_eq!(rules(&t, "9.255.255.255"), [5]);
        assert_eq!(rules(&t, "10.0.0.0"), [3, 5]);
        assert_eq!(rules(&t, "10.1.2.3"), [1, 3, 5]);
        assert_eq!(rules(&t, "10.1.255.255"), [1, 3, 5]);
        assert_eq!(rules(&t, "10.2.0.0"), [2, 3, 5]);
        assert_eq!(rules(&t, "10.3.255.255"), [2, 3, 5]);
        assert_eq!(rules(&t, "10.4.0.0"), [3, 5]);
        assert_eq!(rules(&t, "10.255.255.255"), [3, 5]);
        assert_eq!(rules(&t, "11.0.0.0"), [5]);
        assert_eq!(rules(&t, "2001:db8:ffff::1"), [0, 5]);
        assert_eq!(rules(&t, "2001:db9::"), [5]);
        assert_eq!(rules(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), [5]);
        // 10.2/16 and 10.3/16 have one set: one range.
        let t = table(&[(2, "10.2.0.0/16"), (2, "10.3.0.0/16")]);
        assert_eq!(t.ranges(), 3);
        assert_eq!(rules(&t, "::"), Vec::<usize>::new());
        assert_eq!(
            rules(&IpTable::new(std::iter::empty()), "1.2.3.4"),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn a_v4_network_does_not_match_the_same_bits_in_v6() {
        let t = table(&[(0, "192.0.2.0/24")]);
        assert_eq!(rules(&t, "192.0.2.9"), [0]);
        assert_eq!(rules(&t, "::ffff:192.0.2.9"), [0]);
        assert_eq!(rules(&t, "::192.0.2.9"), Vec::<usize>::new());
    }
}
