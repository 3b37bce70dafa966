//! Listeners, the registry and graceful shutdown: TCP and Unix, TLS with a bad client among
//! good ones, the connection limit, a thousand abrupt disconnects.

mod support;

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strata_transport::{
    Accepted, Address, Config, Credentials, Interface, Listener, Serving, Stack, TlsClient,
    TlsServer,
};
use support::Ca;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// Echoes one line of up to 64 bytes, then waits for the peer to close.
async fn echo_once(mut c: Accepted) {
    let mut buf = [0; 64];
    if let Ok(n @ 1..) = c.stack.read(&mut buf).await {
        let _ = c.stack.write_all(&buf[..n]).await;
        let _ = c.stack.flush().await;
        let _ = c.stack.read(&mut buf).await;
    }
}

async fn tcp_interface(config: Config, tls: Option<TlsServer>) -> (Interface, String) {
    let mut interface = Interface::new(config);
    let listener = Listener::tcp("127.0.0.1:0").await.unwrap();
    let Address::Tcp(addr) = listener.local_addr().unwrap() else {
        panic!("a TCP address");
    };
    interface.listen(listener);
    if let Some(tls) = tls {
        interface.tls(tls);
    }
    (interface, addr.to_string())
}

/// Waits (a bounded while) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

async fn ask(stream: &mut (impl AsyncReadExt + AsyncWriteExt + Unpin), text: &[u8]) -> Vec<u8> {
    stream.write_all(text).await.unwrap();
    let mut got = vec![0; text.len()];
    stream.read_exact(&mut got).await.unwrap();
    got
}

