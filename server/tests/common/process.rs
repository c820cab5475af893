//! `sotto-relay` as a separate process: the operator command and `serve`, for the tests that need
//! the real binary (logs, SIGKILL, several nodes).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Target, Tenant};

/// The relay binary Cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_sotto-relay");

/// The binary to run: `SOTTO_TEST_RELAY_BIN` if set (another build, for example a release one,
/// or a copy that a concurrent build in a shared target directory cannot replace), else [`BIN`].
pub fn bin() -> String {
    std::env::var("SOTTO_TEST_RELAY_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| BIN.to_owned())
}

/// Runs `sotto-relay tenant create` on `database` (a SQLite path or a PostgreSQL URL).
pub fn create_tenant(database: &str) -> Tenant {
    let out = Command::new(bin())
        .args(["tenant", "create", "--name", "process-test", "--database"])
        .arg(database)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap()
            .trim()
            .to_owned()
    };
    Tenant {
        widget_id: field("widget_id"),
        bootstrap_code: field("bootstrap_code"),
    }
}

/// A `sotto-relay serve` process on 127.0.0.1 and an ephemeral port, whose stderr (its log) is
/// collected. Rate limits are off and connection and registration limits generous.
pub struct Process {
    child: Child,
    log: Arc<Mutex<String>>,
    pub base: String,
}

impl Process {
    pub fn start(database: &str, log_filter: &str) -> Self {
        Self::start_with_env(database, log_filter, &[])
    }

    /// With extra environment variables (settings of `serve`).
    pub fn start_with_env(database: &str, log_filter: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(bin());
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--database"])
            .arg(database)
            .env("SOTTO_LOG", log_filter)
            .env("SOTTO_RATE_PER_ADDRESS", "0")
            .env("SOTTO_RATE_PER_DEVICE", "0")
            // Generous for tests that are not about limits; the abuse suite passes its own.
            .env("SOTTO_MAX_CONNECTIONS_PER_ADDRESS", "4096")
            .env("SOTTO_WS_MAX_PER_ADDRESS", "4096")
            .env("SOTTO_REGISTRATIONS_PER_ADDRESS_HOUR", "0")
            .env("SOTTO_REGISTRATIONS_PER_TENANT_HOUR", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let text = log.lock().unwrap().clone();
            if let Some(rest) = text.split("addr=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("relay exited with {status}: {text}");
            }
            if Instant::now() >= deadline {
                // Not yet a `Process`, whose drop would kill it.
                let _ = child.kill();
                let _ = child.wait();
                panic!("relay did not start: {text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Process {
            child,
            log,
            base: format!("http://{addr}"),
        }
    }

    /// The relay's process id (for `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `ws://host:port`.
    pub fn ws_base(&self) -> String {
        self.base.replace("http://", "ws://")
    }

    /// SIGTERM by process id, then waits for a clean exit; returns the whole log.
    pub fn stop(&mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "relay did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "exit status {status}");
        std::thread::sleep(Duration::from_millis(100));
        self.log()
    }

    /// SIGKILL: the process dies at once, with no chance to flush or close anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "killed, not exited: {status}");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A test that failed half-way must not leave its relay running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Target for Process {
    fn base(&self) -> &str {
        &self.base
    }
}
