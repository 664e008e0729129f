//! A minimal HTTP/1.1 client over `std::net` for the server tests (one request per
//! connection, chunked bodies decoded), so that the tests need no HTTP crate and see the
//! bytes on the wire as any client would.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = open(addr, method, path, headers, body);
    let (status, headers) = read_head(&mut s);
    let chunked = is_chunked(&headers);
    let mut body = Vec::new();
    if chunked {
        while let Some(chunk) = read_chunk(&mut s) {
            body.extend_from_slice(&chunk);
        }
    } else {
        s.read_to_end(&mut body).unwrap();
    }
    Response {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], b"")
}

/// A response read as it arrives (live tails and watches).
#[derive(Debug)]
pub struct Streaming {
    pub status: u16,
    reader: BufReader<TcpStream>,
    pending: String,
}

impl Streaming {
    /// The next complete line, or `None` when the body ended.
    pub fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.pending.find('\n') {
                let line: String = self.pending.drain(..=i).collect();
                return Some(line.trim_end().to_string());
            }
            let chunk = read_chunk(&mut self.reader)?;
            self.pending.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    pub fn next_json(&mut self) -> Option<serde_json::Value> {
        self.next_line().map(|l| serde_json::from_str(&l).unwrap())
    }
}

/// Sends a request whose (chunked) response is read line by line.
pub fn stream(addr: SocketAddr, path: &str) -> Streaming {
    stream_with(addr, path, &[])
}

/// As [`stream`], with request headers.
pub fn stream_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Streaming {
    let s = open(addr, "GET", path, headers, b"");
    let mut reader = BufReader::new(s);
    let (status, _) = read_head(&mut reader);
    Streaming {
        status,
        reader,
        pending: String::new(),
    }
}

fn open(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect to the server");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    s
}

fn read_head(s: &mut impl Read) -> (u16, Vec<(String, String)>) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("read the response head");
        assert_eq!(n, 1, "connection closed in the response head: {raw:?}");
        raw.push(byte[0]);
    }
    let text = String::from_utf8(raw).unwrap();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, headers)
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
}

/// One chunk of a chunked body; `None` at its end (or when the connection closed).
fn read_chunk(s: &mut impl Read) -> Option<Vec<u8>> {
    let mut size_line = Vec::new();
    let mut byte = [0u8; 1];
    while !size_line.ends_with(b"\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        size_line.push(byte[0]);
    }
    let text = std::str::from_utf8(&size_line).ok()?.trim();
    let size = usize::from_str_radix(text.split(';').next()?, 16).ok()?;
    if size == 0 {
        return None;
    }
    let mut chunk = vec![0u8; size + 2];
    s.read_exact(&mut chunk).ok()?;
    chunk.truncate(size);
    Some(chunk)
}
