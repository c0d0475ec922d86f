//! The retry policy: exponential backoff with full jitter and a cap; non-retriable errors fail
//! at once.

use crate::rng::Rng;
use crate::{CoreError, Millis};

/// How failed attempts are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retry at all (`autoRetry`).
    pub auto_retry: bool,
    /// The first retry's delay ceiling (`retryDelay`).
    pub base_delay_ms: Millis,
    /// Retries after the first attempt (`maxRetryAttempts`): 4 retries = 5 attempts.
    pub max_retries: u32,
    /// No delay ceiling grows past this.
    pub max_delay_ms: Millis,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            auto_retry: true,
            base_delay_ms: 1_000,
            max_retries: 4,
            max_delay_ms: 30_000,
        }
    }
}

/// How an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Might work later: retried under the policy.
    Retryable,
    /// Will never work (`NonRetriableError`, a rejected write): fail at once.
    NonRetriable,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again at this time.
    RetryAt(Millis),
    /// Give up: the transaction fails.
    GiveUp,
}

impl RetryPolicy {
    /// Checks the values are usable.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.max_delay_ms < self.base_delay_ms {
            return Err(CoreError::InvalidConfig(format!(
                "the maximum retry delay ({} ms) is below retryDelay ({} ms)",
                self.max_delay_ms, self.base_delay_ms
            )));
        }
        Ok(())
    }

    /// The delay ceiling before retry number `retry` (1-based): `base * 2^(retry-1)`, capped.
    pub fn ceiling(&self, retry: u32) -> Millis {
        let exp = retry.saturating_sub(1).min(63);
        self.base_delay_ms
            .saturating_mul(1u64 << exp)
            .min(self.max_delay_ms)
    }

    /// Decides after the `failures`-th counted failure (1-based) of kind `kind` at `now`:
    /// full jitter draws the delay uniformly from `0..=ceiling(failures)`.
    pub fn decide(
        &self,
        failures: u32,
        kind: FailureKind,
        now: Millis,
        rng: &mut Rng,
    ) -> RetryDecision {
        if kind == FailureKind::NonRetriable || !self.auto_retry || failures > self.max_retries {
            return RetryDecision::GiveUp;
        }
        RetryDecision::RetryAt(now + rng.up_to(self.ceiling(failures)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_the_exponential_ceiling_and_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(
            (1..=7).map(|n| policy.ceiling(n)).collect::<Vec<_>>(),
            [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]
        );
        let mut rng = Rng::new(7);
        for failures in 1..=4 {
            let mut seen_low = false;
            let mut seen_high = false;
            for _ in 0..2_000 {
                let RetryDecision::RetryAt(at) =
                    policy.decide(failures, FailureKind::Retryable, 100, &mut rng)
                else {
                    panic!("retry {failures} should be scheduled");
                };
                let delay = at - 100;
                assert!(delay <= policy.ceiling(failures));
                seen_low |= delay < policy.ceiling(failures) / 4;
                seen_high |= delay > policy.ceiling(failures) * 3 / 4;
            }
            assert!(seen_low && seen_high, "full jitter spans the range");
        }
    }

    #[test]
    fn four_retries_mean_five_attempts_then_give_up() {
        let policy = RetryPolicy::default();
        let mut rng = Rng::new(1);
        for failures in 1..=4 {
            assert!(matches!(
                policy.decide(failures, FailureKind::Retryable, 0, &mut rng),
                RetryDecision::RetryAt(_)
            ));
        }
        assert_eq!(
            policy.decide(5, FailureKind::Retryable, 0, &mut rng),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn non_retriable_errors_and_disabled_retry_give_up_at_once() {
        let mut rng = Rng::new(1);
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.decide(1, FailureKind::NonRetriable, 0, &mut rng),
            RetryDecision::GiveUp
        );
        let off = RetryPolicy {
            auto_retry: false,
            ..policy
        };
        assert_eq!(
            off.decide(1, FailureKind::Retryable, 0, &mut rng),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn a_cap_below_the_base_is_rejected() {
        let policy = RetryPolicy {
            max_delay_ms: 10,
            ..RetryPolicy::default()
        };
        assert!(policy.validate().is_err());
    }
}
