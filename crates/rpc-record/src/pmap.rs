//! The portmapper and rpcbind protocols (program 100000, RFC 1833): version 2's
//! [`Mapping`]s, versions 3 and 4's [`Rpcb`] entries with their netid and universal address,
//! and the procedures a server registers with and a client looks a port up with. The
//! client that calls them is [`Rpcbind`](crate::Rpcbind).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use bytes::{BufMut, Bytes};

use crate::Error;
use crate::xdr::{Decode, Encode, XdrReader, XdrResult};

/// The portmapper's program number.
pub const PMAP_PROG: u32 = 100_000;
/// The portmapper version whose DUMP returns [`Mapping`]s.
pub const PMAP_VERS: u32 = 2;
/// The portmapper's port.
pub const PMAP_PORT: u16 = 111;
/// PMAPPROC_SET (version 2): registers a [`Mapping`]; returns a bool.
pub const PMAPPROC_SET: u32 = 1;
/// PMAPPROC_UNSET (version 2): removes the mappings of a program version (its protocol and
/// port are ignored); returns a bool.
pub const PMAPPROC_UNSET: u32 = 2;
/// PMAPPROC_GETPORT (version 2): the port of a program version over a protocol, 0 when it
/// is not registered.
pub const PMAPPROC_GETPORT: u32 = 3;
/// PMAPPROC_DUMP: every registration. No arguments.
pub const PMAPPROC_DUMP: u32 = 4;
/// rpcbind version 3 (RFC 1833 §2).
pub const RPCBVERS: u32 = 3;
/// rpcbind version 4 (RFC 1833 §2).
pub const RPCBVERS4: u32 = 4;
/// RPCBPROC_SET (versions 3 and 4): registers an [`Rpcb`]; returns a bool.
pub const RPCBPROC_SET: u32 = 1;
/// RPCBPROC_UNSET (versions 3 and 4): removes an [`Rpcb`]'s registrations (every netid
/// when its netid is empty); returns a bool.
pub const RPCBPROC_UNSET: u32 = 2;
/// RPCBPROC_GETADDR (versions 3 and 4): the universal address of a program version over a
/// netid, empty when it is not registered.
pub const RPCBPROC_GETADDR: u32 = 3;

/// The longest netid, address or owner read from rpcbind (libtirpc's own buffers are 256).
const MAX_RPCB_STRING: u32 = 1024;

/// `IPPROTO_TCP`, as a mapping's protocol.
pub const IPPROTO_TCP: u32 = 6;
/// `IPPROTO_UDP`, as a mapping's protocol.
pub const IPPROTO_UDP: u32 = 17;

/// One registration: a program version reachable on a port over a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// The program number.
    pub prog: u32,
    /// The program version.
    pub vers: u32,
    /// The protocol: [`IPPROTO_TCP`] or [`IPPROTO_UDP`].
    pub prot: u32,
    /// The port. The wire has 32 bits; the portmapper only ever registers 16.
    pub port: u32,
}

impl Encode for Mapping {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        (self.prog, self.vers, self.prot, self.port).encode(dst);
    }
    fn encoded_len(&self) -> usize {
        16
    }
}

impl Decode for Mapping {
    fn decode(input: &[u8]) -> XdrResult<'_, Mapping> {
        let (rest, (prog, vers, prot, port)) = <(u32, u32, u32, u32)>::decode(input)?;
        Ok((
            rest,
            Mapping {
                prog,
                vers,
                prot,
                port,
            },
        ))
    }
}

impl Mapping {
    /// The protocol as rpcinfo names it: `tcp`, `udp`, or the number.
    pub fn proto_name(&self) -> String {
        match self.prot {
            IPPROTO_TCP => "tcp".into(),
            IPPROTO_UDP => "udp".into(),
            other => other.to_string(),
        }
    }

    /// Reads a PMAPPROC_DUMP result: an XDR optional-data list of mappings.
    ///
    /// Each entry takes 24 bytes of `results`, so the list is bounded by the reply's
    /// length, itself bounded by the record limit.
    pub fn decode_dump(results: Bytes) -> Result<Vec<Mapping>, Error> {
        let mut xdr = XdrReader::new(results, "PMAPPROC_DUMP result");
        let mut mappings = Vec::new();
        loop {
            match xdr.u32("value follows")? {
                0 => return Ok(mappings),
                1 => mappings.push(Mapping {
                    prog: xdr.u32("prog")?,
                    vers: xdr.u32("vers")?,
                    prot: xdr.u32("prot")?,
                    port: xdr.u32("port")?,
                }),
                value => {
                    return Err(Error::BadValue {
                        what: "PMAPPROC_DUMP result",
                        field: "value follows",
                        value,
                    });
                }
            }
        }
    }
}

