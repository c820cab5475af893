//! The relay under load: a `sotto-relay serve` process on a SQLite file, on 127.0.0.1 and an
//! ephemeral port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::client::Error;

/// The `sotto-relay` binary next to this tool's directory (`target/<profile>/examples/..`), the
/// one `cargo build --release -p sotto-relay` builds alongside it.
pub fn default_binary() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    Ok(profile_dir.join("sotto-relay"))
}

/// `sotto-relay tenant create`: (widget id, bootstrap code).
pub fn create_tenant(bin: &Path, db: &Path) -> Result<(String, String), Error> {
    let out = Command::new(bin)
        .args(["tenant", "create", "--name", "load", "--database"])
        .arg(db)
        .output()?;
    if !out.status.success() {
        return Err(format!("tenant create: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let text = String::from_utf8(out.stdout)?;
    let field = |name: &str| -> Result<String, Error> {
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .ok_or(format!("tenant create printed no {name}"))?
            .trim()
            .to_owned())
    };
    Ok((field("widget_id")?, field("bootstrap_code")?))
}

/// A running relay process.
pub struct RelayProcess {
    child: Child,
    /// `http://127.0.0.1:port`.
    pub base: String,
}

impl RelayProcess {
    /// Starts `serve` with rate limits and per-address caps off, logging warnings only.
    pub fn start(bin: &Path, db: &Path, extra_env: &[(String, String)]) -> Result<Self, Error> {
        let mut command = Command::new(bin);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--database"])
            .arg(db)
            .env("SOTTO_LOG", "warn,sotto_relay::server=info")
            .env("SOTTO_RATE_PER_ADDRESS", "0")
            .env("SOTTO_RATE_PER_DEVICE", "0")
            // Every load client comes from 127.0.0.1: the per-address caps and the registration
            // throttle, meant for one abusive client, would stop the load itself.
            .env("SOTTO_MAX_CONNECTIONS_PER_ADDRESS", "100000")
            .env("SOTTO_WS_MAX_PER_ADDRESS", "100000")
            .env("SOTTO_REGISTRATIONS_PER_ADDRESS_HOUR", "0")
            .env("SOTTO_REGISTRATIONS_PER_TENANT_HOUR", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command.spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("addr=").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                } else {
                    eprintln!("relay: {line}");
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => Ok(RelayProcess {
                child,
                base: format!("http://{addr}"),
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err("the relay did not start".into())
            }
        }
    }

    /// SIGTERM, and waits for the graceful shutdown.
    pub fn stop(mut self) -> Result<(), Error> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            return Err("kill failed".into());
        }
        let exit = self.child.wait()?;
        if !exit.success() {
            return Err(format!("relay exited with {exit}").into());
        }
        Ok(())
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
