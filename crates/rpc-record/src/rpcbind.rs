//! [`Rpcbind`]: a client of the portmapper and rpcbind (program 100000): look a program's
//! port up, and register a [`Service`] for as long as it serves ([`Registration`]).

use std::net::SocketAddr;

use tracing::{debug, info, warn};

use crate::pmap::{
    IPPROTO_TCP, IPPROTO_UDP, Mapping, PMAP_PROG, PMAP_VERS, PMAPPROC_DUMP, PMAPPROC_GETPORT,
    PMAPPROC_SET, PMAPPROC_UNSET, RPCBPROC_GETADDR, RPCBPROC_SET, RPCBPROC_UNSET, RPCBVERS,
    RPCBVERS4, Rpcb, netid, parse_uaddr, uaddr,
};
use crate::xdr::{Decode, Encode};
use crate::{Client, Config, Error, PeerAddr, RecordStream, Service};

/// A client of rpcbind (or of a portmapper that speaks version 2 only).
///
/// ```no_run
/// use rpc_record::{Config, Rpcbind};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpc_record::Error> {
/// let rpcbind = Rpcbind::connect("127.0.0.1:111".parse().unwrap(), &Config::default()).await?;
/// // Where program 100003 (NFS) version 3 listens over TCP, if anywhere.
/// let port = rpcbind.getport(100003, 3, rpc_record::pmap::IPPROTO_TCP).await?;
/// # let _ = port;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Rpcbind {
    client: Client,
}

impl Rpcbind {
    /// Over an existing client connected to rpcbind.
    pub fn new(client: Client) -> Rpcbind {
        Rpcbind { client }
    }

