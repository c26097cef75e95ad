//! Load test: pgactor next to the raw driver under N concurrent callers.
//!
//! ```sh
//! cargo run --release --example loadtest -- [--seconds 2.5] [--warmup 0.5]
//!     [--workload read_pk,list_page,insert,tx_lock] [--concurrency 1,16,64]
//!     [--impl pgactor,pgactor-typed,pgactor-msg,raw-prepared,pgactor-single,pgactor-shared,pgactor-unnamed,raw-unnamed]
//!     [--pool 16]
//!     [--rounds 1]
//! ```
//!
//! For every workload × concurrency × implementation (a cell), N tasks each
//! run the operation in a loop for `--seconds` after an uncounted warm-up;
//! every operation's latency is kept; with `--rounds N` every cell is
//! measured N times, the implementations' order turned by one place per
//! round, and the medians are reported. A progress line is redrawn on stderr
//! while a cell runs; at the end come a table of ops/s, p50 and p99 per
//! implementation with the ratios pgactor / raw-prepared, pgactor-typed /
//! raw-prepared, pgactor-msg / raw-prepared, pgactor-single / raw-prepared,
//! pgactor-shared / raw-prepared
//! and pgactor-unnamed / raw-unnamed, and one
//! `RESULT workload=… impl=… c=… ops=… p50_us=… p99_us=… cpu_us=… errors=…` line per
//! cell. The defaults (four workloads, c = 1, 16, 64, eight implementations,
//! 2.5 s + 0.5 s per cell) take about five minutes.
//!
//! The workloads, the table and the implementations are in
//! `examples/support/workload.rs`, shared with the criterion bench;
//! docs/performance.md says what each measures and what limits it.
//!
//! It connects like the other examples: `DATABASE_URL` (in a fresh schema,
//! dropped at the end) or a throwaway cluster. Reads go to the primary
//! either way, so every implementation works on one server. `RUST_LOG`
//! defaults to `warn`, which keeps the progress line readable.

// This example calls `cluster::main_with`, never `cluster::main`.
#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/workload.rs"]
mod workload;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::{BoxError, Target};
use pgactor::Db;
use workload::{by_name, describe, Bench, Impl, Workload, ROWS};

const USAGE: &str = "\
usage: cargo run --release --example loadtest -- [options]

  --seconds S        measured time per cell (default 2.5)
  --warmup S         uncounted warm-up before each cell (default 0.5)
  --workload A,B     read_pk, list_page, insert, tx_lock, update
                     (default read_pk,list_page,insert,tx_lock)
  --concurrency N,M  concurrent callers (default 1,16,64)
  --impl A,B         pgactor, pgactor-typed, pgactor-msg, raw-prepared,
                     pgactor-single, pgactor-shared, pgactor-unnamed,
                     raw-unnamed (default all eight)
  --pool N           connections in each pool (default 16): each pgactor
                     mode has a write and a read pool, each raw baseline one
  --rounds N         measure every cell N times, the implementations in an
                     order turned by one place per round, and report the
                     medians (default 1)

Runs on DATABASE_URL in a fresh schema, or on a throwaway cluster.
";

/// The order of the implementations in `round`: the list turned by one
/// place per round. A cell's place in its row matters on a small shared
/// machine: the first follows another workload or concurrency, and the
/// same code under two names (`pgactor` and `pgactor-shared` on inserts
/// and transactions) came out 10–20 % apart, the same way round, in run
/// after run while the order only reversed. Over as many rounds as there
/// are implementations, each takes every place once.
fn turn(impls: &[Impl], round: usize) -> Vec<Impl> {
    let mut order = impls.to_vec();
    if !order.is_empty() {
        let places = round % order.len();
        order.rotate_left(places);
    }
    order
}

/// The command line.
#[derive(Debug)]
struct Args {
    seconds: f64,
    warmup: f64,
    workloads: Vec<Workload>,
    concurrency: Vec<usize>,
    impls: Vec<Impl>,
    pool: usize,
    rounds: usize,
}

