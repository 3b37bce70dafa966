//! [`Call`]: the call message (RFC 5531 §9), header and arguments.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::xdr::XdrReader;
use crate::{Error, OpaqueAuth, Xid};

/// The RPC protocol version every call carries (RFC 5531).
pub const RPC_VERSION: u32 = 2;

/// `msg_type` of a call.
pub(crate) const CALL: u32 = 0;
/// `msg_type` of a reply.
pub(crate) const REPLY: u32 = 1;

/// A call: which procedure of which program version, who asks, and the arguments (XDR the
/// program defines, kept as bytes).
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use rpc_record::{Call, Xid};
///
/// // rpcinfo's ping: procedure 0 of program 300000 version 2, AUTH_NONE, no arguments.
/// let call = Call::new(Xid(0xb47512ac), 300000, 2, 0, Bytes::new());
/// let mut wire = BytesMut::new();
/// call.encode(&mut wire);
/// assert_eq!(wire.len(), 40);
/// assert_eq!(Call::decode(wire.freeze())?, call);
/// assert_eq!(call.to_string(), "call xid 0xb47512ac prog 300000 vers 2 proc 0 AUTH_NONE (0 bytes of arguments)");
/// # Ok::<(), rpc_record::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The transaction id the reply will carry.
    pub xid: Xid,
    /// The program number.
    pub prog: u32,
    /// The program version.
    pub vers: u32,
    /// The procedure number; 0 is NULLPROC, which every program answers.
    pub procedure: u32,
    /// The credential.
    pub cred: OpaqueAuth,
    /// The verifier.
    pub verf: OpaqueAuth,
    /// The procedure's arguments, XDR-encoded.
    pub args: Bytes,
}

impl Call {
    /// A call with AUTH_NONE credential and verifier.
    pub fn new(xid: Xid, prog: u32, vers: u32, procedure: u32, args: Bytes) -> Call {
        Call {
            xid,
            prog,
            vers,
            procedure,
            cred: OpaqueAuth::NONE,
            verf: OpaqueAuth::NONE,
            args,
        }
    }

    /// Writes the message (without a record mark: see [`encode_record`](crate::encode_record)).
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        dst.put_u32(self.xid.0);
        dst.put_u32(CALL);
        dst.put_u32(RPC_VERSION);
        dst.put_u32(self.prog);
        dst.put_u32(self.vers);
        dst.put_u32(self.procedure);
        self.cred.write(dst);
        self.verf.write(dst);
        dst.put_slice(&self.args);
    }

    /// The length of the encoded message.
    pub fn encoded_len(&self) -> usize {
        24 + self.cred.encoded_len() + self.verf.encoded_len() + self.args.len()
    }

    /// Reads a call message; the arguments are a slice of `message`.
    ///
    /// A message that is a reply gives [`Error::NotACall`]; a call of another RPC version
    /// gives [`Error::RpcVersion`], which a server answers with RPC_MISMATCH.
    pub fn decode(message: Bytes) -> Result<Call, Error> {
        let mut xdr = XdrReader::new(message, "call");
        let xid = Xid(xdr.u32("xid")?);
        let msg_type = xdr.u32("msg_type")?;
        if msg_type != CALL {
            return Err(Error::NotACall { xid, msg_type });
        }
        let rpcvers = xdr.u32("rpcvers")?;
        if rpcvers != RPC_VERSION {
            return Err(Error::RpcVersion { xid, rpcvers });
        }
        Ok(Call {
            xid,
            prog: xdr.u32("prog")?,
            vers: xdr.u32("vers")?,
            procedure: xdr.u32("proc")?,
            cred: OpaqueAuth::read(&mut xdr, "cred")?,
            verf: OpaqueAuth::read(&mut xdr, "verf")?,
            args: xdr.rest(),
        })
    }
}

impl fmt::Display for Call {
    /// `call xid 0x11223344 prog 100000 vers 2 proc 4 AUTH_NONE (0 bytes of arguments)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "call {} prog {} vers {} proc {} {} ({} bytes of arguments)",
            self.xid,
            self.prog,
            self.vers,
            self.procedure,
            self.cred,
            self.args.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(words: &[u32]) -> Bytes {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn a_call_with_a_credential_round_trips() {
        let cred = OpaqueAuth::new(1, Bytes::from_static(b"abcde")).unwrap();
        let call = Call {
            cred,
            ..Call::new(Xid(7), 100000, 2, 4, Bytes::from_static(&[0, 0, 0, 1]))
        };
        let mut wire = BytesMut::new();
        call.encode(&mut wire);
        assert_eq!(wire.len(), call.encoded_len());
        assert_eq!(Call::decode(wire.freeze()).unwrap(), call);
    }

    #[test]
    fn another_rpc_version_is_its_own_error_with_the_xid() {
        let message = words(&[0x11223344, 0, 3, 100000, 2, 0, 0, 0, 0, 0]);
        assert!(matches!(
            Call::decode(message),
            Err(Error::RpcVersion {
                xid: Xid(0x11223344),
                rpcvers: 3
            })
        ));
        let reply = words(&[0x11223344, 1, 0, 0, 0, 0]);
        assert!(matches!(
            Call::decode(reply),
            Err(Error::NotACall { msg_type: 1, .. })
        ));
    }

    #[test]
    fn every_cut_of_a_call_header_is_a_truncation_error() {
        let mut wire = BytesMut::new();
        Call::new(Xid(1), 2, 3, 4, Bytes::new()).encode(&mut wire);
        let wire = wire.freeze();
        for cut in 0..wire.len() {
            let e = Call::decode(wire.slice(..cut)).unwrap_err();
            assert!(
                matches!(e, Error::Malformed { what: "call", .. }),
                "{cut}: {e}"
            );
        }
    }
}
