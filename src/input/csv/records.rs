//! CSV records, one at a time, for the input readers.
//!
//! Owns the splitting of bytes into records and fields. Two sources with one interface:
//! [`Unquoted`], a fast splitter for files with no `"` (the common case, and the only one that
//! can be read in parallel chunks), and [`Quoted`], the csv crate's reader for everything else.
//! [`Unquoted`] gives exactly the records and fields the csv crate's default reader gives for
//! any input without a `"` (tested against it), and stops at the first `"` it meets so that the
//! caller can read the file again with [`Quoted`].

use std::io::Read;

/// A source of records: each call to [`Records::next_record`] makes the next record current.
pub trait Records {
    /// Moves to the next record and returns its byte offset (relative to where the source
    /// started), or `None` at the end.
    fn next_record(&mut self) -> Result<Option<u64>, RecordError>;
    /// How many fields the current record has.
    fn fields(&self) -> usize;
    /// Field `i` of the current record.
    fn field(&self, i: usize) -> &[u8];
}

#[derive(Debug)]
pub enum RecordError {
    Io(std::io::Error),
    /// The input holds a `"` at this byte offset: only [`Quoted`] may read it. (The caller
    /// only needs to know that there is one; the offset shows, in the tests, that the splitter
    /// stops exactly there.)
    Quote(#[cfg_attr(not(test), expect(dead_code, reason = "read by the tests"))] u64),
    /// The csv crate found malformed CSV at this byte offset.
    Malformed {
        byte: u64,
        message: String,
    },
    /// Field `field` of the record at `byte` holds `breaks` line breaks inside its quotes,
    /// which the input does not allow (a stray `"` would swallow the rows after it).
    LineBreakInField {
        byte: u64,
        field: usize,
        breaks: u64,
    },
}

/// The csv crate's reader, for inputs that may quote fields.
pub struct Quoted<R> {
    reader: csv::Reader<R>,
    record: csv::ByteRecord,
    /// Whether a quoted field may hold a line break.
    multiline: bool,
}

impl<R: Read> Quoted<R> {
    pub fn new(source: R, multiline: bool) -> Quoted<R> {
        Quoted {
            reader: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .buffer_capacity(1 << 17)
                .from_reader(source),
            record: csv::ByteRecord::new(),
            multiline,
        }
    }
}

impl<R: Read> Records for Quoted<R> {
    fn next_record(&mut self) -> Result<Option<u64>, RecordError> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {
                let byte = self.record.position().map_or(0, |p| p.byte());
                if !self.multiline {
                    // Only a quoted field can hold a line break: unquoted, it ends the record.
                    let broken = self.record.iter().enumerate().find_map(|(field, f)| {
                        let breaks = f.iter().filter(|&&b| b == b'\n').count()
                            + f.windows(2)
                                .filter(|w| w[0] == b'\r' && w[1] != b'\n')
                                .count()
                            + usize::from(f.last() == Some(&b'\r'));
                        (breaks > 0).then_some((field, breaks as u64))
                    });
                    if let Some((field, breaks)) = broken {
                        return Err(RecordError::LineBreakInField {
                            byte,
                            field,
                            breaks,
                        });
                    }
                }
                Ok(Some(byte))
            }
            Ok(false) => Ok(None),
            Err(e) => {
                let byte = e.position().map_or(0, |p| p.byte());
                Err(match e.into_kind() {
                    csv::ErrorKind::Io(e) => RecordError::Io(e),
                    kind => RecordError::Malformed {
                        byte,
                        message: format!("{kind:?}"),
                    },
                })
            }
        }
    }

    fn fields(&self) -> usize {
        self.record.len()
    }

    fn field(&self, i: usize) -> &[u8] {
        &self.record[i]
    }
}

/// Splits input with no `"` into records as the csv crate's default reader does: `,` between
/// fields, `\n`, `\r` or `\r\n` ending a record, empty lines skipped. Unlike the csv crate it
/// reports a record's offset as that of its first byte, never of blank lines before it.
///
/// Bytes are examined eight at a time: a word's separator candidates (`,` and every byte below
/// `0x0e`, which takes in `\n` and `\r`) are found with a few integer operations, and only they
/// are looked at one by one. (`memchr::memchr3_iter` does the same job, but measured 4-5% slower
/// on the benchmark's 10 million rows, where a separator comes every few bytes: BENCHMARKS.md.
/// The quote check, a search for one rare byte, is `memchr`'s.)
pub struct Unquoted<R> {
    source: R,
    buf: Vec<u8>,
    /// `buf[..filled]` holds bytes read; `buf[next..filled]` is not yet split.
    filled: usize,
    next: usize,
    /// The offset of `buf[0]` in the source.
    base: u64,
    at_end: bool,
    /// The current record's start in `buf`, and where each of its fields ends, relative to it.
    start: usize,
    ends: Vec<u32>,
    /// The buffer grows to hold a long record up to this many bytes.
    max_record: usize,
}

