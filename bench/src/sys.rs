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
