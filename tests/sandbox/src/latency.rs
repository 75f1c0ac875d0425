//! The `latencyMs` fault: every AWS and Kubernetes call takes that long, as a call to
//! a service whose answers take that long would. The sandbox's own work on the call
//! (moto's, the emulators') is inside that time, not added to it, as a service's
//! processing is inside its response time; a call whose work takes longer answers
//! when the work is done.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Runs `work`, the answer to a call that arrived now, and hands its result back no
/// sooner than `latency` after the call arrived.
pub async fn answered_after<T>(latency: Duration, work: impl Future<Output = T>) -> T {
    let due = Instant::now() + latency;
    let answer = work.await;
    tokio::time::sleep_until(due).await;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn work(ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    #[tokio::test(start_paused = true)]
    async fn work_shorter_than_the_latency_is_inside_it() {
        let t = Instant::now();
        assert_eq!(
            answered_after(Duration::from_millis(20), work(15)).await,
            15
        );
        assert_eq!(t.elapsed(), Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn work_longer_than_the_latency_answers_when_done() {
        let t = Instant::now();
        answered_after(Duration::from_millis(20), work(35)).await;
        assert_eq!(t.elapsed(), Duration::from_millis(35));
    }

    #[tokio::test(start_paused = true)]
    async fn no_latency_adds_nothing() {
        let t = Instant::now();
        answered_after(Duration::ZERO, work(3)).await;
        assert_eq!(t.elapsed(), Duration::from_millis(3));
    }
}
