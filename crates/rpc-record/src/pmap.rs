//! The portmapper (program 100000 version 2, RFC 1833 §3): enough to list its
//! registrations, as `rpcinfo -p` does.

use std::fmt;

use bytes::Bytes;

use crate::Error;
use crate::xdr::XdrReader;

/// The portmapper's program number.
pub const PMAP_PROG: u32 = 100_000;
/// The portmapper version whose DUMP returns [`Mapping`]s.
pub const PMAP_VERS: u32 = 2;
/// The portmapper's port.
pub const PMAP_PORT: u16 = 111;
/// PMAPPROC_DUMP: every registration. No arguments.
pub const PMAPPROC_DUMP: u32 = 4;

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
            Err(Error::Truncated { .. })
        ));
        assert!(Mapping::decode_dump(Bytes::from_static(&[0, 0, 0, 2])).is_err());
    }
}
