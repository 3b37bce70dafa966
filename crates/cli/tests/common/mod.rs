//! What the CLI's integration tests share: a running `strata packet serve`, and the real
//! Python peers that `scripts/peers` installs.

#![allow(dead_code)] // Each test file uses its own part of this.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};

/// A running `strata packet serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["packet", "serve"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("strata packet serve starts");
        let addr = first_line(&mut child, "listening ");
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's first stdout line, which must start with `prefix`, and returns the rest.
fn first_line(child: &mut Child, prefix: &str) -> String {
    first_lines(child, &[prefix]).remove(0)
}

/// Reads the child's first stdout lines, one per prefix, each of which must start with its
/// prefix, and returns the rest of each.
pub fn first_lines(child: &mut Child, prefixes: &[&str]) -> Vec<String> {
    let stdout: ChildStdout = child.stdout.take().expect("stdout is piped");
    let mut stdout = BufReader::new(stdout);
    prefixes
        .iter()
        .map(|prefix| {
            let mut line = String::new();
            stdout
                .read_line(&mut line)
                .expect("the child prints its first lines");
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("a line starting with {prefix:?}, got {line:?}"))
                .trim()
                .to_string()
        })
        .collect()
}

/// The workspace's root directory.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python that has the pinned peers: `$STRATA_PYTHON`, or the `.venv` that
/// `scripts/peers` makes. Panics, saying how to set it up, when there is none: the interop
/// tests are `#[ignore]`d, so only `scripts/test` (or someone who asked) runs them.
pub fn python() -> PathBuf {
    venv_python("STRATA_PYTHON", ".venv")
}

/// `$VAR`, or `VENV/bin/python` under the workspace; it must exist.
fn venv_python(var: &str, venv: &str) -> PathBuf {
    let python = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(venv).join("bin/python"));
    assert!(
        python.exists(),
        "no Python with the interop peers at {}: run scripts/peers first",
        python.display()
    );
    python
}

/// `tests/peers/cs_packetstream_peer.py ARGS...` under the peers' Python. Its stderr (cs's
/// progress lines and logs, which nobody reads while it runs and which would fill a pipe)
/// goes to a log file under the target directory.
pub fn cs_peer(args: &[&str]) -> Command {
    let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let log = logs.join(format!("cs-peer-{}-{}.log", args[0], std::process::id()));
    let stderr = std::fs::File::create(&log).expect("a log file for the peer");
    let mut command = Command::new(python());
    command
        .arg(workspace().join("tests/peers/cs_packetstream_peer.py"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr);
    command
}

/// A real cs.packetstream server (`cs_packetstream_peer.py server 0 --once`), killed when
/// dropped.
pub struct CsServer {
    pub child: Child,
    pub port: u16,
}

impl CsServer {
    pub fn start() -> CsServer {
        let mut child = cs_peer(&["server", "0", "--once"])
            .spawn()
            .expect("the cs.packetstream peer starts");
        let port = first_line(&mut child, "LISTENING ")
            .parse()
            .expect("LISTENING gives a port");
        CsServer { child, port }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits for the peer to exit by itself (it does after its one connection), up to 30 s.
    pub fn wait(mut self) -> std::process::ExitStatus {
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the cs.packetstream server did not exit within 30 s");
    }
}

impl Drop for CsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python that has hio 0.7.20 (its own venv: hio's dependencies are not pinned to the
/// cs.packetstream set): `$STRATA_HIO_PYTHON`, or the `.venv-hio` that `scripts/peers` makes.
pub fn hio_python() -> PathBuf {
    venv_python("STRATA_HIO_PYTHON", ".venv-hio")
}

/// `tests/peers/hio_peer.py ARGS...` under hio's Python; its stderr goes to a log file.
pub fn hio_peer(args: &[&str]) -> Command {
    let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let log = logs.join(format!("hio-peer-{}-{}.log", args[0], std::process::id()));
    let stderr = std::fs::File::create(&log).expect("a log file for the peer");
    let mut command = Command::new(hio_python());
    command
        .arg(workspace().join("tests/peers/hio_peer.py"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr);
    command
}

/// A real hio receiver (`hio_peer.py recv ...`), killed when dropped: `where` is the port or
/// path it prints.
pub struct HioReceiver {
    pub child: Child,
    pub stdout: BufReader<ChildStdout>,
    pub at: String,
}

impl HioReceiver {
    pub fn start(args: &[&str]) -> HioReceiver {
        let mut child = hio_peer(&[&["recv"], args].concat())
            .spawn()
            .expect("the hio peer starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("hio prints LISTENING");
        let at = line
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("LISTENING first, got {line:?}"))
            .trim()
            .to_string();
        HioReceiver { child, stdout, at }
    }

    /// The memos it printed, as JSON, once it has exited (after its `--count`, or its
    /// timeout), with its exit status.
    pub fn finish(mut self) -> (Vec<serde_json::Value>, std::process::ExitStatus) {
        let mut memos = Vec::new();
        let mut line = String::new();
        while self
            .stdout
            .read_line(&mut line)
            .expect("hio's stdout reads")
            > 0
        {
            memos.push(serde_json::from_str(&line).expect("hio prints JSON lines"));
            line.clear();
        }
        let status = self.child.wait().expect("hio exits");
        (memos, status)
    }
}

impl Drop for HioReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `strata rpc serve --prog PROG --vers VERS` on loopback TCP and UDP: the guard and both
/// bound addresses.
pub fn rpc_serve(prog: u32, vers: &str) -> (Running, String, String) {
    rpc_serve_with(prog, vers, &[])
}

/// `rpc_serve` with more options (`--tls-cert`, `--tls-key`).
pub fn rpc_serve_with(prog: u32, vers: &str, more: &[&str]) -> (Running, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "rpc",
            "serve",
            "--tcp",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
        ])
        .args(["--prog", &prog.to_string(), "--vers", vers])
        .args(more)
        .stdout(Stdio::piped())
        .spawn()
        .expect("strata rpc serve starts");
    let mut addrs = first_lines(&mut child, &["listening ", "listening "]);
    let udp = addrs.pop().expect("two lines");
    let tcp = addrs.pop().expect("two lines");
    (Running(child), tcp, udp)
}
