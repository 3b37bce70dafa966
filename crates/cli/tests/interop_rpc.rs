//! rpc-record against the real ONC RPC peers: Debian's rpcinfo and rpcbind (libtirpc 1.3.3)
//! and Python sunrpc 1.1.0, all on loopback. `scripts/peers` installs them, and
//! `scripts/test` runs these with `--ignored`. rpcbind needs root (port 111).

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::{Running, first_lines, python, rpc_serve, rpc_serve_with, workspace};
use rpc_record::{Client, Config, Error, RecordStream};
use tokio::net::TcpStream;

/// `strata rpc serve` on loopback TCP and UDP: the guard and both ports.
fn strata_serve(prog: u32, vers: &str) -> (Running, u16, u16) {
    let (running, tcp, udp) = rpc_serve(prog, vers);
    let port = |addr: &str| addr.rsplit_once(':').unwrap().1.parse().unwrap();
    (running, port(&tcp), port(&udp))
}

/// rpcinfo's universal address for 127.0.0.1:port.
fn uaddr(port: u16) -> String {
    format!("127.0.0.1.{}.{}", port >> 8, port & 0xff)
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs (scripts/peers installs it): {e}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
#[ignore = "needs rpcinfo: scripts/test sets it up"]
fn rpcinfo_pings_strata_rpc_serve_over_tcp_and_udp() {
    let (_server, tcp, udp) = strata_serve(300000, "2,3");
    for (netid, port) in [("tcp", tcp), ("udp", udp)] {
        let one = run("rpcinfo", &["-a", &uaddr(port), "-T", netid, "300000", "2"]);
        assert!(one.status.success(), "{netid}: {one:?}");
        assert_eq!(stdout(&one), "program 300000 version 2 ready and waiting\n");
        // Without a version: version 0 first, PROG_MISMATCH(2, 3), then each version.
        let all = run("rpcinfo", &["-a", &uaddr(port), "-T", netid, "300000"]);
        assert!(all.status.success(), "{netid}: {all:?}");
        assert_eq!(
            stdout(&all),
            "program 300000 version 2 ready and waiting\n\
             program 300000 version 3 ready and waiting\n"
        );
        let wrong = run("rpcinfo", &["-a", &uaddr(port), "-T", netid, "300000", "9"]);
        assert_eq!(wrong.status.code(), Some(1), "{netid}: {wrong:?}");
        let stderr = String::from_utf8_lossy(&wrong.stderr);
        assert!(
            stderr.contains("low version = 2, high version = 3"),
            "{netid}: {stderr}"
        );
        let other = run("rpcinfo", &["-a", &uaddr(port), "-T", netid, "300001", "1"]);
        assert_eq!(other.status.code(), Some(1), "{netid}: {other:?}");
        assert!(String::from_utf8_lossy(&other.stderr).contains("Program unavailable"));
    }
}

/// rpcbind on loopback only, through `tests/peers/rpcbind_loopback.py`, stopped when
/// dropped (and by its own alarm after 120 s). One at a time: it takes port 111.
struct Rpcbind {
    _running: Running,
    _one: std::sync::MutexGuard<'static, ()>,
}

impl Rpcbind {
    fn start() -> Rpcbind {
        static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let one = ONE.lock().unwrap_or_else(|p| p.into_inner());
        let uid = run("id", &["-u"]);
        assert_eq!(stdout(&uid).trim(), "0", "rpcbind needs root (port 111)");
        let child = Command::new(python())
            .arg(workspace().join("tests/peers/rpcbind_loopback.py"))
            .arg("120")
            .spawn()
            .expect("the rpcbind launcher starts");
        let rpcbind = Rpcbind {
            _running: Running(child),
            _one: one,
        };
        for _ in 0..50 {
            if run("rpcinfo", &["-p", "127.0.0.1"]).status.success() {
                return rpcbind;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("rpcbind did not answer within 5 s");
    }
}

fn strata(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_strata"), args)
}

/// A NULL call to rpcbind whose record is `len` bytes (the header's 40 plus arguments).
async fn null_of_length(len: usize) -> Result<rpc_record::Reply, Error> {
    let stream = TcpStream::connect("127.0.0.1:111")
        .await
        .expect("rpcbind listens");
    let config = Config::default();
    let client = Client::stream(RecordStream::new(stream, &config), &config);
    let args = Bytes::from(vec![0; len - 40]);
    tokio::time::timeout(Duration::from_secs(10), client.call(100000, 2, 0, args))
        .await
        .expect("an answer or an error, not a hang")
}

#[test]
#[ignore = "needs rpcbind and root: scripts/test sets it up"]
fn strata_dump_and_ping_against_rpcbind() {
    let _rpcbind = Rpcbind::start();

    let ours = strata(&["rpc", "dump", "127.0.0.1"]);
    let theirs = run("rpcinfo", &["-p", "127.0.0.1"]);
    assert!(ours.status.success(), "{ours:?}");
    assert_eq!(
        stdout(&ours),
        stdout(&theirs),
        "the same table as rpcinfo -p"
    );
    assert!(stdout(&ours).contains("    100000    4   tcp    111  portmapper"));
    let v6 = strata(&["rpc", "dump", "::1"]);
    assert_eq!(stdout(&v6), stdout(&theirs), "over ::1 too");

    for transport in ["--tcp", "--udp"] {
        let ping = strata(&["rpc", "ping", transport, "127.0.0.1:111", "100000"]);
        assert!(ping.status.success(), "{transport}: {ping:?}");
        assert_eq!(
            stdout(&ping),
            "program 100000 version 2 ready and waiting\n\
             program 100000 version 3 ready and waiting\n\
             program 100000 version 4 ready and waiting\n"
        );
        let unknown = strata(&["rpc", "ping", transport, "127.0.0.1:111", "300000", "1"]);
        assert_eq!(unknown.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&unknown.stderr)
                .contains("program 300000 version 1 is not available: PROG_UNAVAIL"),
            "{unknown:?}"
        );
    }

    // rpcbind takes records up to 9000 bytes and resets the connection beyond.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let answered = null_of_length(9000).await.expect("9000 bytes are answered");
        assert_eq!(answered.outcome, Ok(Bytes::new()));
        let e = null_of_length(9001).await.unwrap_err();
        assert!(matches!(e, Error::Ended(_)), "a clean error: {e}");
        assert!(
            e.to_string()
                .starts_with("the connection ended before the reply"),
            "{e}"
        );
    });
}