/// A registration as rpcbind versions 3 and 4 keep it (RFC 1833 `rpcb`): a program version
/// reachable at a universal address over a transport named by its netid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rpcb {
    /// The program number.
    pub prog: u32,
    /// The program version.
    pub vers: u32,
    /// The transport: `tcp`, `udp`, `tcp6`, `udp6`, `local`.
    pub netid: String,
    /// The universal address ([`uaddr`]); empty in an UNSET or a GETADDR query.
    pub addr: String,
    /// Who registered it (rpcbind takes the caller's uid on a local transport).
    pub owner: String,
}

impl Encode for Rpcb {
    fn encode<B: BufMut>(&self, dst: &mut B) {
        (self.prog, self.vers, &self.netid, &self.addr, &self.owner).encode(dst);
    }
    fn encoded_len(&self) -> usize {
        (self.prog, self.vers, &self.netid, &self.addr, &self.owner).encoded_len()
    }
}

impl Decode for Rpcb {
    fn decode(input: &[u8]) -> XdrResult<'_, Rpcb> {
        let string = crate::xdr::string(MAX_RPCB_STRING);
        let (input, (prog, vers)) = <(u32, u32)>::decode(input)?;
        let (input, netid) = string(input)?;
        let (input, addr) = string(input)?;
        let (input, owner) = string(input)?;
        Ok((
            input,
            Rpcb {
                prog,
                vers,
                netid,
                addr,
                owner,
            },
        ))
    }
}

/// The universal address of `addr` (RFC 5665 §5.2.3.3): the host, then the port as two
/// decimal bytes: `127.0.0.1.156.65` for port 40001, `::1.0.111`.
pub fn uaddr(addr: SocketAddr) -> String {
    let port = addr.port();
    format!("{}.{}.{}", addr.ip(), port >> 8, port & 0xff)
}

/// The socket address a universal address names; `None` when it is not one.
pub fn parse_uaddr(uaddr: &str) -> Option<SocketAddr> {
    let mut parts = uaddr.rsplitn(3, '.');
    let low: u8 = parts.next()?.parse().ok()?;
    let high: u8 = parts.next()?.parse().ok()?;
    let ip: IpAddr = parts.next()?.parse().ok()?;
    Some(SocketAddr::new(ip, u16::from_be_bytes([high, low])))
}

/// The netid of a transport over `addr`'s family: `tcp` or `tcp6` for a stream, `udp` or
/// `udp6` for datagrams.
pub fn netid(addr: SocketAddr, stream: bool) -> &'static str {
    match (addr.is_ipv4(), stream) {
        (true, true) => "tcp",
        (true, false) => "udp",
        (false, true) => "tcp6",
        (false, false) => "udp6",
    }
}

impl fmt::Display for Mapping {
    /// A line of `rpcinfo -p` without the service name: `    100000    2   tcp    111`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>10}{:>5}{:>6}{:>7}",
            self.prog,
            self.vers,
            self.proto_name(),
            self.port
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn universal_addresses_carry_the_port_as_two_bytes() {
        let v4: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        assert_eq!(uaddr(v4), "127.0.0.1.156.65");
        assert_eq!(parse_uaddr("127.0.0.1.156.65"), Some(v4));
        let v6: SocketAddr = "[::1]:111".parse().unwrap();
        assert_eq!(uaddr(v6), "::1.0.111");
        assert_eq!(parse_uaddr("::1.0.111"), Some(v6));
        assert_eq!(parse_uaddr(""), None);
        assert_eq!(parse_uaddr("127.0.0.1.300.1"), None);
        assert_eq!(netid(v6, false), "udp6");
        let rpcb = Rpcb {
            prog: 300002,
            vers: 1,
            netid: "tcp".into(),
            addr: uaddr(v4),
            owner: "0".into(),
        };
        assert_eq!(
            crate::xdr::from_bytes::<Rpcb>(&crate::xdr::to_bytes(&rpcb)),
            Ok(rpcb)
        );
    }

    #[test]
    fn a_dump_reads_until_the_end_marker_and_no_further() {
        let words: Bytes = [1, 100000, 2, 6, 111, 1, 300000, 1, 17, 40000, 0]
            .iter()
            .flat_map(|w: &u32| w.to_be_bytes())
            .collect();
        let mappings = Mapping::decode_dump(words.clone()).unwrap();
        assert_eq!(mappings.len(), 2);
        assert_eq!(mappings[1].to_string(), "    300000    1   udp  40000");
        // Cut before the end marker: an error, not a short list.
        assert!(matches!(
            Mapping::decode_dump(words.slice(..words.len() - 4)),
            Err(Error::Malformed { .. })
        ));
        assert!(Mapping::decode_dump(Bytes::from_static(&[0, 0, 0, 2])).is_err());
    }
}
