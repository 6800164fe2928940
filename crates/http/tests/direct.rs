//! Plain-http connections driven by the sending task (`nodewatch_http::direct`), against a
//! scripted HTTP/1.1 server that counts its connections: reuse, the request line and Host
//! header, and every way a connection must not be used again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use nodewatch_http::{client, post, post_head, ClientOptions, Endpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the scripted server answers each request.
#[derive(Clone, Copy)]
enum Script {
    /// Content-Length, connection kept.
    KeepAlive,
    /// Chunked in two chunks, connection kept.
    Chunked,
    /// Answers, then closes the connection (no header saying so).
    CloseAfter,
    /// Answers with `Connection: close` and keeps the socket open.
    SaysClose,
    /// Sends the head and the first chunk, then waits for the client to go away.
    Stalls,
}

struct Server {
    url: String,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

async fn server(script: Script) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/some/path?key=1", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (a, h) = (Arc::clone(&accepted), Arc::clone(&heads));
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            a.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(socket, script, Arc::clone(&h)));
        }
    });
    Server {
        url,
        accepted,
        heads,
    }
}

/// Serves requests on one connection until the client closes it.
async fn serve(mut socket: TcpStream, script: Script, heads: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        let Some(end) = read_head(&mut socket, &mut buf).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while buf.len() < end + length {
            if read_more(&mut socket, &mut buf).await == 0 {
                return;
            }
        }
        buf.drain(..end + length);
        heads.lock().unwrap().push(head);
        n += 1;
        let answer = format!("{{\"n\":{n}}}");
        let reply = match script {
            Script::KeepAlive | Script::CloseAfter => format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            ),
            Script::SaysClose => format!(
                "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            ),
            Script::Chunked | Script::Stalls => {
                let (a, b) = answer.split_at(3);
                format!(
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                    a.len(),
                    b.len()
                )
            }
        };
        if let Script::Stalls = script {
            let first = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"n\r\n";
            socket.write_all(first.as_bytes()).await.unwrap();
            let mut rest = [0u8; 1];
            let _ = socket.read(&mut rest).await; // until the client closes
            return;
        }
        if socket.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
        if let Script::CloseAfter = script {
            return;
        }
    }
}

async fn read_more(socket: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    let mut chunk = [0u8; 4096];
    let n = socket.read(&mut chunk).await.unwrap_or(0);
    buf.extend_from_slice(&chunk[..n]);
    n
}

/// Reads until a whole request head is in `buf`; its length, or `None` at EOF.
async fn read_head(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(at + 4);
        }
        if read_more(socket, buf).await == 0 {
            return None;
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);
const LIMIT: usize = 1 << 20;

async fn ask(c: &client::HttpClient, e: &Endpoint) -> Bytes {
    post(c, e, Bytes::from_static(b"{}"), TIMEOUT, LIMIT)
        .await
        .expect("an answer")
}

/// Polls until `accepted` reaches `n` (the server counts a connection when it accepts it).
async fn accepted_becomes(s: &Server, n: usize) {
    for _ in 0..500 {
        if s.accepted.load(Ordering::SeqCst) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "accepted {} connections, not {n}",
        s.accepted.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn sequential_posts_share_one_connection() {
    for script in [Script::KeepAlive, Script::Chunked] {
        let s = server(script).await;
        let c = client::build(&ClientOptions::default());
        let e = Endpoint::parse(&s.url).unwrap();
        for n in 1..=5 {
            assert_eq!(ask(&c, &e).await, format!("{{\"n\":{n}}}"), "answer {n}");
        }
        assert_eq!(
            s.accepted.load(Ordering::SeqCst),
            1,
            "one connection for five posts"
        );
        let heads = s.heads.lock().unwrap().clone();
        let port = s.url.split(':').nth(2).unwrap().split('/').next().unwrap();
        for head in &heads {
            let head = head.to_ascii_lowercase();
            assert!(
                head.starts_with("post /some/path?key=1 http/1.1\r\n"),
                "{head}"
            );
            assert!(
                head.contains(&format!("\r\nhost: 127.0.0.1:{port}\r\n")),
                "{head}"
            );
            assert!(
                head.contains("\r\ncontent-type: application/json\r\n"),
                "{head}"
            );
        }
    }
}

#[tokio::test]
async fn a_connection_the_server_closed_or_asked_to_close_is_not_used_again() {
    for script in [Script::CloseAfter, Script::SaysClose] {
        let s = server(script).await;
        let c = client::build(&ClientOptions::default());
        let e = Endpoint::parse(&s.url).unwrap();
        for n in 1..=3 {
            // Each answer is the first on its connection.
            assert_eq!(ask(&c, &e).await, "{\"n\":1}", "post {n}");
            accepted_becomes(&s, n).await;
        }
    }
}

#[tokio::test]
async fn an_answer_dropped_before_its_end_takes_its_connection_with_it() {
    let s = server(Script::Stalls).await;
    let c = client::build(&ClientOptions::default());
    let e = Endpoint::parse(&s.url).unwrap();
    for n in 1..=2 {
        let head = post_head(&c, &e, Bytes::from_static(b"{}"), LIMIT)
            .await
            .expect("a head");
        let mut body = head.body;
        let first = tokio::time::timeout(TIMEOUT, body.frame())
            .await
            .expect("the first chunk in time")
            .expect("a frame")
            .expect("data");
        assert_eq!(first.into_data().unwrap(), "{\"n");
        drop(body);
        accepted_becomes(&s, n).await;
    }
}

/// A thread of its own with a current-thread runtime, as the proxy's serving threads run:
/// makes two posts, then keeps its runtime (and the connection it opened) alive until
/// `release` is dropped or sent.
struct OwnThread {
    release: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl OwnThread {
    /// Starts the thread; returns it and the two answers.
    async fn two_posts(c: &client::HttpClient, e: &Endpoint) -> (Self, Vec<Bytes>) {
        let (c, e) = (c.clone(), e.clone());
        let (answers, answered) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            nodewatch_http::keep_connections_per_thread();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let _ = answers.send(vec![ask(&c, &e).await, ask(&c, &e).await]);
                let _ = released.await;
            });
        });
        let answers = answered.await.expect("the thread's answers");
        (Self { release, thread }, answers)
    }

    async fn stop(self) {
        let _ = self.release.send(());
        tokio::task::spawn_blocking(move || self.thread.join().unwrap())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_thread_with_its_own_runtime_uses_only_its_own_connections() {
    let s = server(Script::KeepAlive).await;
    let c = client::build(&ClientOptions::default());
    let e = Endpoint::parse(&s.url).unwrap();
    let first_two = vec![
        Bytes::from_static(b"{\"n\":1}"),
        Bytes::from_static(b"{\"n\":2}"),
    ];
    // While both threads run, each opens one connection and reuses it; neither takes the
    // other's (whose I/O only the other's runtime drives), and the shared set is apart.
    let (one, answers) = OwnThread::two_posts(&c, &e).await;
    assert_eq!(answers, first_two, "first thread");
    let (two, answers) = OwnThread::two_posts(&c, &e).await;
    assert_eq!(answers, first_two, "second thread");
    assert_eq!(ask(&c, &e).await, "{\"n\":1}", "the test's own runtime");
    assert_eq!(s.accepted.load(Ordering::SeqCst), 3);
    one.stop().await;
    two.stop().await;
}
