//! The Debian nginx binary on loopback, with a generated configuration.
//!
//! # Why nginx
//!
//! nginx is the server muxpool meets most often in production, and the one whose
//! behaviour its defaults are tuned against (keep-alive limits, idle timeouts,
//! HTTP/2 stream limits, GOAWAY on `keepalive_requests`). Testing against the real
//! binary catches what an in-process server written for the tests would agree with
//! us about by construction. It is also the fixed, fast, out-of-process peer the
//! benchmarks need: a server that costs the client nothing, pinned to its own core.
//!
//! # What [`Nginx::start`] does
//!
//! Each server lives in a fresh directory under [`std::env::temp_dir`] holding its
//! `nginx.conf`, `error.log`, pid file, every temp path nginx may write
//! (`client_body_temp_path`, `proxy_temp_path`, `fastcgi_temp_path`,
//! `uwsgi_temp_path`, `scgi_temp_path`) and the document root. It runs
//! `nginx -p DIR -c DIR/nginx.conf -e DIR/error.log -g 'daemon off;'` as a child
//! process with a master process and [`NginxOptions::workers`] workers, on ports
//! picked by binding `127.0.0.1:0` and closing (a start that loses a port to
//! another process is retried on new ports). The configuration has no `user`
//! directive, so it works as non-root too; as root nginx runs its workers as
//! `nobody`, which is why the directory and its files are made world-readable.
//! Dropping the [`Nginx`] stops the server (SIGTERM, then SIGKILL after a few
//! seconds) and removes the directory.
//!
//! # Restarting
//!
//! [`Nginx::restart`] stops the server the way a [`Stop`] says (graceful, fast
//! or killed), waits until it has exited, stays down for a while and starts it
//! again in the same directory with the same `nginx.conf`, so on the same
//! ports: what a client sees when its server is restarted or crashes and comes
//! back. [`Nginx::stop_with`] and [`Nginx::start_again`] are its two halves, for
//! a test that wants to know exactly when the server was down.
//!
//! # What it serves
//!
//! On every listener that is turned on (plain HTTP/1.1, TLS with optional HTTP/2
//! by ALPN, HTTP/2 with prior knowledge):
//!
//! | path | response |
//! |---|---|
//! | `/` | 200, `Content-Length: 6`, body [`HELLO`] (`"hello\n"`) |
//! | `/bytes/N`, N in [`BYTES_SIZES`] | 200, `Content-Length: N`, body [`pattern`]`(N)` (byte i is `i % 251`) |
//! | `/chunked` | 200, `Transfer-Encoding: chunked` on HTTP/1.1, body [`CHUNKED_BODY`] in three chunks |
//! | `/echo` | 200, the request body back, chunked on HTTP/1.1 (see [`ECHO_MAX_BODY`]) |
//! | `/gzip/text` | 200, [`compress::text`](crate::compress::text)`(`[`GZIP_TEXT_SIZE`]`)`, with `gzip on`: compressed (`Content-Encoding: gzip`, chunked on HTTP/1.1) for a request that accepts gzip, as it is for one that does not; ranges served for the latter |
//! | `/nginx_status` | nginx's `stub_status` page |
//! | anything else | 404 |
//!
//! `/chunked` and `/echo` use the echo module (`libnginx-mod-http-echo`, loaded
//! from [`ECHO_MODULE`]).
//!
//! # Counting connections
//!
//! [`Nginx::accepted_connections`] reads `stub_status` through a separate plain
//! listener kept for that purpose (the status port), and subtracts every
//! connection the handle made itself (the readiness checks at start and each
//! status request, including the one being made), so it counts exactly the
//! connections the code under test opened since the server became ready.
//!
//! # Tests without nginx
//!
//! [`available_or_skip`] lets a test return early, with a message, on a machine
//! without nginx; when the environment variable [`REQUIRE_ENV`]
//! (`MUXPOOL_REQUIRE_NGINX`) is set, as CI does, a missing nginx fails the test
//! instead.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the Debian package installs the nginx binary.
pub const NGINX_BINARY: &str = "/usr/sbin/nginx";

