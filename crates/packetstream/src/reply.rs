//! What a handler answers ([`Reply`]) and what a requester gets back ([`Response`]).

use std::fmt;

use bytes::Bytes;

/// What a handler answers: success or failure, flags and a payload.
///
/// Handlers usually return something that converts into a `Reply`, as cs.packetstream's
/// handlers return `None`, an int, bytes, a str or a `(flags, bytes)` pair:
///
/// ```
/// use bytes::Bytes;
/// use packetstream::Reply;
///
/// assert_eq!(Reply::from(()), Reply::ok(0, Bytes::new()));
/// assert_eq!(Reply::from(7u64), Reply::ok(7, Bytes::new()));
/// assert_eq!(Reply::from("héllo"), Reply::ok(0, Bytes::from("héllo")));
/// assert_eq!(Reply::from((0x11, b"xyz".to_vec())), Reply::ok(0x11, Bytes::from_static(b"xyz")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub(crate) ok: bool,
    pub(crate) flags: u64,
    pub(crate) payload: Bytes,
}

impl Reply {
    /// A success reply.
    #[inline]
    pub fn ok(flags: u64, payload: Bytes) -> Reply {
        Reply {
            ok: true,
            flags,
            payload,
        }
    }

    /// A failure reply. cs.packetstream's own failures have flags 0, but it passes other
    /// flags through to its callers.
    pub fn failure(flags: u64, payload: Bytes) -> Reply {
        Reply {
            ok: false,
            flags,
            payload,
        }
    }
}

impl From<()> for Reply {
    /// Success, flags 0, no payload (a cs handler returning `None`).
    #[inline]
    fn from((): ()) -> Reply {
        Reply::ok(0, Bytes::new())
    }
}

impl From<u64> for Reply {
    /// Success with these flags and no payload (a cs handler returning an int).
    #[inline]
    fn from(flags: u64) -> Reply {
        Reply::ok(flags, Bytes::new())
    }
}

impl From<Bytes> for Reply {
    /// Success, flags 0, this payload.
    fn from(payload: Bytes) -> Reply {
        Reply::ok(0, payload)
    }
}

impl From<Vec<u8>> for Reply {
    /// Success, flags 0, this payload.
    fn from(payload: Vec<u8>) -> Reply {
        Reply::ok(0, payload.into())
    }
}

impl From<&'static [u8]> for Reply {
    /// Success, flags 0, this payload.
    fn from(payload: &'static [u8]) -> Reply {
        Reply::ok(0, Bytes::from_static(payload))
    }
}

impl From<String> for Reply {
    /// Success, flags 0, the string as UTF-8 (a cs handler returning a str).
    fn from(text: String) -> Reply {
        Reply::ok(0, text.into())
    }
}

impl From<&'static str> for Reply {
    /// Success, flags 0, the string as UTF-8.
    fn from(text: &'static str) -> Reply {
        Reply::ok(0, Bytes::from_static(text.as_bytes()))
    }
}

impl<P: Into<Bytes>> From<(u64, P)> for Reply {
    /// Success with these flags and this payload (a cs handler returning `(flags, bytes)`).
    #[inline]
    fn from((flags, payload): (u64, P)) -> Reply {
        Reply::ok(flags, payload.into())
    }
}

/// The reply to a request, as the requester sees it: `(ok, flags, payload)` in cs terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Whether the peer reports success.
    pub ok: bool,
    /// The peer's flags.
    pub flags: u64,
    /// The peer's payload.
    pub payload: Bytes,
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ok = if self.ok { "ok" } else { "fail" };
        write!(
            f,
            "Response {ok} flags={:#x} len={}",
            self.flags,
            self.payload.len()
        )
    }
}
