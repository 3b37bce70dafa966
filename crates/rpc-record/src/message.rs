//! The RPC errors a server answers with (RFC 5531 §9): what [`Rule::RejectWith`] carries.
//!
//! [`Rule::RejectWith`]: crate::Rule::RejectWith

use std::fmt;

/// Why a call was not executed, as a reply says it: accepted-class errors go out as
/// MSG_ACCEPTED with an accept_stat, the others as MSG_DENIED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerError {
    /// MSG_ACCEPTED / PROG_UNAVAIL: the program is not served here.
    ProgUnavail,
    /// MSG_ACCEPTED / PROG_MISMATCH: the program is served, in versions `low..=high`.
    ProgMismatch {
        /// The lowest version served.
        low: u32,
        /// The highest version served.
        high: u32,
    },
    /// MSG_ACCEPTED / PROC_UNAVAIL: no such procedure.
    ProcUnavail,
    /// MSG_ACCEPTED / GARBAGE_ARGS: the arguments could not be decoded.
    GarbageArgs,
    /// MSG_ACCEPTED / SYSTEM_ERR: the server failed.
    SystemErr,
    /// MSG_DENIED / RPC_MISMATCH: RPC versions `low..=high` are spoken (always 2..=2).
    RpcMismatch {
        /// The lowest RPC version spoken.
        low: u32,
        /// The highest RPC version spoken.
        high: u32,
    },
    /// MSG_DENIED / AUTH_ERROR with its auth_stat.
    AuthError(AuthStat),
}

/// Why authentication failed (RFC 5531 §9, `auth_stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthStat {
    /// AUTH_BADCRED (1): bad credential (seal broken).
    BadCred,
    /// AUTH_REJECTEDCRED (2): the client must begin a new session.
    RejectedCred,
    /// AUTH_BADVERF (3): bad verifier.
    BadVerf,
    /// AUTH_REJECTEDVERF (4): verifier expired or replayed.
    RejectedVerf,
    /// AUTH_TOOWEAK (5): rejected for security reasons (what Ocamlnet's `Reject` answers).
    TooWeak,
    /// AUTH_INVALIDRESP (6): bogus response verifier.
    InvalidResp,
    /// AUTH_FAILED (7): reason unknown.
    Failed,
    /// Any other value, kept as it came.
    Other(u32),
}

impl AuthStat {
    /// The value on the wire.
    pub fn code(self) -> u32 {
        match self {
            AuthStat::BadCred => 1,
            AuthStat::RejectedCred => 2,
            AuthStat::BadVerf => 3,
            AuthStat::RejectedVerf => 4,
            AuthStat::TooWeak => 5,
            AuthStat::InvalidResp => 6,
            AuthStat::Failed => 7,
            AuthStat::Other(code) => code,
        }
    }

    /// The status a wire value stands for.
    pub fn from_code(code: u32) -> AuthStat {
        match code {
            1 => AuthStat::BadCred,
            2 => AuthStat::RejectedCred,
            3 => AuthStat::BadVerf,
            4 => AuthStat::RejectedVerf,
            5 => AuthStat::TooWeak,
            6 => AuthStat::InvalidResp,
            7 => AuthStat::Failed,
            code => AuthStat::Other(code),
        }
    }
}

impl fmt::Display for ServerError {
    /// One line, in RFC 5531's names: `PROG_MISMATCH(2..=3)`, `AUTH_ERROR(5)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::ProgUnavail => f.write_str("PROG_UNAVAIL"),
            ServerError::ProgMismatch { low, high } => write!(f, "PROG_MISMATCH({low}..={high})"),
            ServerError::ProcUnavail => f.write_str("PROC_UNAVAIL"),
            ServerError::GarbageArgs => f.write_str("GARBAGE_ARGS"),
            ServerError::SystemErr => f.write_str("SYSTEM_ERR"),
            ServerError::RpcMismatch { low, high } => write!(f, "RPC_MISMATCH({low}..={high})"),
            ServerError::AuthError(stat) => write!(f, "AUTH_ERROR({})", stat.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_stat_codes_round_trip() {
        for code in 0..10 {
            assert_eq!(AuthStat::from_code(code).code(), code);
        }
        assert_eq!(
            ServerError::AuthError(AuthStat::TooWeak).to_string(),
            "AUTH_ERROR(5)"
        );
    }
}
