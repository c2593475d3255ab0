//! Inputs in a legacy encoding (CP949 from Korean Excel, and any WHATWG label): decoded by
//! `encoding_rs` into a private UTF-8 copy before they are read.

use std::io::Read;
use std::path::Path;

use super::error::InputError;
use super::file::{ensure_unchanged, open_input};
use crate::hash::{FileHasher, Fingerprint};

/// Decodes the file at `path` from `encoding` into a new private temporary file (UTF-8),
/// returning it and the fingerprint of the original bytes (in the legacy scheme too if
/// `legacy`). A byte sequence that is not valid in `encoding` is an error naming its line and
/// byte offset.
pub(super) fn transcode(
    path: &Path,
    encoding: &'static encoding_rs::Encoding,
    legacy: bool,
) -> Result<(tempfile::NamedTempFile, Fingerprint), InputError> {
    use std::io::Write;
    let io = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (mut source, before) = open_input(path)?;
    let copy = tempfile::Builder::new()
        .prefix("safestat-decoded-")
        .tempfile()
        .map_err(io)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, copy.as_file());
    let mut decoder = encoding.new_decoder();
    let mut hasher = FileHasher::new(legacy);
    let mut input = vec![0u8; 1 << 16];
    let mut output = vec![
        0u8;
        decoder
            .max_utf8_buffer_length(input.len())
            .unwrap_or(1 << 20)
    ];
    let (mut consumed, mut line) = (0u64, 1u64);
    loop {
        let n = source.read(&mut input).map_err(io)?;
        let last = n == 0;
        hasher.update(&input[..n]);
        let mut rest = &input[..n];
        loop {
            let (result, read, written) =
                decoder.decode_to_utf8_without_replacement(rest, &mut output, last);
            let done = &output[..written];
            out.write_all(done).map_err(io)?;
            line += done.iter().filter(|&&b| b == b'\n').count() as u64;
            consumed += read as u64;
            rest = &rest[read..];
            match result {
                encoding_rs::DecoderResult::InputEmpty => break,
                encoding_rs::DecoderResult::OutputFull => {}
                encoding_rs::DecoderResult::Malformed(bad, after) => {
                    let at = consumed - u64::from(bad) - u64::from(after);
                    return Err(InputError::Malformed {
                        path: path.to_path_buf(),
                        line,
                        message: format!(
                            "byte {at} of the file is not valid {} text (the input declares `encoding = \"{}\"`)",
                            encoding.name(),
                            encoding.name().to_ascii_lowercase()
                        ),
                    });
                }
            }
        }
        if last {
            break;
        }
    }
    out.flush().map_err(io)?;
    drop(out);
    ensure_unchanged(path, &before)?;
    Ok((copy, hasher.finish()))
}
