//! A TCP proxy between a follower and a server, for network trouble on demand: it cuts
//! every open connection at once, holds back what the server sends on live frames streams
//! (`GET .../frames?follow=true`) while other requests (status) pass, or holds back a
//! share-group member's acknowledgements (`POST .../ack`).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    target: SocketAddr,
    /// Every connection since the last cut, for cutting them.
    conns: Mutex<Vec<Arc<Conn>>>,
    /// What is held back: (live frames streams' answers, acknowledgement requests).
    hold: Mutex<(bool, bool)>,
    released: Condvar,
    stopping: AtomicBool,
}

/// Both ends of one connection, what it carries and whether it is still open.
struct Conn {
    client: TcpStream,
    server: TcpStream,
    /// A live frames stream (`GET .../frames?follow=true`).
    frames: AtomicBool,
    open: AtomicBool,
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            target,
            conns: Mutex::new(Vec::new()),
            hold: Mutex::new((false, false)),
            released: Condvar::new(),
            stopping: AtomicBool::new(false),
        });
        let sh = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if sh.stopping.load(Ordering::Acquire) {
                    return;
                }
                let Ok(client) = client else { continue };
                // The server may be away (restarting): the client sees a closed connection.
                let Ok(server) = TcpStream::connect(sh.target) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let conn = Arc::new(Conn {
                    client: client.try_clone().unwrap(),
                    server: server.try_clone().unwrap(),
                    frames: AtomicBool::new(false),
                    open: AtomicBool::new(true),
                });
                sh.conns.lock().unwrap().push(conn.clone());
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = conn.clone();
                let sh1 = sh.clone();
                std::thread::spawn(move || pump_up(client, server, &up.frames, &sh1));
                let sh2 = sh.clone();
                std::thread::spawn(move || {
                    pump_down(s2, c2, &conn.frames, &sh2);
                    conn.open.store(false, Ordering::Release);
                });
            }
        });
        Proxy { addr, shared }
    }

    /// Cuts every open connection (both directions, both ends); returns how many live
    /// frames streams (a follower copying) it cut.
    pub fn cut_all(&self) -> usize {
        self.cut().0
    }

    /// Cuts every open connection; returns how many were open.
    #[allow(dead_code)] // used by the object-storage tests, which include this file
    pub fn cut_open(&self) -> usize {
        self.cut().1
    }

    /// Cuts every connection: (live frames streams cut, open connections cut).
    fn cut(&self) -> (usize, usize) {
        let conns = std::mem::take(&mut *self.shared.conns.lock().unwrap());
        let (mut streams, mut open) = (0, 0);
        for c in &conns {
            let is_open = c.open.load(Ordering::Acquire);
            open += usize::from(is_open);
            streams += usize::from(is_open && c.frames.load(Ordering::Acquire));
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.server.shutdown(Shutdown::Both);
        }
        (streams, open)
    }

    /// Holds back (or releases) what the server sends on frames streams.
    pub fn hold_frames(&self, hold: bool) {
        self.shared.hold.lock().unwrap().0 = hold;
        self.shared.released.notify_all();
    }

    /// Holds back (or releases) requests to acknowledge (`POST .../ack`).
    pub fn hold_acks(&self, hold: bool) {
        self.shared.hold.lock().unwrap().1 = hold;
        self.shared.released.notify_all();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.hold_frames(false);
        self.hold_acks(false);
        let _ = TcpStream::connect(self.addr);
        self.cut_all();
    }
}

/// Client to server, noting whether the connection asks for frames, and waiting while
/// acknowledgements are held.
fn pump_up(mut from: TcpStream, mut to: TcpStream, is_frames: &AtomicBool, sh: &Shared) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Live frames streams only: one-off frame reads (a follower's look at the source)
        // pass like any request.
        let text = &buf[..n];
        if text.windows(7).any(|w| w == b"/frames") && text.windows(11).any(|w| w == b"follow=true")
        {
            is_frames.store(true, Ordering::Release);
        }
        if text.windows(5).any(|w| w == b"/ack ") {
            let mut held = sh.hold.lock().unwrap();
            while held.1 && !sh.stopping.load(Ordering::Acquire) {
                held = sh.released.wait(held).unwrap();
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Server to client, waiting while frames are held on a frames connection.
fn pump_down(mut from: TcpStream, mut to: TcpStream, is_frames: &AtomicBool, sh: &Shared) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if is_frames.load(Ordering::Acquire) {
            let mut held = sh.hold.lock().unwrap();
            while held.0 && !sh.stopping.load(Ordering::Acquire) {
                held = sh.released.wait(held).unwrap();
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
