//! The one retry loop: send, and while the failure may pass, wait as [`Backoff`] says (or as
//! long as the server's `Retry-After` asks, within the budget) and send again.
//!
//! What may pass is the caller's to say, attempt by attempt, usually from the
//! [`Verdict`](super::verdict::Verdict) of the outcome. [`retry`] is the whole loop;
//! [`next_attempt`] is its one step, for a caller with more to do between two attempts (a
//! sink that must read the device back after an unknown outcome).

use std::future::Future;
use std::time::Duration;

use reqwest::header::RETRY_AFTER;

use super::backoff::Backoff;

/// The `Retry-After` of a response, in delta seconds. An HTTP date is not honoured: the
/// computed backoff applies instead.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// How one attempt failed, as the loop needs to know it.
#[derive(Debug)]
pub enum Attempt<E> {
    /// May pass: send again after `retry_after` when the server asked for a wait, else after
    /// the backoff's own.
    Again {
        error: E,
        retry_after: Option<Duration>,
    },
    /// Cannot pass: give up at once.
    Stop(E),
}

/// Why the loop gave up.
#[derive(Debug)]
pub enum GaveUp<E> {
    /// An attempt said no retry could help.
    Final(E),
    /// The retry budget is spent, and this is the last attempt's error.
    Exhausted {
        error: E,
        /// Attempts made, all failed.
        attempts: u32,
        /// Time spent since the budget started.
        waited: Duration,
        /// The server's last `Retry-After`: when past the budget, the wait that ended it.
        asked: Option<Duration>,
    },
}

impl<E> GaveUp<E> {
    /// The last attempt's error.
    pub fn into_error(self) -> E {
        match self {
            GaveUp::Final(error) | GaveUp::Exhausted { error, .. } => error,
        }
    }
}

/// Calls `attempt` until it succeeds, says [`Attempt::Stop`], or `backoff`'s budget would be
/// passed by the next wait ([`next_attempt`]).
///
/// Each call of `attempt` makes a fresh future, which may borrow what the caller holds but
/// not the closure itself. A caller that must carry state from one attempt to the next (a
/// sink that reads the device back after an unknown outcome) writes its own `loop` around
/// [`next_attempt`] instead.
pub async fn retry<T, E, Sent>(
    backoff: &mut Backoff,
    mut attempt: impl FnMut() -> Sent,
) -> Result<T, GaveUp<E>>
where
    Sent: Future<Output = Result<T, Attempt<E>>>,
{
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(failed) => next_attempt(backoff, failed).await?,
        }
    }
}

/// After a failed attempt: waits as long as `backoff` says (or the server's `Retry-After`)
/// and returns `Ok`, meaning "send again now"; or gives up, when the failure is final or the
/// wait would pass the budget. A `Retry-After` longer than what is left of the budget gives
/// up at once rather than sleeping into the next cycle: the caller reports the server's
/// wish, and the next cycle tries again.
pub async fn next_attempt<E>(backoff: &mut Backoff, failed: Attempt<E>) -> Result<(), GaveUp<E>> {
    match failed {
        Attempt::Stop(error) => Err(GaveUp::Final(error)),
        Attempt::Again { error, retry_after } => match backoff.next(retry_after) {
            Some(wait) => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            None => Err(GaveUp::Exhausted {
                error,
                attempts: backoff.attempts(),
                waited: backoff.elapsed(),
                asked: retry_after,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Instant;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test]
    async fn gives_up_when_the_budget_is_spent() {
        let mut backoff = Backoff::new(ms(10), ms(40), ms(300));
        let calls = Cell::new(0u32);
        let started = Instant::now();
        let result: Result<(), _> = retry(&mut backoff, || {
            calls.set(calls.get() + 1);
            let error = calls.get();
            async move {
                Err(Attempt::Again {
                    error,
                    retry_after: None,
                })
            }
        })
        .await;
        let Err(GaveUp::Exhausted {
            error,
            attempts,
            waited,
            asked,
        }) = result
        else {
            panic!("{result:?}")
        };
        assert_eq!(error, calls.get(), "the last attempt's error");
        assert_eq!(attempts, calls.get());
        assert!(
            calls.get() >= 4,
            "retried until the budget: {}",
            calls.get()
        );
        assert!(waited <= ms(300) + ms(100), "{waited:?}");
        assert!(started.elapsed() < ms(1000), "{:?}", started.elapsed());
        assert_eq!(asked, None);
    }

    #[tokio::test]
    async fn honours_retry_after_within_the_budget() {
        let mut backoff = Backoff::new(ms(1), ms(1), Duration::from_secs(5));
        let calls = Cell::new(0u32);
        let started = Instant::now();
        let result = retry(&mut backoff, || {
            calls.set(calls.get() + 1);
            let first = calls.get() == 1;
            async move {
                if first {
                    return Err(Attempt::Again {
                        error: "busy",
                        retry_after: Some(ms(300)),
                    });
                }
                Ok("done")
            }
        })
        .await;
        assert_eq!(result.unwrap(), "done");
        assert_eq!(calls.get(), 2);
        assert!(
            started.elapsed() >= ms(300),
            "waited as the server asked, not the 1 ms backoff: {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_retry_after_past_the_budget_ends_at_once() {
        let mut backoff = Backoff::new(ms(1), ms(1), Duration::from_secs(1));
        let calls = Cell::new(0u32);
        let started = Instant::now();
        let result: Result<(), _> = retry(&mut backoff, || {
            calls.set(calls.get() + 1);
            async {
                Err(Attempt::Again {
                    error: "busy",
                    retry_after: Some(Duration::from_secs(30)),
                })
            }
        })
        .await;
        assert_eq!(calls.get(), 1, "no second attempt");
        assert!(started.elapsed() < ms(500), "no sleep into the budget");
        match result {
            Err(GaveUp::Exhausted {
                error,
                attempts,
                asked,
                ..
            }) => {
                assert_eq!((error, attempts), ("busy", 1));
                assert_eq!(
                    asked,
                    Some(Duration::from_secs(30)),
                    "what the server asked"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_final_failure_is_not_retried() {
        let mut backoff = Backoff::new(ms(1), ms(1), Duration::from_secs(5));
        let calls = Cell::new(0u32);
        let result: Result<(), _> = retry(&mut backoff, || {
            calls.set(calls.get() + 1);
            async { Err(Attempt::Stop("refused")) }
        })
        .await;
        assert_eq!(calls.get(), 1);
        assert!(
            matches!(result, Err(GaveUp::Final("refused"))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_loop_of_its_own_waits_the_same_way() {
        // What a caller with state between attempts writes instead of `retry`.
        let mut backoff = Backoff::new(ms(1), ms(1), Duration::from_secs(1));
        let mut verified = 0;
        let mut outcome = Err(Attempt::Again {
            error: "unknown",
            retry_after: None,
        });
        while let Err(failed) = outcome {
            next_attempt(&mut backoff, failed)
                .await
                .expect("within budget");
            verified += 1;
            outcome = if verified < 3 {
                Err(Attempt::Again {
                    error: "unknown",
                    retry_after: None,
                })
            } else {
                Ok(())
            };
        }
        assert_eq!(verified, 3);
        let gave_up = next_attempt(&mut backoff, Attempt::Stop(7)).await;
        assert_eq!(gave_up.unwrap_err().into_error(), 7);
    }
}
