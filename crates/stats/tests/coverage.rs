//! Why proportions get the logit interval: a seeded Monte Carlo of how often each interval
//! contains the true mean, for metrics shaped like the simulator's (a fraction of 53 facts, as
//! `ledger_accuracy`, per seed; seeds occasionally losing a chunk, so the spread is skewed away
//! from the bound), near the bound where the choice matters. `cargo test -p orchestra-stats --test coverage -- --nocapture` prints the
//! table quoted in docs/simulator.md.

use orchestra_stats::{Interval, Scale};

/// SplitMix64: a fixed, dependency-free stream, so the table is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One seed's value: the share of `facts` right when each is right with probability
/// `q = 1 − (1 − p)·E`, `E` exponential with mean 1 (so the mean of `q` is `p`, and a seed now
/// and then falls well below it).
fn seed_value(rng: &mut Rng, p: f64, facts: u32) -> f64 {
    let e = -(1.0 - rng.unit()).ln();
    let q = (1.0 - (1.0 - p) * e).max(0.0);
    let right = (0..facts).filter(|_| rng.unit() < q).count();
    right as f64 / f64::from(facts)
}

#[test]
fn the_logit_interval_covers_proportions_near_one_and_stays_inside() {
    const REPS: usize = 4000;
    let mut rng = Rng(20_261_205);
    println!("true mean, seeds: coverage (mean width) of the t-interval | of the logit interval");
    for p in [0.9, 0.95, 0.98] {
        for n in [5, 10] {
            let (mut cover_t, mut cover_logit) = (0usize, 0usize);
            let (mut width_t, mut width_logit) = (0.0, 0.0);
            for _ in 0..REPS {
                let v: Vec<f64> = (0..n).map(|_| seed_value(&mut rng, p, 53)).collect();
                let t = Interval::of(&v);
                let l = Interval::on(&v, Scale::Unit);
                assert!(0.0 <= l.lo && l.hi <= 1.0, "{l:?}");
                cover_t += usize::from(t.lo <= p && p <= t.hi);
                cover_logit += usize::from(l.lo <= p && p <= l.hi);
                width_t += t.hi - t.lo;
                width_logit += l.hi - l.lo;
            }
            let (ct, cl) = (
                cover_t as f64 / REPS as f64,
                cover_logit as f64 / REPS as f64,
            );
            println!(
                "{p}, {n}: {ct:.3} ({:.4}) | {cl:.3} ({:.4})",
                width_t / REPS as f64,
                width_logit / REPS as f64
            );
            // Near 95 % where the t-interval falls short.
            assert!(cl >= 0.93, "p {p}, n {n}: logit covers {cl}");
            assert!(cl >= ct + 0.02, "p {p}, n {n}: logit {cl} vs t {ct}");
        }
    }
}
