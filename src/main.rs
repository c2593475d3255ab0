use std::process::ExitCode;

fn main() -> ExitCode {
    match safestat::run(std::env::args_os()) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) => {
            eprintln!("safestat: error: {}", err.chain());
            ExitCode::from(err.exit_code())
        }
        Err(usage) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = usage.print();
            ExitCode::from(if usage.use_stderr() { 2 } else { 0 })
        }
    }
}
