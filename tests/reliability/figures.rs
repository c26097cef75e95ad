//! The figures every scenario reports: one row of the table in
//! docs/reliability.md, printed by the test and written to
//! `$CARGO_TARGET_TMPDIR/reliability/<id>.row` for the table that
//! `scripts/reliability.sh` (and `scripts/test.sh`) print after the run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

/// Hold this for a scenario's whole run: scenarios never overlap, whatever
/// `--test-threads` says.
pub async fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::const_new(());
    SERIAL.lock().await
}

/// One scenario's figures.
#[derive(Debug, Default)]
pub struct Figures {
    /// Sort key and short name, e.g. `1a`.
    id: String,
    /// What was done, e.g. `restart -m fast under 16 callers`.
    scenario: String,
    /// Operations attempted.
    pub operations: u64,
    /// Operations the adapter answered with success.
    pub acknowledged: u64,
    /// Acknowledged writes missing afterwards (must be 0).
    pub lost: u64,
    /// Errors by `Error::code()` (or another label such as `panic`).
    pub errors: BTreeMap<String, u64>,
    /// From the fault's end to the first success afterwards.
    pub recovery: Option<Duration>,
    /// Connections or sessions left busy or in a transaction afterwards (must be 0).
    pub leaked: u64,
    /// Anything else worth a figure, e.g. `victim 57014: 0`.
    pub notes: Vec<String>,
}

impl Figures {
    /// Figures of scenario `id` (a short sort key such as `3b`).
    pub fn new(id: &str, scenario: &str) -> Figures {
        Figures {
            id: id.to_owned(),
            scenario: scenario.to_owned(),
            ..Figures::default()
        }
    }

    /// Count one operation's outcome.
    pub fn outcome<T>(&mut self, result: &pgactor::Result<T>) {
        self.operations += 1;
        match result {
            Ok(_) => self.acknowledged += 1,
            Err(e) => self.error(e.code()),
        }
    }

    /// Count one error labelled `label`.
    pub fn error(&mut self, label: &str) {
        *self.errors.entry(label.to_owned()).or_default() += 1;
    }

    /// Add a free-form figure.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The table row (markdown).
    pub fn row(&self) -> String {
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            let mut s = String::new();
            for (kind, n) in &self.errors {
                let sep = if s.is_empty() { "" } else { ", " };
                let _ = write!(s, "{sep}{kind} {n}");
            }
            s
        };
        let recovery = self
            .recovery
            .map_or("—".to_owned(), |d| format!("{} ms", d.as_millis()));
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.id,
            self.scenario,
            self.operations,
            self.acknowledged,
            self.lost,
            errors,
            recovery,
            self.leaked,
            self.notes.join("; ")
        )
    }

    /// Print the row and write it where the table printer finds it.
    pub fn publish(&self) {
        let row = self.row();
        println!("FIGURES {row}");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
        std::fs::create_dir_all(&dir).expect("create the figures directory");
        let rule = HEADER
            .split('|')
            .map(|c| if c.is_empty() { "" } else { "---" });
        let header = format!("{HEADER}\n{}\n", rule.collect::<Vec<_>>().join("|"));
        std::fs::write(dir.join("header"), header).expect("write the figures header");
        std::fs::write(dir.join(format!("{}.row", self.id)), row + "\n")
            .expect("write the figures row");
    }
}

/// The table's header, as the test scripts print it.
pub const HEADER: &str = "| # | scenario | operations | acknowledged | lost | errors by kind | recovery | leaked | other figures |";

#[test]
fn a_row_names_every_figure() {
    let mut f = Figures::new("0", "self-test");
    f.outcome::<()>(&Ok(()));
    f.error("UNAVAILABLE");
    f.error("UNAVAILABLE");
    f.recovery = Some(Duration::from_millis(1500));
    f.note("x: 1");
    assert_eq!(
        f.row(),
        "| 0 | self-test | 1 | 1 | 0 | UNAVAILABLE 2 | 1500 ms | 0 | x: 1 |"
    );
    assert_eq!(HEADER.matches('|').count(), f.row().matches('|').count());
}