    /// Connects over TCP to rpcbind at `addr` (port 111 as a rule).
    pub async fn connect(addr: SocketAddr, config: &Config) -> Result<Rpcbind, Error> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Rpcbind::new(Client::stream(
            RecordStream::new(stream, config),
            config,
        )))
    }

    /// Over UDP to rpcbind at `addr`, calls sent again every second until answered.
    pub async fn connect_udp(addr: SocketAddr, config: &Config) -> Result<Rpcbind, Error> {
        let local = match addr {
            SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
        };
        let socket = tokio::net::UdpSocket::bind(local).await?;
        Ok(Rpcbind::new(Client::datagram(
            crate::RecordDatagram::new(socket, config),
            PeerAddr::Inet(addr),
            std::time::Duration::from_secs(1),
            config,
        )))
    }

    /// Calls `procedure` of `vers`; a refusal is [`Error::Refused`].
    async fn call<A: Encode + ?Sized, R: Decode>(
        &self,
        vers: u32,
        procedure: u32,
        args: &A,
    ) -> Result<R, Error> {
        self.client
            .call_xdr(PMAP_PROG, vers, procedure, args)
            .await?
            .map_err(|why| Error::Refused {
                what: "rpcbind",
                why,
            })
    }

    /// PMAPPROC_GETPORT: the port of `prog` version `vers` over `prot`
    /// ([`IPPROTO_TCP`] or [`IPPROTO_UDP`]), `None` when it is not registered. For a version
    /// not registered, rpcbind gives the port of another version of the program, if it has
    /// one, so that the server itself answers PROG_MISMATCH with its range.
    pub async fn getport(&self, prog: u32, vers: u32, prot: u32) -> Result<Option<u16>, Error> {
        let query = Mapping {
            prog,
            vers,
            prot,
            port: 0,
        };
        let port: u32 = self.call(PMAP_VERS, PMAPPROC_GETPORT, &query).await?;
        Ok(u16::try_from(port).ok().filter(|&port| port != 0))
    }

    /// RPCBPROC_GETADDR (version 4, or 3 from an rpcbind without it): the address of `prog`
    /// version `vers` over `netid` (`tcp`, `udp`, `tcp6`, `udp6`), `None` when it is not
    /// registered or its address is not an IP one.
    ///
    /// rpcbind answers for the transport the query came over, whatever `netid` says (which
    /// is why libtirpc's `rpcb_getaddr` asks over the transport it wants): ask a UDP address
    /// through [`connect_udp`](Rpcbind::connect_udp), a TCP one through
    /// [`connect`](Rpcbind::connect).
    pub async fn getaddr(
        &self,
        prog: u32,
        vers: u32,
        netid: &str,
    ) -> Result<Option<SocketAddr>, Error> {
        let query = Rpcb {
            prog,
            vers,
            netid: netid.to_owned(),
            addr: String::new(),
            owner: String::new(),
        };
        let addr: String = match self.call(RPCBVERS4, RPCBPROC_GETADDR, &query).await {
            Err(Error::Refused { .. }) => self.call(RPCBVERS, RPCBPROC_GETADDR, &query).await?,
            other => other?,
        };
        Ok(parse_uaddr(&addr))
    }

    /// A client of program `prog` version `vers` at `host`, found by number: its port
    /// from this rpcbind (GETPORT), then a TCP connection to it, or a UDP client sending
    /// again every second. [`Error::Refused`] with PROG_UNAVAIL when it is not registered.
    pub async fn client(
        &self,
        host: std::net::IpAddr,
        prog: u32,
        vers: u32,
        udp: bool,
        config: &Config,
    ) -> Result<Client, Error> {
        let prot = if udp { IPPROTO_UDP } else { IPPROTO_TCP };
        let Some(port) = self.getport(prog, vers, prot).await? else {
            return Err(Error::Refused {
                what: "rpcbind",
                why: crate::ServerError::ProgUnavail,
            });
        };
        let addr = SocketAddr::new(host, port);
        if !udp {
            return Ok(Rpcbind::connect(addr, config).await?.client);
        }
        Ok(Rpcbind::connect_udp(addr, config).await?.client)
    }

    /// PMAPPROC_DUMP: every registration, as `rpcinfo -p` lists them.
    pub async fn dump(&self) -> Result<Vec<Mapping>, Error> {
        let reply = self
            .client
            .call(PMAP_PROG, PMAP_VERS, PMAPPROC_DUMP, bytes::Bytes::new())
            .await?;
        match reply.outcome {
            Ok(results) => Mapping::decode_dump(results),
            Err(why) => Err(Error::Refused {
                what: "rpcbind",
                why,
            }),
        }
    }

    /// PMAPPROC_SET: registers `mapping`; `false` when rpcbind refuses (taken already).
    pub async fn set(&self, mapping: &Mapping) -> Result<bool, Error> {
        self.call(PMAP_VERS, PMAPPROC_SET, mapping).await
    }

    /// PMAPPROC_UNSET: removes the version 2 mappings of `prog` version `vers`.
    pub async fn unset(&self, prog: u32, vers: u32) -> Result<bool, Error> {
        let mapping = Mapping {
            prog,
            vers,
            prot: 0,
            port: 0,
        };
        self.call(PMAP_VERS, PMAPPROC_UNSET, &mapping).await
    }

    /// RPCBPROC_SET on version `vers` (3 or 4): registers `rpcb`; `false` when rpcbind
    /// refuses (taken already).
    pub async fn rpcb_set(&self, vers: u32, rpcb: &Rpcb) -> Result<bool, Error> {
        self.call(vers, RPCBPROC_SET, rpcb).await
    }

    /// RPCBPROC_UNSET on version `vers` (3 or 4): removes `rpcb`'s registrations, over
    /// every netid when its netid is empty.
    pub async fn rpcb_unset(&self, vers: u32, rpcb: &Rpcb) -> Result<bool, Error> {
        self.call(vers, RPCBPROC_UNSET, rpcb).await
    }

    /// Registers every version of every program of `service` over the given listeners, as
    /// a libtirpc server does: the old registrations of each program version are removed
    /// first (a server that died leaves them), then each transport is registered with
    /// RPCBPROC_SET on version 4 (3 if rpcbind has no 4) with its netid and universal
    /// address, and, for IPv4, with PMAPPROC_SET on version 2 where rpcbind did not take
    /// the mapping already, so that a portmapper-only rpcbind and `rpcinfo -p` see it.
    ///
    /// The [`Registration`] removes them again: call
    /// [`unregister`](Registration::unregister) when the server shuts down.
    pub async fn register(
        &self,
        service: &Service,
        tcp: Option<SocketAddr>,
        udp: Option<SocketAddr>,
    ) -> Result<Registration, Error> {
        let mut registration = Registration {
            rpcbind: self.clone(),
            versions: Vec::new(),
        };
        let listeners: Vec<(SocketAddr, bool)> = tcp
            .map(|a| (a, true))
            .into_iter()
            .chain(udp.map(|a| (a, false)))
            .collect();
        for program in service.programs() {
            for vers in program.versions() {
                let prog = program.number();
                self.remove(prog, vers).await?;
                registration.versions.push((prog, vers));
                for &(addr, stream) in &listeners {
                    self.register_one(prog, vers, addr, stream).await?;
                }
            }
        }
        Ok(registration)
    }

    async fn register_one(
        &self,
        prog: u32,
        vers: u32,
        addr: SocketAddr,
        stream: bool,
    ) -> Result<(), Error> {
        let netid = netid(addr, stream);
        let rpcb = Rpcb {
            prog,
            vers,
            netid: netid.to_owned(),
            addr: uaddr(addr),
            owner: String::new(),
        };
        let set = match self.rpcb_set(RPCBVERS4, &rpcb).await {
            Err(Error::Refused { .. }) => match self.rpcb_set(RPCBVERS, &rpcb).await {
                Err(Error::Refused { .. }) => None,
                other => Some(other?),
            },
            other => Some(other?),
        };
        if addr.is_ipv4() {
            let mapping = Mapping {
                prog,
                vers,
                prot: if stream { IPPROTO_TCP } else { IPPROTO_UDP },
                port: u32::from(addr.port()),
            };
            // rpcbind keeps one table: the version 2 mapping is there when the SET above
            // took. A portmapper-only one takes it here.
            let port = self.getport(prog, vers, mapping.prot).await?;
            if port != Some(addr.port()) && !self.set(&mapping).await? {
                return Err(Error::NotRegistered {
                    prog,
                    vers,
                    netid: netid.to_owned(),
                });
            }
        } else if set != Some(true) {
            return Err(Error::NotRegistered {
                prog,
                vers,
                netid: netid.to_owned(),
            });
        }
        info!(prog, vers, netid, %addr, "registered with rpcbind");
        Ok(())
    }

    /// Removes every registration of `prog` version `vers`, by version 4 (or 3) and 2.
    async fn remove(&self, prog: u32, vers: u32) -> Result<(), Error> {
        let every_netid = Rpcb {
            prog,
            vers,
            netid: String::new(),
            addr: String::new(),
            owner: String::new(),
        };
        match self.rpcb_unset(RPCBVERS4, &every_netid).await {
            Err(Error::Refused { .. }) => match self.rpcb_unset(RPCBVERS, &every_netid).await {
                Err(Error::Refused { .. }) => {}
                other => {
                    other?;
                }
            },
            other => {
                other?;
            }
        }
        self.unset(prog, vers).await?;
        debug!(prog, vers, "unregistered from rpcbind");
        Ok(())
    }
}