impl Args {
    /// `None`: `--help` was asked for.
    fn parse(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
        let mut args = Args {
            seconds: 2.5,
            warmup: 0.5,
            workloads: vec![
                Workload::ReadPk,
                Workload::ListPage,
                Workload::Insert,
                Workload::TxLock,
            ],
            concurrency: vec![1, 16, 64],
            impls: Impl::ALL.to_vec(),
            pool: 16,
            rounds: 1,
        };
        while let Some(arg) = argv.next() {
            if arg == "-h" || arg == "--help" {
                return Ok(None);
            }
            // Both `--flag value` and `--flag=value`.
            let (flag, value) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), value.to_owned()),
                None => {
                    let value = argv.next().ok_or(format!("{arg} needs a value"))?;
                    (arg, value)
                }
            };
            let bad = |what: &str| format!("{flag}: {what}, got {value:?}");
            match flag.as_str() {
                "--seconds" => {
                    let positive = |s: &f64| *s > 0.0 && s.is_finite();
                    args.seconds = number(&value, positive).ok_or_else(|| bad("seconds > 0"))?;
                }
                "--warmup" => {
                    let ok = |s: &f64| *s >= 0.0 && s.is_finite();
                    args.warmup = number(&value, ok).ok_or_else(|| bad("seconds ≥ 0"))?;
                }
                "--workload" => {
                    let known = |name: &str| by_name(&Workload::ALL, Workload::name, name);
                    args.workloads = list(&value, known).ok_or_else(|| bad("known workloads"))?;
                }
                "--impl" => {
                    let known = |name: &str| by_name(&Impl::ALL, Impl::name, name);
                    args.impls = list(&value, known).ok_or_else(|| bad("known impls"))?;
                }
                "--concurrency" => {
                    let count = |n: &str| number(n, |n: &usize| *n > 0);
                    args.concurrency = list(&value, count).ok_or_else(|| bad("counts ≥ 1"))?;
                }
                "--pool" => {
                    let count = |n: &usize| *n > 0;
                    args.pool = number(&value, count).ok_or_else(|| bad("a count ≥ 1"))?;
                }
                "--rounds" => {
                    let count = |n: &usize| *n > 0;
                    args.rounds = number(&value, count).ok_or_else(|| bad("a count ≥ 1"))?;
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        Ok(Some(args))
    }

    /// How many cells are measured, rounds included.
    fn runs(&self) -> usize {
        self.workloads.len() * self.concurrency.len() * self.impls.len() * self.rounds
    }
}

/// `value` as a `T` that passes `ok`.
fn number<T: std::str::FromStr>(value: &str, ok: impl Fn(&T) -> bool) -> Option<T> {
    value.parse().ok().filter(ok)
}

