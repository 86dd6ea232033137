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
            eprintln!(
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
