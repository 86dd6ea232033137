//! A real S3-compatible server for the tests: `moto` in server mode, pinned, from PyPI. The
//! machine's own copy is used when it is that version; otherwise it is installed on first use
//! into a cache under the build's target directory.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::free_port;

const MOTO: &str = "moto[server]==5.2.1";
const VERSION: &str = "5.2.1";

/// `PYTHONPATH` for moto: `None` when the interpreter's own copy is the pinned one.
fn python_path() -> Option<PathBuf> {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    PATH.get_or_init(|| {
        let check =
            format!("import moto, moto.server, boto3; assert moto.__version__ == '{VERSION}'");
        let works = |path: Option<&PathBuf>| {
            let mut c = Command::new("python3");
            c.args(["-c", &check])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(p) = path {
                c.env("PYTHONPATH", p);
            }
            c.status().is_ok_and(|s| s.success())
        };
        if works(None) {
            return None;
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("target dir")
            .join("regsync-s3")
            .join(format!("moto-{VERSION}"));
        if !works(Some(&dir)) {
            say!(
                "== installing the test S3 server {MOTO} into {} (first use only)",
                dir.display()
            );
            let status = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "--target"])
                .arg(&dir)
                .arg(MOTO)
                .status()
                .expect("running python3 -m pip");
            assert!(status.success(), "pip install {MOTO} failed");
            assert!(works(Some(&dir)), "{MOTO} installed but does not import");
        }
        Some(dir)
    })
    .clone()
}

/// An S3 server on a free port, killed on drop.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    /// Starts the server and waits until it listens.
    pub fn start() -> Self {
        let path = python_path();
        let port = free_port();
        let mut command = Command::new("python3");
        command
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = &path {
            command.env("PYTHONPATH", p);
        }
        let child = command.spawn().expect("starting moto");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            endpoint: format!("http://{addr}"),
        }
    }

    /// The environment a client needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) {
        let script = format!(
            "import boto3; boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test').create_bucket(Bucket='{name}')",
            self.endpoint
        );
        let mut command = Command::new("python3");
        command.args(["-c", &script]);
        if let Some(p) = python_path() {
            command.env("PYTHONPATH", p);
        }
        let out = command.output().expect("python3");
        assert!(
            out.status.success(),
            "creating bucket {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A proxy in front of an S3 server that passes every request on and, once, replaces the
/// server's success for a write that creates a matching object with a 500: a write that
/// succeeded whose answer was lost. The client retries it, as it retries every 5xx.
pub struct LostAnswerProxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    lost: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LostAnswerProxy {
    /// Listens on a free port, forwarding to `upstream` (`http://HOST:PORT`); `matches` picks
    /// the object keys (`bucket/key`, no query) whose creation loses its answer, once.
    pub fn start(upstream: &str, matches: fn(&str) -> bool) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::AtomicUsize;
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let lost = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&lost);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || proxy_one(client, &upstream, matches, &counter));
            }
        });
        Self { lost, endpoint }
    }

    /// How many answers were lost so far.
    pub fn lost(&self) -> usize {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The environment a client needs to reach the S3 server through this proxy.
    pub fn env(&self, server: &S3Server) -> Vec<(&'static str, String)> {
        let mut env = server.env();
        env[0].1 = self.endpoint.clone();
        env
    }
}

/// One request on a client connection: forwarded with `Connection: close`, answered, closed.
fn proxy_one(
    client: TcpStream,
    upstream: &str,
    matches: fn(&str) -> bool,
    lost: &std::sync::atomic::AtomicUsize,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut reader = BufReader::new(client.try_clone().expect("clone socket"));
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().expect("content-length");
        }
        assert!(
            !lower.starts_with("transfer-encoding"),
            "the proxy reads bodies by length only: {line}"
        );
        if !lower.starts_with("connection:") {
            head.push(line);
        }
    }
    if head.is_empty() {
        return;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("request body");
    let mut words = head[0].split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let target = words.next().unwrap_or_default().to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    // A plain put, or the completion of a multipart upload (how copy-if-not-exists creates).
    let creates = (method == "PUT" && query.is_empty())
        || (method == "POST" && query.contains("uploadId=") && !query.contains("partNumber"));
    let mut server = TcpStream::connect(upstream).expect("connect to the S3 server");
    let mut request = head.concat().into_bytes();
    request.extend_from_slice(b"Connection: close\r\n\r\n");
    request.extend_from_slice(&body);
    server.write_all(&request).expect("forward request");
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).expect("read answer");
    let succeeded = answer.starts_with(b"HTTP/1.1 2") || answer.starts_with(b"HTTP/1.0 2");
    let mut client = client;
    if creates
        && succeeded
        && matches(path.trim_start_matches('/'))
        && lost
            .compare_exchange(
                0,
                1,
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
            )
            .is_ok()
    {
        let error = "<Error><Code>InternalError</Code><Message>answer lost</Message></Error>";
        let _ = write!(
            client,
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{error}",
            error.len()
        );
        return;
    }
    let _ = client.write_all(&answer);
}