/// Where Debian's `libnginx-mod-http-echo` installs the echo module, which
/// `/chunked` and `/echo` need.
pub const ECHO_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_echo_module.so";

/// The environment variable that turns a missing nginx from a skipped test into
/// a failed one (CI sets it).
pub const REQUIRE_ENV: &str = "MUXPOOL_REQUIRE_NGINX";

/// The body of `GET /`.
pub const HELLO: &str = "hello\n";

/// The sizes N of the static files served at `/bytes/N`.
pub const BYTES_SIZES: [usize; 5] = [0, 1024, 65536, 1_048_576, 16_777_216];

/// The size of `/gzip/text`, the file nginx compresses with gzip.
pub const GZIP_TEXT_SIZE: usize = 1024 * 1024;

/// The body of `GET /chunked`, sent as three chunks: `"one\n"`, `"two\n"`,
/// `"three\n"`.
pub const CHUNKED_BODY: &str = "one\ntwo\nthree\n";

/// The largest request body `/echo` accepts (`client_max_body_size`); a larger
/// one is answered with 413.
///
/// Bodies up to [`ECHO_MEMORY_BODY`] are held in memory
/// (`client_body_buffer_size`); larger ones are buffered to a temporary file in
/// the server's directory first (nginx logs a warning for each), and are echoed
/// all the same.
pub const ECHO_MAX_BODY: usize = 64 * 1024 * 1024;

/// The largest request body nginx keeps in memory (`client_body_buffer_size`);
/// see [`ECHO_MAX_BODY`].
pub const ECHO_MEMORY_BODY: usize = 1024 * 1024;

/// How long [`Nginx::start`] waits for the server to answer.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// How often [`Nginx::start`] tries again on new ports when a port was taken.
const START_ATTEMPTS: u32 = 5;

/// How long [`Nginx::stop`] waits after SIGTERM before it sends SIGKILL.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// How long [`Nginx::start_again`] keeps trying while a port is not bindable.
const RESTART_BIND_DEADLINE: Duration = Duration::from_secs(5);

/// The deterministic content of `/bytes/N`: byte i is `(i % 251) as u8`.
///
/// 251 is prime, so the pattern does not line up with any power-of-two buffer
/// size and a misplaced or repeated block shows up as a mismatch.
pub fn pattern(len: usize) -> Vec<u8> {
    // Whole periods at a time: fast even in debug builds, which matters for
    // the 16 MiB file every start writes.
    let period: Vec<u8> = (0..251u8).collect();
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let take = period.len().min(len - out.len());
        out.extend_from_slice(&period[..take]);
    }
    out
}

/// Whether nginx and its echo module are installed; the error says what is
/// missing.
pub fn available() -> io::Result<()> {
    for (path, package) in [
        (NGINX_BINARY, "nginx"),
        (ECHO_MODULE, "libnginx-mod-http-echo"),
    ] {
        if !Path::new(path).exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{path} not found (install the Debian package {package})"),
            ));
        }
    }
    Ok(())
}

/// For a test that needs nginx: `true` when nginx is installed.
///
/// When it is not, prints why `test` is skipped and returns `false`, or panics
/// if the environment variable [`REQUIRE_ENV`] is set.
pub fn available_or_skip(test: &str) -> bool {
    skip_unless(test, available(), REQUIRE_ENV)
}

/// `true` when a server `test` needs is `found`; else prints why `test` is
/// skipped and returns `false`, or panics if the environment variable
/// `require_env` is set.
pub(crate) fn skip_unless(test: &str, found: io::Result<()>, require_env: &str) -> bool {
    match found {
        Ok(()) => true,
        Err(e) if std::env::var_os(require_env).is_some() => {
            panic!("{test}: {e}, and {require_env} is set")
        }
        Err(e) => {
            eprintln!("skipping {test}: {e} (set {require_env} to make this a failure)");
            false
        }
    }
}

