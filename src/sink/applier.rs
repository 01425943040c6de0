//! The journaled applier: how any [`Target`] takes a plan safely, written once.
//!
//! A write to the SBC or to Live Platform is where a mistake unroutes calls, so this is where
//! the rules of DESIGN.md §6 are kept, for both targets alike:
//! - nothing is sent before the ownership guard passed and the plan is journaled;
//! - ops go in plan order (make-before-break), `batch_size` per request, each batch marked in
//!   flight before its request and done after;
//! - a request that certainly did not act is sent again within the retry budget; one that may
//!   have acted is never resent blindly: the target is read, what it shows is marked done, and
//!   only the rest is sent again;
//! - a refused batch is sent again op by op to find the refused op, which is quarantined with
//!   the target's reason, and every later op that depends on it is held back ([`Withheld`]);
//! - an error after which some op may have landed leaves the journal unfinished, and
//!   [`settle`] resolves it against a fresh read before anything else is written.

use super::control::ApplyControl;
use super::dial_plan::DeviceDialPlan;
use super::error::SinkError;
use super::report::{ApplyReport, SettleReport};
use super::target::{Answer, Attempt, Target};
use super::withheld::Withheld;
use crate::error::{Classify, ErrorClass};
use crate::net::backoff::Backoff;
use crate::net::retry::{self, next_attempt, retry};
use crate::plan::{Op, Plan};
use crate::store::{OpState, PlanId, Store};

/// The applier's entry points as methods of every [`Target`], so each sink is used the same way
/// (`sink.apply(...)`, `sink.settle_unfinished(...)`). It lives here, not on `Target`, so that
/// the trait a target implements does not depend on the engine that drives it.
#[allow(async_fn_in_trait)] // Used on concrete sinks, never as a trait object.
pub trait Apply: Target + Sized {
    /// Applies `plan` to the dial plan read as `read`; see [`apply`].
    async fn apply(
        &self,
        store: &mut Store,
        plan: &Plan,
        read: &DeviceDialPlan,
    ) -> Result<ApplyReport, SinkError> {
        apply(self, store, plan, read, &ApplyControl::default()).await
    }

    /// [`Apply::apply`], stopping between batches once `stop` is requested.
    async fn apply_until(
        &self,
        store: &mut Store,
        plan: &Plan,
        read: &DeviceDialPlan,
        stop: &ApplyControl,
    ) -> Result<ApplyReport, SinkError> {
        apply(self, store, plan, read, stop).await
    }

    /// Settles a journal a crash left unfinished; see [`settle`].
    async fn settle_unfinished(
        &self,
        store: &mut Store,
    ) -> Result<Option<SettleReport>, SinkError> {
        settle(self, store).await
    }
}

impl<T: Target> Apply for T {}

/// Applies `plan` through `target` to the dial plan read as `read`, journaled in `store`,
/// stopping between batches once `stop` is requested (the batch in flight completes, the
/// journal is finished as `stopped`, and the ops not sent are left for the next cycle's fresh
/// plan).
///
/// On an error after which some op may have landed, the journal is left unfinished:
/// [`settle`] resolves it, and apply refuses until it has.
pub async fn apply<T: Target>(
    target: &T,
    store: &mut Store,
    plan: &Plan,
    read: &DeviceDialPlan,
    stop: &ApplyControl,
) -> Result<ApplyReport, SinkError> {
    target.writable(read)?;
    let writes = target.writes();
    read.guard(plan, &writes.rule_name, writes.adopt_foreign)?;
    if let Some(unfinished) = store.unfinished_journal()? {
        return Err(SinkError::Unsettled {
            plan: unfinished.id,
        });
    }
    let first_request = target.requests();
    let mut report = ApplyReport::default();
    if plan.ops.is_empty() {
        report.saved = target.finish(read, false).await?;
        report.requests = target.requests() - first_request;
        return Ok(report);
    }
    let id = store.journal_begin(&plan.checksum, &plan.ops)?;
    let mut run = Run {
        target,
        store,
        plan,
        read,
        id,
        report,
        withheld: Withheld::new(target.target_name()),
    };
    let batch_size = target.writes().batch_size;
    for (number, chunk) in plan.ops.chunks(batch_size).enumerate() {
        stop.record_progress(run.settled(), plan.ops.len());
        if stop.requested() {
            run.report.stopped = true;
            break;
        }
        run.report.batches += 1;
        let first = number * batch_size;
        let mut seqs: Vec<usize> = Vec::with_capacity(chunk.len());
        for seq in first..first + chunk.len() {
            match run.withheld.blocking(&plan.ops[seq]) {
                Some(reason) => run.quarantine(seq, reason)?,
                None => seqs.push(seq),
            }
        }
        if !seqs.is_empty() {
            run.batch(&seqs).await?;
        }
    }
    stop.record_progress(run.settled(), plan.ops.len());
    let mut report = run.report;
    let outcome = if report.stopped {
        "stopped"
    } else if report.quarantined.is_empty() {
        "applied"
    } else {
        "partial"
    };
    // The journal covers the dial-plan ops, all settled now. A save that fails after this
    // leaves `saveNeeded` set on the SBC, and the next cycle saves even with no ops.
    store.journal_finish(id, outcome)?;
    report.saved = target.finish(read, true).await?;
    report.requests = target.requests() - first_request;
    Ok(report)
}