/// A comma-separated list, every item known to `item`, each kept once (a
/// repeated one would make two cells of one row); `None` if one is unknown.
fn list<T: PartialEq>(value: &str, item: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    let mut items = Vec::new();
    for name in value.split(',') {
        let found = item(name.trim())?;
        if !items.contains(&found) {
            items.push(found);
        }
    }
    Some(items).filter(|items| !items.is_empty())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("loadtest: {err}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let pool = args.pool;
    let configure = move |options| workload::configure(options, pool);
    cluster::main_with("loadtest", "warn", configure, |db, target| {
        load(db, target, args)
    })
    .await
}

async fn load(db: Db, target: Target, args: Args) -> Result<(), BoxError> {
    let mut bench = Bench::new(db, &target.write, args.pool).map_err(boxed)?;
    for variant in [
        Impl::PgactorUnnamed,
        Impl::PgactorShared,
        Impl::PgactorSingle,
    ] {
        if args.impls.contains(&variant) {
            let opened = bench.open_variant(variant, &target.write, args.pool).await;
            opened.map_err(boxed)?;
        }
    }
    let bench = Arc::new(bench);
    let version = bench.server_version().await.map_err(boxed)?;
    eprintln!("filling the table with {ROWS} rows");
    bench.fill().await.map_err(boxed)?;

    let mut cells = Vec::with_capacity(args.runs() / args.rounds);
    let mut measured = 0;
    for &workload in &args.workloads {
        for &callers in &args.concurrency {
            // The implementations of one table row run back to back, so a
            // busy moment on the machine hits the numbers compared alike,
            // in an order that turns from round to round.
            let mut runs: Vec<Cell> = Vec::with_capacity(args.impls.len() * args.rounds);
            for round in 0..args.rounds {
                for imp in turn(&args.impls, round) {
                    let cell = measure(&bench, workload, imp, callers, &args, measured).await;
                    measured += 1;
                    eprintln!("{}", cell.summary());
                    if workload.writes() {
                        bench.reset().await.map_err(boxed)?;
                    }
                    runs.push(cell);
                }
            }
            for &imp in &args.impls {
                cells.push(Cell::median(runs.iter().filter(|run| run.imp == imp)));
            }
        }
    }

    bench.close().await;

    println!();
    println!(
        "{} s per cell after {} s of warm-up{}; pools of {} connections; {ROWS} rows; PostgreSQL {version}",
        args.seconds,
        args.warmup,
        match args.rounds {
            1 => String::new(),
            n => format!(", medians of {n} rounds"),
        },
        args.pool
    );
    print_table(&cells, &args);
    println!();
    for cell in &cells {
        println!("{}", cell.result_line());
    }
    let failed: Vec<&Cell> = cells.iter().filter(|c| c.errors > 0).collect();
    if let Some(first) = failed.first() {
        let why = first.first_error.as_deref().unwrap_or("?");
        return Err(format!(
            "{} cell(s) had errors; the first: {} {} c={}: {why}",
            failed.len(),
            first.workload.name(),
            first.imp.name(),
            first.callers
        )
        .into());
    }
    Ok(())
}

/// A workload error for the example's `main`, with the server's message.
fn boxed(err: workload::OpError) -> BoxError {
    describe(&err).into()
}

/// One cell's outcome.
struct Cell {
    workload: Workload,
    imp: Impl,
    callers: usize,
    /// Operations completed per second in the measured window.
    ops: f64,
    p50_us: u32,
    p99_us: u32,
    /// This process's CPU time (user + system: callers, driver, pool)
    /// in the window per operation, in µs; `None` where the OS cannot say.
    cpu_us: Option<f64>,
    errors: u64,
    first_error: Option<String>,
}

impl Cell {
    /// The median of each figure over the runs of one cell (at least one);
    /// errors add up.
    fn median<'a>(runs: impl Iterator<Item = &'a Cell>) -> Cell {
        let runs: Vec<&Cell> = runs.collect();
        let first = runs[0];
        let of =
            |figure: &dyn Fn(&Cell) -> f64| median(runs.iter().map(|run| figure(run)).collect());
        Cell {
            workload: first.workload,
            imp: first.imp,
            callers: first.callers,
            ops: of(&|c| c.ops),
            p50_us: of(&|c| c.p50_us.into()).round() as u32,
            p99_us: of(&|c| c.p99_us.into()).round() as u32,
            cpu_us: runs
                .iter()
                .map(|c| c.cpu_us)
                .collect::<Option<Vec<f64>>>()
                .map(median),
            errors: runs.iter().map(|c| c.errors).sum(),
            first_error: runs.iter().find_map(|c| c.first_error.clone()),
        }
    }

    /// The line printed when the cell is done.
    fn summary(&self) -> String {
        let (workload, imp, c) = (self.workload.name(), self.imp.name(), self.callers);
        let [ops, p50, p99] = [
            self.ops.round() as u64,
            self.p50_us.into(),
            self.p99_us.into(),
        ]
        .map(thousands);
        let errors = match self.errors {
            0 => String::new(),
            n => format!("   {n} errors"),
        };
        let cpu = self.cpu_us.map_or("-".to_owned(), |us| format!("{us:.1}"));
        format!("  {workload:<10} {imp:<15} c={c:<4} {ops:>9} ops/s   p50 {p50:>7} µs   p99 {p99:>7} µs   cpu {cpu:>5} µs/op{errors}")
    }

    /// The machine-readable line: ops/s rounded, latencies in µs.
    fn result_line(&self) -> String {
        let Cell {
            callers,
            p50_us,
            p99_us,
            errors,
            ..
        } = self;
        let (workload, imp, ops) = (
            self.workload.name(),
            self.imp.name(),
            self.ops.round() as u64,
        );
        let cpu = self.cpu_us.map_or("-".to_owned(), |us| format!("{us:.1}"));
        format!("RESULT workload={workload} impl={imp} c={callers} ops={ops} p50_us={p50_us} p99_us={p99_us} cpu_us={cpu} errors={errors}")
    }
}