/// What an nginx server listens on and how it is tuned. The [`Default`] is one
/// worker with a plain HTTP/1.1 listener only, nginx's own keep-alive defaults
/// and no access log.
#[derive(Clone, Debug)]
pub struct NginxOptions {
    /// A plain HTTP/1.1 listener ([`Nginx::http_port`]).
    pub plain: bool,
    /// A TLS listener ([`Nginx::https_port`]) with this certificate chain and
    /// private key, both PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Offer HTTP/2 by ALPN on the TLS listener (`listen ... ssl http2`); it then
    /// serves both `h2` and `http/1.1`. Ignored without [`tls`](Self::tls).
    pub h2: bool,
    /// A plain HTTP/2 listener with prior knowledge, h2c
    /// ([`Nginx::h2c_port`]).
    pub h2c: bool,
    /// `keepalive_requests`: requests served on one connection before nginx
    /// closes it (HTTP/1.1) or sends GOAWAY (HTTP/2). nginx's default is 1000.
    pub keepalive_requests: Option<u32>,
    /// `keepalive_timeout`, at millisecond precision: how long an idle
    /// connection stays open; zero turns keep-alive off. nginx's default is 75 s.
    pub keepalive_timeout: Option<Duration>,
    /// `http2_max_concurrent_streams`, the stream limit nginx announces in its
    /// SETTINGS. nginx's default is 128.
    pub http2_max_concurrent_streams: Option<u32>,
    /// `worker_processes`; at least 1.
    pub workers: u32,
    /// `worker_cpu_affinity`, as nginx writes it: one CPU bit mask per worker,
    /// rightmost bit CPU 0 (`"10"` pins the only worker to CPU 1, `"01 10"`
    /// pins two workers to CPUs 0 and 1), or `"auto"`.
    pub worker_cpu_affinity: Option<String>,
    /// Write an access log (`access.log` in [`Nginx::dir`]); off by default, as
    /// logging costs the server time in benchmarks.
    pub access_log: bool,
}

impl Default for NginxOptions {
    fn default() -> Self {
        NginxOptions {
            plain: true,
            tls: None,
            h2: false,
            h2c: false,
            keepalive_requests: None,
            keepalive_timeout: None,
            http2_max_concurrent_streams: None,
            workers: 1,
            worker_cpu_affinity: None,
            access_log: false,
        }
    }
}

/// One parsed `stub_status` page. The counters are nginx's own, since the start
/// of the server, including the connections the [`Nginx`] handle made itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StubStatus {
    /// Open client connections, including waiting (idle keep-alive) ones.
    pub active: u64,
    /// Client connections accepted.
    pub accepts: u64,
    /// Client connections handled (equal to `accepts` unless a limit was hit).
    pub handled: u64,
    /// Client requests.
    pub requests: u64,
    /// Connections whose request header nginx is reading.
    pub reading: u64,
    /// Connections nginx is writing a response to.
    pub writing: u64,
    /// Idle keep-alive connections.
    pub waiting: u64,
}

/// How [`Nginx::stop_with`] (and so [`Nginx::restart`]) stops the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGQUIT, nginx's graceful shutdown: the listeners close at once, the
    /// requests in flight are answered, idle keep-alive connections are closed
    /// and HTTP/2 connections get GOAWAY; the master exits once its workers
    /// have.
    Graceful,
    /// SIGTERM, nginx's fast shutdown: every connection is closed at once,
    /// requests in flight included.
    Fast,
    /// SIGKILL to the master, then (once it is dead and cannot fork new ones)
    /// to every worker: a crash. The kernel closes every socket (with a reset
    /// where unread data was left).
    Kill,
}

impl Stop {
    /// The signal sent to the master process.
    fn signal(self) -> libc::c_int {
        match self {
            Stop::Graceful => libc::SIGQUIT,
            Stop::Fast => libc::SIGTERM,
            Stop::Kill => libc::SIGKILL,
        }
    }
}

/// A running nginx server; dropping it stops the server and removes its
/// directory.
#[derive(Debug)]
pub struct Nginx {
    child: Option<Child>,
    dir: PathBuf,
    http_port: Option<u16>,
    https_port: Option<u16>,
    h2c_port: Option<u16>,
    status_port: u16,
    /// How many worker processes the master runs.
    workers: usize,
    /// `accepts` as read by the first successful status request, which counts
    /// every readiness check and that request itself.
    baseline_accepts: u64,
    /// Connections this handle opened for status requests after the baseline.
    status_connections: AtomicU64,
}