/// Settles a journal that a crash (or an error with an unknown outcome) left unfinished.
///
/// Ops in flight at the crash may or may not have reached the target, and pending ones
/// certainly did not, but replaying either blindly is wrong: a replayed delete of a rule
/// already gone is refused, a replayed add may land on an index someone has since reused, and
/// the desired state itself may have moved on. So the target is read, and each op not yet
/// confirmed is marked done when the read shows its effect, and left as it was otherwise. The
/// journal is then finished as `settled`. Nothing is written: the next cycle plans afresh from
/// what the target now holds, so whatever the crashed plan did not do is planned again,
/// exactly once.
pub async fn settle<T: Target>(
    target: &T,
    store: &mut Store,
) -> Result<Option<SettleReport>, SinkError> {
    let Some(journal) = store.unfinished_journal()? else {
        return Ok(None);
    };
    let now = target.read().await?;
    let mut report = SettleReport {
        plan: journal.id,
        already_done: 0,
        confirmed: 0,
        not_applied: 0,
        failed: 0,
    };
    for entry in &journal.ops {
        match entry.state {
            OpState::Done => report.already_done += 1,
            OpState::Failed => report.failed += 1,
            OpState::Pending | OpState::InFlight => {
                if target.shows(&entry.op, &now, None) {
                    store.journal_mark_done(journal.id, entry.seq)?;
                    report.confirmed += 1;
                } else {
                    report.not_applied += 1;
                }
            }
        }
    }
    store.journal_finish(journal.id, "settled")?;
    Ok(Some(report))
}

/// One apply in progress.
struct Run<'a, T> {
    target: &'a T,
    store: &'a mut Store,
    plan: &'a Plan,
    /// The read the plan was made from.
    read: &'a DeviceDialPlan,
    id: PlanId,
    report: ApplyReport,
    withheld: Withheld,
}

/// How a batch ended.
enum Outcome {
    /// Every op is confirmed and marked done.
    Applied,
    /// The target refused it; the listed ops are still unconfirmed (the others were found
    /// applied while verifying and are marked done).
    Refused {
        reason: String,
        unconfirmed: Vec<usize>,
    },
}

/// A batch that did not land, and whether any of its ops might have.
struct Failure {
    error: SinkError,
    /// Some op may have reached the target: only a read can tell.
    uncertain: bool,
    /// When certain: the ops of the batch not confirmed.
    unconfirmed: Vec<usize>,
}

impl Failure {
    /// A failure that leaves the outcome open; the journal then waits to be settled.
    fn uncertain(error: SinkError) -> Failure {
        Failure {
            error,
            uncertain: true,
            unconfirmed: Vec::new(),
        }
    }
}

