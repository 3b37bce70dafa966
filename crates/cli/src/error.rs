//! What can go wrong in the `strata` tool, each said in one sentence.

/// A failure of a `strata` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// One or more demo steps failed; the table on stdout says which.
    #[error("{failed} of {total} demo steps failed (see the table above)")]
    Demo {
        /// How many steps failed.
        failed: usize,
        /// How many steps ran.
        total: usize,
    },
}