/// The registrations of a served [`Service`] with rpcbind, made by
/// [`Rpcbind::register`]. [`unregister`](Registration::unregister) removes them; dropping
/// it without doing so removes them in a task of its own on the current tokio runtime, if
/// there is one (best effort: a process that exits at once may not see it done).
#[derive(Debug)]
pub struct Registration {
    rpcbind: Rpcbind,
    /// The program versions registered.
    versions: Vec<(u32, u32)>,
}

impl Registration {
    /// The program versions registered.
    pub fn versions(&self) -> &[(u32, u32)] {
        &self.versions
    }

    /// Removes every registration made, on every transport.
    pub async fn unregister(mut self) -> Result<(), Error> {
        let versions = std::mem::take(&mut self.versions);
        for (prog, vers) in versions {
            self.rpcbind.remove(prog, vers).await?;
        }
        Ok(())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let versions = std::mem::take(&mut self.versions);
        if versions.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!(
                ?versions,
                "registration dropped outside a runtime: left with rpcbind"
            );
            return;
        };
        let rpcbind = self.rpcbind.clone();
        runtime.spawn(async move {
            for (prog, vers) in versions {
                if let Err(e) = rpcbind.remove(prog, vers).await {
                    warn!(prog, vers, error = %e, "could not unregister from rpcbind");
                }
            }
        });
    }
}
