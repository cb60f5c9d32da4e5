//! Debian's tinyproxy on loopback, with a generated configuration.
//!
//! # Why tinyproxy
//!
//! A client's proxy support is only as good as its agreement with real
//! proxies: how they answer `CONNECT`, what they do with absolute-form
//! requests, how they ask for credentials. tinyproxy is a small, common,
//! real forward proxy that does all three, starts in milliseconds, and runs
//! as any user; a proxy written for the tests would agree with the client
//! by construction.
//!
//! # What [`Tinyproxy::start`] does
//!
//! Each proxy lives in a fresh directory under [`std::env::temp_dir`]
//! holding its `tinyproxy.conf`, `tinyproxy.log` and pid file. It runs
//! `tinyproxy -d -c DIR/tinyproxy.conf` (in the foreground) as a child
//! process, on a port picked by binding `127.0.0.1:0` and closing (a start
//! that loses the port to another process is retried on a new one),
//! listening on and allowing `127.0.0.1` only. The configuration has no
//! `ConnectPort` line, so `CONNECT` is allowed to any port (tinyproxy's rule
//! when none is given), and, with [`TinyproxyOptions::basic_auth`], a
//! `BasicAuth` line: requests without those credentials are answered `407`.
//! Dropping the [`Tinyproxy`] stops it (SIGTERM, then SIGKILL after a few
//! seconds) and removes the directory.
//!
//! # What it tells
//!
//! tinyproxy adds `Via: 1.1 HOST (tinyproxy/VERSION)` to every request it
//! forwards, so an origin can tell a request came through it; and it logs
//! every request line it reads, which [`Tinyproxy::requests`] returns
//! (`CONNECT 127.0.0.1:PORT HTTP/1.1`, `GET http://127.0.0.1:PORT/ HTTP/1.1`).
//! It serves one request per client connection (it answers
//! `Connection: close` to absolute-form requests), but a tunnel stays open
//! as long as the client keeps it.
//!
//! # Tests without tinyproxy
//!
//! [`available_or_skip`] lets a test return early, with a message, on a
//! machine without tinyproxy; when the environment variable [`REQUIRE_ENV`]
//! (`MUXPOOL_REQUIRE_TINYPROXY`) is set, as CI does, a missing tinyproxy
//! fails the test instead.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nginx::{make_server_dir, signal, skip_unless};

/// Where Debian's `tinyproxy-bin` package installs the binary.
pub const TINYPROXY_BINARY: &str = "/usr/bin/tinyproxy";

/// The environment variable that turns a missing tinyproxy from a skipped
/// test into a failed one (CI sets it).
pub const REQUIRE_ENV: &str = "MUXPOOL_REQUIRE_TINYPROXY";

/// How long [`Tinyproxy::start`] waits for the proxy to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// How often [`Tinyproxy::start`] tries again on a new port when the port
/// was taken.
const START_ATTEMPTS: u32 = 5;

/// How long dropping a [`Tinyproxy`] waits after SIGTERM before SIGKILL.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// Whether tinyproxy is installed; the error says what is missing.
pub fn available() -> io::Result<()> {
    if Path::new(TINYPROXY_BINARY).exists() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{TINYPROXY_BINARY} not found (install the Debian package tinyproxy)"),
        ))
    }
}

/// For a test that needs tinyproxy: `true` when it is installed.
///
/// When it is not, prints why `test` is skipped and returns `false`, or
/// panics if the environment variable [`REQUIRE_ENV`] is set.
pub fn available_or_skip(test: &str) -> bool {
    skip_unless(test, available(), REQUIRE_ENV)
}

/// How a [`Tinyproxy`] is configured. The [`Default`] asks for no
/// credentials.
#[derive(Clone, Debug, Default)]
pub struct TinyproxyOptions {
    /// Require these Basic credentials (user, password): `BasicAuth`.
    pub basic_auth: Option<(String, String)>,
}

/// A running tinyproxy; dropping it stops the proxy and removes its
/// directory.
#[derive(Debug)]
pub struct Tinyproxy {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl Tinyproxy {
    /// Starts tinyproxy as configured by `options` and waits until it
    /// accepts connections.
    ///
    /// Fails if tinyproxy is not installed (see [`available`]), if the
    /// directory cannot be written, or if tinyproxy exits or does not
    /// accept within a few seconds; the error then carries its log.
    pub fn start(options: TinyproxyOptions) -> io::Result<Tinyproxy> {
        available()?;
        let dir = make_server_dir("tinyproxy")?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match try_start(&dir, &options) {
                Ok(proxy) => return Ok(proxy),
                Err(e) => last_error = Some(e),
            }
        }
        let _ = fs::remove_dir_all(&dir);
        Err(last_error.expect("START_ATTEMPTS > 0"))
    }

    /// The port the proxy listens on, on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`: the proxy's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The proxy's directory: `tinyproxy.conf` and `tinyproxy.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log so far (empty if it cannot be read).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("tinyproxy.log")).unwrap_or_default()
    }

    /// The request lines the proxy has read so far, in order:
    /// `CONNECT host:port HTTP/1.1` for a tunnel, the request line of a
    /// forwarded request.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|line| {
                line.split_once("): ")
                    .filter(|_| line.contains("Request ("))
            })
            .map(|(_, request)| request.to_string())
            .collect()
    }

    /// Stops the proxy: SIGTERM, then SIGKILL if it has not exited within a
    /// few seconds. Calling it again does nothing; the directory is removed
    /// on drop.
    pub fn stop(&mut self) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill()?;
        child.wait()?;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("tinyproxy did not stop within {STOP_DEADLINE:?} of SIGTERM and was killed"),
        ))
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Writes the configuration for a free port, starts tinyproxy and waits
/// until it accepts.
fn try_start(dir: &Path, options: &TinyproxyOptions) -> io::Result<Tinyproxy> {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    fs::write(dir.join("tinyproxy.conf"), config(dir, options, port))?;
    let _ = fs::remove_file(dir.join("tinyproxy.log"));
    let mut child = Command::new(TINYPROXY_BINARY)
        .arg("-d")
        .arg("-c")
        .arg(dir.join("tinyproxy.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!(
                "tinyproxy exited with {status}; its log:\n{}",
                fs::read_to_string(dir.join("tinyproxy.log")).unwrap_or_default()
            )));
        }
        // Listening is logged after the socket is bound and before the
        // first accept; a connect then is queued and served.
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(Tinyproxy {
                child: Some(child),
                dir: dir.to_path_buf(),
                port,
            });
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("tinyproxy did not accept on {addr} within {START_DEADLINE:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The configuration of a proxy on `port`.
fn config(dir: &Path, options: &TinyproxyOptions, port: u16) -> String {
    let mut out = format!(
        "Port {port}\n\
         Listen 127.0.0.1\n\
         Allow 127.0.0.1\n\
         Timeout 60\n\
         MaxClients 100\n\
         LogLevel Connect\n\
         LogFile \"{log}\"\n\
         PidFile \"{pid}\"\n",
        log = dir.join("tinyproxy.log").display(),
        pid = dir.join("tinyproxy.pid").display(),
    );
    if let Some((user, password)) = &options.basic_auth {
        out.push_str(&format!("BasicAuth {user} {password}\n"));
    }
    out
}