impl<T: Target> Run<'_, T> {
    /// Ops confirmed or set aside so far.
    fn settled(&self) -> usize {
        self.report.applied + self.report.quarantined.len()
    }

    /// Sends ops `seqs` as one batch; a refused batch is sent again op by op, in plan order,
    /// to find the refused ops, holding back those that depend on one.
    async fn batch(&mut self, seqs: &[usize]) -> Result<(), SinkError> {
        let (reason, unconfirmed) = match self.send(seqs).await {
            Ok(Outcome::Applied) => {
                self.report.applied += seqs.len();
                return Ok(());
            }
            Ok(Outcome::Refused {
                reason,
                unconfirmed,
            }) => (reason, unconfirmed),
            Err(failure) => return Err(self.abandon(failure, &[])),
        };
        self.report.applied += seqs.len() - unconfirmed.len();
        if let [only] = unconfirmed[..] {
            self.withheld.refused(&self.plan.ops[only]);
            return self.quarantine(only, reason);
        }
        // One op spoilt the batch (each target applies a batch all or nothing): find it by
        // sending the ops one by one.
        for (position, &seq) in unconfirmed.iter().enumerate() {
            if let Some(reason) = self.withheld.blocking(&self.plan.ops[seq]) {
                self.quarantine(seq, reason)?;
                continue;
            }
            match self.send(&[seq]).await {
                Ok(Outcome::Applied) => self.report.applied += 1,
                Ok(Outcome::Refused { reason, .. }) => {
                    self.withheld.refused(&self.plan.ops[seq]);
                    self.quarantine(seq, reason)?;
                }
                Err(failure) => return Err(self.abandon(failure, &unconfirmed[position + 1..])),
            }
        }
        Ok(())
    }

    /// Sends ops `seqs` as one request until the target confirms or refuses it, retrying what
    /// cannot have landed and reading back what might have.
    async fn send(&mut self, seqs: &[usize]) -> Result<Outcome, Failure> {
        let mut remaining: Vec<usize> = seqs.to_vec();
        let mut backoff = self.target.writes().backoff();
        // Set when a request may have acted without saying so: read before sending again.
        let mut verify = false;
        loop {
            if verify {
                remaining = self
                    .not_shown(remaining, &mut backoff)
                    .await
                    .map_err(Failure::uncertain)?;
                verify = false;
                if remaining.is_empty() {
                    return Ok(Outcome::Applied);
                }
            }
            let marks: Vec<u32> = remaining.iter().map(|&seq| seq as u32).collect();
            self.store
                .journal_mark_batch_in_flight(self.id, &marks)
                .map_err(|e| Failure::uncertain(e.into()))?;
            let ops: Vec<&Op> = remaining.iter().map(|&seq| &self.plan.ops[seq]).collect();
            match self.target.send(&ops, self.read).await {
                Ok(Answer::Applied) => {
                    self.store
                        .journal_mark_batch_done(self.id, &marks)
                        .map_err(|e| Failure::uncertain(e.into()))?;
                    return Ok(Outcome::Applied);
                }
                Ok(Answer::Refused(reason)) => {
                    return Ok(Outcome::Refused {
                        reason,
                        unconfirmed: remaining,
                    })
                }
                // One read tells what became of it. Whatever the target does not show was
                // refused; nothing is sent again blindly.
                Ok(Answer::Unstated(output)) => {
                    let unconfirmed = self
                        .not_shown(remaining, &mut backoff)
                        .await
                        .map_err(Failure::uncertain)?;
                    if unconfirmed.is_empty() {
                        return Ok(Outcome::Applied);
                    }
                    return Ok(Outcome::Refused {
                        reason: format!(
                            "{} answered without a status and does not show the change; its \
                             output: {}",
                            self.target.target_name(),
                            crate::net::preview::truncate(&output)
                        ),
                        unconfirmed,
                    });
                }
                Err(failed) => {
                    // Any earlier unknown outcome was resolved by the read before this send,
                    // so only this one can leave the batch's outcome open.
                    let uncertain = matches!(failed, Attempt::Unknown(_));
                    verify |= uncertain;
                    if let Err(gave_up) = next_attempt(&mut backoff, failed.retried()).await {
                        let error = SinkError::from(gave_up);
                        if uncertain {
                            return Err(Failure::uncertain(error));
                        }
                        return Err(Failure {
                            error,
                            uncertain: false,
                            unconfirmed: remaining,
                        });
                    }
                }
            }
        }
    }

    /// Reads the target (a transient failure is retried within `backoff`, as a target that
    /// just failed a write often fails a read or two too), marks done the ops of `seqs` whose
    /// effect the read shows, and returns the others.
    async fn not_shown(
        &mut self,
        seqs: Vec<usize>,
        backoff: &mut Backoff,
    ) -> Result<Vec<usize>, SinkError> {
        let target = self.target;
        let now = retry(backoff, || async {
            target.read().await.map_err(|error| match error.class() {
                ErrorClass::Transient => retry::Attempt::Again {
                    error,
                    retry_after: None,
                },
                _ => retry::Attempt::Stop(error),
            })
        })
        .await?;
        let mut still = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if self
                .target
                .shows(&self.plan.ops[seq], &now, Some(self.read))
            {
                self.store.journal_mark_done(self.id, seq as u32)?;
            } else {
                still.push(seq);
            }
        }
        Ok(still)
    }

    /// Records a refused op and carries on.
    fn quarantine(&mut self, seq: usize, reason: String) -> Result<(), SinkError> {
        self.store
            .journal_mark_failed(self.id, seq as u32, &reason)?;
        self.report
            .quarantined
            .push((self.plan.ops[seq].clone(), reason));
        Ok(())
    }

    /// Ends an apply on an error. When the batch's ops certainly did not land they are marked
    /// failed (with `not_sent`, the ops of a split batch still to go) and the journal is
    /// finished as `failed`; the plan's later batches were never sent and stay pending in it,
    /// which is what they are. When they may have landed, the journal stays unfinished for
    /// [`settle`] to resolve against a read.
    fn abandon(&mut self, failure: Failure, not_sent: &[usize]) -> SinkError {
        if failure.uncertain {
            return failure.error;
        }
        let reason = failure.error.to_string();
        let recorded = failure
            .unconfirmed
            .iter()
            .chain(not_sent)
            .try_for_each(|&seq| self.store.journal_mark_failed(self.id, seq as u32, &reason))
            .and_then(|()| self.store.journal_finish(self.id, "failed"));
        // The target's error is what the caller needs; a journal that cannot record it stays
        // unfinished and is settled against the target on the next start, which is safe.
        let _ = recorded;
        failure.error
    }
}
