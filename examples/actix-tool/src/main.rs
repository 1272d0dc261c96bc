//! Example: adding LTI 1.3 to an existing actix server (work in progress).
fn main() {}
