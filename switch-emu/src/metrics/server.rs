//! A minimal HTTP endpoint serving the latest metrics text at `/metrics`.
//!
//! The switch's event loop owns the counters and renders the text; this
//! thread only copies it out, so scrapes never stall packet processing. A
//! scrape asks the event loop for a fresh rendering (a byte on a wake-up
//! socket the loop polls) and waits for it briefly; a loop that does not
//! answer in time (busy, or not polling the wake-up socket at all) gets the
//! previous text served.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a scrape waits for the event loop to render fresh text.
const FRESH_WAIT: Duration = Duration::from_millis(250);

#[derive(Debug, Default)]
struct State {
    text: String,
    /// Scrapes that asked for a fresh rendering.
    asked: u64,
    /// Value of `asked` covered by the current text.
    answered: u64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    fresh: Condvar,
    /// Write side of the wake-up socket (scrape thread -> event loop).
    wake_tx: UnixStream,
}

/// The text the endpoint serves, shared between the event loop (which
/// [`Snapshot::publish`]es) and the HTTP thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Snapshot {
    shared: Arc<Shared>,
    /// Read side of the wake-up socket; the event loop polls it.
    wake_rx: Arc<UnixStream>,
}

impl Snapshot {
    /// An empty snapshot with its wake-up socket.
    pub fn new() -> io::Result<Snapshot> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        Ok(Snapshot {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                fresh: Condvar::new(),
                wake_tx: tx,
            }),
            wake_rx: Arc::new(rx),
        })
    }

    /// The socket that becomes readable when a scrape wants fresh text.
    pub fn wake_fd(&self) -> RawFd {
        self.wake_rx.as_raw_fd()
    }

    /// Drains the wake-up socket; true if a scrape is waiting.
    pub fn take_request(&self) -> bool {
        let mut buf = [0u8; 64];
        let mut asked = false;
        let mut rx = &*self.wake_rx;
        while let Ok(n) = rx.read(&mut buf) {
            if n == 0 {
                break;
            }
            asked = true;
        }
        asked
    }

    /// Replaces the text and releases every scrape waiting for it.
    pub fn publish(&self, text: String) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.text = text;
            state.answered = state.asked;
        }
        self.shared.fresh.notify_all();
    }

    /// The current text.
    pub fn text(&self) -> String {
        self.shared
            .state
            .lock()
            .map(|s| s.text.clone())
            .unwrap_or_default()
    }

    /// Asks for a fresh rendering and waits up to `wait` for it; returns
    /// the text then current.
    fn fresh_text(&self, wait: Duration) -> String {
        let Ok(mut state) = self.shared.state.lock() else {
            return String::new();
        };
        state.asked += 1;
        let want = state.asked;
        // A full socket already holds a wake-up, so a failed write loses nothing.
        let _ = (&self.shared.wake_tx).write(&[1]);
        let deadline = Instant::now() + wait;
        while state.answered < want {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = match self.shared.fresh.wait_timeout(state, left) {
                Ok((s, _)) => s,
                Err(_) => return String::new(),
            };
        }
        state.text.clone()
    }
}

/// A running metrics endpoint; dropping it stops the thread.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `snapshot` from a background thread.
    pub fn spawn(addr: SocketAddr, snapshot: Snapshot) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            // A slow or broken client only loses its own scrape.
                            let _ = serve_one(stream, &snapshot);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })?;
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_one(stream: TcpStream, snapshot: &Snapshot) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain the request headers.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut stream = &stream;
    if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
        let body = snapshot.fresh_text(FRESH_WAIT);
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            body.len(),
            body
        )
    } else {
        let body = "only /metrics is served here\n";
        write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            body.len(),
            body
        )
    }
}

/// Fetches `/metrics` from `addr` (tests and tools); returns the body.
pub fn scrape(addr: SocketAddr, timeout: Duration) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("no HTTP header end"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(io::Error::other(format!(
            "scrape refused: {}",
            head.lines().next().unwrap_or("")
        )));
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_latest_snapshot_without_a_loop() {
        let snapshot = Snapshot::new().unwrap();
        snapshot.publish("a 1\n".into());
        let server =
            MetricsServer::spawn("127.0.0.1:0".parse().unwrap(), snapshot.clone()).unwrap();
        assert!(get(server.local_addr(), "/metrics").ends_with("\r\n\r\na 1\n"));
        snapshot.publish("a 2\n".into());
        assert_eq!(
            scrape(server.local_addr(), Duration::from_secs(2)).unwrap(),
            "a 2\n"
        );
        assert!(get(server.local_addr(), "/other").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn a_scrape_gets_the_rendering_it_asked_for() {
        let snapshot = Snapshot::new().unwrap();
        snapshot.publish("old 1\n".into());
        let server =
            MetricsServer::spawn("127.0.0.1:0".parse().unwrap(), snapshot.clone()).unwrap();
        // A stand-in event loop: renders only when asked.
        let stop = Arc::new(AtomicBool::new(false));
        let loop_snapshot = snapshot.clone();
        let loop_stop = Arc::clone(&stop);
        let renderer = std::thread::spawn(move || {
            let mut n = 0;
            while !loop_stop.load(Ordering::Relaxed) {
                if loop_snapshot.take_request() {
                    n += 1;
                    loop_snapshot.publish(format!("fresh {n}\n"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let body = scrape(server.local_addr(), Duration::from_secs(2)).unwrap();
        assert!(body.starts_with("fresh "), "{body}");
        stop.store(true, Ordering::Relaxed);
        renderer.join().unwrap();
    }
}
