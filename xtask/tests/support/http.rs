//! A loopback HTTP server for a few files, recording every path asked for; stopped on
//! drop. The tool mirror of the image tests and the Trivy download of `install_trivy.rs`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

type Files = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

pub struct FileServer {
    port: u16,
    files: Files,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Serves each `(name, bytes)` as `/<name>` on a free loopback port.
    pub fn start(files: &[(&str, Vec<u8>)]) -> FileServer {
        let files: Files = Arc::new(Mutex::new(
            files.iter().map(|(n, b)| (format!("/{n}"), b.clone())).collect(),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (files, stop, requests) = (files.clone(), stop.clone(), requests.clone());
            std::thread::spawn(move || serve(listener, files, stop, requests))
        };
        FileServer {
            port,
            files,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Serve `bytes` as `/<name>` from now on.
    pub fn put(&self, name: &str, bytes: impl Into<Vec<u8>>) {
        self.files.lock().unwrap().insert(format!("/{name}"), bytes.into());
    }

    /// Stop serving `/<name>` (it answers 404 from now on).
    pub fn remove(&self, name: &str) {
        self.files.lock().unwrap().remove(&format!("/{name}"));
    }

    /// Paths requested so far (e.g. `/helm-v3.21.4-linux-amd64.tar.gz`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: TcpListener, files: Files, stop: Arc<AtomicBool>, requests: Arc<Mutex<Vec<String>>>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut conn) = conn else { continue };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head);
        let mut first = head.lines().next().unwrap_or("").split_whitespace();
        let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or("").to_string());
        requests.lock().unwrap().push(path.clone());
        let body = if method == "GET" {
            files.lock().unwrap().get(&path).cloned()
        } else {
            None
        };
        let _ = match body {
            Some(b) => conn
                .write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len())
                        .as_bytes(),
                )
                .and_then(|_| conn.write_all(&b)),
            None => conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n"),
        };
    }
}
