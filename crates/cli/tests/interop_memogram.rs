//! Interop with the real hio 0.7.20 over loopback UDP and Unix datagram sockets, both
//! directions: text and binary headers, unsigned and signed, one gram and many, 1 MB memos,
//! and hio's authic receiver.
//!
//! Ignored by plain `cargo test`: `scripts/test` installs the pinned peer (`scripts/peers`)
//! and runs these with `--ignored`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use memogram::{Config, Encoding, Receiver, Seed, Sender, Signer, bind_udp, bind_uxd};
use serde_json::{Value, json};

mod common;
use common::{HioReceiver, hio_peer};

/// hio's vector seed (`vectors/memogram-hio.json`), as qb64 and as hex.
const SEED_QB64: &str = "AJtGCvHCTOpCQzr36dcxvNJ7f4GuNZzK-dusQGAnDqQQ";
const SEED_HEX: &str = "9b460af1c24cea42433af7e9d731bcd27b7f81ae359ccaf9dbac4060270ea410";
const VID: &str = "BG-R9L4kTXULe33Tqidn0c-W-x6xU4lIXCdhZQYrsih2";
const PATIENCE: Duration = Duration::from_secs(30);

/// The peer script's `@LEN` memo: LEN bytes of printable ASCII.
fn pattern(len: usize) -> String {
    (0..len)
        .map(|i| char::from(0x21 + ((i * 7 + i / 94) % 94) as u8))
        .collect()
}

fn signer() -> Signer {
    Signer::from_seed(&Seed::from_qb64(SEED_QB64.as_bytes()).unwrap())
}

fn strata_send(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["memo", "send"])
        .args(args)
        .output()
        .expect("strata memo send runs");
    assert!(
        out.status.success(),
        "strata memo send {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn hio_send(args: &[&str]) {
    let out = hio_peer(&[&["send"], args].concat())
        .output()
        .expect("the hio sender runs");
    assert!(out.status.success(), "hio_peer.py send {args:?} failed");
}