/// Bytes read at a time; a longer record grows the buffer.
const BUFFER: usize = 1 << 18;
/// The longest record [`Unquoted`] reads (field ends are kept as `u32` offsets into it).
const MAX_RECORD: usize = 1 << 31;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `x` that may be a separator: set for every `,`, `\n` and `\r`
/// (and possibly for others, which [`Unquoted`] then looks at and passes over).
fn candidates(x: u64) -> u64 {
    // A byte below n gives a borrow into its high bit in x - n; it can also pass one to the
    // byte above, which is why this is a superset.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS;
    below(x, 0x0e) | below(x ^ (ONES * u64::from(b',')), 1)
}

/// A bit for every `,`, `\n` and `\r` of `bytes` (bit `i` for byte `i`), by SSE2 (part of every
/// x86-64 processor): three comparisons of all 16 bytes at once.
#[cfg(target_arch = "x86_64")]
#[inline]
fn separators_16(bytes: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is enabled on every x86-64 target, so these instructions exist; the load
    // reads the 16 bytes of `bytes` (unaligned loads need no alignment), nothing else.
    unsafe {
        let v = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
        let is = |b: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
        let any = _mm_or_si128(_mm_or_si128(is(b','), is(b'\n')), is(b'\r'));
        _mm_movemask_epi8(any) as u32
    }
}

impl<R: Read> Unquoted<R> {
    pub fn new(source: R) -> Unquoted<R> {
        Unquoted {
            source,
            buf: vec![0; BUFFER],
            filled: 0,
            next: 0,
            base: 0,
            at_end: false,
            start: 0,
            ends: Vec::with_capacity(16),
            max_record: MAX_RECORD,
        }
    }

