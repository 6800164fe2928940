//! Raw HTTP/1.1 over a plain TCP socket, for what a well-behaved client library will not
//! send: non-UTF-8 bodies, wrong headers, bodies that never end, headers sent a byte at a
//! time. Every exchange is bounded by a timeout.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on the connection.
#[derive(Debug)]
pub enum Outcome {
    /// A response: status and body (the connection was `close`d after it).
    Response(u16, Vec<u8>),
    /// The server closed the connection without a (complete) response.
    Closed(Vec<u8>),
    /// Nothing within the timeout.
    Silent,
}

/// A POST request with `Connection: close`, a Content-Length and these extra header lines.
pub fn post(body: &[u8], headers: &[&str]) -> Vec<u8> {
    let mut head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Sends `request` and reads until the server closes or `timeout` passes.
pub async fn exchange(addr: &str, request: &[u8], timeout: Duration) -> Outcome {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer (413) and close before the whole request is written: read anyway.
    let _ = stream.write_all(request).await;
    read_all(&mut stream, timeout).await
}

/// Reads from `stream` until EOF (or an error) or `timeout`.
pub async fn read_all(stream: &mut TcpStream, timeout: Duration) -> Outcome {
    let mut got = Vec::new();
    let read = tokio::time::timeout(timeout, async {
        let mut buf = [0u8; 65536];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    if read.is_err() && got.is_empty() {
        return Outcome::Silent;
    }
    parse(got)
}

fn parse(got: Vec<u8>) -> Outcome {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Outcome::Closed(got);
    };
    let head = String::from_utf8_lossy(&got[..end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Outcome::Response(status, got[end + 4..].to_vec())
}
