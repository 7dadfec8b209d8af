//! Per-user quotas ([`Quotas`]): how many usage events and model invocations one user may send
//! per minute, so that one signed-in user (or a script with their token) cannot fill the
//! database with events or the inference history, or spend the model endpoints' capacity.
//!
//! Each quota is a GCRA rate limiter (governor) keyed by the caller's `UserId`: `n` per minute
//! replenished continuously (one every `60 s / n`), with a burst of `n`, so an idle user may
//! send `n` at once. Usage events count one per event, not per request (a batch of 1 000 uses
//! 1 000), and a batch is all-or-nothing; an invocation counts one. The check runs after the
//! request is validated (an invalid request uses nothing) and before anything is stored or
//! any upstream call is made. Over quota: `429 RATE_LIMITED` with `detail.quota`
//! ([`QuotaName`]) and `Retry-After`, the whole seconds (rounded up, at least 1) until the
//! request would fit; counted in `quota_rejections_total{quota}`. A batch larger than the
//! quota's burst could never fit, so it is `400 INVALID_REQUEST` instead of a 429 a client would
//! retry forever. Quotas are per server process: with several replicas a user gets that much
//! per replica. A request that fails after the check (the database down, the model failing)
//! has still used its share: the quota bounds attempts, not successes.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DBAPP_QUOTA_USAGE_EVENTS_PER_MINUTE` | `1200` | usage events per user per minute (and the burst); `0`: no quota. Below 1 000 (the largest batch) full batches are refused |
//! | `DBAPP_QUOTA_INVOCATIONS_PER_MINUTE` | `120` | model invocations per user per minute (and the burst); `0`: no quota |
//!
//! Memory: one entry per user who used a quota and whose use is not yet indistinguishable from
//! no use at all (at most one minute after their last request). Every
//! [`HOUSEKEEPING_EVERY`]th check removes the others (`retain_recent`), so idle users do not
//! accumulate; with no checks, nothing is added either.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use dbapp_store::UserId;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;
use crate::metrics::{Metrics, QUOTA_REJECTIONS_TOTAL};

/// Checks between two removals of idle users' entries.
pub const HOUSEKEEPING_EVERY: u64 = 1024;

/// Which quota; its `as_str` is `detail.quota` and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaName {
    /// `usage_events`: usage events, one per event.
    UsageEvents,
    /// `invocations`: model invocations.
    Invocations,
}

impl QuotaName {
    /// The wire name, e.g. `usage_events`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsageEvents => "usage_events",
            Self::Invocations => "invocations",
        }
    }
}

/// The per-user quotas of a server (see the module header).
#[derive(Debug)]
pub struct Quotas {
    usage_events: Option<Limiter>,
    invocations: Option<Limiter>,
    metrics: Metrics,
}

impl Quotas {
    /// Quotas of `usage_events_per_minute` and `invocations_per_minute` per user (`0`: none),
    /// counting rejections into `metrics`.
    #[must_use]
    pub fn new(
        usage_events_per_minute: u32,
        invocations_per_minute: u32,
        metrics: Metrics,
    ) -> Self {
        Self {
            usage_events: Limiter::per_minute(usage_events_per_minute, DefaultClock::default()),
            invocations: Limiter::per_minute(invocations_per_minute, DefaultClock::default()),
            metrics,
        }
    }

    /// Uses one of `user`'s invocations (a model invocation or a chat turn).
    ///
    /// # Errors
    /// As [`Quotas::check`].
    pub fn check_invocation(&self, user: &UserId) -> Result<(), ApiError> {
        self.check(QuotaName::Invocations, user, NonZeroU32::MIN, "body")
    }

    /// Uses `n` of `user`'s `quota`, all or nothing.
    ///
    /// # Errors
    /// `429 RATE_LIMITED` ([`ApiError::QuotaExceeded`]) when the user is over the quota, and
    /// `400 INVALID_REQUEST` on `field` when `n` is more than the quota allows at once.
    pub fn check(
        &self,
        quota: QuotaName,
        user: &UserId,
        n: NonZeroU32,
        field: &str,
    ) -> Result<(), ApiError> {
        let limiter = match quota {
            QuotaName::UsageEvents => &self.usage_events,
            QuotaName::Invocations => &self.invocations,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check(user.as_str(), n).map_err(|refusal| match refusal {
            Refusal::Wait { retry_after } => {
                self.metrics
                    .count(QUOTA_REJECTIONS_TOTAL, &[("quota", quota.as_str())], 1);
                ApiError::QuotaExceeded {
                    quota: quota.as_str(),
                    per_minute: limiter.per_minute,
                    retry_after,
                }
            }
            Refusal::TooMany => ApiError::invalid(
                field,
                format!(
                    "holds more than the {} per minute the {} quota allows at once; send smaller batches",
                    limiter.per_minute,
                    quota.as_str()
                ),
            ),
        })
    }
}

/// Why a check failed.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Over quota now; it would fit in `retry_after` whole seconds (at least 1).
    Wait { retry_after: u64 },
    /// More than the burst: it can never fit.
    TooMany,
}

