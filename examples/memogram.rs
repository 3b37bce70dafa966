//! memogram in one page: memos between two UDP sockets on loopback, one small and one cut
//! into many grams, every gram signed with Ed25519; the receiver knows whom it trusts.
//!
//! Run with `cargo run --example memogram`.

use std::sync::Arc;

use strata::memogram::{Config, Receiver, Seed, Sender, Signer, bind_udp};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let alice = Arc::new(bind_udp("127.0.0.1:0".parse()?).await?);
    let bob = Arc::new(bind_udp("127.0.0.1:0".parse()?).await?);
    let to_bob = bob.local_addr()?;

    // Alice signs every gram; Bob accepts signed memos only, and only from her.
    let signer = Signer::from_seed(&Seed::generate()?);
    let vid = signer.vid();
    let sender = Sender::new(alice, Config::default()).signer(signer);
    let mut trust = Config {
        authic: true,
        ..Config::default()
    };
    trust.allowed = Some([vid].into_iter().collect());
    let mut receiver = Receiver::new(bob, trust);

    let long: String = (0..20_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    sender.send(b"hello, bob", &to_bob).await?;
    sender.send(long.as_bytes(), &to_bob).await?;

    for _ in 0..2 {
        let memo = receiver.recv().await?;
        println!(
            "{} bytes from {} signed by {}",
            memo.body().len(),
            memo.source(),
            memo.vid().map_or("nobody".into(), |v| v.to_string())
        );
        assert_eq!(memo.vid(), Some(vid));
    }
    let stats = receiver.stats();
    println!("{} grams in, {} memos out", stats.grams, stats.memos);
    Ok(())
}
