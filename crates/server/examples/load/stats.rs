//! Figures: latency histograms, CPU time of processes, and small helpers.

use serde::Serialize;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Values below this are counted exactly (microseconds).
const EXACT: u64 = 128;
/// Buckets per power of two above [`EXACT`]: about 1.5 % resolution.
const PER_OCTAVE: u64 = 64;
/// Enough buckets for any `u64`.
const BUCKETS: usize = (EXACT + 58 * PER_OCTAVE) as usize;

/// A histogram of durations in microseconds, with about 1.5 % resolution.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Counts one value.
    pub fn record(&mut self, micros: u64) {
        self.counts[bucket(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// How many values were at most `micros`.
    pub fn at_most(&self, micros: u64) -> u64 {
        self.counts[..=bucket(micros)].iter().sum()
    }

    /// The nearest-rank quantile `q` (0 < q <= 1), in milliseconds (0 when empty).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return value(index).min(self.max) as f64 / 1_000.0;
            }
        }
        self.max as f64 / 1_000.0
    }

    /// p50, p99 and the maximum, in milliseconds.
    pub fn summary(&self) -> Summary {
        Summary {
            count: self.total,
            p50_ms: round(self.quantile_ms(0.50)),
            p99_ms: round(self.quantile_ms(0.99)),
            max_ms: round(self.max as f64 / 1_000.0),
        }
    }
}

fn bucket(micros: u64) -> usize {
    if micros < EXACT {
        return micros as usize;
    }
    let octave = 63 - u64::from(micros.leading_zeros()); // >= 7
    let shift = octave - 6;
    let top = micros >> shift; // 64..=127
    (EXACT + (shift - 1) * PER_OCTAVE + (top - PER_OCTAVE)) as usize
}

/// The largest value of a bucket.
fn value(index: usize) -> u64 {
    let index = index as u64;
    if index < EXACT {
        return index;
    }
    let shift = (index - EXACT) / PER_OCTAVE + 1;
    let top = (index - EXACT) % PER_OCTAVE + PER_OCTAVE;
    ((top + 1) << shift) - 1
}

/// Three significant figures are plenty.
pub fn round(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let digits = 3 - x.abs().log10().ceil() as i32;
    let scale = 10f64.powi(digits.max(0));
    (x * scale).round() / scale
}

/// Latency figures, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    /// How many.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// CPU time of processes over a window: the server nodes, PostgreSQL (a postmaster and its
/// children), this generator, and the whole machine.
pub struct CpuWindow {
    started: Instant,
    nodes: Vec<u32>,
    postgres: Option<u32>,
    at_start: CpuTicks,
}

#[derive(Clone, Copy, Default)]
struct CpuTicks {
    nodes: u64,
    postgres: u64,
    generator: u64,
    busy: u64,
    total: u64,
    /// Microseconds some task waited for a CPU, if the kernel tells.
    stalled_us: Option<u64>,
}

/// CPU used over a window, in percent of one core (the machine's: of all its cores).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuUse {
    /// The server nodes together.
    pub servers_pct: f64,
    /// PostgreSQL (when its postmaster's pid was given).
    pub postgres_pct: Option<f64>,
    /// The load generator.
    pub generator_pct: f64,
    /// Everything on the machine (other users' work included), of all cores.
    pub machine_pct: f64,
    /// Of the time, how much some runnable task waited for a CPU (Linux pressure stall
    /// information, `/proc/pressure/cpu`): above a few percent, latencies include waiting for
    /// a core.
    pub cpu_stall_pct: Option<f64>,
}

impl CpuWindow {
    /// Starts measuring.
    pub fn start(nodes: Vec<u32>, postgres: Option<u32>) -> Self {
        let at_start = ticks(&nodes, postgres);
        Self {
            started: Instant::now(),
            nodes,
            postgres,
            at_start,
        }
    }

    /// What was used since the start.
    pub fn finish(&self) -> CpuUse {
        let now = ticks(&self.nodes, self.postgres);
        let hz = clock_ticks_per_second();
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let pct = |after: u64, before: u64| {
            round(after.saturating_sub(before) as f64 / hz / seconds * 100.0)
        };
        CpuUse {
            servers_pct: pct(now.nodes, self.at_start.nodes),
            postgres_pct: self
                .postgres
                .map(|_| pct(now.postgres, self.at_start.postgres)),
            generator_pct: pct(now.generator, self.at_start.generator),
            machine_pct: round(
                now.busy.saturating_sub(self.at_start.busy) as f64
                    / now.total.saturating_sub(self.at_start.total).max(1) as f64
                    * 100.0,
            ),
            cpu_stall_pct: now
                .stalled_us
                .zip(self.at_start.stalled_us)
                .map(|(after, before)| round(after.saturating_sub(before) as f64 / seconds / 1e4)),
        }
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

fn ticks(nodes: &[u32], postgres: Option<u32>) -> CpuTicks {
    let mut t = CpuTicks {
        nodes: nodes.iter().filter_map(|&pid| process_ticks(pid)).sum(),
        generator: process_ticks(std::process::id()).unwrap_or(0),
        ..CpuTicks::default()
    };
    if let Some(postmaster) = postgres {
        t.postgres = process_ticks(postmaster).unwrap_or(0) + children_ticks(postmaster);
    }
    t.stalled_us = std::fs::read_to_string("/proc/pressure/cpu")
        .ok()
        .and_then(|text| {
            let some = text.lines().find(|l| l.starts_with("some"))?;
            some.split_whitespace()
                .find_map(|f| f.strip_prefix("total="))?
                .parse()
                .ok()
        });
    if let Ok(stat) = std::fs::read_to_string("/proc/stat") {
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        t.total = fields.iter().sum();
        // idle and iowait
        t.busy = t.total - fields.get(3).unwrap_or(&0) - fields.get(4).unwrap_or(&0);
    }
    t
}

/// A process's `stat` fields after its name.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// User and system time of a process, in clock ticks.
fn process_ticks(pid: u32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    // After the name: state(0) ppid(1) … utime(11) stime(12).
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The CPU time of a process's children that are running now.
fn children_ticks(parent: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat_fields(pid).is_some_and(|f| f.get(1).and_then(|p| p.parse().ok()) == Some(parent))
        })
        .filter_map(process_ticks)
        .sum()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// 32 random hex characters (from the standard library's randomly seeded hasher keys).
pub fn random_hex() -> String {
    (0..2u8)
        .map(|i| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u128(u128::from(now_ms()));
            hasher.write_u32(std::process::id());
            hasher.write_u8(i);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

/// The number of CPUs available to this process.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Raises this process's open-file limit as far as allowed (each client is a socket).
pub fn raise_open_files() -> u64 {
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            limit = raised;
        }
        limit.rlim_cur as u64
    }
}

/// A duration in microseconds.
pub fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}
