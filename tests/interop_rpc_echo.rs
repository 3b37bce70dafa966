//! The ONC RPC service framework against the real programs, on loopback: the example service
//! `examples/rpc_echo.rs` called by an Ocamlnet 4.1.9 client and by an rpcgen/libtirpc C
//! client; our client calling an Ocamlnet `Rpc_server` (with each `Accept_limit_length`
//! rule) and an rpcgen C server of the same program; and the example registered with
//! rpcbind. `scripts/peers` installs the peers and `scripts/test` runs these with
//! `--ignored`; the peers' sources are in `tests/peers/ocamlnet` and `tests/peers/rpcgen`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use bytes::Bytes;
use strata::rpc_record::pmap::{IPPROTO_TCP, IPPROTO_UDP};
use strata::rpc_record::{
    AuthStat, AuthSys, Client, Config, Error, PeerAddr, RecordDatagram, RecordStream, Rpcbind,
    ServerError,
};
use tokio::net::{TcpStream, UdpSocket};

const PROG: u32 = 300002;

/// A child process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Starts `program` and reads its first `lines` stdout lines, each `listening ...`; the
    /// rest of each line.
    fn start(program: &Path, args: &[&str], lines: usize) -> (Running, Vec<String>) {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()));
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let running = Running(child);
        let found = (0..lines)
            .map(|_| {
                let mut line = String::new();
                stdout.read_line(&mut line).expect("a first line");
                line.strip_prefix("listening ")
                    .unwrap_or_else(|| panic!("a listening line, got {line:?}"))
                    .trim()
                    .to_owned()
            })
            .collect();
        (running, found)
    }

    /// Stops it with SIGTERM and waits for it to exit on its own.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        run(Path::new("kill"), &["-TERM", &pid]);
        self.0.wait().expect("it exits")
    }
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} runs (scripts/peers installs it): {e}",
                program.display()
            )
        })
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The example's binary, built beside this test (`cargo build --examples`, which
/// `scripts/test` does first).
fn rpc_echo() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let example = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("examples/rpc_echo"))
        .expect("target/<profile>/examples");
    assert!(
        example.exists(),
        "{} is missing: run `cargo build --examples` first",
        example.display()
    );
    example
}

/// Builds the peers under `tests/peers/NAME` with their `build.sh`, one build at a time;
/// their directory.
fn peers(name: &str) -> PathBuf {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    let out = workspace().join("target/peers").join(name);
    let build = run(
        &workspace().join("tests/peers").join(name).join("build.sh"),
        &[out.to_str().expect("a UTF-8 path")],
    );
    assert!(
        build.status.success(),
        "building the {name} peers failed (scripts/peers installs what they need): {}",
        String::from_utf8_lossy(&build.stderr)
    );
    out
}

