//! The `strata` servers under faults a service meets: a signal with a connection open, a
//! descriptor limit reached by a crowd of connections, the connection cap.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::first_lines;

/// `strata ARGS...` with stdout and stderr piped, and the address of its `listening` line.
fn start(args: &[&str]) -> (Child, String) {
    start_under(&[], args)
}

/// `start`, under `sh -c 'SHELL_PREFIX exec strata ARGS...'` (a `ulimit`).
fn start_under(prefix: &[&str], args: &[&str]) -> (Child, String) {
    let mut command = match prefix {
        [] => Command::new(env!("CARGO_BIN_EXE_strata")),
        _ => {
            let mut sh = Command::new("sh");
            let script = format!("{} exec \"$0\" \"$@\"", prefix.join(" "));
            sh.args(["-c", &script, env!("CARGO_BIN_EXE_strata")]);
            sh
        }
    };
    let mut child = command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strata starts");
    let addr = first_lines(&mut child, &["listening "]).remove(0);
    (child, addr)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits up to `limit` for the child to exit; its status and stderr.
fn wait(mut child: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status, stderr);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the server did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A peer that connects, then closes as soon as the server sends anything or closes.
fn polite_peer(addr: &str) -> std::thread::JoinHandle<()> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    std::thread::spawn(move || {
        let mut byte = [0; 64];
        let _ = stream.read(&mut byte);
    })
}

#[test]
fn sigterm_closes_the_packet_server_in_order_with_a_connection_open() {
    let (child, addr) = start(&["packet", "serve"]);
    let peer = polite_peer(&addr);
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "TERM");
    let (status, stderr) = wait(child, Duration::from_secs(10));
    assert!(status.success(), "{status}: {stderr}");
    let line = stderr.trim();
    assert_eq!(line.lines().count(), 1, "one line: {stderr}");
    assert!(
        line.contains("SIGTERM")
            && line.contains("1 open at the signal, 1 of them closed in time, 0 cut"),
        "{line}"
    );
    peer.join().unwrap();
}

#[test]
fn sigint_closes_the_rpc_server_in_order_with_a_connection_open() {
    let (child, addr) = start(&["rpc", "serve", "--prog", "300000", "--vers", "1"]);
    let peer = polite_peer(&addr);
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "INT");
    let (status, stderr) = wait(child, Duration::from_secs(10));
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("SIGINT") && stderr.contains("1 open at the signal, 1 of them closed"),
        "{stderr}"
    );
    peer.join().unwrap();
}

#[test]
fn a_peer_that_never_closes_is_cut_at_the_shutdown_deadline() {
    let (child, addr) = start(&["packet", "serve", "--shutdown-timeout", "1"]);
    // Connected, and deaf: it never reads, never closes.
    let _deaf = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    signal(&child, "TERM");
    let (status, stderr) = wait(child, Duration::from_secs(10));
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("0 of them closed in time, 1 cut at the 1s deadline"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Runs `strata packet call ADDR 0 --payload hi` (an echo): its exit code and stdout.
fn packet_call(addr: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "packet",
            "call",
            addr,
            "0",
            "--payload",
            "hi",
            "--timeout",
            "5",
        ])
        .output()
        .expect("strata packet call runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_server_out_of_descriptors_goes_on_and_recovers() {
    // 64 descriptors: a crowd of 100 connections runs the server out of them.
    let (mut child, addr) = start_under(&["ulimit -n 64;"], &["packet", "serve"]);
    let crowd: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "still serving at the limit"
    );
    drop(crowd);
    // Once the crowd has gone, a call is served.
    let started = Instant::now();
    let (code, stdout) = loop {
        let (code, stdout) = packet_call(&addr);
        if code == Some(0) || started.elapsed() > Duration::from_secs(10) {
            break (code, stdout);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("\"payload_hex\":\"6869\""), "{stdout}");
    let _ = child.kill();
    let (_, stderr) = wait(child, Duration::from_secs(5));
    assert!(
        stderr.contains("accept failed") && stderr.contains("Too many open files"),
        "the limit was reached and traced: {stderr}"
    );
}

#[test]
fn at_the_connection_cap_a_new_connection_waits_for_one_to_end() {
    use tokio_util::codec::Encoder;
    let (mut child, addr) = start(&["packet", "serve", "--max-connections", "1"]);
    let first = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // An echo request on a second connection, over the cap: no answer while the first is open.
    let request = packetstream::Packet::request(0, 2, 0, 0, bytes::Bytes::from_static(b"hi"));
    let mut frame = bytes::BytesMut::new();
    packetstream::PacketCodec::default()
        .encode(request.unwrap(), &mut frame)
        .unwrap();
    let mut second = TcpStream::connect(&addr).unwrap();
    second.write_all(&frame).unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut reply = [0; 64];
    let early = second.read(&mut reply);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "nothing from a connection over the cap: {early:?}"
    );
    // The first ends: the second is accepted and answered.
    drop(first);
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = second
        .read(&mut reply)
        .expect("the reply once the first has gone");
    assert!(n > 0 && reply[..n].ends_with(b"hi"), "{:?}", &reply[..n]);
    let _ = child.kill();
    let _ = child.wait();
}