/// What one caller task saw.
#[derive(Default)]
struct Tally {
    /// Latency of every operation that completed in the window, in µs.
    latencies: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

/// Run one cell: `callers` tasks loop over the operation for the warm-up
/// and the window; an operation counts when it completes inside the window
/// (so ops/s is completions over exactly the window's length).
async fn measure(
    bench: &Arc<Bench>,
    workload: Workload,
    imp: Impl,
    callers: usize,
    args: &Args,
    index: usize,
) -> Cell {
    let warmup = Duration::from_secs_f64(args.warmup);
    let window = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let (from, until) = (start + warmup, start + warmup + window);
    let counted = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let (bench, counted) = (bench.clone(), counted.clone());
            // The same seeds for every implementation: the same ids, in order.
            let mut rng = workload::Rng::new(caller as u64);
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < until {
                    let began = Instant::now();
                    let outcome = bench.run(imp, workload, rng.next()).await;
                    let ended = Instant::now();
                    if let Err(err) = outcome {
                        tally.errors += 1;
                        tally.first_error.get_or_insert_with(|| describe(&err));
                    } else if (from..until).contains(&ended) {
                        let micros = (ended - began).as_micros();
                        tally.latencies.push(micros.try_into().unwrap_or(u32::MAX));
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tally
            })
        })
        .collect();

    let progress = Progress {
        label: format!(
            "[{}/{}] {} {} c={callers}",
            index + 1,
            args.runs(),
            workload.name(),
            imp.name()
        ),
        start,
        from,
        until,
    };
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(from.into()).await;
        let before = cpu_time();
        tokio::time::sleep_until(until.into()).await;
        Some(cpu_time()?.saturating_sub(before?))
    });
    progress.run(&counted).await;

    let mut all = Tally::default();
    for task in tasks {
        match task.await {
            Ok(tally) => {
                all.latencies.extend(tally.latencies);
                all.errors += tally.errors;
                all.first_error = all.first_error.or(tally.first_error);
            }
            Err(join) => {
                all.errors += 1;
                all.first_error.get_or_insert_with(|| join.to_string());
            }
        }
    }
    all.latencies.sort_unstable();
    let cpu = cpu.await.ok().flatten();
    Cell {
        workload,
        imp,
        callers,
        ops: all.latencies.len() as f64 / window.as_secs_f64(),
        p50_us: percentile(&all.latencies, 0.50),
        p99_us: percentile(&all.latencies, 0.99),
        cpu_us: cpu
            .filter(|_| !all.latencies.is_empty())
            .map(|cpu| cpu.as_secs_f64() * 1e6 / all.latencies.len() as f64),
        errors: all.errors,
        first_error: all.first_error,
    }
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[mid],
        _ => (values[mid - 1] + values[mid]) / 2.0,
    }
}

