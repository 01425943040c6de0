//! When the agent counts as ready (`/readyz`), apart from the caller's probe: a loaded
//! configuration, and a recent enough success. Pure, so every limit is tested without waiting.

use super::status::Status;

/// Why `status` is not ready at `now_ms` (empty when it is), apart from the probe: the
/// configuration is loaded, and the later of the last success and the start of the grace
/// period (`started_ms`) is less than 3 × interval ago.
///
/// Counting from the start too means a process that has just started is not unready before
/// its first cycle could possibly have converged, whether it has no success at all or one
/// the agent read back from the state database from before a long stop.
pub(super) fn readiness(status: &Status, now_ms: i64, started_ms: i64) -> Vec<String> {
    if status.interval_ms == 0 {
        // Without an interval there is no limit to judge the last success by.
        return vec!["configuration not loaded".to_string()];
    }
    let limit_ms = i64::try_from(status.interval_ms)
        .unwrap_or(i64::MAX)
        .saturating_mul(3);
    let since_start = now_ms.saturating_sub(started_ms);
    // A clock stepped backwards makes an age negative: that is young, not an error.
    let young = |age: i64| age < limit_ms;
    match status.last_success_unix_ms {
        Some(success) => {
            let age = now_ms.saturating_sub(success);
            if young(age) || young(since_start) {
                Vec::new()
            } else {
                vec![format!(
                    "last successful cycle {} ago, limit 3 x interval = {}",
                    seconds(age),
                    seconds(limit_ms)
                )]
            }
        }
        None if young(since_start) => Vec::new(),
        None => vec![format!(
            "no successful cycle in the {} since start, limit 3 x interval = {}",
            seconds(since_start),
            seconds(limit_ms)
        )],
    }
}

/// Milliseconds as seconds with at most millisecond precision, for messages.
fn seconds(ms: i64) -> String {
    format!("{} s", ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::admin::status::tests::loaded;

    const MINUTE: i64 = 60_000;

    #[test]
    fn default_status_is_not_loaded() {
        let reasons = readiness(&Status::default(), 10 * MINUTE, 0);
        assert_eq!(reasons, vec!["configuration not loaded".to_string()]);
    }

    #[test]
    fn readiness_limits_the_age_of_the_last_success() {
        let now = 100 * MINUTE;
        let mut status = loaded();
        status.last_success_unix_ms = Some(now - 3 * MINUTE + 1);
        assert!(readiness(&status, now, 0).is_empty());
        status.last_success_unix_ms = Some(now - 3 * MINUTE);
        let reasons = readiness(&status, now, 0);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("180 s"), "{reasons:?}");
        // A success "in the future" (clock stepped back) is fresh.
        status.last_success_unix_ms = Some(now + MINUTE);
        assert!(readiness(&status, now, 0).is_empty());
        // An old success (read back after a restart) is excused while the start is recent.
        status.last_success_unix_ms = Some(now - 60 * MINUTE);
        assert!(readiness(&status, now, now - 2 * MINUTE).is_empty());
        assert_eq!(readiness(&status, now, now - 3 * MINUTE).len(), 1);
    }

    #[test]
    fn readiness_before_the_first_success_counts_from_the_start() {
        let now = 100 * MINUTE;
        let status = loaded();
        assert!(readiness(&status, now, now - 2 * MINUTE).is_empty());
        let reasons = readiness(&status, now, now - 3 * MINUTE);
        assert!(reasons[0].contains("no successful cycle"), "{reasons:?}");
    }
}
