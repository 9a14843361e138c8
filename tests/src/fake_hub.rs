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
}

pub struct FakeHub {
    pub address: String,
    /// Every "METHOD path" received.
    requests: Arc<Mutex<Vec<String>>>,
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
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (files, log) = (Arc::clone(&files), Arc::clone(&log));
                std::thread::spawn(move || answer(stream, &files, &log, weights));
            }
        });
        Self { address, requests }
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

fn answer(mut stream: TcpStream, files: &HashMap<&str, Vec<u8>>, log: &Mutex<Vec<String>>, weights: Weights) {
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
        _ => {
            let _ = stream.write_all(&body);
        }
    }
}
