//! Sizes of the per-connection futures of havip's proxy, measured on the real types.
//!
//! An idle proxied connection costs, in user space, one tokio task (header + the `serve`
//! future + trailer, allocated 128-byte aligned) plus two I/O registrations (`ScheduledIo`,
//! cache-padded). This prints the sizes that decide the first.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use havip_config::copy_mode::CopyMode;
use havip_config::service::ServiceSpec;
use havip_proxy::forward::{forward, Counters, IdleLimits, Settings, Transfer};
use havip_proxy::service::{DataPath, Service};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let a = TcpStream::connect(addr).await?;
    let (b, peer) = listener.accept().await?;

    let backend: SocketAddr = "127.0.0.1:9".parse().expect("address");
    let spec = ServiceSpec::new("size", vec![addr], &[backend]);
    let data_path = DataPath {
        copy_mode: CopyMode::default(),
        log_connections: false,
    };
    let (service, _inboxes) = Service::new(spec, data_path, Instant::now());
    let service = Arc::new(service);

    let serve = service.clone().serve(b, peer, Instant::now(), Vec::new());
    println!("Service::serve future: {} bytes", std::mem::size_of_val(&serve));

    let counter = AtomicU64::new(0);
    let counters = [&counter];
    let meter = Counters {
        to_server: &counters,
        to_client: &counters,
    };
    let settings = Settings {
        copy_mode: CopyMode::default(),
        limits: IdleLimits {
            client: Duration::from_secs(1),
            server: Duration::from_secs(1),
            tunnel: None,
        },
    };
    let mut transfer = Transfer::default();
    let fwd = forward(&a, &a, &settings, &meter, &mut transfer);
    println!("forward future: {} bytes", std::mem::size_of_val(&fwd));
    let sleep = tokio::time::sleep(Duration::from_secs(1));
    println!("tokio::time::Sleep: {} bytes", std::mem::size_of_val(&sleep));
    let token = CancellationToken::new();
    let cancelled = token.cancelled();
    println!(
        "CancellationToken::cancelled future: {} bytes",
        std::mem::size_of_val(&cancelled)
    );
    let notify = tokio::sync::Notify::new();
    let notified = notify.notified();
    println!("Notify::notified future: {} bytes", std::mem::size_of_val(&notified));
    println!("TcpStream: {} bytes", std::mem::size_of::<TcpStream>());
    Ok(())
}
