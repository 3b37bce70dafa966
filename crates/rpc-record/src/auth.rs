//! Authentication as the RPC headers carry it: the opaque credential and verifier, and why
//! a server refused one.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;
use crate::xdr::{Decode, XdrReader, put_opaque};

/// The longest credential or verifier body (RFC 5531: `opaque body<400>`).
pub const MAX_AUTH_BODY: u32 = 400;

/// A credential or verifier: a flavor and an opaque body of at most [`MAX_AUTH_BODY`] bytes.
///
/// Strata sends [`OpaqueAuth::NONE`] or AUTH_SYS ([`AuthSys::to_cred`]); it reads any
/// flavor and leaves the judgement to the program.
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
    /// ([`AUTH_NONE`], [`AUTH_SYS`].)
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

/// The AUTH_NONE flavor.
pub const AUTH_NONE: u32 = 0;
/// The AUTH_SYS flavor (also known as AUTH_UNIX).
pub const AUTH_SYS: u32 = 1;
/// The longest machine name in AUTH_SYS credentials (RFC 5531 appendix A).
pub const MAX_MACHINE_NAME: u32 = 255;
/// The most supplementary groups in AUTH_SYS credentials (RFC 5531 appendix A; libtirpc's
/// `NGRPS`).
pub const MAX_GIDS: u32 = 16;

/// AUTH_SYS credentials (flavor 1, RFC 5531 appendix A): who the caller says it is, on its
/// word. Bounded as libtirpc bounds them: a machine name of at most 255 bytes, at most 16
/// supplementary groups.
///
/// ```
/// use rpc_record::{AuthSys, OpaqueAuth};
///
/// let me = AuthSys { stamp: 1, machine_name: "box".into(), uid: 1000, gid: 100, gids: vec![100, 27] };
/// let cred = me.to_cred()?;
/// assert_eq!(cred.flavor(), 1);
/// assert_eq!(AuthSys::from_cred(&cred)?, Some(me));
/// assert_eq!(AuthSys::from_cred(&OpaqueAuth::NONE)?, None);
/// # Ok::<(), rpc_record::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSys {
    /// An arbitrary id the caller chose (libtirpc: the time).
    pub stamp: u32,
    /// The caller's machine name.
    pub machine_name: String,
    /// The caller's effective user id.
    pub uid: u32,
    /// The caller's effective group id.
    pub gid: u32,
    /// The caller's supplementary groups.
    pub gids: Vec<u32>,
}

impl AuthSys {
    /// The credentials of this process, as libtirpc's `authunix_create_default()` makes
    /// them: the time as the stamp, the host name, the effective uid and gid, and the first
    /// 16 supplementary groups. Linux only (read from `/proc`); `None` elsewhere.
    pub fn of_this_process() -> Option<AuthSys> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|rest| rest.split_whitespace().map(str::parse::<u32>))
        };
        // `Uid:` and `Gid:` list real, effective, saved and filesystem ids.
        let uid = field("Uid:")?.nth(1)?.ok()?;
        let gid = field("Gid:")?.nth(1)?.ok()?;
        let gids = field("Groups:")?
            .filter_map(Result::ok)
            .take(MAX_GIDS as usize)
            .collect();
        let mut machine_name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .to_owned();
        machine_name.truncate(MAX_MACHINE_NAME as usize);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as u32);
        Some(AuthSys {
            stamp,
            machine_name,
            uid,
            gid,
            gids,
        })
    }

    /// The credentials in `cred`: `None` when it is of another flavor; an error when its
    /// body is not AUTH_SYS credentials within their limits.
    pub fn from_cred(cred: &OpaqueAuth) -> Result<Option<AuthSys>, Error> {
        if cred.flavor != AUTH_SYS {
            return Ok(None);
        }
        let mut xdr = XdrReader::new(cred.body.clone(), "AUTH_SYS credentials");
        let stamp = xdr.u32("stamp")?;
        let name = xdr.opaque("machinename", MAX_MACHINE_NAME)?;
        let machine_name = String::from_utf8_lossy(&name).into_owned();
        let uid = xdr.u32("uid")?;
        let gid = xdr.u32("gid")?;
        let gids = xdr.item_with("gids", crate::xdr::array(MAX_GIDS, u32::decode))?;
        Ok(Some(AuthSys {
            stamp,
            machine_name,
            uid,
            gid,
            gids,
        }))
    }

    /// These credentials as a credential to send; an error when the machine name or the
    /// groups are over their limits.
    pub fn to_cred(&self) -> Result<OpaqueAuth, Error> {
        let too_long = |field, len: usize, max| Error::FieldTooLong {
            what: "AUTH_SYS credentials",
            field,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            max,
        };
        if self.machine_name.len() > MAX_MACHINE_NAME as usize {
            return Err(too_long(
                "machinename",
                self.machine_name.len(),
                MAX_MACHINE_NAME,
            ));
        }
        if self.gids.len() > MAX_GIDS as usize {
            return Err(too_long("gids", self.gids.len(), MAX_GIDS));
        }
        let body = crate::xdr::to_bytes(&(
            self.stamp,
            &self.machine_name,
            self.uid,
            self.gid,
            &self.gids,
        ));
        OpaqueAuth::new(AUTH_SYS, body)
    }
}

impl fmt::Display for AuthSys {
    /// `uid 1000 gid 100 (2 groups) on box`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "uid {} gid {} ({} groups) on {}",
            self.uid,
            self.gid,
            self.gids.len(),
            self.machine_name
        )
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
    fn auth_sys_is_bounded_as_libtirpc_bounds_it() {
        let mut cred = AuthSys {
            stamp: 7,
            machine_name: "m".repeat(255),
            uid: 0,
            gid: 0,
            gids: vec![1; 16],
        };
        let wire = cred.to_cred().unwrap();
        assert_eq!(AuthSys::from_cred(&wire).unwrap(), Some(cred.clone()));
        cred.gids.push(17);
        assert!(cred.to_cred().is_err());
        cred.gids.pop();
        cred.machine_name.push('m');
        assert!(cred.to_cred().is_err());
        // 17 groups on the wire: refused before they are read.
        let mut body = BytesMut::new();
        body.put_u32(7);
        put_opaque(&mut body, b"m");
        body.put_u32(0);
        body.put_u32(0);
        body.put_u32(17);
        body.put_bytes(0, 17 * 4);
        let cred = OpaqueAuth::new(AUTH_SYS, body.freeze()).unwrap();
        assert!(matches!(
            AuthSys::from_cred(&cred),
            Err(Error::FieldTooLong {
                field: "gids",
                len: 17,
                max: 16,
                ..
            })
        ));
        // What this process would send, as authunix_create_default does.
        let me = AuthSys::of_this_process().expect("Linux");
        assert!(me.gids.len() <= 16);
        assert_eq!(
            AuthSys::from_cred(&me.to_cred().unwrap()).unwrap(),
            Some(me)
        );
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