impl Nginx {
    /// Starts nginx as configured by `options` and waits until it answers and
    /// all its workers are running.
    ///
    /// Fails if nginx is not installed (see [`available`]), if the directory
    /// cannot be written, or if nginx exits or does not answer within a few
    /// seconds; the error then carries the contents of `error.log`.
    pub fn start(options: NginxOptions) -> io::Result<Nginx> {
        available()?;
        let dir = make_dir()?;
        let result = populate(&dir).and_then(|()| {
            let mut last_error = None;
            for _ in 0..START_ATTEMPTS {
                match try_start(&dir, &options) {
                    Ok(nginx) => return Ok(nginx),
                    Err(StartError::PortTaken(e)) => last_error = Some(e),
                    Err(StartError::Other(e)) => return Err(e),
                }
            }
            Err(last_error.expect("START_ATTEMPTS > 0"))
        });
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    /// The port of the plain HTTP/1.1 listener, if [`NginxOptions::plain`].
    pub fn http_port(&self) -> Option<u16> {
        self.http_port
    }

    /// The port of the TLS listener, if [`NginxOptions::tls`] was given.
    pub fn https_port(&self) -> Option<u16> {
        self.https_port
    }

    /// The port of the HTTP/2 prior-knowledge listener, if
    /// [`NginxOptions::h2c`].
    pub fn h2c_port(&self) -> Option<u16> {
        self.h2c_port
    }

    /// The port of the plain listener that only serves `/nginx_status`, which
    /// [`status`](Self::status) uses. It is always there.
    pub fn status_port(&self) -> u16 {
        self.status_port
    }

    /// `http://127.0.0.1:PORT` for the plain HTTP/1.1 listener.
    ///
    /// # Panics
    ///
    /// If [`NginxOptions::plain`] was off.
    pub fn base_url(&self) -> String {
        let port = self.http_port.expect("nginx was started without `plain`");
        format!("http://127.0.0.1:{port}")
    }

    /// `https://127.0.0.1:PORT` for the TLS listener (its certificate must name
    /// `127.0.0.1`).
    ///
    /// # Panics
    ///
    /// If no [`NginxOptions::tls`] was given.
    pub fn https_base_url(&self) -> String {
        let port = self.https_port.expect("nginx was started without `tls`");
        format!("https://127.0.0.1:{port}")
    }

    /// `http://127.0.0.1:PORT` for the HTTP/2 prior-knowledge listener.
    ///
    /// # Panics
    ///
    /// If [`NginxOptions::h2c`] was off.
    pub fn h2c_base_url(&self) -> String {
        let port = self.h2c_port.expect("nginx was started without `h2c`");
        format!("http://127.0.0.1:{port}")
    }

    /// The server's directory: `nginx.conf`, `error.log`, `access.log` (if
    /// turned on) and the document root `root/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id of the nginx master process, or `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The process ids of the worker processes (the master's children), read
    /// from `/proc`; empty once stopped.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.pid().map(children).unwrap_or_default()
    }

