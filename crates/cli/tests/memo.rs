//! `strata memo listen`, `send` and `keygen` against each other, as the contract in
//! DESIGN.md has them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .expect("strata runs")
}

/// `strata memo listen ARGS...`: the child, and the rest of its `listening ADDR` line.
fn listen(args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["memo", "listen"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("strata memo listen starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a first line");
    let at = line
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("listening first, got {line:?}"))
        .trim()
        .to_string();
    (child, stdout, at)
}

fn json_lines(stdout: impl BufRead) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(&l.expect("a line")).expect("a JSON line"))
        .collect()
}

#[test]
fn keygen_prints_a_seed_and_its_vid_and_send_signs_with_it() {
    let out = strata(&["memo", "keygen"]);
    assert!(out.status.success());
    let keys: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let (seed, vid) = (
        keys["seed"].as_str().unwrap(),
        keys["vid"].as_str().unwrap(),
    );
    assert_eq!((seed.len(), &seed[..1]), (44, "A"));
    assert_eq!((vid.len(), &vid[..1]), (44, "B"));
    assert_ne!(
        keys,
        serde_json::from_slice::<Value>(&strata(&["memo", "keygen"]).stdout).unwrap()
    );

    let (mut child, stdout, at) =
        listen(&["--udp", "127.0.0.1:0", "--count", "2", "--timeout", "20"]);
    let sent = strata(&[
        "memo",
        "send",
        "--udp",
        &at,
        "--sign",
        seed,
        "--size",
        "200",
        "--curt",
        "signed",
        &"x".repeat(1000),
    ]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let mids = json_lines(&sent.stdout[..]);
    assert_eq!(mids.len(), 2);
    assert_eq!(
        (
            mids[1]["len"].as_u64(),
            mids[1]["mid"].as_str().map(str::len)
        ),
        (Some(1000), Some(24))
    );
    let memos = json_lines(stdout);
    assert!(child.wait().unwrap().success());
    assert_eq!(memos.len(), 2);
    assert_eq!(memos[0]["memo"], "signed");
    assert_eq!(memos[1]["memo"].as_str().map(str::len), Some(1000));
    assert!(memos.iter().all(|m| m["vid"] == vid));
    assert!(memos[0]["src"].as_str().unwrap().starts_with("127.0.0.1:"));
}

#[test]
fn over_uxd_an_unbound_sender_shows_a_null_source() {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("memo-cli-{}.uxd", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (mut child, stdout, at) = listen(&[
        "--uxd",
        path.to_str().unwrap(),
        "--count",
        "1",
        "--timeout",
        "20",
    ]);
    assert_eq!(at, path.to_str().unwrap());
    let sent = strata(&["memo", "send", "--uxd", &at, "héllo"]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let memos = json_lines(stdout);
    assert!(child.wait().unwrap().success());
    assert_eq!(
        memos,
        [serde_json::json!({"memo": "héllo", "src": null, "vid": null})]
    );
    assert!(!path.exists(), "listen removes its socket file");
}

#[test]
fn listen_exits_2_when_the_timeout_passes_first() {
    let out = strata(&[
        "memo",
        "listen",
        "--udp",
        "127.0.0.1:0",
        "--count",
        "1",
        "--timeout",
        "0.2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out after 0 memos"));
}