#[tokio::test]
async fn tcp_connections_are_registered_with_their_address_and_leave_when_done() {
    let (interface, addr) = tcp_interface(Config::default(), None).await;
    let serving = interface.serve(echo_once);
    let connections = serving.connections().clone();
    let mut client = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(ask(&mut client, b"hello").await, b"hello");
    let peers = connections.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].addr, Address::Tcp(client.local_addr().unwrap()));
    assert!(peers[0].fd > 2);
    assert_eq!(connections.get(peers[0].id), Some(peers[0].clone()));
    drop(client);
    eventually("the connection leaves", || connections.is_empty()).await;
    let counts = connections.counts();
    assert_eq!((counts.accepted, counts.live, counts.finished), (1, 0, 1));
    serving.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn unix_peers_carry_their_credentials() {
    let dir = std::env::temp_dir().join(format!("strata-transport-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("interface.sock");
    let _ = std::fs::remove_file(&path);
    let mut interface = Interface::new(Config::default());
    interface.listen(Listener::unix(&path).unwrap());
    let serving = interface.serve(echo_once);
    let mut client = UnixStream::connect(&path).await.unwrap();
    assert_eq!(ask(&mut client, b"who").await, b"who");
    let peer = serving.connections().peers().pop().expect("one peer");
    let me = std::fs::metadata("/proc/self").unwrap();
    assert_eq!(
        peer.credentials,
        Some(Credentials {
            uid: me.uid(),
            gid: me.gid(),
            pid: Some(std::process::id() as i32),
        })
    );
    assert_eq!(peer.addr, Address::Unix(None));
    drop(client);
    serving.shutdown(Duration::from_secs(1)).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello_fails_that_connection_only() {
    let ca = Ca::new("Strata test CA");
    let (certs, key) = ca.identity("strata server", &["localhost"]);
    let server = TlsServer::with_identity(certs, key).unwrap();
    let (interface, addr) = tcp_interface(Config::default(), Some(server)).await;
    let serving = interface.serve(echo_once);
    let connections = serving.connections().clone();

    let mut garbage = TcpStream::connect(&addr).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    // The server answers with an alert (or nothing) and closes.
    let _ = garbage.read_to_end(&mut rest).await;
    eventually("the bad handshake is counted", || {
        connections.counts().failed == 1
    })
    .await;

    let client = TlsClient::verifying([ca.cert.clone()], "localhost").unwrap();
    let mut stack = Stack::new(TcpStream::connect(&addr).await.unwrap());
    stack.push(client).await.unwrap();
    assert_eq!(ask(&mut stack, b"still serving").await, b"still serving");
    let counts = connections.counts();
    assert_eq!((counts.accepted, counts.failed, counts.live), (2, 1, 1));
    drop(stack);
    serving.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_connection_limit_holds_new_connections_back() {
    let config = Config {
        max_connections: 2,
        ..Config::default()
    };
    let (interface, addr) = tcp_interface(config, None).await;
    // Handlers running now, and the most that ever ran at once.
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let serving = interface.serve({
        let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
        move |c: Accepted| {
            let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                echo_once(c).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }
        }
    });
    let connections = serving.connections().clone();
    let mut a = TcpStream::connect(&addr).await.unwrap();
    let mut b = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(ask(&mut a, b"a").await, b"a");
    assert_eq!(ask(&mut b, b"b").await, b"b");
    // The third connects (the kernel's backlog) but is not accepted while two are live.
    let mut c = TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"c").await.unwrap();
    let mut got = [0; 1];
    let early = tokio::time::timeout(Duration::from_millis(200), c.read_exact(&mut got)).await;
    assert!(early.is_err(), "the third is not served yet");
    assert_eq!(connections.counts().accepted, 2);
    drop(a);
    c.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"c");
    assert_eq!(connections.counts().accepted, 3);
    drop((b, c));
    serving.shutdown(Duration::from_secs(1)).await;
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_thousand_abrupt_disconnects_leave_no_connection_and_no_task() {
    let (interface, addr) = tcp_interface(Config::default(), None).await;
    let serving = interface.serve(echo_once);
    let connections = serving.connections().clone();
    for _ in 0..10 {
        let mut clients = Vec::new();
        for _ in 0..100 {
            clients.push(TcpStream::connect(&addr).await.unwrap());
        }
        // Some send half a request first; then every one is dropped without a word.
        for client in clients.iter_mut().step_by(3) {
            let _ = client.write_all(b"par").await;
        }
        drop(clients);
    }
    eventually("all 1000 accepted", || {
        connections.counts().accepted == 1000
    })
    .await;
    eventually("the registry is empty", || connections.is_empty()).await;
    eventually("no task is left", || connections.tasks() == 0).await;
    let counts = connections.counts();
    assert_eq!(
        (counts.live, counts.finished, counts.cancelled),
        (0, 1000, 0)
    );
    serving.shutdown(Duration::from_secs(1)).await;
}

/// One handler that ends when shutdown begins, one that ignores it.
async fn serve_two_kinds() -> (Serving, TcpStream, TcpStream) {
    let (interface, addr) = tcp_interface(Config::default(), None).await;
    let serving = interface.serve(|mut c: Accepted| async move {
        let mut kind = [0; 1];
        c.stack.read_exact(&mut kind).await.unwrap();
        match &kind {
            b"g" => c.closing.cancelled().await,
            _ => std::future::pending().await,
        }
        c.stack.write_all(b"bye").await.unwrap();
        c.stack.shutdown().await.unwrap();
    });
    let mut graceful = TcpStream::connect(&addr).await.unwrap();
    graceful.write_all(b"g").await.unwrap();
    let mut stubborn = TcpStream::connect(&addr).await.unwrap();
    stubborn.write_all(b"s").await.unwrap();
    let connections = serving.connections().clone();
    eventually("both are live", || connections.len() == 2).await;
    (serving, graceful, stubborn)
}

#[tokio::test]
async fn shutdown_lets_connections_finish_then_cuts_the_rest() {
    let (serving, mut graceful, mut stubborn) = serve_two_kinds().await;
    let connections = serving.connections().clone();
    let report = serving.shutdown(Duration::from_millis(300)).await;
    assert_eq!((report.finished, report.cancelled), (1, 1));
    let mut said = Vec::new();
    graceful.read_to_end(&mut said).await.unwrap();
    assert_eq!(said, b"bye");
    // The stubborn one was cut: its socket closed with nothing said.
    let mut nothing = Vec::new();
    let _ = stubborn.read_to_end(&mut nothing).await;
    assert!(nothing.is_empty());
    assert_eq!((connections.len(), connections.tasks()), (0, 0));
    assert_eq!(connections.counts().cancelled, 1);
}

/// Run by the test below in a child process that socket activation started: takes the
/// listeners handed over on descriptors 3 (TCP) and 4 (Unix) and serves a connection on each.
fn activated_child(expected: &str) {
    let (tcp, unix) = expected
        .split_once(' ')
        .expect("a TCP address and a Unix path");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let listeners = Listener::activated().unwrap();
        assert_eq!(listeners.len(), 2, "two listeners handed over");
        assert_eq!(listeners[0].local_addr().unwrap().to_string(), tcp);
        assert_eq!(
            listeners[1].local_addr().unwrap(),
            Address::Unix(Some(unix.into()))
        );
        let mut interface = Interface::new(Config::default());
        for listener in listeners {
            interface.listen(listener);
        }
        let serving = interface.serve(echo_once);
        let mut client = TcpStream::connect(tcp).await.unwrap();
        assert_eq!(ask(&mut client, b"activated").await, b"activated");
        drop(client);
        let mut client = UnixStream::connect(unix).await.unwrap();
        assert_eq!(ask(&mut client, b"on unix too").await, b"on unix too");
        drop(client);
        let report = serving.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.cancelled, 0);
    });
}

#[test]
fn socket_activation_hands_over_bound_tcp_and_unix_listeners() {
    if let Ok(expected) = std::env::var("STRATA_ACTIVATED_CHILD") {
        return activated_child(&expected);
    }
    // As systemd does: bound, listening sockets from descriptor 3 and LISTEN_FDS, then exec
    // (LISTEN_PID left empty: the pid is not known before exec).
    let path = std::env::temp_dir().join(format!("strata-activated-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let script = r#"
import os, socket, sys
t = socket.socket()
t.bind(("127.0.0.1", 0))
t.listen()
u = socket.socket(socket.AF_UNIX)
u.bind(sys.argv[2])
u.listen()
os.dup2(t.fileno(), 3)
os.dup2(u.fileno(), 4)
os.set_inheritable(3, True)
os.set_inheritable(4, True)
host, port = t.getsockname()
env = dict(os.environ, LISTEN_FDS="2", LISTEN_PID="", STRATA_ACTIVATED_CHILD=f"{host}:{port} {sys.argv[2]}")
exe = sys.argv[1]
os.execve(exe, [exe, "--exact", "socket_activation_hands_over_bound_tcp_and_unix_listeners"], env)
"#;
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(exe)
        .arg(&path)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test: {stdout}"
    );
}
