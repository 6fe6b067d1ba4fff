//! The upload lifecycle as a pure function.
//!
//! A job's state is never stored and mutated; it is recomputed on every poll from three inputs:
//! the job's [`Timeline`], the time elapsed since the upload, and the number of polls already
//! answered. Nothing here reads a clock or touches HTTP, so the same inputs always give the same
//! state, and a test can ask "what does the third poll see after two seconds?" without a server.
//!
//! A timeline is a list of steps followed by an outcome. Each step ends when *any* of its limits is
//! reached (elapsed time since the upload, or polls answered since the upload); limits are
//! cumulative, so a step's limits are never below the previous step's. A step with no limits never
//! ends, which is how a job gets stuck.
//!
//! The names are ours: `Queued`/`Processing` are Fansly's `waiting`/`active` and OnlyFans'
//! `pending`/`processing`; the provider spellings live in each provider's `wire` module.

use std::sync::Arc;
use std::time::Duration;

/// A non-terminal phase of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted and waiting for a worker.
    Queued,
    /// A worker is transcoding or uploading it to the CDN.
    Processing,
}

/// When a step ends: whichever limit is reached first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Until {
    /// Elapsed time since the upload at which the step ends.
    pub elapsed: Option<Duration>,
    /// Number of polls answered since the upload after which the step ends.
    pub polls: Option<u32>,
}

impl Until {
    /// Whether a job `elapsed` after its upload, with `n_polls` polls answered, is past this limit.
    fn is_reached(&self, elapsed: Duration, n_polls: u32) -> bool {
        self.elapsed.is_some_and(|limit| elapsed >= limit)
            || self.polls.is_some_and(|limit| n_polls >= limit)
    }

    fn is_never(&self) -> bool {
        self.elapsed.is_none() && self.polls.is_none()
    }
}

/// One stretch of a job's life before its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The phase the job reports during this step.
    pub phase: Phase,
    /// The progress (0–100) the job reports during this step.
    pub progress: u8,
    /// When the step ends.
    pub until: Until,
}

/// How a job ends once its last step is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The media is processed and its links are live.
    Completed,
    /// Processing failed; the reason is shown to the client verbatim.
    Failed {
        /// The provider's error text, e.g. "Failed to download file from the provided URL.";
        /// shared, so answering a poll never copies it.
        reason: Arc<str>,
    },
}

/// What a poll sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Still queued or processing.
    Running {
        /// Which phase.
        phase: Phase,
        /// Progress 0–100.
        progress: u8,
    },
    /// Done; media and links are available.
    Completed,
    /// Done and failed.
    Failed {
        /// The progress reached before failing.
        progress: u8,
        /// The error text shown to the client.
        reason: Arc<str>,
    },
}

impl JobState {
    /// Whether the job will never change again.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, JobState::Running { .. })
    }
}

/// Why a timeline was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimelineError {
    /// Progress is a percentage.
    #[error("step {step_idx}: progress {progress} is above 100")]
    ProgressAbove100 {
        /// Zero-based index of the step.
        step_idx: usize,
        /// The refused value.
        progress: u8,
    },
    /// Limits are cumulative; a smaller limit than the step before would end the step before it starts.
    #[error("step {step_idx}: its {limit} limit is below the previous step's")]
    LimitGoesBack {
        /// Zero-based index of the step.
        step_idx: usize,
        /// `"elapsed"` or `"polls"`.
        limit: &'static str,
    },
    /// A step that never ends must be the last one, or the steps after it are dead.
    #[error("step {step_idx} never ends, so the steps after it can never be reached")]
    UnreachableAfterEndless {
        /// Zero-based index of the endless step.
        step_idx: usize,
    },
}

/// A job's whole life: steps, then an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    steps: Vec<Step>,
    outcome: Outcome,
    /// The outcome waits for this many answered polls, even when every step is over.
    min_polls: u32,
}

