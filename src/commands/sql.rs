//! `safestat sql POLICY`: the statements a release would send to each SQL input's server, for
//! review by the database's owners. Connects to nothing, reads no data (only the ledger, for the
//! fingerprint schemes it holds), spends nothing.

use std::fmt::Write as _;
use std::path::Path;

use crate::console::print;
use crate::error::Error;
use crate::hash::sha256_hex;
use crate::input::{Count, sql};
use crate::policy::{self, Engine};

pub fn run(policy: &Path, ledger: Option<&Path>) -> Result<(), Error> {
    // As `release` reads: the exact tables' counts are statements too.
    let plan = policy::load(policy)?;
    let counts = crate::input::reading_plan(&plan).counts;
    let mut r = String::new();
    // As `release` with the same ledger: its totals carry the legacy fingerprint too while the
    // ledger holds a charge fingerprinted that way.
    let ledger = ledger.unwrap_or(&plan.ledger);
    let legacy = match crate::ledger::Ledger::read(ledger) {
        Ok(l) => l.wants_legacy_fingerprints(&plan),
        Err(e) => {
            let _ = writeln!(
                r,
                "-- the ledger `{}` cannot be read ({e}): the totals are shown as for a ledger without charges fingerprinted before 2026-12-05\n",
                ledger.display()
            );
            false
        }
    };
    if legacy {
        let _ = writeln!(
            r,
            "-- the ledger `{}` holds a charge this release is compared with that was fingerprinted before 2026-12-05: the totals compute that fingerprint too (PostgreSQL's `h_legacy`)\n",
            ledger.display()
        );
    }
    let mut any = false;
    for (input, spec) in plan.inputs.iter().enumerate() {
        let Some(source) = &spec.sql else { continue };
        any = true;
        let of_input: Vec<Count> = counts
            .iter()
            .filter(|c| c.input == input)
            .cloned()
            .collect();
        let spark = source.engine == Engine::Spark;
        let _ = writeln!(
            r,
            "-- input `{}`{}: {}, server named by ${}",
            spec.name,
            if spark { " (Apache Spark)" } else { "" },
            source.relation.describe(),
            source.url_env
        );
        let _ = writeln!(
            r,
            "{}",
            if spark {
                "-- no transaction (Spark has none): each statement reads the relation as it is then, which must not change during the release; each within `timeout_seconds`, interrupted after; in order, with named parameters sent beside the text:"
            } else {
                "-- one transaction: BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; then, in order:"
            }
        );
        for (i, sent) in sql::script(&plan, input, &of_input, legacy)
            .iter()
            .enumerate()
        {
            let _ = writeln!(r, "\n-- [{}] {}", i + 1, sent.purpose);
            let _ = writeln!(r, "-- sha256 {}", sha256_hex(sent.sql.as_bytes()));
            for p in &sent.parameters {
                let _ = writeln!(r, "--   {p}");
            }
            let _ = writeln!(r, "{};", sent.sql);
        }
        let _ = writeln!(r, "\n-- {}\n", if spark { "end" } else { "COMMIT" });
    }
    if !any {
        return Err(Error::Usage(format!(
            "policy `{}` has no SQL input (`sql = {{ url_env = \"...\", table = \"...\" }}`); nothing would be sent to a database",
            policy.display()
        )));
    }
    print(&r)
}