/// The example on loopback TCP and UDP: the guard and both addresses.
fn start_example(extra: &[&str]) -> (Running, SocketAddr, SocketAddr) {
    let mut args = vec!["--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let (running, addrs) = Running::start(&rpc_echo(), &args, 2);
    let parse = |text: &str| text.parse().expect("an address");
    (running, parse(&addrs[0]), parse(&addrs[1]))
}

async fn tcp_client(addr: SocketAddr, config: &Config) -> Client {
    let stream = TcpStream::connect(addr).await.expect("the server listens");
    stream.set_nodelay(true).unwrap();
    Client::stream(RecordStream::new(stream, config), config)
}

async fn udp_client(addr: SocketAddr, config: &Config) -> Client {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let socket = RecordDatagram::new(socket, config);
    Client::datagram(
        socket,
        PeerAddr::Inet(addr),
        Duration::from_millis(200),
        config,
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// NULL, ECHO (checked) and refusals through `client`, whatever the server.
async fn echo_through(client: &Client, lengths: &[usize]) {
    let null = client.call(PROG, 1, 0, Bytes::new()).await.unwrap();
    assert_eq!(null.outcome, Ok(Bytes::new()));
    for &len in lengths {
        let text = "x".repeat(len);
        let echoed: Result<String, _> = client.call_xdr(PROG, 1, 1, text.as_str()).await.unwrap();
        // Compared without printing what may be 64 KiB of x.
        let echoed = echoed.map(|e| (e.len(), e == text));
        assert_eq!(echoed, Ok((len, true)), "{len} bytes");
    }
}

/// The server's refusals as our client reads them (PROG_MISMATCH(1, 1), PROC_UNAVAIL), and
/// WHOAMI: AUTH_TOOWEAK without credentials, the uid of AUTH_SYS ones.
async fn refusals_and_whoami(client: &Client) {
    let other_version = client.call(PROG, 2, 0, Bytes::new()).await.unwrap();
    assert_eq!(
        other_version.outcome,
        Err(ServerError::ProgMismatch { low: 1, high: 1 })
    );
    let no_such = client.call(PROG, 1, 9, Bytes::new()).await.unwrap();
    assert_eq!(no_such.outcome, Err(ServerError::ProcUnavail));
    let anonymous: Result<u32, _> = client.call_xdr(PROG, 1, 2, &()).await.unwrap();
    assert_eq!(anonymous, Err(ServerError::AuthError(AuthStat::TooWeak)));
    let sys = AuthSys {
        uid: 1234,
        gid: 56,
        machine_name: "strata".into(),
        ..AuthSys::default()
    };
    let as_sys = client.with_cred(sys.to_cred().unwrap());
    let uid: Result<u32, _> = as_sys.call_xdr(PROG, 1, 2, &()).await.unwrap();
    assert_eq!(uid, Ok(1234));
}

#[test]
#[ignore = "needs Ocamlnet: scripts/test sets it up"]
fn an_ocamlnet_client_calls_the_example_service_over_tcp_and_udp() {
    let ocamlnet = peers("ocamlnet");
    let (_example, tcp, udp) = start_example(&[]);
    let client = ocamlnet.join("echo_client");
    for (proto, addr, lengths) in [
        ("tcp", tcp, "0 1 3 4 1000 65536"),
        ("udp", udp, "0 1 3 4 1000 8000"),
    ] {
        let port = addr.port().to_string();
        let null = run(&client, &[proto, &port, "null"]);
        assert_eq!(stdout(&null), "ok\n", "{proto}: {null:?}");
        let mut args = vec![proto, &port, "echo"];
        args.extend(lengths.split(' '));
        let echo = run(&client, &args);
        assert!(echo.status.success(), "{proto}: {echo:?}");
        let expected: String = lengths.split(' ').map(|n| format!("ok {n}\n")).collect();
        assert_eq!(stdout(&echo), expected, "{proto}");
    }
}

#[test]
#[ignore = "needs Ocamlnet: scripts/test sets it up"]
fn our_client_calls_an_ocamlnet_server_over_tcp_and_udp() {
    let ocamlnet = peers("ocamlnet");
    let server = ocamlnet.join("echo_server");
    let (_tcp_server, tcp) = Running::start(&server, &["tcp", "0"], 1);
    let (_udp_server, udp) = Running::start(&server, &["udp", "0"], 1);
    let config = Config::default();
    runtime().block_on(async {
        let tcp: SocketAddr = ([127, 0, 0, 1], tcp[0].parse().unwrap()).into();
        let udp: SocketAddr = ([127, 0, 0, 1], udp[0].parse().unwrap()).into();
        echo_through(&tcp_client(tcp, &config).await, &[0, 1, 5, 1000, 65536]).await;
        echo_through(&udp_client(udp, &config).await, &[0, 7, 1000]).await;
        // Ocamlnet's refusals and its AUTH_SYS method, as our client reads them.
        let client = tcp_client(tcp, &config).await;
        refusals_and_whoami(&client).await;
        let garbage = client
            .call(PROG, 1, 1, Bytes::from_static(&[0, 0, 0, 9]))
            .await
            .unwrap();
        assert_eq!(garbage.outcome, Err(ServerError::GarbageArgs));
    });
}

#[test]
#[ignore = "needs Ocamlnet: scripts/test sets it up"]
fn our_client_gets_each_accept_limit_length_rule_of_an_ocamlnet_server() {
    let ocamlnet = peers("ocamlnet");
    let server = ocamlnet.join("echo_server");
    // Calls of 100 bytes at most; an ECHO of 200 bytes is over the limit.
    let config = Config {
        call_timeout: Some(Duration::from_millis(700)),
        ..Config::default()
    };
    let long = "y".repeat(200);
    for rule in ["reject", "drop", "deny"] {
        let (_server, port) = Running::start(&server, &["tcp", "0", "100", rule], 1);
        let addr: SocketAddr = ([127, 0, 0, 1], port[0].parse().unwrap()).into();
        runtime().block_on(async {
            let client = tcp_client(addr, &config).await;
            echo_through(&client, &[10]).await;
            let over = client.call_xdr::<str, String>(PROG, 1, 1, &long).await;
            match rule {
                // Reject: AUTH_ERROR(AUTH_TOOWEAK) with the call's xid; the connection stays.
                "reject" => {
                    assert_eq!(
                        over.unwrap(),
                        Err(ServerError::AuthError(AuthStat::TooWeak))
                    );
                    echo_through(&client, &[10]).await;
                }
                // Drop: no reply (the call times out), the connection stays.
                "drop" => {
                    assert!(matches!(over, Err(Error::Timeout(_))), "{over:?}");
                    echo_through(&client, &[10]).await;
                }
                // Deny: the connection is closed; the call fails with the link.
                _ => {
                    assert!(matches!(over, Err(Error::Ended(_))), "{over:?}");
                    let after = client.call(PROG, 1, 0, Bytes::new()).await;
                    assert!(after.is_err(), "the link is gone");
                }
            }
        });
    }
}

#[test]
#[ignore = "needs rpcgen and libtirpc: scripts/test sets them up"]
fn an_rpcgen_client_calls_the_example_service() {
    let rpcgen = peers("rpcgen");
    let client = rpcgen.join("echo_client");
    let (_example, tcp, udp) = start_example(&[]);
    let (tcp, udp) = (tcp.port().to_string(), udp.port().to_string());
    assert_eq!(stdout(&run(&client, &["tcp", &tcp, "null"])), "ok\n");
    assert_eq!(stdout(&run(&client, &["udp", &udp, "null"])), "ok\n");
    // libtirpc's xdr_wrapstring, which rpcgen's stubs use, takes strings of up to 9000 bytes
    // (RPC_MAXDATASIZE).
    for (proto, port, len) in [
        ("tcp", &tcp, "9000"),
        ("tcp", &tcp, "0"),
        ("udp", &udp, "1000"),
    ] {
        let echo = run(&client, &[proto, port, "echo", len]);
        assert_eq!(stdout(&echo), format!("ok {len}\n"), "{proto}: {echo:?}");
    }
    // WHOAMI with authunix_create_default(): this process's uid; without: too weak.
    let uid = run(Path::new("id"), &["-u"]);
    for (proto, port) in [("tcp", &tcp), ("udp", &udp)] {
        let whoami = run(&client, &[proto, port, "whoami", "sys"]);
        assert_eq!(stdout(&whoami), format!("uid {}", stdout(&uid)), "{proto}");
        let anonymous = run(&client, &[proto, port, "whoami"]);
        assert!(!anonymous.status.success());
        assert!(
            stdout(&anonymous).contains("Client credential too weak"),
            "{proto}: {anonymous:?}"
        );
    }
}

#[test]
#[ignore = "needs rpcgen and libtirpc: scripts/test sets them up"]
fn our_client_calls_the_rpcgen_server() {
    let rpcgen = peers("rpcgen");
    let (_server, ports) = Running::start(&rpcgen.join("echo_server"), &["0"], 2);
    let port = |line: &str, proto: &str| -> SocketAddr {
        let port = line.strip_prefix(proto).expect("tcp then udp").trim();
        ([127, 0, 0, 1], port.parse().unwrap()).into()
    };
    let (tcp, udp) = (port(&ports[0], "tcp"), port(&ports[1], "udp"));
    let config = Config::default();
    runtime().block_on(async {
        // Up to 9000 bytes: libtirpc's xdr_wrapstring (RPC_MAXDATASIZE).
        echo_through(&tcp_client(tcp, &config).await, &[0, 3, 1000, 9000]).await;
        echo_through(&udp_client(udp, &config).await, &[0, 3, 1000]).await;
        for client in [
            tcp_client(tcp, &config).await,
            udp_client(udp, &config).await,
        ] {
            refusals_and_whoami(&client).await;
        }
    });
}

/// rpcbind on loopback only (`tests/peers/rpcbind_loopback.py`), stopped when dropped.
fn start_rpcbind() -> Running {
    let uid = run(Path::new("id"), &["-u"]);
    assert_eq!(stdout(&uid).trim(), "0", "rpcbind needs root (port 111)");
    let child = Command::new("python3")
        .arg(workspace().join("tests/peers/rpcbind_loopback.py"))
        .arg("120")
        .spawn()
        .expect("the rpcbind launcher starts");
    let running = Running(child);
    for _ in 0..50 {
        if run(Path::new("rpcinfo"), &["-p", "127.0.0.1"])
            .status
            .success()
        {
            return running;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("rpcbind did not answer within 5 s");
}

#[test]
#[ignore = "needs rpcbind and root: scripts/test sets it up"]
fn the_example_registers_with_rpcbind_and_is_gone_after_shutdown() {
    let _rpcbind = start_rpcbind();
    let rpcinfo = Path::new("rpcinfo");
    let (example, tcp, udp) = start_example(&["--register"]);
    // It registers once it listens: wait for rpcbind to list it (5 s at most).
    let lines = [("tcp", tcp.port()), ("udp", udp.port())]
        .map(|(proto, port)| format!("{PROG:>10}{:>5}{proto:>6}{port:>7}", 1));
    let mut listed = String::new();
    for _ in 0..50 {
        listed = stdout(&run(rpcinfo, &["-p", "127.0.0.1"]));
        if lines.iter().all(|line| listed.contains(line)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for line in &lines {
        assert!(listed.contains(line), "{line:?} in:\n{listed}");
    }
    // rpcinfo finds it by number alone, through rpcbind, on both transports.
    for netid in ["tcp", "udp"] {
        let ping = run(rpcinfo, &["-T", netid, "127.0.0.1", &PROG.to_string()]);
        assert_eq!(
            stdout(&ping),
            format!("program {PROG} version 1 ready and waiting\n"),
            "{netid}: {ping:?}"
        );
    }
    // So does our client: GETPORT (version 2) and GETADDR (version 4).
    let config = Config::default();
    runtime().block_on(async {
        let rpcbind = Rpcbind::connect(([127, 0, 0, 1], 111).into(), &config)
            .await
            .unwrap();
        assert_eq!(
            rpcbind.getport(PROG, 1, IPPROTO_TCP).await.unwrap(),
            Some(tcp.port())
        );
        assert_eq!(
            rpcbind.getport(PROG, 1, IPPROTO_UDP).await.unwrap(),
            Some(udp.port())
        );
        assert_eq!(rpcbind.getaddr(PROG, 1, "tcp").await.unwrap(), Some(tcp));
        // rpcbind answers GETADDR for the transport it is asked over.
        let over_udp = Rpcbind::connect_udp(([127, 0, 0, 1], 111).into(), &config)
            .await
            .unwrap();
        assert_eq!(over_udp.getaddr(PROG, 1, "udp").await.unwrap(), Some(udp));
        assert_eq!(
            rpcbind.getport(PROG + 1, 1, IPPROTO_TCP).await.unwrap(),
            None
        );
        // A version not registered: rpcbind gives the program's port, so that the server
        // itself says PROG_MISMATCH.
        assert_eq!(
            rpcbind.getport(PROG, 2, IPPROTO_TCP).await.unwrap(),
            Some(tcp.port())
        );
        // A client found by program number alone, over either transport.
        for udp in [false, true] {
            let client = rpcbind
                .client([127, 0, 0, 1].into(), PROG, 1, udp, &config)
                .await
                .unwrap();
            echo_through(&client, &[0, 100]).await;
        }
        let unknown = rpcbind
            .client([127, 0, 0, 1].into(), PROG + 1, 1, false, &config)
            .await;
        assert!(matches!(
            unknown,
            Err(Error::Refused {
                why: ServerError::ProgUnavail,
                ..
            })
        ));
    });
    // SIGTERM: it unregisters before it exits.
    assert!(example.terminate().success());
    let listed = stdout(&run(rpcinfo, &["-p", "127.0.0.1"]));
    assert!(
        !listed.contains(&PROG.to_string()),
        "still listed:\n{listed}"
    );
    let gone = run(rpcinfo, &["-T", "tcp", "127.0.0.1", &PROG.to_string()]);
    assert!(!gone.status.success());
}
