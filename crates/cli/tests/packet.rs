//! `strata packet serve` and `strata packet call` against each other, as the contract in
//! DESIGN.md has them.

use std::process::Command;

mod common;
use common::Server;

fn call(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["packet", "call"])
        .args(args)
        .output()
        .expect("strata packet call runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(ok: bool, flags: u64, payload_hex: &str) -> String {
    format!("{{\"ok\":{ok},\"flags\":{flags},\"payload_hex\":\"{payload_hex}\"}}\n")
}

#[test]
fn call_prints_one_json_line_per_handler_of_the_table() {
    let server = Server::start(&[]);
    let addr = server.addr.as_str();
    let failure = "657863657074696f6e20647572696e672068616e646c6572";
    let cases: [(&[&str], String); 8] = [
        (
            &["0", "--flags", "1099511627776", "--payload", "hi"],
            json(true, 1 << 40, "6869"),
        ),
        (
            &["1", "--payload-hex", "0102ff"],
            json(true, 0x11, "ff0201"),
        ),
        (&["2", "--payload", "x"], json(true, 0, "")),
        (&["3", "--flags", "41"], json(true, 42, "")),
        (&["4"], json(true, 0, "68c3a96c6c6f")),
        (&["5"], json(false, 0, failure)),
        (
            &["6", "--flags", "2", "--payload", "10"],
            json(true, 2, "3130"),
        ),
        (&["300"], json(false, 0, failure)),
    ];
    for (args, expected) in cases {
        let mut all = vec![addr];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = call(&all);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(stdout, expected, "{args:?}");
    }
}

#[test]
fn channels_are_refused_unless_the_server_serves_them() {
    let cs = Server::start(&[]);
    let (code, stdout, _) = call(&[&cs.addr, "0", "--channel", "5", "--payload", "q"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        stdout,
        json(false, 0, "756e6b6e6f776e206368616e6e656c202564")
    );

    let on = Server::start(&["--channels"]);
    let (code, stdout, _) = call(&[&on.addr, "0", "--channel", "5", "--payload", "q"]);
    assert_eq!(code, Some(0));
    assert_eq!(stdout, json(true, 0, "71"));
}

#[test]
fn serve_and_call_over_a_unix_socket_and_once_exits() {
    let dir = std::env::temp_dir().join(format!("strata-packet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("serve.sock");
    let _ = std::fs::remove_file(&path);
    let path_text = path.to_str().unwrap();
    let mut server = Server::start(&["--unix", path_text, "--once"]);
    assert_eq!(server.addr, path_text);
    let (code, stdout, stderr) = call(&["--unix", path_text, "1", "--payload", "abc"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, json(true, 0x11, "636261"));
    let status = server
        .child
        .wait()
        .expect("the server exits after one connection");
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn call_failures_say_why_with_documented_codes() {
    // Nobody listens on a port we just bound and closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, stdout, stderr) = call(&[&format!("127.0.0.1:{port}"), "0"]);
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty());
    assert!(stderr.starts_with("strata: cannot connect to"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    for bad in [
        &["127.0.0.1:1"][..],
        &["127.0.0.1:1", "zero"],
        &["127.0.0.1:1", "0", "--payload-hex", "abc"],
    ] {
        let (code, _, stderr) = call(bad);
        assert_eq!(code, Some(2), "{bad:?}: {stderr}");
    }
}
