//! What the instruction/cost counters read from the environment.

/// `(LTI_COUNT_OP, LTI_COUNT_N)`, or `None` when either is missing (the
/// counter then does nothing, so a plain `cargo test --benches` stays quick).
pub(crate) fn request() -> Option<(String, u64)> {
    let op = std::env::var("LTI_COUNT_OP").ok()?;
    let n = std::env::var("LTI_COUNT_N").ok()?.parse::<u64>().ok()?;
    Some((op, n))
}
