//! Result rows and their two renderings: a markdown table for people, JSON (one
//! array of objects, written by hand to keep the dependencies small) for
//! scripts.

use std::fmt::Write as _;

use crate::sys::CpuTime;

/// One contender at one concurrency level in `h1` mode.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// The contender's name.
    pub contender: String,
    /// Requests in flight at once (tasks, or wrk connections).
    pub concurrency: usize,
    /// Requests completed in the measured window.
    pub requests: u64,
    /// The measured window, in seconds.
    pub seconds: f64,
    /// `requests / seconds`.
    pub requests_per_sec: f64,
    /// Client CPU time (user + system) over the window, per request, in µs.
    pub cpu_us_per_request: f64,
    /// The user part of `cpu_us_per_request`: the client's own code, without
    /// the kernel's work on its system calls.
    pub user_us_per_request: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Connections nginx accepted during the run (`None`: not measured).
    pub conns_opened: Option<u64>,
    /// Failed requests and wrong responses.
    pub errors: u64,
    /// The first error, if any.
    pub first_error: Option<String>,
    /// When the row is the median of several runs: how many, and the spread of
    /// their CPU per request (`None`: a single run).
    pub spread: Option<Spread>,
    /// How busy nginx's workers kept their core over the window (1.0: fully).
    /// Near 1.0 the server, not the client, sets the pace: a client that never
    /// waits (every one here) fills the time with smaller batches, and its CPU
    /// per request tends to one over the request rate, whatever its own cost.
    pub server_busy: Option<f64>,
    /// The round the row was measured in, from 1 (0: a median of rounds, or
    /// a single run).
    pub round: usize,
}

impl Row {
    /// The row of a measured window: `requests` answered in `elapsed`, using
    /// `cpu` of the client's time, with their `latency` in nanoseconds.
    pub fn measured(
        contender: &str,
        concurrency: usize,
        requests: u64,
        elapsed: std::time::Duration,
        cpu: CpuTime,
        latency: &hdrhistogram::Histogram<u64>,
    ) -> Row {
        let micros = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
        Row {
            contender: contender.to_string(),
            concurrency,
            requests,
            seconds: elapsed.as_secs_f64(),
            requests_per_sec: requests as f64 / elapsed.as_secs_f64(),
            cpu_us_per_request: per_request(cpu.total(), requests),
            user_us_per_request: per_request(cpu.user, requests),
            p50_us: micros(0.50),
            p99_us: micros(0.99),
            ..Row::default()
        }
    }
}

/// Several runs of one contender at one concurrency, behind a median [`Row`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The runs.
    pub rounds: usize,
    /// The lowest CPU per request among them, in µs.
    pub cpu_low: f64,
    /// The highest CPU per request among them, in µs.
    pub cpu_high: f64,
}

/// One row per contender and concurrency, in the order they first appear in
/// `rows`: the row itself if it is the only one, otherwise each figure the
/// median of those of its rows (taken figure by figure; for an even count,
/// the mean of the middle two), requests and errors summed, and the range of
/// CPU per request kept beside the median.
pub fn medians(rows: Vec<Row>) -> Vec<Row> {
    let mut groups: Vec<Vec<Row>> = Vec::new();
    for row in rows {
        match groups
            .iter_mut()
            .find(|g| g[0].contender == row.contender && g[0].concurrency == row.concurrency)
        {
            Some(group) => group.push(row),
            None => groups.push(vec![row]),
        }
    }
    groups.into_iter().map(median_row).collect()
}

/// The median row of one contender's runs at one concurrency.
fn median_row(mut group: Vec<Row>) -> Row {
    if group.len() == 1 {
        return group.remove(0);
    }
    let of = |f: fn(&Row) -> f64| median(group.iter().map(f).collect());
    let cpu: Vec<f64> = group.iter().map(|r| r.cpu_us_per_request).collect();
    let (low, high) = range(&cpu);
    let conns: Vec<u64> = group.iter().filter_map(|r| r.conns_opened).collect();
    Row {
        contender: group[0].contender.clone(),
        concurrency: group[0].concurrency,
        requests: group.iter().map(|r| r.requests).sum(),
        seconds: group.iter().map(|r| r.seconds).sum(),
        requests_per_sec: of(|r| r.requests_per_sec),
        cpu_us_per_request: median(cpu),
        user_us_per_request: of(|r| r.user_us_per_request),
        p50_us: of(|r| r.p50_us),
        p99_us: of(|r| r.p99_us),
        // A fresh client per run: the most any run opened.
        conns_opened: conns.iter().copied().max(),
        server_busy: {
            let busy: Vec<f64> = group.iter().filter_map(|r| r.server_busy).collect();
            (!busy.is_empty()).then(|| median(busy))
        },
        errors: group.iter().map(|r| r.errors).sum(),
        first_error: group.iter().find_map(|r| r.first_error.clone()),
        round: 0,
        spread: Some(Spread {
            rounds: group.len(),
            cpu_low: low,
            cpu_high: high,
        }),
    }
}

