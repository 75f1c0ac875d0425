//! The one backoff every retry loop uses: exponential, capped, with equal jitter.

use std::time::Duration;

use rand::Rng;

/// Delays `d/2 + rand[0, d/2]` where `d` starts at `base` and doubles up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            next: base.min(max),
            max,
        }
    }

    /// The next pause: half of the current step at least, the whole step at most;
    /// the step then doubles, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        let half = d / 2;
        let span = u64::try_from((d - half).as_millis()).unwrap_or(u64::MAX);
        let jitter = Duration::from_millis(rand::rng().random_range(0..=span));
        self.next = (self.next.saturating_mul(2)).min(self.max);
        half + jitter
    }

    /// Sleeps for [`Backoff::next_delay`].
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_half_and_whole_and_stop_at_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
        for step in [200u64, 400, 800, 1000, 1000] {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(step / 2),
                "{d:?} < half of {step}"
            );
            assert!(d <= Duration::from_millis(step), "{d:?} > {step}");
        }
    }

    #[test]
    fn base_above_the_cap_is_capped() {
        let mut b = Backoff::new(Duration::from_secs(9), Duration::from_secs(2));
        assert!(b.next_delay() <= Duration::from_secs(2));
    }
}
