//! What packetstream's codec makes of byte streams, and memogram's parser of datagrams, one
//! JSON line per file, for `scripts/differential`, which puts the same files through
//! cs.packetstream's and hio's own parsers.
//!
//! ```text
//! cargo run --example decode_verdicts -- packet FILE...
//! cargo run --example decode_verdicts -- gram FILE...
//! ```
//!
//! `packet`: each file is a fuzz input of the `packet_codec` target: its first byte (where
//! that target splits the stream) is skipped, the rest is the stream. A line says the packets
//! read, in order, and how the stream ended: `end` (cleanly, between packets), `short` (inside
//! a packet), or `error` with why.
//!
//! `gram`: each file is one datagram. A line says whether it is a gram (and a signed first
//! gram's signature verifies by its vid, as a receiver checks it) and, if so, its mid, vid,
//! number, count and body.

use std::fmt::Write as _;

use bytes::BytesMut;
use packetstream::{Packet, PacketCodec};
use tokio_util::codec::Decoder;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(kind) = args.next() else {
        eprintln!("usage: decode_verdicts packet FILE...");
        std::process::exit(2);
    };
    if kind != "packet" && kind != "gram" {
        eprintln!("decode_verdicts: `packet` or `gram`, not {kind:?}");
        std::process::exit(2);
    }
    for file in args {
        let data = match std::fs::read(&file) {
            Ok(data) => data,
            Err(e) => {
                eprintln!("decode_verdicts: {file}: {e}");
                std::process::exit(1);
            }
        };
        match kind.as_str() {
            "packet" => println!("{}", verdict(&file, data.get(1..).unwrap_or_default())),
            _ => println!("{}", gram_verdict(&file, &data)),
        }
    }
}

/// One line: `{"file":…,"packets":[…],"end":…,"why":…}`.
fn verdict(file: &str, stream: &[u8]) -> String {
    // No limit of our own below the stream's size: only the format's are compared.
    let mut codec = PacketCodec::new(usize::MAX >> 1);
    // (decode_eof reserves nothing, whatever a frame declares.)
    let mut buf = BytesMut::from(stream);
    let mut packets = Vec::new();
    let (end, why) = loop {
        // The whole stream is here: decode_eof says whether it ends inside a packet.
        match codec.decode_eof(&mut buf) {
            Ok(Some(packet)) => packets.push(packet_json(&packet)),
            Ok(None) => break ("end", String::new()),
            Err(packetstream::Error::Truncated { .. }) => break ("short", String::new()),
            Err(e) => break ("error", e.to_string()),
        }
    };
    format!(
        "{{\"file\":{},\"packets\":[{}],\"end\":\"{end}\",\"why\":{}}}",
        quote(file),
        packets.join(","),
        quote(&why)
    )
}

/// One line: `{"file":…,"ok":…,"mid":…,"vid":…,"gn":…,"gc":…,"body":…,"why":…}`.
fn gram_verdict(file: &str, datagram: &[u8]) -> String {
    let decoded = memogram::Gram::decode(bytes::Bytes::copy_from_slice(datagram));
    let checked = decoded.and_then(|gram| {
        // A signed first gram carries its vid, and a receiver checks it at once (`B` vids
        // are their key; `D` and `E` need a key store, so they are looked at as `Keys`
        // would, empty).
        if let (Some(vid), Some(_)) = (gram.vid(), gram.signature()) {
            let key = memogram::Keys::default()
                .key(&vid)
                .ok_or(memogram::Error::UnknownVid { vid })?;
            memogram::verify(&gram, &key)?;
        }
        Ok(gram)
    });
    match checked {
        Ok(gram) => {
            let mut body = String::new();
            for b in gram.body().iter() {
                let _ = write!(body, "{b:02x}");
            }
            let vid = gram
                .vid()
                .map_or("null".to_owned(), |v| quote(&v.to_string()));
            let gc = gram.count().map_or("null".to_owned(), |c| c.to_string());
            format!(
                "{{\"file\":{},\"ok\":true,\"signed\":{},\"mid\":{},\"vid\":{vid},\"gn\":{},\"gc\":{gc},\"body\":\"{body}\",\"why\":\"\"}}",
                quote(file),
                gram.code().is_signed(),
                quote(&gram.mid().to_qb64()),
                gram.number()
            )
        }
        Err(e) => format!(
            "{{\"file\":{},\"ok\":false,\"why\":{}}}",
            quote(file),
            quote(&e.to_string())
        ),
    }
}

/// A packet as cs.packetstream's `Packet` has it: F is the flags word's bits 2 and up (a
/// response's ok bit first), rq the wire rq_type of a request.
fn packet_json(p: &Packet) -> String {
    let f = match p.ok() {
        Some(ok) => (u128::from(p.flags()) << 1) | u128::from(ok),
        None => u128::from(p.flags()),
    };
    let rq = p
        .wire_rq_type()
        .map_or("null".to_owned(), |rq| rq.to_string());
    let mut payload = String::new();
    for b in p.payload().iter() {
        let _ = write!(payload, "{b:02x}");
    }
    format!(
        "{{\"req\":{},\"tag\":{},\"channel\":{},\"F\":{f},\"rq\":{rq},\"payload\":\"{payload}\"}}",
        p.is_request(),
        p.tag(),
        p.channel()
    )
}

fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