fn temp_path(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hio-{}-{name}.uxd", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// What hio printed for each memo: (memo, vid).
fn memos_and_vids(memos: &[Value]) -> Vec<(String, Value)> {
    memos
        .iter()
        .map(|m| (m["memo"].as_str().unwrap().to_string(), m["vid"].clone()))
        .collect()
}

#[test]
#[ignore = "needs the real hio: scripts/test sets it up"]
fn hio_receives_what_strata_sends_over_udp() {
    let hio = HioReceiver::start(&["--udp", "0", "--count", "6", "--timeout", "30"]);
    let dest = format!("127.0.0.1:{}", hio.at);
    strata_send(&["--udp", &dest, "hello hio"]);
    strata_send(&[
        "--udp",
        &dest,
        "--curt",
        "--size",
        "40",
        "binary ✓ in grams",
    ]);
    strata_send(&["--udp", &dest, "--curt", "Hi"]);
    strata_send(&[
        "--udp",
        &dest,
        "--size",
        "200",
        "--sign",
        SEED_QB64,
        &pattern(700),
    ]);
    strata_send(&[
        "--udp",
        &dest,
        "--curt",
        "--size",
        "200",
        "--sign",
        SEED_QB64,
        &pattern(900),
    ]);
    // 1 MB, too long for an argument: through the library, signed, binary, 1240-byte grams.
    runtime().block_on(async {
        let socket = bind_udp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        Sender::new(Arc::new(socket), Config::default())
            .encoding(Encoding::Base2)
            .signer(signer())
            .send(pattern(1_000_000).as_bytes(), &dest.parse().unwrap())
            .await
            .unwrap();
    });
    let (memos, status) = hio.finish();
    assert!(status.success(), "hio exited with {status}");
    let got = memos_and_vids(&memos);
    let expected = [
        ("hello hio".to_string(), Value::Null),
        ("binary ✓ in grams".to_string(), Value::Null),
        ("Hi".to_string(), Value::Null),
        (pattern(700), json!(VID)),
        (pattern(900), json!(VID)),
        (pattern(1_000_000), json!(VID)),
    ];
    assert_eq!(got.len(), expected.len());
    for (got, expected) in got.iter().zip(&expected) {
        assert_eq!(got.0.len(), expected.0.len());
        assert!(got == expected, "{:.60} != {:.60}", got.0, expected.0);
    }
}

#[test]
#[ignore = "needs the real hio: scripts/test sets it up"]
fn hio_with_authic_takes_only_signed_memos_from_strata() {
    let hio = HioReceiver::start(&["--udp", "0", "--authic", "--count", "1", "--timeout", "30"]);
    let dest = format!("127.0.0.1:{}", hio.at);
    strata_send(&["--udp", &dest, "unsigned: dropped"]);
    strata_send(&["--udp", &dest, "--sign", SEED_QB64, "signed: taken"]);
    let (memos, status) = hio.finish();
    assert!(status.success(), "hio exited with {status}");
    assert_eq!(
        memos_and_vids(&memos),
        [("signed: taken".to_string(), json!(VID))]
    );
}

#[test]
#[ignore = "needs the real hio: scripts/test sets it up"]
fn strata_receives_what_hio_sends_over_udp() {
    runtime().block_on(async {
        let socket = Arc::new(bind_udp("127.0.0.1:0".parse().unwrap()).await.unwrap());
        let port = socket.local_addr().unwrap().port().to_string();
        let mut receiver = Receiver::new(socket, Config::default());
        let sends = tokio::task::spawn_blocking(move || {
            hio_send(&["--udp", &port, "hello strata"]);
            // hio's base2 gram count of 0 for memos of 8 bytes or less: taken as 1.
            hio_send(&["--udp", &port, "--curt", "Hi"]);
            hio_send(&[
                "--udp",
                &port,
                "--curt",
                "--size",
                "40",
                "binary ✓ in grams",
            ]);
            hio_send(&["--udp", &port, "--size", "200", "--seed", SEED_HEX, "@3000"]);
            hio_send(&["--udp", &port, "--curt", "--seed", SEED_HEX, "@1000000"]);
        });
        let expected: [(String, Option<&str>); 5] = [
            ("hello strata".into(), None),
            ("Hi".into(), None),
            ("binary ✓ in grams".into(), None),
            (pattern(3000), Some(VID)),
            (pattern(1_000_000), Some(VID)),
        ];
        for (memo, vid) in expected {
            let got = tokio::time::timeout(PATIENCE, receiver.recv())
                .await
                .expect("hio's memo arrives in time")
                .unwrap();
            assert_eq!(got.source().ip(), std::net::Ipv4Addr::LOCALHOST);
            assert!(got.text().unwrap() == memo, "{:.60}", got.text().unwrap());
            assert_eq!(got.vid().map(|v| v.to_string()).as_deref(), vid);
        }
        sends.await.unwrap();
        assert_eq!(receiver.reassembly().stats().rejected, 0);
    });
}

#[test]
#[ignore = "needs the real hio: scripts/test sets it up"]
fn both_ways_over_unix_datagram_sockets() {
    // hio receives: from the CLI (bound, so hio sees a source) and a 1 MB memo from the library.
    let hio_path = temp_path("hio-recv");
    let hio = HioReceiver::start(&[
        "--uxd",
        hio_path.to_str().unwrap(),
        "--count",
        "3",
        "--timeout",
        "30",
    ]);
    let dest = hio.at.clone();
    let bound = temp_path("strata-send");
    strata_send(&[
        "--uxd",
        &dest,
        "--bind",
        bound.to_str().unwrap(),
        "--curt",
        "over uxd",
    ]);
    strata_send(&[
        "--uxd",
        &dest,
        "--sign",
        SEED_QB64,
        "--size",
        "300",
        &pattern(5000),
    ]);
    runtime().block_on(async {
        let socket = bind_uxd(None).unwrap();
        Sender::new(Arc::new(socket), Config::default())
            .send(pattern(1_000_000).as_bytes(), &PathBuf::from(&dest))
            .await
            .unwrap();
    });
    let (memos, status) = hio.finish();
    assert!(status.success(), "hio exited with {status}");
    assert_eq!(memos[0]["src"], json!(bound.to_str().unwrap()));
    let got = memos_and_vids(&memos);
    assert_eq!(got[0], ("over uxd".to_string(), Value::Null));
    assert!(got[1] == (pattern(5000), json!(VID)));
    assert!(got[2] == (pattern(1_000_000), Value::Null));

    // Strata receives from hio's bound socket.
    let ours = temp_path("strata-recv");
    let theirs = temp_path("hio-send");
    runtime().block_on(async {
        let mut receiver =
            Receiver::new(Arc::new(bind_uxd(Some(&ours)).unwrap()), Config::default());
        let (to, from) = (ours.clone(), theirs.clone());
        let sends = tokio::task::spawn_blocking(move || {
            let (to, from) = (to.to_str().unwrap(), from.to_str().unwrap());
            hio_send(&["--uxd", to, "--bind", from, "--curt", "@100000"]);
            hio_send(&["--uxd", to, "--bind", from, "--seed", SEED_HEX, "@200000"]);
        });
        for (len, vid) in [(100_000, None), (200_000, Some(VID))] {
            let got = tokio::time::timeout(PATIENCE, receiver.recv())
                .await
                .expect("hio's memo arrives in time")
                .unwrap();
            assert_eq!(got.source(), &theirs);
            assert!(got.text().unwrap() == pattern(len));
            assert_eq!(got.vid().map(|v| v.to_string()).as_deref(), vid);
        }
        sends.await.unwrap();
    });
    for path in [hio_path, bound, ours, theirs] {
        let _ = std::fs::remove_file(path);
    }
}

/// A vid that is not the seed's: an `E` vid that is no digest of the key, or a `D` vid of
/// another (rotated) key. hio's keep maps either to the seed's key.
fn foreign_vids() -> [String; 2] {
    [
        memogram::Vid::new(memogram::VidCode::E, [5; 32]).to_qb64(),
        memogram::Vid::new(memogram::VidCode::D, [6; 32]).to_qb64(),
    ]
}

#[test]
#[ignore = "needs the real hio: scripts/test sets it up"]
fn memos_signed_under_any_vid_a_keep_holds_go_both_ways() {
    let [e_vid, d_vid] = foreign_vids();
    // VID is the seed's B vid, which is also its verifying key in qb64 (hio's qvk).
    let keep = [format!("{e_vid}={VID}"), format!("{d_vid}={VID}")];
    for uxd in [false, true] {
        let how = if uxd { "--uxd" } else { "--udp" };
        // hio receives what strata signs under those vids, holding the key in its keep.
        let hio_path = temp_path("keep-hio-recv");
        let hio_at = match uxd {
            true => hio_path.to_str().unwrap().to_owned(),
            false => "0".to_owned(),
        };
        let mut args = vec![how, hio_at.as_str(), "--count", "2", "--timeout", "30"];
        for entry in &keep {
            args.extend(["--keep", entry.as_str()]);
        }
        let hio = HioReceiver::start(&args);
        let dest = match uxd {
            true => hio.at.clone(),
            false => format!("127.0.0.1:{}", hio.at),
        };
        for vid in [&e_vid, &d_vid] {
            let memo = format!("signed as {vid}");
            strata_send(&[how, &dest, "--sign", SEED_QB64, "--vid", vid, &memo]);
        }
        let (memos, status) = hio.finish();
        assert!(status.success(), "hio exited with {status} (uxd: {uxd})");
        assert_eq!(
            memos_and_vids(&memos),
            [
                (format!("signed as {e_vid}"), json!(e_vid)),
                (format!("signed as {d_vid}"), json!(d_vid)),
            ],
            "uxd: {uxd}"
        );
        let _ = std::fs::remove_file(&hio_path);

        // strata receives what hio signs under them, given the key with --keep.
        let ours = temp_path("keep-strata-recv");
        let listen_at = match uxd {
            true => ours.to_str().unwrap().to_owned(),
            false => "127.0.0.1:0".to_owned(),
        };
        let mut listen = vec!["memo", "listen", how, listen_at.as_str(), "--count", "2"];
        listen.extend(["--timeout", "30"]);
        for entry in &keep {
            listen.extend(["--keep", entry.as_str()]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(&listen)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("strata memo listen starts");
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        let listening = lines.next().unwrap().unwrap();
        let at = listening.strip_prefix("listening ").unwrap().to_owned();
        let to = match uxd {
            true => at,
            false => at.rsplit_once(':').unwrap().1.to_owned(),
        };
        let from = temp_path("keep-hio-send");
        for vid in [&e_vid, &d_vid] {
            let mut send = vec![how, to.as_str(), "--seed", SEED_HEX, "--vid", vid];
            if uxd {
                send.extend(["--bind", from.to_str().unwrap()]);
            }
            send.push("from hio");
            hio_send(&send);
        }
        let got: Vec<Value> = lines
            .take(2)
            .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
            .collect();
        assert!(child.wait().unwrap().success());
        assert_eq!(
            memos_and_vids(&got),
            [
                ("from hio".to_string(), json!(e_vid)),
                ("from hio".to_string(), json!(d_vid)),
            ],
            "uxd: {uxd}"
        );
        let _ = std::fs::remove_file(&from);
    }
}