/// A reference to hold contenders' CPU per request against, and the ratio to
/// it a contender aims at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reference {
    /// The reference contender's name.
    pub name: &'static str,
    /// The ratio aimed at: a contender's CPU per request over the reference's.
    pub target: f64,
}

/// One contender's CPU per request over a reference's at one concurrency,
/// taken round by round.
///
/// Every round runs each contender once, one after the other, so the pair
/// of a round was measured minutes apart at most; the ratio of a round
/// leaves out the drift of the machine's speed from round to round, which
/// the medians of the two contenders' rounds, taken apart, keep.
#[derive(Clone, Debug, PartialEq)]
pub struct Paired {
    /// The contender.
    pub contender: String,
    /// The reference.
    pub reference: Reference,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The ratio in each round both ran in, in round order.
    pub ratios: Vec<f64>,
}

impl Paired {
    /// The median ratio.
    pub fn median(&self) -> f64 {
        median(self.ratios.clone())
    }

    /// The rounds whose ratio is at or under the reference's target.
    pub fn met(&self) -> usize {
        self.ratios
            .iter()
            .filter(|&&r| r <= self.reference.target)
            .count()
    }
}

/// Every contender's ratios to each of `references` (itself excepted), at
/// each concurrency, from the rows of single rounds in `runs`; in the order
/// contenders and concurrencies first appear. Nothing for a reference that
/// did not run, nor when the rows are not numbered by round.
pub fn paired(runs: &[Row], references: &[Reference]) -> Vec<Paired> {
    let mut out: Vec<Paired> = Vec::new();
    for reference in references {
        for row in runs
            .iter()
            .filter(|r| r.round > 0 && r.contender != reference.name)
        {
            let Some(base) = runs.iter().find(|b| {
                b.contender == reference.name
                    && b.concurrency == row.concurrency
                    && b.round == row.round
            }) else {
                continue;
            };
            let ratio = row.cpu_us_per_request / base.cpu_us_per_request;
            match out.iter_mut().find(|p| {
                p.reference == *reference
                    && p.contender == row.contender
                    && p.concurrency == row.concurrency
            }) {
                Some(pair) => pair.ratios.push(ratio),
                None => out.push(Paired {
                    contender: row.contender.clone(),
                    reference: *reference,
                    concurrency: row.concurrency,
                    ratios: vec![ratio],
                }),
            }
        }
    }
    out
}

/// The round-by-round ratios, one table per reference.
pub fn paired_markdown(pairs: &[Paired]) -> String {
    let mut out = String::new();
    let mut references: Vec<Reference> = Vec::new();
    for pair in pairs {
        if !references.contains(&pair.reference) {
            references.push(pair.reference);
        }
    }
    for reference in references {
        let _ = writeln!(
            out,
            "\nCPU per request over {}'s, round by round (target: {:.2} or under):\n",
            reference.name, reference.target
        );
        out.push_str("| contender | concurrency | median | range | rounds at or under target |\n");
        out.push_str("|---|---:|---:|---:|---:|\n");
        for pair in pairs.iter().filter(|p| p.reference == reference) {
            let (low, high) = range(&pair.ratios);
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} | {:.2}–{:.2} | {} of {} |",
                pair.contender,
                pair.concurrency,
                pair.median(),
                low,
                high,
                pair.met(),
                pair.ratios.len()
            );
        }
    }
    out
}

/// The lowest and the highest of `values` (not empty).
fn range(values: &[f64]) -> (f64, f64) {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (low, high)
}

/// The median of `values` (not empty).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// `time` per request, in µs.
pub fn per_request(time: std::time::Duration, requests: u64) -> f64 {
    time.as_secs_f64() * 1e6 / requests.max(1) as f64
}