impl Timeline {
    /// Checks that the steps can all be reached and builds the timeline.
    pub fn new(steps: Vec<Step>, outcome: Outcome) -> Result<Self, TimelineError> {
        let mut previous: Option<&Step> = None;
        for (step_idx, step) in steps.iter().enumerate() {
            if step.progress > 100 {
                return Err(TimelineError::ProgressAbove100 {
                    step_idx,
                    progress: step.progress,
                });
            }
            if let Some(previous) = previous {
                if previous.until.is_never() {
                    return Err(TimelineError::UnreachableAfterEndless {
                        step_idx: step_idx - 1,
                    });
                }
                if let (Some(before), Some(now)) = (previous.until.elapsed, step.until.elapsed) {
                    if now < before {
                        return Err(TimelineError::LimitGoesBack {
                            step_idx,
                            limit: "elapsed",
                        });
                    }
                }
                if let (Some(before), Some(now)) = (previous.until.polls, step.until.polls) {
                    if now < before {
                        return Err(TimelineError::LimitGoesBack {
                            step_idx,
                            limit: "polls",
                        });
                    }
                }
            }
            previous = Some(step);
        }
        Ok(Self {
            steps,
            outcome,
            min_polls: 0,
        })
    }

    /// A timeline with no steps: the job is terminal from its first poll, as a synchronous upload is.
    pub fn immediate(outcome: Outcome) -> Self {
        Self {
            steps: Vec::new(),
            outcome,
            min_polls: 0,
        }
    }

    /// The usual shape: `queued` in the queue, then processing for `processing` with progress rising
    /// in `n_progress_steps` equal stretches, then `outcome`.
    pub fn linear(
        queued: Duration,
        processing: Duration,
        n_progress_steps: u8,
        outcome: Outcome,
    ) -> Self {
        let n_progress_steps = n_progress_steps.clamp(1, 100);
        let mut steps = vec![Step {
            phase: Phase::Queued,
            progress: 0,
            until: Until {
                elapsed: Some(queued),
                polls: None,
            },
        }];
        for step_idx in 0..n_progress_steps {
            let ends_after =
                processing.mul_f64(f64::from(step_idx + 1) / f64::from(n_progress_steps));
            steps.push(Step {
                phase: Phase::Processing,
                progress: step_idx * (100 / n_progress_steps),
                until: Until {
                    elapsed: Some(queued + ends_after),
                    polls: None,
                },
            });
        }
        Self {
            steps,
            outcome,
            min_polls: 0,
        }
    }

    /// This timeline's outcome and number of processing steps, re-timed as [`Timeline::linear`]:
    /// how `--queue-time` and `--processing-time` override a fixture.
    pub fn retimed(&self, queued: Duration, processing: Duration) -> Self {
        let n_processing = self
            .steps
            .iter()
            .filter(|step| step.phase == Phase::Processing)
            .count();
        let n_progress_steps = u8::try_from(n_processing.clamp(1, 100)).unwrap_or(100);
        Self::linear(queued, processing, n_progress_steps, self.outcome.clone())
    }

    /// The same timeline with every elapsed limit multiplied by `factor` (poll limits kept):
    /// how the client grader runs a three-minute scenario in seconds. Negative or NaN factors
    /// count as zero.
    pub fn scaled(&self, factor: f64) -> Self {
        let factor = if factor.is_finite() && factor > 0.0 {
            factor
        } else {
            0.0
        };
        let steps = self
            .steps
            .iter()
            .map(|step| Step {
                until: Until {
                    elapsed: step.until.elapsed.map(|limit| {
                        Duration::try_from_secs_f64(limit.as_secs_f64() * factor)
                            .unwrap_or(Duration::MAX)
                    }),
                    polls: step.until.polls,
                },
                ..*step
            })
            .collect();
        Self {
            steps,
            outcome: self.outcome.clone(),
            min_polls: self.min_polls,
        }
    }

    /// The same timeline, but its outcome waits until at least `n_polls` polls were answered:
    /// the job holds its last step's state until then. This is how the client grader makes a
    /// compressed timeline still reach the faults aimed at a job's n-th poll (a 429 on the 2nd
    /// and 3rd), whatever the client's poll interval.
    pub fn with_min_polls(mut self, n_polls: u32) -> Self {
        self.min_polls = n_polls;
        self
    }

    /// How many answered polls the outcome waits for (0: none).
    pub fn min_polls(&self) -> u32 {
        self.min_polls
    }

    /// How long the steps last when every one ends by time: the elapsed limit of the last step.
    /// `None` for a job that never ends by time (a step with no time limit).
    pub fn duration(&self) -> Option<Duration> {
        match self.steps.last() {
            None => Some(Duration::ZERO),
            Some(last) => last.until.elapsed,
        }
    }

