//! The memogram step: signed and unsigned memos, one gram and many, over loopback UDP and a
//! Unix datagram socket, each checked as it arrives.

use std::sync::Arc;
use std::time::Duration;

use memogram::{Config, Link, Receiver, Seed, Sender, Signer};
use tokio::sync::watch;

use super::Report;

/// Memos that can be in flight unread: keeps a burst within the receive buffer, since a
/// datagram socket drops what does not fit.
const WINDOW: u64 = 64;

/// Every third memo signed, every fifth several grams long, over UDP then UXD.
pub async fn memos(scale: u32) -> Result<Report, String> {
    let count = 2_000 * u64::from(scale);
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let bind = |e| format!("cannot bind a socket: {e}");
    let a = memogram::bind_udp(loopback).await.map_err(bind)?;
    let b = memogram::bind_udp(loopback).await.map_err(bind)?;
    let to = b.local_addr().map_err(bind)?;
    let udp = exchange(Arc::new(a), Arc::new(b), to, count).await?;

    let dir = std::env::temp_dir();
    let (a_path, b_path) = (
        dir.join(format!("strata-demo-{}-a.uxd", std::process::id())),
        dir.join(format!("strata-demo-{}-b.uxd", std::process::id())),
    );
    let bind_uxd = |path: &std::path::PathBuf| {
        let _ = std::fs::remove_file(path);
        memogram::bind_uxd(Some(path)).map_err(bind)
    };
    let uxd = match (bind_uxd(&a_path), bind_uxd(&b_path)) {
        (Ok(a), Ok(b)) => exchange(Arc::new(a), Arc::new(b), b_path.clone(), count).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    for path in [&a_path, &b_path] {
        let _ = std::fs::remove_file(path);
    }
    let uxd = uxd?;
    Ok(Report {
        detail: format!(
            "{count} memos over UDP {to} and {count} over a Unix datagram socket, every third \
             signed (Ed25519, verified), every fifth cut into grams of 1240 bytes ({} and {} \
             bytes of memo); each arrived whole and intact",
            udp, uxd
        ),
        units: 2 * count,
        unit: "memos",
    })
}

/// The memo numbered `i`: what it says, and whether it is signed.
fn memo(i: u64) -> (Vec<u8>, bool) {
    let len = if i % 5 == 0 { 4_000 } else { 100 };
    let body = (0..len)
        .map(|n| b'a' + ((n as u64 + i) % 26) as u8)
        .collect();
    (body, i % 3 == 0)
}

/// Sends `count` memos from `a` to `b` and checks each one that arrives; returns the bytes.
async fn exchange<L: Link>(a: Arc<L>, b: Arc<L>, to: L::Addr, count: u64) -> Result<u64, String> {
    let (seen_tx, mut seen) = watch::channel(0u64);
    let receiving = tokio::spawn(async move {
        let mut receiver = Receiver::new(b, Config::default());
        let mut bytes = 0;
        for i in 0..count {
            let got = receiver.recv().await.map_err(|e| e.to_string())?;
            let (body, signed) = memo(i);
            if got.body()[..] != body[..] || got.vid().is_some() != signed {
                return Err(format!("memo {i} arrived wrong: {got}"));
            }
            bytes += body.len() as u64;
            seen_tx.send_replace(i + 1);
        }
        Ok(bytes)
    });
    let abort = receiving.abort_handle();
    let plain = Sender::new(Arc::clone(&a), Config::default()).size(1240);
    let signed = plain
        .clone()
        .signer(Signer::from_seed(&Seed::new([42; 32])));
    let sending = async {
        for i in 0..count {
            seen.wait_for(|seen| seen + WINDOW > i)
                .await
                .map_err(|_| "the receiver stopped".to_owned())?;
            let (body, sign) = memo(i);
            let sender = if sign { &signed } else { &plain };
            sender.send(&body, &to).await.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    };
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        sending.await?;
        receiving.await.map_err(|e| e.to_string())?
    })
    .await;
    abort.abort();
    outcome.map_err(|_| {
        format!(
            "not every memo arrived within a minute ({})",
            *seen.borrow()
        )
    })?
}
