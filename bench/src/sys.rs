//! The operating-system measurements and controls the benchmarks need: pinning to
//! a CPU and reading CPU time, both straight from libc (`sched_setaffinity`,
//! `getrusage`), so nothing between the benchmark and the kernel adds noise.

use std::io;
use std::time::Duration;

/// The CPU the benchmark process (and wrk, which inherits its affinity) runs on.
pub const CLIENT_CPU: usize = 0;

/// The CPU the nginx worker runs on.
pub const SERVER_CPU: usize = 1;

/// nginx's `worker_cpu_affinity` mask for one worker on [`SERVER_CPU`].
pub fn nginx_worker_mask() -> String {
    let mut mask = String::from("1");
    mask.push_str(&"0".repeat(SERVER_CPU));
    mask
}

/// Pins the calling thread, and so every thread and child process it starts
/// afterwards, to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write inside it, and
    // sched_setaffinity reads `size_of::<cpu_set_t>()` bytes of it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Which processes [`cpu_time`] reads.
#[derive(Clone, Copy, Debug)]
pub enum Who {
    /// This process: all its threads.
    SelfProcess,
    /// This process's children that have exited and been waited for.
    Children,
    /// The calling thread alone.
    Thread,
}

/// CPU time, split as `getrusage` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time spent running the program's own code.
    pub user: Duration,
    /// Time the kernel spent on its behalf: system calls (here mostly the
    /// loopback TCP stack, both ends of which run in the sender's call).
    pub system: Duration,
}

impl CpuTime {
    /// User plus system time.
    pub fn total(self) -> Duration {
        self.user + self.system
    }
}

impl std::ops::Sub for CpuTime {
    type Output = CpuTime;

    fn sub(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// The CPU time used so far by `who`.
pub fn cpu_time(who: Who) -> CpuTime {
    let who = match who {
        Who::SelfProcess => libc::RUSAGE_SELF,
        Who::Children => libc::RUSAGE_CHILDREN,
        Who::Thread => libc::RUSAGE_THREAD,
    };
    // SAFETY: getrusage writes one `rusage` into the zeroed value it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    CpuTime {
        user: Duration::from_micros(micros(usage.ru_utime)),
        system: Duration::from_micros(micros(usage.ru_stime)),
    }
}

/// The CPU time (user + system) process `pid` has used so far, from
/// `/proc/PID/stat`; `None` if it cannot be read (the process is gone).
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: the fields counted
    // from 3 (state) start after its closing parenthesis.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second).ok().filter(|&t| t > 0)?;
    Some(Duration::from_micros(ticks * 1_000_000 / per_second))
}

/// How busy a set of processes (a server's workers) keeps the CPU over a
/// window: a reading at its start, [`ServerClock::busy`] at its end.
pub struct ServerClock {
    pids: Vec<u32>,
    cpu: Duration,
    at: std::time::Instant,
}

impl ServerClock {
    /// Starts the window for `pids`.
    pub fn start(pids: Vec<u32>) -> ServerClock {
        let cpu = pids.iter().filter_map(|&p| process_cpu_time(p)).sum();
        ServerClock {
            pids,
            cpu,
            at: std::time::Instant::now(),
        }
    }

    /// The processes' CPU time since [`start`](ServerClock::start) over the
    /// wall time since then: 1.0 is one core kept fully busy. `None` without
    /// processes to read.
    pub fn busy(&self) -> Option<f64> {
        if self.pids.is_empty() {
            return None;
        }
        let cpu: Duration = self.pids.iter().filter_map(|&p| process_cpu_time(p)).sum();
        let wall = self.at.elapsed().as_secs_f64();
        (wall > 0.0).then(|| cpu.saturating_sub(self.cpu).as_secs_f64() / wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_cpu_time_reads_a_live_process_and_not_a_missing_one() {
        let before = process_cpu_time(std::process::id()).expect("this process's stat");
        // Spin until the kernel's tick-granular count moves.
        let start = std::time::Instant::now();
        let mut after = before;
        while after == before && start.elapsed() < Duration::from_secs(5) {
            std::hint::black_box((0..10_000u64).sum::<u64>());
            after = process_cpu_time(std::process::id()).expect("this process's stat");
        }
        assert!(
            after > before,
            "CPU time did not grow: {before:?} -> {after:?}"
        );
        // Beyond the kernel's largest pid.
        assert_eq!(process_cpu_time(u32::MAX), None);
    }

    #[test]
    fn server_clock_without_processes_says_nothing() {
        assert_eq!(ServerClock::start(Vec::new()).busy(), None);
    }
}
