//! A real `kith serve` on a generated demo business, for end-to-end tests of
//! the API, the portal, the console and the browser tests.
//!
//! [`Served::start`] writes a small Fernleaf demo (synced, not served), points
//! its one-time codes at a file sender, adds one agent and one admin, starts
//! `kith serve --listen 127.0.0.1:0` and waits until it answers. Dropping it
//! kills the server.

// Shared by several test modules; not every one uses every helper.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const AGENT: &str = "agent@fernleaf.test";
pub const ADMIN: &str = "admin@fernleaf.test";
/// The password of both test staff accounts.
pub const STAFF_PASSWORD: &str = "correct horse battery staple";

pub struct Served {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The demo's showcase customer (billing, verified): `margaret.ellison@example.com`.
    pub customer_email: String,
    child: Child,
    /// The server's standard error so far (tests check secrets never reach it).
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// Codes already handed out per address, so a new request waits for its own.
    codes_seen: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

pub fn kith_in(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kith"));
    c.args(args).env_remove("KITH_CONFIG");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("kith runs")
}

/// What a command printed, standard output then standard error.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: std::process::Output) -> String {
    let all = text(&o);
    assert!(o.status.success(), "{all}");
    all
}

impl Served {
    /// A demo of `people` people, served. `extra_server_toml` is appended
    /// inside `[server]` (after `sender = { kind = "file", dir = "mail" }`).
    pub fn start(people: usize, extra_server_toml: &str) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let people = people.to_string();
        let out = ok(kith_in(
            &[
                "demo",
                "--dir",
                &d,
                "--people",
                &people,
                "--loyalty-listen",
                "127.0.0.1:0",
                "--no-serve",
            ],
            &[],
        ));
        let customer_email = out
            .lines()
            .find(|l| l.contains("# this customer again"))
            .and_then(|l| l.split_whitespace().find(|w| w.contains('@')))
            .expect("the demo names its showcase customer")
            .to_string();
        let config = dir.path().join("kith.toml");
        let mut toml = std::fs::read_to_string(&config).unwrap();
        toml.push_str(&format!(
            "\n[server]\nsender = {{ kind = \"file\", dir = \"mail\" }}\n{extra_server_toml}\n"
        ));
        std::fs::write(&config, toml).unwrap();
        let c = config.to_str().unwrap();
        for (email, role) in [(AGENT, "agent"), (ADMIN, "admin")] {
            ok(kith_in(
                &[
                    "--config",
                    c,
                    "users",
                    "add",
                    email,
                    "--name",
                    &format!("Test {role}"),
                    "--role",
                    role,
                    "--password-env",
                    "KITH_TEST_PASSWORD",
                ],
                &[("KITH_TEST_PASSWORD", STAFF_PASSWORD)],
            ));
        }
        let (child, base, log) = spawn_server(&config, "127.0.0.1:0");
        let served = Served {
            dir,
            config,
            base,
            customer_email,
            child,
            log,
            codes_seen: Default::default(),
        };
        served.wait_ready();
        served
    }

    fn wait_ready(&self) {
        wait_ready_at(&self.base);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The newest one-time code the file sender delivered to `to` (an e-mail
    /// address or phone number as typed; matched against the normalised
    /// identifier). Codes are sent in the background, so this waits up to 5 s
    /// for one newer than the last code seen for `to`.
    pub fn last_code_for(&self, to: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (count, code) = self.codes_for(to);
            let mut seen = self.codes_seen.lock().unwrap();
            let before = seen.get(to).copied().unwrap_or(0);
            if count > before {
                seen.insert(to.to_string(), count);
                return code;
            }
            drop(seen);
            if Instant::now() >= deadline {
                return code;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many codes were sent to `to`, and the newest.
    fn codes_for(&self, to: &str) -> (usize, Option<String>) {
        let codes = self.codes_to(to);
        (codes.len(), codes.last().cloned())
    }

    /// Every code the file sender delivered so far to `to` (an e-mail
    /// address or phone number as typed; matched against the normalised
    /// identifier), oldest first. Does not wait.
    pub fn codes_to(&self, to: &str) -> Vec<String> {
        let needle = to.to_lowercase();
        self.messages()
            .iter()
            .filter(|m| {
                m["to"]
                    .as_str()
                    .is_some_and(|t| t.to_lowercase().ends_with(&needle))
            })
            .filter_map(|m| m["code"].as_str().map(str::to_string))
            .collect()
    }

    /// Every code the file sender delivered so far, to anyone.
    pub fn all_codes(&self) -> Vec<String> {
        self.messages()
            .iter()
            .filter_map(|m| m["code"].as_str().map(str::to_string))
            .collect()
    }

    /// The file sender's messages, oldest first.
    fn messages(&self) -> Vec<serde_json::Value> {
        let path = self.dir.path().join("mail").join("messages.jsonl");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Kills the server with SIGKILL (no chance to flush or shut down cleanly).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same address after [`Served::kill`].
    pub fn restart(&mut self) {
        let listen = self.base.trim_start_matches("http://").to_string();
        let (child, base, log) = spawn_server(&self.config, &listen);
        self.child = child;
        self.base = base;
        self.log = log;
        self.wait_ready();
    }

    /// Runs a kith command against this server's configuration.
    pub fn kith(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        kith_in(&all, &[])
    }
}

/// Starts `kith serve` on `listen` and returns the child, its base URL and its captured output.
pub fn spawn_server(
    config: &Path,
    listen: &str,
) -> (Child, String, std::sync::Arc<std::sync::Mutex<String>>) {
    let c = config.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kith"))
        .args(["--config", c, "serve", "--listen", listen])
        .env_remove("KITH_CONFIG")
        .env("KITH_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kith serve starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next()
        .expect("kith serve prints where it listens")
        .unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    // Keep draining both pipes so the server never blocks on a full pipe.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let l2 = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            l2.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let stderr = child.stderr.take().unwrap();
    let l3 = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            l3.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    (child, base, log)
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to 30 s until the server at `base` (`http://127.0.0.1:PORT`) is ready.
pub fn wait_ready_at(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("{base}/readyz");
    loop {
        if let Ok(r) = reqwest::blocking_get(&url)
            && r
        {
            return;
        }
        assert!(Instant::now() < deadline, "kith serve never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A command's standard output as JSON; fails with what it printed unless
/// it succeeded.
pub fn json(o: std::process::Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("the command prints JSON")
}

/// The value of a page's first anti-forgery field (`name="_csrf"`).
pub fn csrf_in(html: &str) -> String {
    const FIELD: &str = "name=\"_csrf\" value=\"";
    let at = html
        .find(FIELD)
        .unwrap_or_else(|| panic!("no _csrf field in {html:.2000}"));
    let rest = &html[at + FIELD.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// A tiny blocking GET for readiness, without pulling a blocking HTTP client in.
mod reqwest {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub fn blocking_get(url: &str) -> std::io::Result<bool> {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut s = TcpStream::connect(host)?;
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        Ok(buf.starts_with("HTTP/1.1 200"))
    }
}
