//! Measurements for `bench/run.sh` (see BENCHMARKS.md). Not part of a release.
//!
//! - `safestat-bench parse-floor FILE`: the csv crate reading every record of FILE into one
//!   reused `ByteRecord`, nothing else: the floor any CSV-based release is compared against.
//! - `safestat-bench noise CELLS`: opendp noise on a CELLS-cell table through safestat's
//!   mechanism wrapper, for both mechanisms; prints cells per second.

use std::process::ExitCode;
use std::time::Instant;

use safestat::privacy::{Cost, Mechanism, Sensitivity};
use safestat::protect::NoiseMechanism;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["parse-floor", file] => {
            let start = Instant::now();
            let mut reader = match csv::Reader::from_path(file) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("safestat-bench: cannot open `{file}`: {e}");
                    return ExitCode::from(1);
                }
            };
            let mut record = csv::ByteRecord::new();
            let mut rows: u64 = 0;
            loop {
                match reader.read_byte_record(&mut record) {
                    Ok(true) => rows += 1,
                    Ok(false) => break,
                    Err(e) => {
                        eprintln!("safestat-bench: `{file}`: {e}");
                        return ExitCode::from(1);
                    }
                }
            }
            println!(
                "parse-floor rows={rows} seconds={:.3}",
                start.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        ["noise", cells] => {
            let Ok(cells) = cells.parse::<usize>() else {
                eprintln!("safestat-bench: CELLS must be a whole number");
                return ExitCode::from(2);
            };
            let exact = vec![1000i64; cells];
            let sens = Sensitivity { l1: 1.0, l2: 1.0 };
            for (name, mech, cost) in [
                ("gaussian", Mechanism::Gaussian, Cost::Rho(0.05)),
                ("laplace", Mechanism::Laplace, Cost::Epsilon(0.5)),
            ] {
                let m = NoiseMechanism::calibrate(mech, sens, cost).expect("calibration");
                let start = Instant::now();
                let noisy = m.invoke(&exact).expect("noise");
                let secs = start.elapsed().as_secs_f64();
                assert_eq!(noisy.len(), cells);
                println!(
                    "noise mechanism={name} cells={cells} seconds={secs:.3} cells_per_second={:.0}",
                    cells as f64 / secs
                );
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: safestat-bench parse-floor FILE | safestat-bench noise CELLS");
            ExitCode::from(2)
        }
    }
}