/// Polls `rpcinfo -p` until `wanted` says its output is right (5 s at most); the output.
fn rpcinfo_until(wanted: impl Fn(&str) -> bool) -> String {
    let mut listed = String::new();
    for _ in 0..50 {
        listed = stdout(&run("rpcinfo", &["-p", "127.0.0.1"]));
        if wanted(&listed) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    listed
}

#[test]
#[ignore = "needs rpcbind and root: scripts/test sets it up"]
fn strata_rpc_serve_registers_and_strata_rpc_call_finds_it_through_rpcbind() {
    let _rpcbind = Rpcbind::start();
    let (mut server, tcp, udp) = rpc_serve_with(300010, "1,2", &["--register"]);
    let port = |addr: &str| addr.rsplit_once(':').unwrap().1.to_owned();
    let (tcp, udp) = (port(&tcp), port(&udp));
    let lines: Vec<String> = [("1", "tcp", &tcp), ("1", "udp", &udp), ("2", "tcp", &tcp)]
        .iter()
        .map(|(vers, proto, port)| format!("    300010{vers:>5}{proto:>6}{port:>7}"))
        .collect();
    let listed = rpcinfo_until(|listed| lines.iter().all(|line| listed.contains(line)));
    for line in &lines {
        assert!(listed.contains(line), "{line:?} in:\n{listed}");
    }
    // The port from rpcbind, over either transport; one JSON line.
    for transport in ["--tcp", "--udp"] {
        let call = strata(&["rpc", "call", "127.0.0.1", "300010", "2", "0", transport]);
        assert!(call.status.success(), "{transport}: {call:?}");
        assert_eq!(
            stdout(&call),
            "{\"reply\":\"accepted\",\"result\":\"\",\"status\":\"SUCCESS\"}\n"
        );
    }
    let refused = strata(&["rpc", "call", "127.0.0.1", "300010", "2", "7"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stdout(&refused),
        "{\"reply\":\"accepted\",\"status\":\"PROC_UNAVAIL\"}\n"
    );
    let mismatch = strata(&["rpc", "call", "127.0.0.1", "300010", "9", "0"]);
    assert_eq!(
        stdout(&mismatch),
        "{\"high\":2,\"low\":1,\"reply\":\"accepted\",\"status\":\"PROG_MISMATCH\"}\n"
    );
    let unknown = strata(&["rpc", "call", "127.0.0.1", "300099", "1", "0"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("PROG_UNAVAIL"));
    // --port skips rpcbind; --auth-sys sends this process's credentials.
    let direct = strata(&[
        "rpc",
        "call",
        "127.0.0.1",
        "300010",
        "1",
        "0",
        "--port",
        &tcp,
        "--auth-sys",
    ]);
    assert!(direct.status.success(), "{direct:?}");
    // SIGTERM: it unregisters on its way out.
    run("kill", &["-TERM", &server.0.id().to_string()]);
    assert!(server.0.wait().unwrap().success());
    let listed = rpcinfo_until(|listed| !listed.contains("300010"));
    assert!(!listed.contains("300010"), "still registered:\n{listed}");
}

/// The sunrpc peer script with `args`.
fn sunrpc_peer(args: &[&str]) -> Command {
    let mut command = Command::new(python());
    command
        .arg(workspace().join("tests/peers/sunrpc_peer.py"))
        .args(args);
    command
}

#[test]
#[ignore = "needs Python sunrpc: scripts/test sets it up"]
fn sunrpc_sends_8_byte_fragments_to_strata_rpc_serve() {
    let (_server, tcp, _) = strata_serve(300002, "1");
    let output = sunrpc_peer(&["call", &tcp.to_string(), "300002", "1", "8", "hello"])
        .output()
        .expect("the sunrpc peer runs");
    assert!(output.status.success(), "{output:?}");
    // Our server answers NULL only: ECHO (procedure 1) is PROC_UNAVAIL, which sunrpc reports
    // as "call failed: 3", for the call's xid, once the 60-byte record was reassembled
    // from its 8 fragments.
    assert_eq!(
        stdout(&output).trim(),
        r#"{"xid": 1515847681, "error": "call failed: 3"}"#
    );
    let output = sunrpc_peer(&["call", &tcp.to_string(), "300002", "7", "8", "hello"])
        .output()
        .expect("the sunrpc peer runs");
    assert_eq!(
        stdout(&output).trim(),
        r#"{"xid": 1515847681, "error": "call failed: PROG_MISMATCH: 1, 1"}"#
    );
}

#[tokio::test]
#[ignore = "needs Python sunrpc: scripts/test sets it up"]
async fn strata_client_sends_small_fragments_to_the_sunrpc_server() {
    let mut child = sunrpc_peer(&["server", "300003", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the sunrpc server starts");
    let port = first_lines(&mut child, &["listening "]).remove(0);
    let _server = Running(child);
    let stream = TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let config = Config {
        fragment_size: 5,
        ..Config::default()
    };
    let client = Client::stream(RecordStream::new(stream, &config), &config);
    let null = client.call(300003, 1, 0, Bytes::new()).await.unwrap();
    assert_eq!(null.outcome, Ok(Bytes::new()));
    // ECHO of an XDR string: length, bytes, padding; 13 fragments of at most 5 bytes.
    let text = b"hello, strata";
    let mut args = BytesMut::new();
    args.put_u32(text.len() as u32);
    args.put_slice(text);
    args.put_bytes(0, 3);
    let echo = client
        .call(300003, 1, 1, args.clone().freeze())
        .await
        .unwrap();
    assert_eq!(echo.outcome, Ok(args.freeze()));
}
