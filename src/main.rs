use std::process::ExitCode;

fn main() -> ExitCode {
    // A panic is a bug, never an answer to bad input: report it as an internal failure (exit 1),
    // never with Rust's own exit code 101.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("safestat: internal error (a bug; please report it): {info}");
    }));
    match std::panic::catch_unwind(|| safestat::run(std::env::args_os())) {
        Ok(Ok(Ok(()))) => ExitCode::SUCCESS,
        Ok(Ok(Err(err))) => {
            eprintln!("safestat: error: {}", err.chain());
            ExitCode::from(err.exit_code())
        }
        Ok(Err(usage)) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = usage.print();
            ExitCode::from(if usage.use_stderr() { 2 } else { 0 })
        }
        Err(_) => ExitCode::from(1),
    }
}
