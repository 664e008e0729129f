//! An HTTP proxy in front of the object store that misbehaves the way object stores do:
//! per connection, by a fixed pseudo-random sequence, it answers `503 Slow Down` without
//! forwarding, forwards after a long pause (a slow put), or forwards normally.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

pub struct Faulty {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    pub answered_503: Arc<AtomicUsize>,
    pub delayed: Arc<AtomicUsize>,
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request head and body (by Content-Length) from `c`.
fn read_request(c: &mut TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if c.read(&mut b)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    c.read_exact(&mut body)
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Faulty {
    /// A proxy to `target` where `percent_503` of connections get a 503 and
    /// `percent_slow` are forwarded after `pause`.
    pub fn start(
        target: SocketAddr,
        percent_503: u64,
        percent_slow: u64,
        pause: Duration,
    ) -> Faulty {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (answered_503, delayed) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let seed = Arc::new(AtomicU64::new(0x2545_F491_4F6C_DD1D));
        {
            let (stop, answered_503, delayed) =
                (stop.clone(), answered_503.clone(), delayed.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let Ok(mut client) = conn else { continue };
                    let n = seed
                        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
                        .wrapping_mul(0x2545_F491_4F6C_DD1D)
                        >> 40;
                    let roll = n % 100;
                    let (answered_503, delayed) = (answered_503.clone(), delayed.clone());
                    std::thread::spawn(move || {
                        if roll < percent_503 {
                            if read_request(&mut client).is_ok() {
                                answered_503.fetch_add(1, Ordering::Relaxed);
                                let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                                let _ = write!(
                                    client,
                                    "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                    body.len()
                                );
                            }
                            let _ = client.shutdown(Shutdown::Both);
                            return;
                        }
                        if roll < percent_503 + percent_slow {
                            delayed.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(pause);
                        }
                        let Ok(server) = TcpStream::connect(target) else {
                            return;
                        };
                        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        std::thread::spawn(move || pipe(c2, server));
                        pipe(s2, client);
                    });
                }
            });
        }
        Faulty {
            addr,
            stop,
            answered_503,
            delayed,
        }
    }
}
