//! Re-creates the synthetic sample data in `data/` (or the folder given as the only argument),
//! byte for byte. See `safestat::synth`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("data"), PathBuf::from);
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let mut victims = BufWriter::new(File::create(dir.join("disung_2024_victims.csv"))?);
        let mut breakdown = BufWriter::new(File::create(dir.join("disung_2024_breakdown.csv"))?);
        safestat::synth::write_sample(&mut victims, &mut breakdown)?;
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