    /// The contents of `error.log` so far (empty if it cannot be read).
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Fetches and parses `stub_status` with a plain HTTP/1.0 request on the
    /// status port. That request is itself one accepted connection;
    /// [`accepted_connections`](Self::accepted_connections) subtracts it.
    pub fn status(&self) -> io::Result<StubStatus> {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.status_port))?;
        self.status_connections.fetch_add(1, Ordering::SeqCst);
        fetch_status(stream)
    }

    /// How many connections nginx accepted since it became ready, not counting
    /// the ones this handle made itself (its readiness checks and its status
    /// requests, including this one). With one worker it is exact; with more,
    /// each worker updates the shared counter as it accepts, so it is exact
    /// once the connections counted have been accepted.
    pub fn accepted_connections(&self) -> io::Result<u64> {
        let status = self.status()?;
        let own = self.status_connections.load(Ordering::SeqCst);
        Ok(status.accepts.saturating_sub(self.baseline_accepts + own))
    }

    /// Stops the server: SIGTERM (nginx's fast shutdown, which closes open
    /// connections), then SIGKILL to the master and its workers if it has not
    /// exited within a few seconds. Returns an error if it had to be killed or
    /// had exited unsuccessfully. Calling it again does nothing. The directory
    /// is removed on drop.
    ///
    /// The same as [`stop_with`](Self::stop_with)`(`[`Stop::Fast`]`)`.
    pub fn stop(&mut self) -> io::Result<()> {
        self.stop_with(Stop::Fast)
    }

    /// Stops the server as `how` says and waits until the master process (and,
    /// for [`Stop::Kill`], every worker) has exited, so its listeners are
    /// closed when it returns. If it has not exited within a few seconds, the
    /// master and its workers are sent SIGKILL and an error is returned; an
    /// error is also returned if nginx had already exited, or exited
    /// unsuccessfully. Calling it on a stopped server does nothing. The
    /// directory is kept, for [`start_again`](Self::start_again), until drop.
    pub fn stop_with(&mut self, how: Stop) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!(
                "nginx had already exited ({status}); error.log:\n{}",
                self.error_log()
            )));
        }
        let workers = children(child.id());
        signal(child.id(), how.signal());
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            if let Some(status) = child.try_wait()? {
                if how == Stop::Kill {
                    // Only now: a master that sees a worker die forks another.
                    for &pid in &workers {
                        signal(pid, libc::SIGKILL);
                    }
                    // Orphaned, they are not ours to reap: wait until they are
                    // gone or zombies, whose sockets are closed.
                    while !workers.iter().all(|&pid| exited(pid)) {
                        if Instant::now() >= deadline {
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "nginx workers still running 5 s after SIGKILL",
                            ));
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                return if status.success() || status.code().is_none() {
                    Ok(())
                } else {
                    Err(io::Error::other(format!(
                        "nginx exited with {status}; error.log:\n{}",
                        self.error_log()
                    )))
                };
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for pid in workers {
            signal(pid, libc::SIGKILL);
        }
        child.kill()?;
        child.wait()?;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("nginx did not stop within {STOP_DEADLINE:?} of {how:?} and was killed"),
        ))
    }

    /// Starts the stopped server again in the same directory, with the same
    /// `nginx.conf` and so on the same ports, and waits until it answers, as
    /// [`start`](Self::start) does. While a port is not bindable (an old
    /// socket, or another process holding it for a moment) it tries again for
    /// a few seconds. [`accepted_connections`](Self::accepted_connections)
    /// counts from this start on; `error.log` keeps the lines of every run.
    ///
    /// Fails if the server is running, or if nginx exits or does not answer
    /// in time (the error then carries the lines this start logged).
    pub fn start_again(&mut self) -> io::Result<()> {
        if self.child.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "nginx is running: stop it first",
            ));
        }
        let deadline = Instant::now() + RESTART_BIND_DEADLINE;
        loop {
            let since = LogMark::now(&self.dir);
            let mut child = spawn(&self.dir)?;
            match wait_ready(
                &mut child,
                &self.dir,
                self.status_port,
                self.workers,
                &since,
            ) {
                Ok(status) => {
                    self.child = Some(child);
                    self.baseline_accepts = status.accepts;
                    *self.status_connections.get_mut() = 0;
                    return Ok(());
                }
                Err(StartError::PortTaken(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(StartError::PortTaken(e) | StartError::Other(e)) => return Err(e),
            }
        }
    }

    /// Restarts the server: [`stop_with`](Self::stop_with)`(how)`, then `down`
    /// with nothing listening on its ports, then
    /// [`start_again`](Self::start_again), which returns once it answers. It
    /// blocks the calling thread throughout (run it off an async runtime's
    /// threads). If the stop fails the server is left stopped.
    pub fn restart(&mut self, how: Stop, down: Duration) -> io::Result<()> {
        self.stop_with(how)?;
        std::thread::sleep(down);
        self.start_again()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Why one start attempt failed.
enum StartError {
    /// nginx could not bind a port: try again on new ports.
    PortTaken(io::Error),
    /// Anything else: give up.
    Other(io::Error),
}

impl From<io::Error> for StartError {
    fn from(e: io::Error) -> Self {
        StartError::Other(e)
    }
}

/// Creates a fresh, world-readable directory for one server.
fn make_dir() -> io::Result<PathBuf> {
    make_server_dir("nginx")
}

/// Creates a fresh, world-readable directory for one `server` process (its
/// configuration, logs and pid file), named after it.
pub(crate) fn make_server_dir(server: &str) -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "muxpool-{server}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir(&dir)?;
    // As root, nginx's workers run as `nobody` and must reach the document root.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// Writes the document root: the `/bytes/N` files and `/gzip/text`.
fn populate(dir: &Path) -> io::Result<()> {
    let bytes = dir.join("root").join("bytes");
    fs::create_dir_all(&bytes)?;
    for d in [dir.join("root"), bytes.clone()] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755))?;
    }
    let largest = pattern(BYTES_SIZES.iter().copied().max().unwrap_or(0));
    for n in BYTES_SIZES {
        let file = bytes.join(n.to_string());
        fs::write(&file, &largest[..n])?;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644))?;
    }
    let gzip = dir.join("root").join("gzip");
    fs::create_dir_all(&gzip)?;
    fs::set_permissions(&gzip, fs::Permissions::from_mode(0o755))?;
    let file = gzip.join("text");
    fs::write(&file, crate::compress::text(GZIP_TEXT_SIZE))?;
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// The ports of one start attempt.
struct Ports {
    http: Option<u16>,
    https: Option<u16>,
    h2c: Option<u16>,
    status: u16,
}

