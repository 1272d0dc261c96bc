//! Helpers shared by the benches.

use lti_registry::LaunchState;

/// A valid launch state `id` issued at `now`, live for ten minutes.
pub(crate) fn bench_state(id: String, now: i64) -> LaunchState {
    LaunchState::new(id, "n", "https://i", "c", "https://t", now, 600)
}
