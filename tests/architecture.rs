//! The architecture ARCHITECTURE.md describes, held to: the codec and core modules it lists
//! use no tokio, and dependencies point down the stack only.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The files ARCHITECTURE.md lists between its tokio-free markers.
fn tokio_free_files() -> Vec<String> {
    let doc = read("ARCHITECTURE.md");
    let begin = doc
        .find("<!-- tokio-free: begin -->")
        .expect("the begin marker");
    let end = doc
        .find("<!-- tokio-free: end -->")
        .expect("the end marker");
    doc[begin..end]
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with(".rs"))
        .map(str::to_owned)
        .collect()
}

/// The lines of `source` that use tokio (the runtime, not tokio-util's codec traits),
/// comments and doc examples aside.
fn tokio_uses(source: &str) -> Vec<(usize, &str)> {
    source
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .filter(|(_, l)| {
            l.contains("tokio::") || l.contains("use tokio;") || l.contains("tokio::{")
        })
        .map(|(i, l)| (i + 1, l))
        .collect()
}

#[test]
fn the_codec_and_core_modules_use_no_tokio() {
    let files = tokio_free_files();
    assert!(files.len() > 40, "the list was read: {files:?}");
    for file in &files {
        let source = read(file);
        let uses = tokio_uses(&source);
        assert!(uses.is_empty(), "{file} must stay free of tokio: {uses:?}");
    }
}

#[test]
fn the_check_finds_tokio_where_it_is() {
    // The drivers use tokio: if the check found nothing there, it would find nothing anywhere.
    for file in [
        "crates/packetstream/src/driver.rs",
        "crates/memogram/src/driver.rs",
        "crates/rpc-record/src/stream.rs",
    ] {
        assert!(!tokio_uses(&read(file)).is_empty(), "{file}");
    }
    assert!(tokio_uses("/// # #[tokio::main]\n// tokio::spawn\nuse tokio_util::codec;").is_empty());
}

/// The names of the workspace packages a crate's `[dependencies]` table lists.
fn layer_dependencies(manifest: &str) -> Vec<&'static str> {
    let text = read(manifest);
    let table = text
        .split("\n[")
        .find(|t| t.starts_with("dependencies]"))
        .unwrap_or_default();
    [
        "kernel-flows",
        "strata-transport",
        "packetstream",
        "memogram",
        "rpc-record",
    ]
    .into_iter()
    .filter(|name| table.lines().any(|l| l.starts_with(&format!("{name} "))))
    .collect()
}

#[test]
fn dependencies_point_down_the_stack_only() {
    assert_eq!(
        layer_dependencies("crates/kernel-flows/Cargo.toml"),
        [""; 0]
    );
    assert_eq!(
        layer_dependencies("crates/packetstream/Cargo.toml"),
        [""; 0]
    );
    assert_eq!(layer_dependencies("crates/memogram/Cargo.toml"), [""; 0]);
    assert_eq!(
        layer_dependencies("crates/rpc-record/Cargo.toml"),
        ["kernel-flows"]
    );
    assert_eq!(
        layer_dependencies("crates/transport/Cargo.toml"),
        ["kernel-flows"]
    );
}