impl Ports {
    /// Picks a distinct free port for each listener `options` turns on.
    fn pick(options: &NginxOptions) -> io::Result<Ports> {
        // Hold every listener until all are picked, so the ports differ.
        let mut held = Vec::new();
        let mut pick = |wanted: bool| -> io::Result<Option<u16>> {
            if !wanted {
                return Ok(None);
            }
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
            let port = listener.local_addr()?.port();
            held.push(listener);
            Ok(Some(port))
        };
        let ports = Ports {
            http: pick(options.plain)?,
            https: pick(options.tls.is_some())?,
            h2c: pick(options.h2c)?,
            status: pick(true)?.expect("a wanted port is picked"),
        };
        drop(held);
        Ok(ports)
    }
}

/// Writes the configuration for `ports`, starts nginx and waits until its status
/// listener answers.
fn try_start(dir: &Path, options: &NginxOptions) -> Result<Nginx, StartError> {
    let ports = Ports::pick(options)?;
    fs::write(dir.join("nginx.conf"), config(dir, options, &ports))?;
    // Fresh logs per attempt, so a failure shows only its own lines.
    let _ = fs::remove_file(dir.join("error.log"));
    let _ = fs::remove_file(dir.join("stderr.log"));
    let workers = usize::try_from(options.workers.max(1)).unwrap_or(usize::MAX);
    let mut child = spawn(dir)?;
    let status = wait_ready(&mut child, dir, ports.status, workers, &LogMark::default())?;
    Ok(Nginx {
        child: Some(child),
        dir: dir.to_path_buf(),
        http_port: ports.http,
        https_port: ports.https,
        h2c_port: ports.h2c,
        status_port: ports.status,
        workers,
        baseline_accepts: status.accepts,
        status_connections: AtomicU64::new(0),
    })
}

/// Runs nginx on `DIR/nginx.conf` in the foreground, its error log in
/// `DIR/error.log` and its stderr appended to `DIR/stderr.log`.
fn spawn(dir: &Path) -> io::Result<Child> {
    let stderr = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("stderr.log"))?;
    Command::new(NGINX_BINARY)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-g")
        .arg("daemon off;")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
}

