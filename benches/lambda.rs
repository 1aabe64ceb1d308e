//! The transform-filter Lambda handler (placeholder; filled in below).
fn main() {}