    /// Moves the unsplit bytes to the front and reads more after them; false at the end.
    fn refill(&mut self) -> Result<bool, RecordError> {
        if self.at_end {
            return Ok(false);
        }
        self.buf.copy_within(self.next..self.filled, 0);
        self.base += self.next as u64;
        self.filled -= self.next;
        self.next = 0;
        if self.filled == self.buf.len() {
            if self.buf.len() >= self.max_record {
                return Err(RecordError::Malformed {
                    byte: self.base,
                    message: format!("a row is longer than {} bytes", self.max_record),
                });
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let read = loop {
            match self.source.read(&mut self.buf[self.filled..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RecordError::Io(e)),
            }
        };
        if let Some(q) = memchr::memchr(b'"', &self.buf[self.filled..self.filled + read]) {
            return Err(RecordError::Quote(self.base + (self.filled + q) as u64));
        }
        self.filled += read;
        self.at_end = read == 0;
        Ok(true)
    }

    /// Splits the record starting at `self.next` if it ends within `buf` (or the input ends):
    /// true when it is complete.
    fn split(&mut self) -> bool {
        let (start, buf) = (self.next, &self.buf[..self.filled]);
        self.ends.clear();
        let mut at = start;
        #[cfg(target_arch = "x86_64")]
        while at + 16 <= buf.len() {
            let mut found = separators_16(buf[at..at + 16].try_into().expect("16 bytes"));
            while found != 0 {
                let i = at + found.trailing_zeros() as usize;
                found &= found - 1;
                if buf[i] != b',' {
                    return self.end_record(start, i);
                }
                self.ends.push((i - start) as u32);
            }
            at += 16;
        }
        while at + 8 <= buf.len() {
            let word = u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
            let mut found = candidates(word);
            while found != 0 {
                let i = at + (found.trailing_zeros() / 8) as usize;
                found &= found - 1;
                match buf[i] {
                    b',' => self.ends.push((i - start) as u32),
                    b'\n' | b'\r' => return self.end_record(start, i),
                    _ => {}
                }
            }
            at += 8;
        }
        for (i, &b) in buf.iter().enumerate().skip(at) {
            match b {
                b',' => self.ends.push((i - start) as u32),
                b'\n' | b'\r' => return self.end_record(start, i),
                _ => {}
            }
        }
        if !self.at_end {
            return false;
        }
        self.end_record(start, buf.len())
    }

    fn end_record(&mut self, start: usize, end: usize) -> bool {
        self.ends.push((end - start) as u32);
        self.start = start;
        self.next = (end + 1).min(self.filled);
        true
    }
}

impl<R: Read> Records for Unquoted<R> {
    fn next_record(&mut self) -> Result<Option<u64>, RecordError> {
        loop {
            while self.next < self.filled && matches!(self.buf[self.next], b'\n' | b'\r') {
                self.next += 1;
            }
            if self.next < self.filled && self.split() {
                return Ok(Some(self.base + self.start as u64));
            }
            if !self.refill()? {
                return Ok(None);
            }
        }
    }

    fn fields(&self) -> usize {
        self.ends.len()
    }

    fn field(&self, i: usize) -> &[u8] {
        let from = if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize + 1
        };
        &self.buf[self.start + from..self.start + self.ends[i] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Records as their offsets and fields.
    type Split = Vec<(u64, Vec<Vec<u8>>)>;

    /// Every record as fields, with its offset.
    fn all(mut records: impl Records) -> Result<Split, RecordError> {
        let mut out = Vec::new();
        while let Some(byte) = records.next_record()? {
            out.push((
                byte,
                (0..records.fields())
                    .map(|i| records.field(i).to_vec())
                    .collect(),
            ));
        }
        Ok(out)
    }

    /// Reads at most `n` bytes per call, to cross buffer refills at every place.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// The csv crate's records for `data`, with our offsets: theirs point at the blank lines
    /// and terminators before a record, so they are moved past them.
    fn reference(data: &[u8]) -> Split {
        all(Quoted::new(data, true))
            .unwrap()
            .into_iter()
            .map(|(mut byte, fields)| {
                while matches!(data[byte as usize], b'\n' | b'\r') {
                    byte += 1;
                }
                (byte, fields)
            })
            .collect()
    }

    #[test]
    fn splits_like_the_csv_crate() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let alphabet = b"ab ,,\n\r\r\t\x0b\x0c\x00\x01\x2b\x2d\xff;";
        for case in 0..3000 {
            let len = rng.gen_range(0..if case % 10 == 0 { 600 } else { 60 });
            let data: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let expected = reference(&data);
            for step in [1, 3, 8, 9, 64, usize::MAX] {
                let got = all(Unquoted::new(Trickle(&data, step))).unwrap();
                assert_eq!(got, expected, "input {data:?}, read {step} bytes at a time");
            }
        }
    }

    #[test]
    fn records_longer_than_the_buffer() {
        let long = "x".repeat(BUFFER * 2 + 5);
        let data = format!("a,b\r\n{long},{long}\n\nc\r");
        let got = all(Unquoted::new(data.as_bytes())).unwrap();
        assert_eq!(got, reference(data.as_bytes()));
        assert_eq!(got[1].1[0].len(), long.len());
        assert_eq!(got[2], (data.len() as u64 - 2, vec![b"c".to_vec()]));
    }

    #[test]
    fn refuses_a_record_longer_than_its_limit() {
        let data = format!("a,b\n{}\n", "x".repeat(BUFFER + 1));
        let mut records = Unquoted::new(data.as_bytes());
        records.max_record = BUFFER;
        assert_eq!(records.next_record().unwrap(), Some(0));
        let err = records.next_record().unwrap_err();
        assert!(
            matches!(&err, RecordError::Malformed { byte: 4, message } if message == &format!("a row is longer than {BUFFER} bytes")),
            "{err:?}"
        );
    }

    #[test]
    fn stops_at_a_quote() {
        // The quote is in the second buffer's worth of input.
        let data = format!("a,b\n{}c,\"d\"\n", "e,f\n".repeat(100_000));
        let err = all(Unquoted::new(data.as_bytes())).unwrap_err();
        assert!(
            matches!(err, RecordError::Quote(q) if q == data.find('"').unwrap() as u64),
            "{err:?}"
        );
    }

    /// The 16-byte comparison marks exactly the separators, at every place.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn separators_16_marks_exactly_the_separators() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        let bytes = [
            0, 9, b'\n', b'\r', b',', b'+', b'-', b'a', 0x7f, 0x80, 0xac, 0xff,
        ];
        for _ in 0..100_000 {
            let block: [u8; 16] = std::array::from_fn(|_| bytes[rng.gen_range(0..bytes.len())]);
            let want = (0..16)
                .filter(|&i| matches!(block[i], b',' | b'\n' | b'\r'))
                .fold(0u32, |m, i| m | 1 << i);
            assert_eq!(separators_16(&block), want, "{block:?}");
        }
    }

    #[test]
    fn candidates_cover_every_separator() {
        // Words of bytes near the separators and below 0x0e, where borrows between lanes and
        // false candidates happen: every separator must still be a candidate.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let bytes = [
            0, 1, 9, b'\n', 0x0b, 0x0c, b'\r', 0x0e, b'+', b',', b'-', b'a', 0x7f, 0x80, 0xff,
        ];
        for _ in 0..200_000 {
            let lanes: [u8; 8] = std::array::from_fn(|_| bytes[rng.gen_range(0..bytes.len())]);
            let found = candidates(u64::from_le_bytes(lanes));
            for (lane, &b) in lanes.iter().enumerate() {
                if matches!(b, b',' | b'\n' | b'\r') {
                    assert!(found & 0x80 << (lane * 8) != 0, "{lanes:?}, lane {lane}");
                }
            }
        }
    }
}