/// Waits until `child` answers a status request on `status_port` and runs its
/// `workers` worker processes (so that [`Nginx::worker_pids`] lists them all),
/// and returns that status. If it exits first, the error says whether a port was taken; if
/// it does not answer within [`START_DEADLINE`], it is killed. Errors carry the
/// lines logged after `since`.
fn wait_ready(
    child: &mut Child,
    dir: &Path,
    status_port: u16,
    workers: usize,
    since: &LogMark,
) -> Result<StubStatus, StartError> {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Some(status) = child.try_wait()? {
            let log = since.logs(dir);
            let message = format!("nginx exited during start ({status}); error.log:\n{log}");
            return Err(if log.contains("Address already in use") {
                StartError::PortTaken(io::Error::new(io::ErrorKind::AddrInUse, message))
            } else {
                StartError::Other(io::Error::other(message))
            });
        }
        let attempt = TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, status_port)),
            Duration::from_millis(500),
        )
        .and_then(fetch_status);
        let last_error = match attempt {
            Ok(status) if children(child.id()).len() >= workers => return Ok(status),
            Ok(_) => io::Error::other(format!("fewer than {workers} workers running")),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
            return Err(StartError::Other(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "nginx did not answer on 127.0.0.1:{status_port} within {START_DEADLINE:?} \
                     (last error: {last_error}); error.log:\n{}",
                    since.logs(dir)
                ),
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How long `error.log` and `stderr.log` were at some point, so that a start
/// reports only the lines it logged itself.
#[derive(Default)]
struct LogMark {
    error: usize,
    stderr: usize,
}

impl LogMark {
    /// The current lengths of the logs in `dir` (zero for a missing one).
    fn now(dir: &Path) -> LogMark {
        let len = |name: &str| {
            fs::metadata(dir.join(name)).map_or(0, |m| usize::try_from(m.len()).unwrap_or(0))
        };
        LogMark {
            error: len("error.log"),
            stderr: len("stderr.log"),
        }
    }

    /// `error.log` and anything nginx wrote to stderr, after this mark.
    fn logs(&self, dir: &Path) -> String {
        let tail = |name: &str, from: usize| {
            let all = fs::read(dir.join(name)).unwrap_or_default();
            String::from_utf8_lossy(all.get(from..).unwrap_or_default()).into_owned()
        };
        let mut log = tail("error.log", self.error);
        let stderr = tail("stderr.log", self.stderr);
        if !stderr.trim().is_empty() {
            log.push_str("\nstderr:\n");
            log.push_str(&stderr);
        }
        log
    }
}

/// The nginx configuration for `options` on `ports`.
fn config(dir: &Path, options: &NginxOptions, ports: &Ports) -> String {
    let d = dir.display();
    let mut c = String::new();
    // `write!` into a String cannot fail.
    macro_rules! line {
        ($($arg:tt)*) => { let _ = writeln!(c, $($arg)*); };
    }
    line!("# Generated by muxpool-testkit (testkit/src/nginx.rs).");
    line!("load_module {ECHO_MODULE};");
    line!("worker_processes {};", options.workers.max(1));
    if let Some(mask) = &options.worker_cpu_affinity {
        line!("worker_cpu_affinity {mask};");
    }
    line!("error_log {d}/error.log notice;");
    line!("pid {d}/nginx.pid;");
    line!("events {{ worker_connections 4096; }}");
    line!("http {{");
    if options.access_log {
        line!("    access_log {d}/access.log;");
    } else {
        line!("    access_log off;");
    }
    for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        line!("    {kind}_temp_path {d}/tmp_{kind};");
    }
    line!("    default_type application/octet-stream;");
    line!("    client_body_buffer_size {ECHO_MEMORY_BODY};");
    line!("    client_max_body_size {ECHO_MAX_BODY};");
    if let Some(n) = options.keepalive_requests {
        line!("    keepalive_requests {n};");
    }
    if let Some(t) = options.keepalive_timeout {
        line!("    keepalive_timeout {}ms;", t.as_millis());
    }
    if let Some(n) = options.http2_max_concurrent_streams {
        line!("    http2_max_concurrent_streams {n};");
    }
    line!("    server {{");
    line!("        listen 127.0.0.1:{};", ports.status);
    line!("        location = /nginx_status {{ stub_status; }}");
    line!("        location / {{ return 404; }}");
    line!("    }}");
    let any_listener = ports.http.is_some() || ports.https.is_some() || ports.h2c.is_some();
    // A server block without `listen` would listen on port 80.
    if any_listener {
        line!("    server {{");
        if let Some(port) = ports.http {
            line!("        listen 127.0.0.1:{port};");
        }
        if let (Some(port), Some((cert, key))) = (ports.https, &options.tls) {
            let h2 = if options.h2 { " http2" } else { "" };
            line!("        listen 127.0.0.1:{port} ssl{h2};");
            line!("        ssl_certificate {};", cert.display());
            line!("        ssl_certificate_key {};", key.display());
            line!("        ssl_protocols TLSv1.2 TLSv1.3;");
        }
        if let Some(port) = ports.h2c {
            line!("        listen 127.0.0.1:{port} http2;");
        }
        line!("        root {d}/root;");
        line!("        location = / {{ default_type text/plain; return 200 \"hello\\n\"; }}");
        line!("        location /bytes/ {{ }}");
        line!("        location /gzip/ {{");
        line!("            default_type text/plain;");
        line!("            gzip on; gzip_types *; gzip_min_length 0; gzip_vary on;");
        line!("        }}");
        line!("        location = /chunked {{");
        line!("            default_type text/plain;");
        line!("            echo one; echo_flush; echo two; echo_flush; echo three;");
        line!("        }}");
        line!("        location = /echo {{ echo_read_request_body; echo_request_body; }}");
        line!("        location = /nginx_status {{ stub_status; }}");
        line!("    }}");
    }
    line!("}}");
    c
}

/// Sends an HTTP/1.0 status request on `stream` and parses the answer.
fn fetch_status(mut stream: TcpStream) -> io::Result<StubStatus> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /nginx_status HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    parse_status(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a stub_status response: {text:?}"),
        )
    })
}