    /// A timeline that holds in `phase` at `progress` until forced again, then ends as `outcome`.
    pub fn pinned(phase: Phase, progress: u8, outcome: Outcome) -> Self {
        Self {
            steps: vec![Step {
                phase,
                progress: progress.min(100),
                until: Until::default(),
            }],
            outcome,
            min_polls: 0,
        }
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// How the job ends.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Replaces the outcome, keeping the steps: a failed `file_url` fetch fails the job at its end.
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// The state of a job `elapsed` after its upload, with `n_polls` polls already answered.
    pub fn state_at(&self, elapsed: Duration, n_polls: u32) -> JobState {
        let mut last_progress = 0;
        for step in &self.steps {
            if !step.until.is_reached(elapsed, n_polls) {
                return JobState::Running {
                    phase: step.phase,
                    progress: step.progress,
                };
            }
            last_progress = step.progress;
        }
        if n_polls < self.min_polls {
            return JobState::Running {
                phase: self
                    .steps
                    .last()
                    .map_or(Phase::Processing, |step| step.phase),
                progress: last_progress,
            };
        }
        match &self.outcome {
            Outcome::Completed => JobState::Completed,
            Outcome::Failed { reason } => JobState::Failed {
                progress: last_progress,
                reason: Arc::clone(reason),
            },
        }
    }

    /// When, after the upload, the job became terminal, given that it is terminal `elapsed` after its
    /// upload. The time limit of the last step is the answer when the job ended by time; when it ended
    /// by a poll, that poll happened no later than `elapsed`, so `elapsed` is the answer.
    pub fn finished_after(&self, elapsed: Duration) -> Duration {
        if self.min_polls > 0 {
            // It may have waited for a poll past its last step's limit.
            return elapsed;
        }
        match self.steps.last().and_then(|step| step.until.elapsed) {
            Some(limit) => limit.min(elapsed),
            None if self.steps.is_empty() => Duration::ZERO,
            None => elapsed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn step(phase: Phase, progress: u8, elapsed: Option<u64>, polls: Option<u32>) -> Step {
        Step {
            phase,
            progress,
            until: Until {
                elapsed: elapsed.map(secs),
                polls,
            },
        }
    }

    #[test]
    fn status_stays_queued_until_third_poll() {
        let timeline = Timeline::new(
            vec![step(Phase::Queued, 0, None, Some(2))],
            Outcome::Completed,
        )
        .unwrap();
        assert!(matches!(
            timeline.state_at(secs(100), 0),
            JobState::Running {
                phase: Phase::Queued,
                ..
            }
        ));
        assert!(matches!(
            timeline.state_at(secs(100), 1),
            JobState::Running {
                phase: Phase::Queued,
                ..
            }
        ));
        assert_eq!(timeline.state_at(secs(0), 2), JobState::Completed);
    }

    #[test]
    fn a_step_ends_at_whichever_limit_comes_first() {
        let timeline = Timeline::new(
            vec![step(Phase::Processing, 40, Some(10), Some(3))],
            Outcome::Completed,
        )
        .unwrap();
        assert!(!timeline.state_at(secs(9), 2).is_terminal());
        assert!(timeline.state_at(secs(10), 0).is_terminal());
        assert!(timeline.state_at(secs(0), 3).is_terminal());
    }

    #[test]
    fn the_outcome_waits_for_the_minimum_number_of_polls() {
        let timeline = Timeline::linear(secs(1), secs(2), 2, Outcome::Completed)
            .scaled(0.1)
            .with_min_polls(3);
        // Long past every step: still processing at its last progress until three polls.
        assert_eq!(
            timeline.state_at(secs(60), 2),
            JobState::Running {
                phase: Phase::Processing,
                progress: 50
            }
        );
        assert_eq!(timeline.state_at(secs(60), 3), JobState::Completed);
        // Time still drives the steps before that.
        assert!(matches!(
            timeline.state_at(Duration::ZERO, 0),
            JobState::Running {
                phase: Phase::Queued,
                ..
            }
        ));
        assert_eq!(timeline.scaled(2.0).min_polls(), 3);
    }

    #[test]
    fn failure_keeps_the_progress_it_reached() {
        let timeline = Timeline::new(
            vec![
                step(Phase::Queued, 0, Some(1), None),
                step(Phase::Processing, 60, Some(2), None),
            ],
            Outcome::Failed {
                reason: "boom".into(),
            },
        )
        .unwrap();
        assert_eq!(
            timeline.state_at(secs(2), 0),
            JobState::Failed {
                progress: 60,
                reason: "boom".into()
            }
        );
    }

    #[test]
    fn linear_progress_rises_and_completes_on_time() {
        let timeline = Timeline::linear(secs(1), secs(4), 4, Outcome::Completed);
        let progress_at = |ms: u64| match timeline.state_at(Duration::from_millis(ms), 0) {
            JobState::Running { progress, phase } => Some((phase, progress)),
            _ => None,
        };
        assert_eq!(progress_at(0), Some((Phase::Queued, 0)));
        assert_eq!(progress_at(1_000), Some((Phase::Processing, 0)));
        assert_eq!(progress_at(2_000), Some((Phase::Processing, 25)));
        assert_eq!(progress_at(4_999), Some((Phase::Processing, 75)));
        assert_eq!(progress_at(5_000), None);
        assert_eq!(timeline.finished_after(secs(60)), secs(5));
    }

    #[test]
    fn retiming_keeps_the_outcome_and_progress_steps() {
        let timeline =
            Timeline::linear(secs(1), secs(4), 4, Outcome::Failed { reason: "x".into() });
        let faster = timeline.retimed(Duration::ZERO, secs(2));
        assert_eq!(faster.steps().len(), timeline.steps().len());
        assert_eq!(faster.outcome(), timeline.outcome());
        assert!(faster.state_at(secs(2), 0).is_terminal());
        assert!(!timeline.state_at(secs(2), 0).is_terminal());
    }

    #[test]
    fn a_step_without_limits_never_ends() {
        let timeline = Timeline::new(
            vec![step(Phase::Processing, 50, None, None)],
            Outcome::Completed,
        )
        .unwrap();
        assert!(
            !timeline
                .state_at(secs(u64::from(u32::MAX)), u32::MAX)
                .is_terminal()
        );
    }

    #[test]
    fn refuses_steps_after_an_endless_one() {
        let err = Timeline::new(
            vec![
                step(Phase::Queued, 0, None, None),
                step(Phase::Processing, 50, Some(1), None),
            ],
            Outcome::Completed,
        )
        .unwrap_err();
        assert_eq!(err, TimelineError::UnreachableAfterEndless { step_idx: 0 });
    }

    #[test]
    fn refuses_limits_that_go_back() {
        let err = Timeline::new(
            vec![
                step(Phase::Queued, 0, Some(5), None),
                step(Phase::Processing, 50, Some(4), None),
            ],
            Outcome::Completed,
        )
        .unwrap_err();
        assert_eq!(
            err,
            TimelineError::LimitGoesBack {
                step_idx: 1,
                limit: "elapsed"
            }
        );
    }

    #[test]
    fn immediate_timeline_is_terminal_at_once() {
        let timeline = Timeline::immediate(Outcome::Completed);
        assert_eq!(timeline.state_at(Duration::ZERO, 0), JobState::Completed);
        assert_eq!(timeline.finished_after(secs(3)), Duration::ZERO);
    }

    #[test]
    fn terminal_state_never_changes_as_time_and_polls_grow() {
        let timeline = Timeline::linear(secs(1), secs(2), 3, Outcome::Completed);
        let mut seen_terminal = false;
        for tick in 0..100u32 {
            let state = timeline.state_at(Duration::from_millis(u64::from(tick) * 50), tick);
            if seen_terminal {
                assert_eq!(state, JobState::Completed);
            }
            seen_terminal |= state.is_terminal();
        }
        assert!(seen_terminal);
    }

    #[test]
    fn scaled_multiplies_elapsed_limits_and_keeps_poll_limits() {
        let timeline = Timeline::new(
            vec![
                Step {
                    phase: Phase::Queued,
                    progress: 0,
                    until: Until {
                        elapsed: Some(Duration::from_secs(30)),
                        polls: Some(3),
                    },
                },
                Step {
                    phase: Phase::Processing,
                    progress: 50,
                    until: Until {
                        elapsed: Some(Duration::from_secs(180)),
                        polls: None,
                    },
                },
            ],
            Outcome::Completed,
        )
        .unwrap();
        let fast = timeline.scaled(0.1);
        assert_eq!(fast.steps()[0].until.elapsed, Some(Duration::from_secs(3)));
        assert_eq!(fast.steps()[0].until.polls, Some(3));
        assert_eq!(fast.steps()[1].until.elapsed, Some(Duration::from_secs(18)));
        assert_eq!(fast.outcome(), &Outcome::Completed);
        assert_eq!(
            timeline.scaled(f64::NAN).steps()[1].until.elapsed,
            Some(Duration::ZERO)
        );
    }
}
