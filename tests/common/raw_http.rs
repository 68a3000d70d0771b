//! A client that speaks HTTP/1.1 by hand, to be slow, incomplete or malformed on purpose.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connects to `addr`.
pub async fn connect(addr: &str) -> TcpStream {
    TcpStream::connect(addr)
        .await
        .expect("the ingress accepts connections")
}

/// Connects to `addr` from the local address `from`: another loopback address (127.0.0.2)
/// stands for another client. `Err` when the connection cannot be made.
pub async fn connect_from(from: std::net::IpAddr, addr: &str) -> std::io::Result<TcpStream> {
    let addr: std::net::SocketAddr = addr.parse().expect("a socket address");
    let socket = match from {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(std::net::SocketAddr::new(from, 0))?;
    socket.connect(addr).await
}

/// Writes `bytes`; `false` when the server has closed the connection.
pub async fn send(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).await.is_ok() && stream.flush().await.is_ok()
}

/// Reads until the server closes the connection or `limit` passes; returns what was read and
/// whether the connection was closed.
pub async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

/// Reads one response head (status line and headers) and returns the status code and the raw
/// head; `None` when the connection closes first or `limit` passes.
pub async fn read_status(stream: &mut TcpStream, limit: Duration) -> Option<(u16, String)> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&out).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head))
}

/// A request head for `POST path` with `headers` and a `Content-Length` of `length`.
pub fn post_head(path: &str, headers: &[(&str, String)], length: usize) -> Vec<u8> {
    let mut head =
        format!("POST {path} HTTP/1.1\r\nHost: hookgate.test\r\nContent-Length: {length}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}
