//! What the test servers (PostgreSQL in `pg.rs`, Spark in `spark.rs`) share: a free port, and
//! a server process that lives exactly as long as the test process.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// A TCP port free on 127.0.0.1 now (the kernel's choice; the server takes it a moment later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Spawns `server` from a thread that never ends, asking the kernel to send it `signal` when
/// that thread dies (`PR_SET_PDEATHSIG` follows the thread that forked): so it lives as long as
/// the test process and is stopped with it, however the process ends. Its process id, or why it
/// could not start.
pub fn spawn_for_life(mut server: Command, signal: libc::c_int) -> Result<u32, String> {
    // SAFETY: prctl is async-signal-safe. It runs after any uid change the command asks for
    // (which would reset it), and the scripts that `exec` down to the server keep it.
    unsafe {
        server.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child = server.spawn();
        let _ = tx.send(child.map(|c| c.id()).map_err(|e| e.to_string()));
        loop {
            std::thread::park();
        }
    });
    rx.recv().expect("the server's parent thread")
}
