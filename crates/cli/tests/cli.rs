//! The `strata` binary as a user runs it: its contract is what these tests hold it to.

use std::process::Command;

fn strata(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .expect("the strata binary runs")
}

#[test]
fn help_lists_the_demo_and_the_exit_codes() {
    let out = strata(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("demo"), "{text}");
    assert!(text.contains("Exit codes: 0 success"), "{text}");
}

#[test]
fn version_names_the_package_version() {
    let out = strata(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("strata {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_usage_exits_2_with_one_message_on_stderr() {
    let out = strata(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-command"));
}

#[test]
fn demo_runs_every_step_and_ends_with_a_table_of_them() {
    let out = strata(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|line| !line.starts_with("step "))
        .collect();
    assert!(
        table[0]
            .split_whitespace()
            .eq(["step", "layer", "result", "time", "rate"])
    );
    for step in [
        "flow pipeline",
        "correlated exchange",
        "packet requests",
        "packet requests over TLS",
        "memos",
        "rpc calls",
    ] {
        let row = table
            .iter()
            .find(|line| line.starts_with(step))
            .unwrap_or_else(|| panic!("no row for {step} in\n{stdout}"));
        assert!(row.contains(" ok "), "{row}");
        assert!(row.ends_with("/s"), "a rate ends the row: {row}");
    }
    assert_eq!(table.last(), Some(&"6 of 6 steps ok"));
    assert!(
        stdout.contains("over TLSv1_3 (CN=strata demo server)"),
        "{stdout}"
    );
    assert!(stdout.contains("each arrived whole and intact"), "{stdout}");
    assert!(stdout.contains("0 orphans"), "{stdout}");
    assert!(stdout.contains("series produce completed"), "{stdout}");
}

#[test]
fn bench_measures_a_layer_beside_its_baseline_with_progress_and_a_table_of_ratios() {
    let out = strata(&["bench", "flows", "--seconds", "0.02", "--rounds", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Progress: one line a round of each workload, on stderr.
    assert_eq!(
        stderr.matches("bench [1/2] kernel-flows").count(),
        2,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("bench [2/2] kernel-flows").count(),
        2,
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("kernel-flows"))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for row in rows {
        // Both rates, then the ratio, a positive number.
        assert_eq!(row.matches("/s").count(), 2, "{row}");
        let ratio = row.rsplit(' ').next().and_then(|r| r.strip_suffix('x'));
        let ratio: f64 = ratio.and_then(|r| r.parse().ok()).expect(row);
        assert!(ratio > 0.0, "{row}");
    }
    assert!(
        !stdout.contains("packetstream"),
        "only the layer asked for: {stdout}"
    );
}

#[test]
fn bench_refuses_a_layer_it_does_not_know() {
    let out = strata(&["bench", "quic"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("quic"));
}