/// One contender in `idle-memory` mode.
#[derive(Clone, Debug, Default)]
pub struct IdleRow {
    /// The contender's name.
    pub contender: String,
    /// Connections the round was meant to open (requests held at once).
    pub target: usize,
    /// Connections nginx accepted, and saw idle afterwards, after the round.
    pub connections: u64,
    /// Idle connections on nginx's side once the client settled.
    pub server_idle: u64,
    /// Heap bytes held after the round, over the baseline taken right after
    /// the client was created, divided by `connections`.
    pub bytes_per_conn: f64,
    /// Heap bytes added by a second round of as many new connections, divided
    /// by their number: the cost of one more idle connection, without the
    /// client's one-time allocations.
    pub marginal_bytes_per_conn: f64,
}

/// The `h1` table; rows that are medians of several rounds add the range of
/// CPU per request over them.
pub fn markdown(rows: &[Row]) -> String {
    let rounds = rows
        .iter()
        .filter_map(|r| r.spread.map(|s| s.rounds))
        .max()
        .unwrap_or(1);
    let mut out = String::new();
    out.push_str("| contender | concurrency | req/s | CPU µs/req | ");
    if rounds > 1 {
        let _ = write!(out, "range over {rounds} rounds | ");
    }
    out.push_str("of which user | p50 µs | p99 µs | conns opened | nginx busy |\n");
    // The contender column left-aligned, every figure right-aligned.
    let columns = out.matches('|').count() - 1;
    out.push_str("|---|");
    out.push_str(&"---:|".repeat(columns - 1));
    out.push('\n');
    for r in rows {
        let conns = r.conns_opened.map_or("-".to_string(), |c| c.to_string());
        let _ = write!(
            out,
            "| {} | {} | {:.0} | {:.1} | ",
            r.contender, r.concurrency, r.requests_per_sec, r.cpu_us_per_request,
        );
        if rounds > 1 {
            match r.spread {
                Some(s) => {
                    let _ = write!(out, "{:.1}–{:.1} | ", s.cpu_low, s.cpu_high);
                }
                None => out.push_str("- | "),
            }
        }
        let busy = r
            .server_busy
            .map_or("-".to_string(), |b| format!("{:.0} %", b * 100.0));
        let _ = writeln!(
            out,
            "{:.1} | {:.1} | {:.1} | {} | {} |",
            r.user_us_per_request, r.p50_us, r.p99_us, conns, busy
        );
    }
    out
}

/// The `idle-memory` table.
pub fn idle_markdown(rows: &[IdleRow]) -> String {
    let mut out = String::new();
    out.push_str("| contender | connections | bytes/idle conn | marginal bytes/conn |\n");
    out.push_str("|---|---:|---:|---:|\n");
    for r in rows {
        let marginal = if r.marginal_bytes_per_conn.is_finite() {
            format!("{:.0}", r.marginal_bytes_per_conn)
        } else {
            "-".to_string()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {marginal} |",
            r.contender, r.connections, r.bytes_per_conn
        );
    }
    out
}

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (non-finite numbers become `null`).
fn number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".to_string()
    }
}

/// The `h1` rows as a JSON array.
pub fn json(rows: &[Row]) -> String {
    let objects: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"contender\":{},\"concurrency\":{},\"requests\":{},\"seconds\":{},\
                 \"requests_per_sec\":{},\"cpu_us_per_request\":{},\"user_us_per_request\":{},\
                 \"p50_us\":{},\
                 \"p99_us\":{},\"conns_opened\":{},\"errors\":{},\"first_error\":{},\
                 \"rounds\":{},\"cpu_us_min\":{},\"cpu_us_max\":{},\"server_busy\":{}}}",
                string(&r.contender),
                r.concurrency,
                r.requests,
                number(r.seconds),
                number(r.requests_per_sec),
                number(r.cpu_us_per_request),
                number(r.user_us_per_request),
                number(r.p50_us),
                number(r.p99_us),
                r.conns_opened.map_or("null".to_string(), |c| c.to_string()),
                r.errors,
                r.first_error.as_deref().map_or("null".to_string(), string),
                r.spread.map_or(1, |s| s.rounds),
                r.spread.map_or("null".to_string(), |s| number(s.cpu_low)),
                r.spread.map_or("null".to_string(), |s| number(s.cpu_high)),
                r.server_busy.map_or("null".to_string(), number),
            )
        })
        .collect();
    format!("[\n  {}\n]", objects.join(",\n  "))
}

