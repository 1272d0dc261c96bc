//! Example: adding LTI 1.3 to an existing axum server (work in progress).
fn main() {}