/// The CPU time this process has used (user + system, every thread).
#[cfg(unix)]
fn cpu_time() -> Option<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` through the pointer, which
    // points to one; we read it only when the call succeeded.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    let time = |t: libc::timeval| -> Option<Duration> {
        Some(
            Duration::from_secs(t.tv_sec.try_into().ok()?)
                + Duration::from_micros(t.tv_usec.try_into().ok()?),
        )
    };
    Some(time(usage.ru_utime)? + time(usage.ru_stime)?)
}

/// The CPU time this process has used: unknown here.
#[cfg(not(unix))]
fn cpu_time() -> Option<Duration> {
    None
}

/// The nearest-rank percentile of sorted values (0 when there are none).
fn percentile(sorted: &[u32], q: f64) -> u32 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

/// The progress line of one cell, redrawn in place on stderr; nothing when
/// stderr is not a terminal (a log file would fill with redraws).
struct Progress {
    label: String,
    start: Instant,
    from: Instant,
    until: Instant,
}

impl Progress {
    /// Redraw until the window ends, then clear the line.
    async fn run(&self, counted: &AtomicU64) {
        let tty = std::io::stderr().is_terminal();
        let mut ticks = tokio::time::interval(Duration::from_millis(200));
        loop {
            ticks.tick().await;
            let now = Instant::now();
            if now >= self.until {
                break;
            }
            if tty {
                self.draw(now, counted.load(Ordering::Relaxed));
            }
        }
        if tty {
            eprint!("\r\x1b[K");
        }
    }

    fn draw(&self, now: Instant, ops: u64) {
        const WIDTH: usize = 30;
        let total = self.until - self.start;
        let done = ((now - self.start).as_secs_f64() / total.as_secs_f64()).min(1.0);
        let filled = (done * WIDTH as f64) as usize;
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(WIDTH - filled));
        let phase = if now < self.from {
            "warming up".to_owned()
        } else {
            let rate = ops as f64 / (now - self.from).as_secs_f64().max(1e-3);
            format!(
                "{} ops, {}/s",
                thousands(ops),
                thousands(rate.round() as u64)
            )
        };
        let elapsed = (now - self.start).as_secs_f64();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[K{} [{bar}] {elapsed:.1}/{:.1} s  {phase}",
            self.label,
            total.as_secs_f64()
        );
        let _ = err.flush();
    }
}

/// `12345` → `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Rows: workload × concurrency. Columns: ops/s, p50 and p99 per
/// implementation, then for each pgactor mode whose baseline ran too,
/// pgactor / raw for ops/s and p99.
fn print_table(cells: &[Cell], args: &Args) {
    let find = |w: Workload, c: usize, i: Impl| {
        cells
            .iter()
            .find(|x| x.workload == w && x.callers == c && x.imp == i)
    };
    // (label, pgactor mode, its baseline); a ratio column is as wide as its
    // label, its two numbers at the left.
    let pairs: Vec<(String, Impl, Impl)> = (args.impls.iter())
        .filter_map(|&imp| imp.baseline().map(|raw| (imp, raw)))
        .filter(|(_, raw)| args.impls.contains(raw))
        .map(|(imp, raw)| (format!("{}/{}", imp.name(), raw.name()), imp, raw))
        .collect();
    let mut top = format!("{:<15}", "");
    let mut head = format!("{:<10} {:>4}", "workload", "c");
    for imp in &args.impls {
        top.push_str(&format!(" | {:<24}", imp.name()));
        head.push_str(&format!(
            " | {:>8} {:>6} {:>8}",
            "ops/s", "p50 µs", "p99 µs"
        ));
    }
    for (label, _, _) in &pairs {
        top.push_str(&format!(" | {label}"));
        let pair = format!("{:>6} {:>6}", "ops", "p99");
        head.push_str(&format!(" | {pair:<w$}", w = label.len()));
    }
    println!("{}", top.trim_end());
    println!("{}", head.trim_end());
    let ratio = |a: f64, b: f64| match b > 0.0 {
        true => format!("{:.2}", a / b),
        false => "-".to_owned(),
    };
    for &workload in &args.workloads {
        for &callers in &args.concurrency {
            let mut line = format!("{:<10} {callers:>4}", workload.name());
            for &imp in &args.impls {
                line.push_str(&match find(workload, callers, imp) {
                    Some(cell) => format!(
                        " | {:>8} {:>6} {:>8}",
                        thousands(cell.ops.round() as u64),
                        thousands(cell.p50_us.into()),
                        thousands(cell.p99_us.into())
                    ),
                    None => format!(" | {:>24}", ""),
                });
            }
            for (label, imp, raw) in &pairs {
                let both = find(workload, callers, *imp).zip(find(workload, callers, *raw));
                let pair = match both {
                    Some((ours, raw)) => format!(
                        "{:>6} {:>6}",
                        ratio(ours.ops, raw.ops),
                        ratio(ours.p99_us.into(), raw.p99_us.into())
                    ),
                    None => String::new(),
                };
                line.push_str(&format!(" | {pair:<w$}", w = label.len()));
            }
            println!("{}", line.trim_end());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Option<Args>, String> {
        Args::parse(args.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn flags_parse_and_defaults_hold() {
        let args = parse("--seconds 2 --concurrency=1,16 --impl pgactor,raw-unnamed")
            .unwrap()
            .unwrap();
        assert_eq!(args.seconds, 2.0);
        assert_eq!(args.concurrency, [1, 16]);
        assert_eq!(args.impls, [Impl::Pgactor, Impl::RawUnnamed]);
        assert_eq!(parse("").unwrap().unwrap().impls, Impl::ALL);
        let twice = parse("--concurrency 16,1,16").unwrap().unwrap();
        assert_eq!(twice.concurrency, [16, 1]);
        assert_eq!(args.workloads.len(), 4);
        assert_eq!(args.pool, 16);
        assert_eq!(args.rounds, 1);
        assert_eq!(parse("--rounds 3").unwrap().unwrap().rounds, 3);
        assert!(parse("--help").unwrap().is_none());
        for bad in [
            "--seconds 0",
            "--seconds",
            "--workload read_pk,nope",
            "--concurrency 0",
            "--rounds 0",
            "--impl",
            "--frobnicate 1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn over_as_many_rounds_as_implementations_each_takes_every_place_once() {
        let impls = Impl::ALL.to_vec();
        let rounds: Vec<Vec<Impl>> = (0..impls.len()).map(|r| turn(&impls, r)).collect();
        assert_eq!(rounds[0], impls);
        for round in &rounds {
            let mut sorted = round.clone();
            sorted.sort_by_key(|imp| imp.name());
            let mut all = impls.clone();
            all.sort_by_key(|imp| imp.name());
            assert_eq!(sorted, all, "every implementation once a round");
        }
        for place in 0..impls.len() {
            let mut at_place: Vec<&str> = rounds.iter().map(|r| r[place].name()).collect();
            at_place.sort_unstable();
            at_place.dedup();
            assert_eq!(at_place.len(), impls.len(), "place {place}");
        }
        assert_eq!(turn(&impls, impls.len()), impls);
        assert!(turn(&[], 3).is_empty());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.50), 50);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