/// One keyed limiter and its housekeeping counter.
struct Limiter<C: Clock = DefaultClock> {
    limiter: RateLimiter<String, DefaultKeyedStateStore<String>, C, NoOpMiddleware<C::Instant>>,
    per_minute: u32,
    checks: AtomicU64,
}

impl<C: Clock> std::fmt::Debug for Limiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("per_minute", &self.per_minute)
            .field("users", &self.limiter.len())
            .finish()
    }
}

impl<C: Clock> Limiter<C> {
    /// `None` for `0` (no quota).
    fn per_minute(per_minute: u32, clock: C) -> Option<Self> {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute)?);
        Some(Self {
            limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock),
            per_minute,
            checks: AtomicU64::new(0),
        })
    }

    fn check(&self, user: &str, n: NonZeroU32) -> Result<(), Refusal> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % HOUSEKEEPING_EVERY
            == HOUSEKEEPING_EVERY - 1
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        match self.limiter.check_key_n(&user.to_owned(), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                // Whole seconds, rounded up: a client that waits `Retry-After` then fits.
                let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(Refusal::Wait {
                    retry_after: retry_after.max(1),
                })
            }
            Err(_) => Err(Refusal::TooMany),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn n(value: u32) -> NonZeroU32 {
        NonZeroU32::new(value).unwrap()
    }

    #[test]
    fn a_burst_fits_then_the_next_one_waits_for_its_share_of_the_minute() {
        // Arrange: 60 per minute, one back every second.
        let clock = FakeRelativeClock::default();
        let limiter = Limiter::per_minute(60, clock.clone()).unwrap();

        // Act
        let burst = limiter.check("alice", n(60));
        let next = limiter.check("alice", n(1));
        let five_more = limiter.check("alice", n(5));
        let other_user = limiter.check("bob", n(60));
        clock.advance(Duration::from_millis(5_000));
        let after_waiting = limiter.check("alice", n(5));

        // Assert
        assert_eq!(burst, Ok(()));
        assert_eq!(next, Err(Refusal::Wait { retry_after: 1 }));
        assert_eq!(five_more, Err(Refusal::Wait { retry_after: 5 }));
        assert_eq!(other_user, Ok(()));
        assert_eq!(after_waiting, Ok(()));
    }

    #[test]
    fn a_partial_second_rounds_up_and_more_than_the_burst_never_fits() {
        // Arrange: 120 per minute, one back every half second.
        let clock = FakeRelativeClock::default();
        let limiter = Limiter::per_minute(120, clock.clone()).unwrap();
        limiter.check("alice", n(120)).unwrap();

        // Act
        let one = limiter.check("alice", n(1));
        let too_many = limiter.check("bob", n(121));

        // Assert
        assert_eq!(one, Err(Refusal::Wait { retry_after: 1 }));
        assert_eq!(too_many, Err(Refusal::TooMany));
        assert!(Limiter::per_minute(0, clock).is_none());
    }

    #[test]
    fn idle_users_are_forgotten_by_the_periodic_housekeeping() {
        // Arrange: many users once each, then a minute and more of quiet.
        let clock = FakeRelativeClock::default();
        let limiter = Limiter::per_minute(60, clock.clone()).unwrap();
        for user in 0..HOUSEKEEPING_EVERY - 1 {
            limiter.check(&format!("user-{user}"), n(1)).unwrap();
        }
        let before = limiter.limiter.len();
        clock.advance(Duration::from_secs(61));

        // Act: the check that triggers the housekeeping.
        limiter.check("active", n(1)).unwrap();

        // Assert
        assert_eq!(before, usize::try_from(HOUSEKEEPING_EVERY - 1).unwrap());
        assert_eq!(limiter.limiter.len(), 1);
    }
}
