//! What the benchmarks share: criterion's measurement by the current thread's CPU
//! time, for runs on a machine that other work shares. `MUXPOOL_BENCH_CLOCK=thread`
//! selects it.

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// Whether `MUXPOOL_BENCH_CLOCK=thread` asks for thread CPU time.
pub fn thread_clock_requested() -> bool {
    std::env::var("MUXPOOL_BENCH_CLOCK").is_ok_and(|clock| clock == "thread")
}

/// The calling thread's CPU time so far.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is available");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Criterion's measurement by the current thread's CPU time.
pub struct ThreadTime;

impl Measurement for ThreadTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, d: &Duration) -> f64 {
        d.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, as with the wall clock: print them the same way.
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

/// The `main` of a bench: with `MUXPOOL_BENCH_ITERATIONS=N`, `$counted(N)`
/// once, untimed, for callgrind to count; otherwise each `$bench` under
/// criterion, timed by the wall clock or, with `MUXPOOL_BENCH_CLOCK=thread`,
/// by the thread's CPU time.
#[allow(unused_macros)]
macro_rules! bench_main {
    ($counted:ident, $($bench:ident),+) => {
        fn main() {
            if let Ok(n) = std::env::var("MUXPOOL_BENCH_ITERATIONS") {
                $counted(n.parse().expect("MUXPOOL_BENCH_ITERATIONS is a number"));
                return;
            }
            if support::thread_clock_requested() {
                let mut c = criterion::Criterion::default()
                    .with_measurement(support::ThreadTime)
                    .configure_from_args();
                $($bench(&mut c);)+
            } else {
                let mut c = criterion::Criterion::default().configure_from_args();
                $($bench(&mut c);)+
            }
            criterion::Criterion::default()
                .configure_from_args()
                .final_summary();
        }
    };
}
#[allow(unused_imports)]
pub(crate) use bench_main;