/// Parses a whole `stub_status` response, head included:
///
/// ```text
/// Active connections: 1
/// server accepts handled requests
///  4 4 4
/// Reading: 0 Writing: 1 Waiting: 0
/// ```
fn parse_status(response: &str) -> Option<StubStatus> {
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return None;
    }
    let mut lines = body.lines();
    let active = lines
        .next()?
        .strip_prefix("Active connections:")?
        .trim()
        .parse()
        .ok()?;
    lines.next()?;
    let counts: Vec<u64> = lines
        .next()?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [accepts, handled, requests] = counts[..] else {
        return None;
    };
    let words: Vec<&str> = lines.next()?.split_whitespace().collect();
    let [_, reading, _, writing, _, waiting] = words[..] else {
        return None;
    };
    Some(StubStatus {
        active,
        accepts,
        handled,
        requests,
        reading: reading.parse().ok()?,
        writing: writing.parse().ok()?,
        waiting: waiting.parse().ok()?,
    })
}

/// The children of process `pid`, from `/proc/PID/task/*/children`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Sends `sig` to process `pid`, ignoring failure (it may have exited).
pub(crate) fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Whether process `pid` has exited: gone, or a zombie (its sockets closed)
/// waiting to be reaped.
fn exited(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stub_status() {
        let response = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/plain\r\n\
                        Content-Length: 97\r\nConnection: close\r\n\r\nActive connections: 1 \n\
                        server accepts handled requests\n 4 4 5 \n\
                        Reading: 0 Writing: 1 Waiting: 2 \n";
        assert_eq!(
            parse_status(response),
            Some(StubStatus {
                active: 1,
                accepts: 4,
                handled: 4,
                requests: 5,
                reading: 0,
                writing: 1,
                waiting: 2,
            })
        );
        assert_eq!(parse_status("HTTP/1.1 404 Not Found\r\n\r\n"), None);
    }

    #[test]
    fn pattern_is_byte_index_mod_251() {
        let p = pattern(600);
        assert_eq!(p[0], 0);
        assert_eq!(p[250], 250);
        assert_eq!(p[251], 0);
        assert_eq!(p[599], (599 % 251) as u8);
    }
}
