//! Synthetic data generator. `safestat-synth` re-creates the committed sample in `data/` (or the
//! folder given) byte for byte; `safestat-synth large ROWS FILE [SEED]` streams ROWS rows with the
//! same schema and distributions to FILE for benchmarks. See `synth.rs`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

mod synth;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("large") {
        let (Some(rows), Some(file)) =
            (args.get(1).and_then(|r| r.parse::<u64>().ok()), args.get(2))
        else {
            eprintln!("usage: safestat-synth large ROWS FILE [SEED]");
            return ExitCode::from(2);
        };
        let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
        let result = (|| -> std::io::Result<()> {
            let mut out = BufWriter::with_capacity(1 << 20, File::create(file)?);
            synth::write_large(&mut out, rows, seed)?;
            out.flush()
        })();
        return match result {
            Ok(()) => {
                eprintln!("wrote {rows} rows to {file}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("safestat-synth: error: cannot write `{file}`: {e}");
                ExitCode::from(1)
            }
        };
    }
    let dir = args
        .first()
        .map_or_else(|| PathBuf::from("data"), PathBuf::from);
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let mut victims = BufWriter::new(File::create(dir.join("disung_2024_victims.csv"))?);
        let mut breakdown = BufWriter::new(File::create(dir.join("disung_2024_breakdown.csv"))?);
        synth::write_sample(&mut victims, &mut breakdown)?;
        victims.flush()?;
        breakdown.flush()
    })();
    match result {
        Ok(()) => {
            eprintln!(
                "wrote {}/disung_2024_victims.csv and disung_2024_breakdown.csv",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "safestat-synth: error: cannot write to `{}`: {e}",
                dir.display()
            );
            ExitCode::from(1)
        }
    }
}
