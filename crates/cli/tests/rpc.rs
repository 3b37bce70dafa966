//! `strata rpc serve` and `strata rpc ping` against each other (no peers needed).

mod common;

use std::process::Command;

use common::rpc_serve;

fn strata(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .expect("strata runs")
}

#[test]
fn ping_finds_every_version_served_and_names_what_is_not() {
    let (_serve, tcp, udp) = rpc_serve(300000, "2,4");
    let (tcp, udp) = (&tcp, &udp);

    let all = strata(&["rpc", "ping", "--tcp", tcp, "300000"]);
    // The range PROG_MISMATCH gives is 2..=4, and version 3 is not served: as rpcinfo,
    // every version is tried, and one missing makes the exit code 1.
    assert_eq!(all.status.code(), Some(1), "{all:?}");
    assert_eq!(
        String::from_utf8_lossy(&all.stdout),
        "program 300000 version 2 ready and waiting\n\
         program 300000 version 3 is not available\n\
         program 300000 version 4 ready and waiting\n"
    );
    let one = strata(&["rpc", "ping", "--udp", udp, "300000", "4"]);
    assert!(one.status.success(), "{one:?}");
    assert_eq!(
        String::from_utf8_lossy(&one.stdout),
        "program 300000 version 4 ready and waiting\n"
    );
    let other = strata(&["rpc", "ping", "--udp", udp, "300001", "1"]);
    assert_eq!(other.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&other.stderr).trim(),
        "strata: program 300001 version 1 is not available: PROG_UNAVAIL"
    );
}

#[test]
fn ping_without_a_server_says_so_in_one_sentence() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let refused = strata(&["rpc", "ping", "--tcp", &addr, "300000", "1"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with(&format!("strata: cannot connect to {addr}")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
}
