//! A fake Hugging Face hub on 127.0.0.1 (no network): it serves the tiny-p8 fixture model as `facebook/vit-mae-base`
//! the way the hub's resolve and API endpoints do, and can cut off or stall the weights download.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mae_model::hub::{DEFAULT_TIMEOUT, HubSettings};

use crate::fixtures;

pub const REPO: &str = "facebook/vit-mae-base";
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// What the fake hub does with the weights file's body.
#[derive(Clone, Copy, PartialEq)]
pub enum Weights {
    Whole,
    /// Announce the full length, send half, hang up.
    CutOff,
    /// Send half, then wait before hanging up (long enough for a cancel to be the only way out).
    Stall,
    /// Send half, then wait until the test calls [`FakeHub::release_weights`], then send the rest: a download that
    /// can finish, when the test says.
    Held,
}

pub struct FakeHub {
    pub address: String,
    /// Every "METHOD path" received.
    requests: Arc<Mutex<Vec<String>>>,
    held: Arc<Held>,
}

/// The `Weights::Held` weights: released by the test; the connections over after the release, counted.
#[derive(Default)]
struct Held {
    released: Mutex<bool>,
    finished: Mutex<usize>,
    changed: std::sync::Condvar,
}

impl FakeHub {
    /// Serves the tiny-p8 fixture model as `REPO` on 127.0.0.1.
    pub fn start(weights: Weights) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let files: Arc<HashMap<&str, Vec<u8>>> = Arc::new(
            ["config.json", "model.safetensors", "preprocessor_config.json"]
                .into_iter()
                .map(|f| (f, std::fs::read(fixtures().join("models/tiny-p8").join(f)).unwrap()))
                .collect(),
        );
        let log = Arc::clone(&requests);
        let held = Arc::new(Held::default());
        let server_held = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (files, log, held) = (Arc::clone(&files), Arc::clone(&log), Arc::clone(&server_held));
                std::thread::spawn(move || answer(stream, &files, &log, weights, &held));
            }
        });
        Self { address, requests, held }
    }

    /// `Weights::Held`: sends the rest of every held weights download, now and from now on.
    pub fn release_weights(&self) {
        *self.held.released.lock().unwrap() = true;
        self.held.changed.notify_all();
    }

    /// `Weights::Held`: waits until `count` held weights downloads are over: the rest of the body sent after the
    /// release and the connection closed by the client, whether it read the body or gave up on it (a minute at
    /// most: only a hang gets near it).
    pub fn wait_for_finished_weights(&self, count: usize) {
        let finished = self.held.finished.lock().unwrap();
        let (finished, timeout) = self
            .held
            .changed
            .wait_timeout_while(finished, Duration::from_secs(60), |finished| *finished < count)
            .unwrap();
        assert!(!timeout.timed_out(), "{} of {count} held downloads finished", *finished);
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// The paths of the files downloaded so far (GETs of `/resolve/` URLs), in order.
    pub fn file_downloads(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|request| request.strip_prefix("GET ").map(str::to_owned))
            .filter(|path| path.contains("/resolve/"))
            .collect()
    }

    /// Hub settings that download from this hub into `cache`, with the default timeouts.
    pub fn settings(&self, cache: &Path) -> HubSettings {
        HubSettings {
            cache_dir: cache.to_owned(),
            token: None,
            offline: false,
            endpoint: Some(self.address.clone()),
            metadata_timeout: DEFAULT_TIMEOUT,
            download_timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A server that accepts every connection and never sends a byte (hf-hub's clients would wait for it forever);
/// returns its address.
pub fn silent_hub() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().flatten() {
            open.push(stream);
        }
    });
    address
}

/// A port on 127.0.0.1 that refuses every connection for as long as this value lives: its socket is bound but never
/// listens, so connecting gets "connection refused" at once, and no other process can take the port meanwhile (a
/// port read from a listener and then dropped could be handed to anyone before the test uses it).
#[derive(Debug)]
pub struct RefusingPort {
    _socket: socket2::Socket,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
}

impl RefusingPort {
    pub fn bind() -> Self {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
        Self { _socket: socket, address: format!("http://127.0.0.1:{port}") }
    }
}

fn answer(
    mut stream: TcpStream,
    files: &HashMap<&str, Vec<u8>>,
    log: &Mutex<Vec<String>>,
    weights: Weights,
    held: &Held,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
    log.lock().unwrap().push(format!("{method} {path}"));

    let mut headers = vec![("X-Repo-Commit".to_string(), COMMIT.to_string())];
    let (status, body) = if let Some(rest) = path.strip_prefix(&format!("/{REPO}/resolve/")) {
        let (revision, file) = rest.split_once('/').unwrap_or((rest, ""));
        match files.get(file).filter(|_| revision == "main" || revision == COMMIT) {
            Some(body) => {
                let etag = format!("{:064x}", body.len());
                headers.push(("ETag".into(), format!("\"{etag}\"")));
                (200, body.clone())
            }
            None => (404, Vec::new()),
        }
    } else if path == format!("/api/models/{REPO}") || path == format!("/api/models/{REPO}/revision/main") {
        (200, format!("{{\"sha\": \"{COMMIT}\"}}").into_bytes())
    } else {
        (404, Vec::new())
    };
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let mut response = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    let _ = stream.write_all(response.as_bytes());
    if method != "GET" {
        return;
    }
    let is_weights = path.ends_with("/model.safetensors");
    match weights {
        Weights::CutOff | Weights::Stall if is_weights => {
            let _ = stream.write_all(&body[..body.len() / 2]);
            let _ = stream.flush();
            if weights == Weights::Stall {
                std::thread::sleep(Duration::from_secs(20));
            }
        }
        Weights::Held if is_weights => {
            let _ = stream.write_all(&body[..body.len() / 2]);
            let _ = stream.flush();
            let released = held.released.lock().unwrap();
            drop(held.changed.wait_while(released, |released| !*released).unwrap());
            let _ = stream.write_all(&body[body.len() / 2..]);
            // The client closes the connection once it has read (or given up on) the body.
            let _ = stream.read_to_end(&mut Vec::new());
            *held.finished.lock().unwrap() += 1;
            held.changed.notify_all();
        }
        _ => {
            let _ = stream.write_all(&body);
        }
    }
}
