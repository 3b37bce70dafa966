//! Authentication as the RPC headers carry it: the opaque credential and verifier, and why
//! a server refused one.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;
use crate::xdr::{XdrReader, put_opaque};

/// The longest credential or verifier body (RFC 5531: `opaque body<400>`).
pub const MAX_AUTH_BODY: u32 = 400;

/// A credential or verifier: a flavor and an opaque body of at most [`MAX_AUTH_BODY`] bytes.
///
/// Strata sends only [`OpaqueAuth::NONE`]; it reads any flavor and leaves the judgement to
/// the program.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpaqueAuth {
    flavor: u32,
    body: Bytes,
}

impl OpaqueAuth {
    /// AUTH_NONE (flavor 0) with an empty body, what rpcinfo and rpcbind send.
    pub const NONE: OpaqueAuth = OpaqueAuth {
        flavor: 0,
        body: Bytes::new(),
    };

    /// A credential of `flavor` with `body`; an error when the body is over 400 bytes.
    pub fn new(flavor: u32, body: Bytes) -> Result<OpaqueAuth, Error> {
        if body.len() > MAX_AUTH_BODY as usize {
            return Err(Error::FieldTooLong {
                what: "credential",
                field: "body",
                len: u32::try_from(body.len()).unwrap_or(u32::MAX),
                max: MAX_AUTH_BODY,
            });
        }
        Ok(OpaqueAuth { flavor, body })
    }

    /// The flavor: 0 AUTH_NONE, 1 AUTH_SYS, 2 AUTH_SHORT, 3 AUTH_DH, 6 RPCSEC_GSS.
    pub fn flavor(&self) -> u32 {
        self.flavor
    }

    /// The body, at most 400 bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    pub(crate) fn read(xdr: &mut XdrReader, field: &'static str) -> Result<OpaqueAuth, Error> {
        let flavor = xdr.u32(field)?;
        let body = xdr.opaque(field, MAX_AUTH_BODY)?;
        Ok(OpaqueAuth { flavor, body })
    }

    pub(crate) fn write(&self, dst: &mut BytesMut) {
        dst.put_u32(self.flavor);
        put_opaque(dst, &self.body);
    }

    pub(crate) fn encoded_len(&self) -> usize {
        8 + self.body.len().next_multiple_of(4)
    }
}

impl fmt::Display for OpaqueAuth {
    /// `AUTH_NONE`, `AUTH_SYS (20 bytes)`, `flavor 99 (0 bytes)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.flavor, self.body.len()) {
            (0, 0) => f.write_str("AUTH_NONE"),
            (1, len) => write!(f, "AUTH_SYS ({len} bytes)"),
            (flavor, len) => write!(f, "flavor {flavor} ({len} bytes)"),
        }
    }
}

/// Why authentication failed (RFC 5531 §9, `auth_stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthStat {
    /// AUTH_BADCRED (1): bad credential (seal broken).
    BadCred,
    /// AUTH_REJECTEDCRED (2): the client must begin a new session; libtirpc's answer to a
    /// flavor it does not know.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_stat_codes_round_trip() {
        for code in 0..10 {
            assert_eq!(AuthStat::from_code(code).code(), code);
        }
    }

    #[test]
    fn a_body_over_400_bytes_cannot_be_built() {
        assert!(OpaqueAuth::new(1, Bytes::from(vec![0; 400])).is_ok());
        let e = OpaqueAuth::new(1, Bytes::from(vec![0; 401])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "credential: body is 401 bytes long, the limit is 400"
        );
    }
}
