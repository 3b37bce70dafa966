//! `strata`: the command-line tool (placeholder until the CLI lands in the next commit).
fn main() {}