/// The `idle-memory` rows as a JSON array.
pub fn idle_json(rows: &[IdleRow]) -> String {
    let objects: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"contender\":{},\"target\":{},\"connections\":{},\"server_idle\":{},\
                 \"bytes_per_conn\":{},\"marginal_bytes_per_conn\":{}}}",
                string(&r.contender),
                r.target,
                r.connections,
                r.server_idle,
                number(r.bytes_per_conn),
                number(r.marginal_bytes_per_conn),
            )
        })
        .collect();
    format!("[\n  {}\n]", objects.join(",\n  "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_and_nulls() {
        assert_eq!(string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(number(f64::NAN), "null");
        let row = Row {
            contender: "x".into(),
            ..Row::default()
        };
        let text = json(&[row]);
        assert!(text.contains("\"conns_opened\":null"), "{text}");
        assert!(text.contains("\"first_error\":null"), "{text}");
    }

    fn run(contender: &str, concurrency: usize, cpu: f64) -> Row {
        Row {
            contender: contender.into(),
            concurrency,
            requests: 10,
            cpu_us_per_request: cpu,
            user_us_per_request: cpu / 2.0,
            conns_opened: Some(concurrency as u64),
            server_busy: Some(cpu / 10.0),
            ..Row::default()
        }
    }

    #[test]
    fn ratios_pair_the_runs_of_one_round() {
        let round = |contender: &str, concurrency: usize, cpu: f64, round: usize| Row {
            round,
            ..run(contender, concurrency, cpu)
        };
        let runs = vec![
            round("a", 16, 8.0, 1),
            round("ref", 16, 10.0, 1),
            round("a", 16, 12.0, 2),
            round("ref", 16, 10.0, 2),
            round("a", 16, 4.5, 3),
            round("ref", 16, 5.0, 3),
            // No reference run in this round: left out.
            round("a", 256, 1.0, 1),
            // Unnumbered (a median): left out.
            round("a", 16, 1.0, 0),
        ];
        let reference = Reference {
            name: "ref",
            target: 1.0,
        };
        let pairs = paired(&runs, &[reference]);
        assert_eq!(pairs.len(), 1);
        let pair = &pairs[0];
        assert_eq!((pair.contender.as_str(), pair.concurrency), ("a", 16));
        assert_eq!(pair.ratios, [0.8, 1.2, 0.9]);
        assert_eq!(pair.median(), 0.9);
        assert_eq!(pair.met(), 2);
        let table = paired_markdown(&pairs);
        assert!(table.contains("over ref's"), "{table}");
        assert!(
            table.contains("| a | 16 | 0.90 | 0.80–1.20 | 2 of 3 |"),
            "{table}"
        );
        // A missing reference pairs nothing.
        let none = Reference {
            name: "none",
            target: 1.0,
        };
        assert!(paired(&runs, &[none]).is_empty());
    }

    #[test]
    fn medians_group_by_contender_and_concurrency_in_order() {
        let rows = vec![
            run("a", 16, 7.0),
            run("b", 16, 9.0),
            run("a", 16, 5.0),
            run("b", 16, 8.0),
            run("a", 16, 6.5),
            run("a", 256, 4.0),
        ];
        let out = medians(rows);
        let keys: Vec<_> = out
            .iter()
            .map(|r| (r.contender.as_str(), r.concurrency))
            .collect();
        assert_eq!(keys, [("a", 16), ("b", 16), ("a", 256)]);
        assert_eq!(out[0].cpu_us_per_request, 6.5);
        assert_eq!(out[0].user_us_per_request, 3.25);
        assert_eq!(
            out[0].spread,
            Some(Spread {
                rounds: 3,
                cpu_low: 5.0,
                cpu_high: 7.0
            })
        );
        assert_eq!(out[0].requests, 30);
        // An even count: the mean of the middle two.
        assert_eq!(out[1].cpu_us_per_request, 8.5);
        // A single run is kept as it is.
        assert_eq!(out[2].spread, None);
        let table = markdown(&out);
        assert!(table.contains("range over 3 rounds"), "{table}");
        assert!(
            table.contains("| a | 16 | 0 | 6.5 | 5.0–7.0 | 3.2 |"),
            "{table}"
        );
        assert!(table.contains("| 16 | 65 % |"), "{table}");
        assert!(table.contains("| a | 256 | 0 | 4.0 | - |"), "{table}");
    }
}
