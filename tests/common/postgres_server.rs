//! A PostgreSQL server of a test's own, for tests that stop and start the database under a
//! running hookgate. The machine's shared server (`HOOKGATE_TEST_DATABASE_URL`) is never stopped:
//! other tests use it at the same time.
//!
//! The server is made with `initdb` in a temporary directory and runs on a free loopback port,
//! with the binaries of the Debian `postgresql` package (`/usr/lib/postgresql/<version>/bin`).
//! `initdb` refuses to run as root, so as root (CI, and the development machine) every
//! PostgreSQL command runs as the `postgres` user (`runuser -u postgres --`), which owns the data
//! directory.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running (or stopped) PostgreSQL server in a temporary directory; stopped and deleted when
/// dropped.
pub struct PostgresServer {
    /// The directory of `initdb`, `pg_ctl` and `postgres`.
    bin: PathBuf,
    /// Holds the data directory and the server's log until the test ends.
    dir: tempfile::TempDir,
    /// The loopback port it listens on, the same after every restart.
    pub port: u16,
    /// Whether commands run as the `postgres` user (because the test runs as root).
    as_postgres: bool,
}

impl PostgresServer {
    /// Makes and starts a new server. `None` (with the reason printed) when the PostgreSQL
    /// server binaries are not installed, outside CI; in CI that is a failure, and so is any
    /// failure to make or start the server.
    pub fn start() -> Option<Self> {
        let bin = match server_binaries() {
            Ok(bin) => bin,
            Err(why) => {
                if std::env::var_os("CI").is_some() {
                    panic!("{why}: CI must install them (apt-get install postgresql)");
                }
                eprintln!("skipped: {why} (apt-get install postgresql)");
                return None;
            }
        };
        let dir = tempfile::tempdir().expect("a temporary directory can be made");
        let as_postgres = running_as_root(dir.path());
        if as_postgres {
            // initdb runs as `postgres`, which must own the directory (0700, made by root).
            let chown = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(
                chown.success(),
                "cannot give {} to the postgres user: is there one?",
                dir.path().display()
            );
        }
        let server = Self {
            bin,
            port: free_port(),
            dir,
            as_postgres,
        };
        let data = server.data_dir();
        server.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        server.start_again();
        Some(server)
    }

    /// A URL of the server's `postgres` database, as its superuser (trusted on loopback).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) on the same data directory and port, and waits until it
    /// accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            // fsync off: the test stops the server, not the machine; the page cache keeps what
            // a committed transaction wrote, and the shared disk is spared.
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            path_str(self.dir.path()),
        );
        let log = self.dir.path().join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "start",
                "-D",
                path_str(&self.data_dir()),
                "-l",
                path_str(&log),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
            ],
        );
    }

    /// Stops the server the hard way (`pg_ctl stop -m immediate`: every connection is cut at
    /// once, nothing is finished), and waits until it is gone.
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "stop",
                "-D",
                path_str(&self.data_dir()),
                "-m",
                "immediate",
                "-w",
                "-t",
                "60",
            ],
        );
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A PostgreSQL program, run as the `postgres` user when the test runs as root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Runs a PostgreSQL program; failing is a failure of the test, with its output.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed ({}):\n{}{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // Stopped already, or not: either way nothing may keep running after the test.
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-D", path_str(&self.data_dir()), "-m", "immediate"])
            .current_dir(self.dir.path())
            .output();
    }
}

/// The newest installed PostgreSQL server's binaries, or why there are none.
fn server_binaries() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|e| format!("no PostgreSQL server binaries: {}: {e}", root.display()))?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        format!(
            "no initdb and pg_ctl under {}/<version>/bin",
            root.display()
        )
    })
}

/// Whether this process runs as root: the owner of a file it has just made.
fn running_as_root(dir: &Path) -> bool {
    let probe = dir.join(".owner");
    std::fs::write(&probe, b"").expect("the temporary directory is writable");
    let uid = std::fs::metadata(&probe)
        .expect("a file just made has metadata")
        .uid();
    std::fs::remove_file(&probe).ok();
    uid == 0
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
