//! End-to-end tests, one binary: run the real `safestat` executable in a fresh temporary folder
//! and check its exit code, its messages and the files it writes (or must not write). One file
//! per concern; `common` holds what they share.

mod audit;
mod bad_input;
mod bounding;
mod common;
mod consistency;
mod crash;
mod docs;
mod formats;
mod insiders;
mod ledger;
mod linking;
mod noise;
mod plan;
mod release;
mod report;
mod scheduler;
mod sdc;
mod spanning;
#[cfg(feature = "spark")]
mod spark;
#[cfg(feature = "postgres")]
mod sql;
mod sums;
mod verify;
