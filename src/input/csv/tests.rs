//! Tests of the CSV source: chunking, spilling, bad rows, keys and categories.

use std::collections::HashMap;

use super::keys::{INLINE_KEY, KEY_WORDS, key_words, unit_hash};
use super::layout::{BadValue, CATEGORY_KEY, CategoryIndex, category_words};
use super::scan::parse_i64;
use super::units::Units;
use super::*;
use crate::input::{Count, read_input_with};
use crate::policy::{Dimension, PolicyFile, Statistic, validate};

/// What DP tables `tables` of `plan` count.
fn counts(plan: &Plan, tables: &[usize]) -> Vec<Count> {
    tables.iter().map(|&t| Count::of(&plan.tables[t])).collect()
}

/// A plan over `data` (written to a temporary `in.csv`) with a `count_rows` table (k = 4),
/// a `count_units` table (c = 2) and a `sum` table, all by `cell` in `c0..c49, x`.
fn plan_for(data: &str) -> (tempfile::TempDir, Plan) {
    plan_with(
        data,
        r#"
        [[table]]
        name = "rows"
        input = "in"
        statistic = "count_rows"
        by = ["cell"]
        max_rows_per_unit = 4
        cost = { rho = 0.1 }
        [[table]]
        name = "units"
        input = "in"
        statistic = "count_units"
        by = ["cell"]
        max_cells_per_unit = 2
        cost = { rho = 0.1 }
        [[table]]
        name = "sums"
        input = "in"
        statistic = "sum"
        contributors_cost = { rho = 0.01 }
        column = "v"
        clamp = [0, 10]
        max_rows_per_unit = 4
        by = ["cell"]
        cost = { rho = 0.1 }
        "#,
    )
}

/// A plan over `data` (written to a temporary `in.csv`) with `tables`, by `cell` in
/// `c0..c49, x`.
fn plan_with(data: &str, tables: &str) -> (tempfile::TempDir, Plan) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), data).unwrap();
    let cells: Vec<String> = (0..50)
        .map(|i| format!("\"c{i}\""))
        .chain(["\"x\"".into()])
        .collect();
    let text = format!(
        r#"
        [release]
        id = "t"
        [dataset]
        name = "d"
        privacy_unit = "id"
        budget = {{ rho = 1.0 }}
        [inputs.in]
        path = "in.csv"
        [categories]
        cell = [{}]
        {tables}
        "#,
        cells.join(", ")
    );
    let path = dir.path().join("p.toml");
    let plan = validate(PolicyFile::parse(&text, &path).unwrap(), &path).unwrap();
    (dir, plan)
}

fn tiny_chunks() -> ReadOptions {
    ReadOptions {
        threads: 16,
        min_chunk_bytes: 32,
        memory_limit: u64::MAX,
        filing_budget: u64::MAX,
        progress: false,
        bounding_effect: false,
        legacy_fingerprints: false,
        distinct_units: false,
    }
}

/// Spills at once: even one unit is over the limit.
fn spilling() -> ReadOptions {
    ReadOptions {
        memory_limit: 1,
        ..tiny_chunks()
    }
}

/// Streams every row into its unit as it is read (none filed).
fn streaming() -> ReadOptions {
    ReadOptions {
        filing_budget: 0,
        ..tiny_chunks()
    }
}

fn in_memory() -> ReadOptions {
    ReadOptions {
        threads: 1,
        min_chunk_bytes: 1 << 30,
        memory_limit: u64::MAX,
        filing_budget: u64::MAX,
        progress: false,
        bounding_effect: false,
        legacy_fingerprints: false,
        distinct_units: false,
    }
}

/// `heavy` has 50 rows, one per cell c0..c49, interleaved with 200 one-row units in `x`, so
/// its rows fall in every one of 16 chunks.
fn one_heavy_unit() -> String {
    let mut data = String::from("id,cell,v\n");
    for i in 0..50 {
        data += &format!("heavy,c{i},100\n");
        for j in 0..4 {
            data += &format!("u{i}_{j},x,3\n");
        }
    }
    data
}

#[test]
fn a_unit_split_across_chunks_is_bounded_once() {
    let (_dir, plan) = plan_for(&one_heavy_unit());
    for i in 0..20 {
        let options = if i % 2 == 0 {
            tiny_chunks()
        } else {
            streaming()
        };
        let r = read_input_with(&plan, 0, &counts(&plan, &[0, 1, 2]), options).unwrap();
        assert_eq!(r.rows, 250);
        assert_eq!(r.units, Some(201));
        let heavy = |t: usize| r.counted[t].values()[..50].iter().sum::<i128>();
        assert_eq!(
            (heavy(0), heavy(1), heavy(2)),
            (4, 2, 40),
            "{:?}",
            r.counted
        );
        assert_eq!(
            (
                r.counted[0].values()[50],
                r.counted[1].values()[50],
                r.counted[2].values()[50]
            ),
            (200, 200, 600)
        );
    }
}

#[test]
fn chunked_and_single_reads_agree_when_no_bound_binds() {
    // No unit exceeds its bounds, so the exact cells are deterministic. Ids of 2 to 40
    // bytes: inline and long keys, handed between readers.
    let mut data = String::from("id,cell,v\n");
    for i in 0..300 {
        let unit = i % 97;
        data += &format!("p{unit}{},c{},{}\n", "x".repeat(unit % 39), i % 50, i % 13);
    }
    let (_dir, plan) = plan_for(&data);
    let single = read_input_with(&plan, 0, &counts(&plan, &[0, 2]), in_memory()).unwrap();
    let chunked = read_input_with(&plan, 0, &counts(&plan, &[0, 2]), tiny_chunks()).unwrap();
    let streamed = read_input_with(&plan, 0, &counts(&plan, &[0, 2]), streaming()).unwrap();
    assert_eq!((single.units, chunked.units), (Some(97), Some(97)));
    assert_eq!(single.counted, chunked.counted);
    assert_eq!(single.fingerprint, chunked.fingerprint);
    assert_eq!(streamed.units, Some(97));
    assert_eq!(streamed.counted, chunked.counted);
    // The file's bytes, in BLAKE3; SHA-256 only when the legacy scheme is asked for.
    let bytes = std::fs::read(&plan.inputs[0].path).unwrap();
    let blake3 = format!("blake3:{}", blake3::hash(&bytes).to_hex());
    assert_eq!(
        (&single.fingerprint.now, &single.fingerprint.legacy),
        (&blake3, &None)
    );
    let legacy = read_input_with(
        &plan,
        0,
        &counts(&plan, &[0, 2]),
        ReadOptions {
            legacy_fingerprints: true,
            ..tiny_chunks()
        },
    )
    .unwrap()
    .fingerprint;
    assert_eq!(legacy.now, blake3);
    assert_eq!(legacy.legacy, Some(crate::hash::sha256_hex(&bytes)));
    assert_eq!(hash_file_legacy(&plan.inputs[0].path).unwrap().0, legacy);
}

/// The readers hash the bytes they read, in pieces joined into one BLAKE3 hash: the
/// fingerprint is BLAKE3 of the whole file whether it is read in one piece or in sixteen (several
/// readers sharing one BLAKE3 chunk of 1,024 bytes), spilled (the rows read a second time), or
/// read again as quoted (a `"` in the last row), for a header alone, files around one chunk and
/// files of many of its 64 KiB subtrees. One reader spilling 340 KB meets the `"` only in the
/// spilling's reading (it stopped at the memory limit within its first 256 KiB), which must read
/// the file again as quoted, not call it changed.
#[test]
fn the_fingerprint_is_blake3_of_the_file_however_it_is_read() {
    let one_spilling = ReadOptions {
        threads: 1,
        ..spilling()
    };
    for rows in [0, 3, 60, 30_000] {
        for quote in [false, true] {
            // The last row pads the file to 1,024 or 1,025 bytes when it has 60 rows.
            let mut data = String::from("id,cell,v\n");
            for i in 0..rows {
                data += &format!("p{},c{},{}\n", i % 997, i % 50, i % 13);
            }
            let last = if quote { "\"p1\",c1,1\n" } else { "p1,c1,1\n" };
            if rows == 60 {
                let pad = 1024 + usize::from(quote) - data.len() - last.len();
                data += &format!("p{},c1,1\n", "x".repeat(pad - 7));
                assert_eq!(data.len() + last.len(), 1024 + usize::from(quote));
            }
            if rows > 0 {
                data += last;
            }
            let (_dir, plan) = plan_for(&data);
            let bytes = std::fs::read(&plan.inputs[0].path).unwrap();
            let blake3 = format!("blake3:{}", blake3::hash(&bytes).to_hex());
            for options in [
                in_memory(),
                tiny_chunks(),
                streaming(),
                spilling(),
                one_spilling,
            ] {
                let read = read_input_with(&plan, 0, &counts(&plan, &[0, 2]), options)
                    .unwrap_or_else(|e| panic!("{rows} rows, quote {quote}: {e}"));
                assert_eq!(read.fingerprint.now, blake3, "{rows} rows, quote {quote}");
            }
        }
    }
}

/// Rows filed in memory are bounded in partitions and, within a partition, in groups of units
/// (many of each here: the unit tests' partitions and groups are small): every unit's rows meet
/// in one group, with ids of 1 to 40 bytes (inline and long keys), whether the input is read in
/// one piece, in sixteen chunks, or streamed. No bound binds, so the cells are the rows' own.
#[test]
fn filed_rows_meet_their_units_in_every_partition_and_group() {
    let mut data = String::from("id,cell,v\n");
    let mut rows = [0i128; 51];
    let mut sums = [0i128; 51];
    let mut units = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..20_000usize {
        let unit = (i * 7919) % 6007;
        let id = format!("u{unit}{}", "y".repeat(unit % 40));
        let cell = unit % 51;
        let v = (i % 11) as i128;
        let name = if cell == 50 {
            "x".into()
        } else {
            format!("c{cell}")
        };
        data += &format!("{id},{name},{v}\n");
        rows[cell] += 1;
        sums[cell] += v;
        *units.entry(id).or_default() += 1;
    }
    assert!(units.values().all(|&n| n <= 4), "no unit over its 4 rows");
    let mut distinct = [0i128; 51];
    for id in units.keys() {
        let unit: usize = id[1..].trim_end_matches('y').parse().unwrap();
        distinct[unit % 51] += 1;
    }
    let (_dir, plan) = plan_for(&data);
    for options in [in_memory(), tiny_chunks(), streaming()] {
        let r = read_input_with(&plan, 0, &counts(&plan, &[0, 1, 2]), options).unwrap();
        assert_eq!(r.units, Some(units.len() as u64));
        assert_eq!(r.counted[0].values(), rows);
        assert_eq!(r.counted[1].values(), distinct);
        assert_eq!(r.counted[2].values(), sums);
    }
}

/// A unit with most of the input's rows fills one partition far beyond its share: it is counted
/// where it lies (not copied into groups), and still bounded.
#[test]
fn a_unit_with_most_rows_is_still_bounded_once() {
    let mut data = String::from("id,cell,v\n");
    for i in 0..1000 {
        data += &format!("heavy,c{},100\nu{i},x,3\n", i % 50);
    }
    let (_dir, plan) = plan_for(&data);
    for options in [in_memory(), tiny_chunks()] {
        let r = read_input_with(&plan, 0, &counts(&plan, &[0, 1, 2]), options).unwrap();
        let heavy = |t: usize| r.counted[t].values()[..50].iter().sum::<i128>();
        assert_eq!((heavy(0), heavy(1), heavy(2)), (4, 2, 40));
        assert_eq!((r.counted[0].values()[50], r.units), (1000, Some(1001)));
    }
}

/// An input whose first rows are long looks, by its sample, as if its rows would fit the
/// budget for filing them in memory; its many short rows after them do not. Its readers stop
/// and it is read again, streamed, with fresh counts: the cells, and the values clamped, are
/// those of a reading that filed them all.
#[test]
fn rows_filed_past_the_budget_are_read_again_streamed() {
    let mut data = String::from("id,cell,v,note\n");
    let note = "n".repeat(300);
    let mut above = 0;
    for i in 0..1000 {
        data += &format!("long{i},c{},{},{note}\n", i % 50, i % 13);
        above += u64::from(i % 13 > 10);
    }
    for i in 0..60_000usize {
        let unit = i % 20_000;
        data += &format!("p{unit},c{},{},\n", unit % 50, i % 13);
        above += u64::from(i % 13 > 10);
    }
    let (_dir, plan) = plan_for(&data);
    let budget = 500_000;
    let path = &plan.inputs[0].path;
    let mut file = File::open(path).unwrap();
    let header = data.find('\n').unwrap() as u64 + 1;
    let body = (header, data.len() as u64);
    let reading = counts(&plan, &[0, 1, 2]);
    let layout = Layout::new(
        &plan,
        0,
        &reading,
        read_header_of(File::open(path).unwrap()),
        path,
    )
    .unwrap();
    assert!(super::parts::fits(&mut file, body, (&layout, 16, 16), budget).unwrap());
    assert!(!super::parts::fits(&mut file, body, (&layout, 16, 16), budget / 10).unwrap());
    // One reader filing the whole body: past the budget, it gives up and tells the others.
    let counters = Counters::new(layout.tables.len());
    let (hasher, keys) = (Default::default(), vec![[1, 2]; layout.tables.len()]);
    let pass = Pass {
        path,
        layout: &layout,
        hasher: &hasher,
        keys: &keys,
        counters: &counters,
        quoted: false,
        multiline: false,
        bounding_effect: false,
        pieces: None,
    };
    let partitions = super::parts::partitions(body.1 - body.0);
    let file_with = |budget| {
        let (bad, over) = (AtomicBool::new(false), AtomicBool::new(false));
        let filed = super::chunk::read_chunk(pass, body, (partitions, 1), budget, (&bad, &over));
        (filed.map(|(rows, _)| rows), over.into_inner())
    };
    assert!(matches!(
        file_with(budget),
        (Err(ChunkError::Unfiled), true)
    ));
    assert!(matches!(file_with(budget * 10), (Ok(61_000), false)));
    let effect = |options: ReadOptions| ReadOptions {
        bounding_effect: true,
        ..options
    };
    let filed = read_input_with(&plan, 0, &reading, effect(in_memory())).unwrap();
    let again = ReadOptions {
        filing_budget: budget,
        ..effect(tiny_chunks())
    };
    let r = read_input_with(&plan, 0, &reading, again).unwrap();
    assert_eq!((r.rows, r.units), (61_000, Some(21_000)));
    assert_eq!(r.counted, filed.counted);
    assert_eq!(r.bounding, filed.bounding);
    assert_eq!(r.fingerprint, filed.fingerprint);
    assert_eq!(r.bounding[2].clamped, Some([0, above]));
}

#[test]
fn errors_in_a_later_chunk_name_the_right_line() {
    let mut data = String::from("id,cell,v\n");
    for i in 0..200 {
        data += &format!("p{i},c1,1\n");
    }
    data += "p9,zebra,1\n"; // line 202
    let (_dir, plan) = plan_for(&data);
    let err = read_input_with(&plan, 0, &counts(&plan, &[0]), streaming())
        .unwrap_err()
        .to_string();
    assert!(err.ends_with("in.csv:202: field `cell`: value `zebra` is not a declared category of `cell` (declared: c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23, c24, c25, c26, c27, c28, c29, c30, c31, c32, c33, c34, c35, c36, c37, c38, c39, c40, c41, c42, c43, c44, c45, c46, c47, c48, c49, x); declare it, fix the data, or map undeclared values with [catch_all]"), "{err}");
    let data = data.replace("p9,zebra,1\n", "p9,c1\n");
    let (_dir, plan) = plan_for(&data);
    let err = read_input_with(&plan, 0, &counts(&plan, &[0]), tiny_chunks())
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("in.csv:202: the row has 2 fields but the header has 3"),
        "{err}"
    );
}

/// The spill path's exact cells equal the in-memory path's (compared before any noise, in
/// this test only). With no bound binding, both are deterministic.
#[test]
fn spilling_gives_the_in_memory_exact_cells() {
    let mut data = String::from("id,cell,v\n");
    for i in 0..3000 {
        data += &format!("p{},c{},{}\n", i % 997, i % 50, i % 13);
    }
    let (_dir, plan) = plan_for(&data);
    let memory = read_input_with(&plan, 0, &counts(&plan, &[0, 2]), in_memory()).unwrap();
    let spilled = read_input_with(&plan, 0, &counts(&plan, &[0, 2]), spilling()).unwrap();
    assert_eq!(memory.counted, spilled.counted);
    assert_eq!((memory.rows, memory.units), (spilled.rows, spilled.units));
    assert_eq!(memory.fingerprint, spilled.fingerprint);
}

#[test]
fn spilling_still_bounds_each_unit() {
    let (_dir, plan) = plan_for(&one_heavy_unit());
    for _ in 0..10 {
        let r = read_input_with(&plan, 0, &counts(&plan, &[0, 1, 2]), spilling()).unwrap();
        let heavy = |t: usize| r.counted[t].values()[..50].iter().sum::<i128>();
        assert_eq!(
            (heavy(0), heavy(1), heavy(2)),
            (4, 2, 40),
            "{:?}",
            r.counted
        );
        assert_eq!((r.counted[0].values()[50], r.units), (200, Some(201)));
    }
}

#[test]
fn spilling_reports_bad_rows_like_the_in_memory_path() {
    let mut data = String::from("id,cell,v\n");
    for i in 0..200 {
        data += &format!("p{i},c1,1\n");
    }
    data += "p9,c1,x\n";
    let (_dir, plan) = plan_for(&data);
    let err = read_input_with(&plan, 0, &counts(&plan, &[2]), spilling())
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("in.csv:202: field `v`: `x` is not an integer"),
        "{err}"
    );
}

/// The index of `categories` (no catch-all), checked to find each with its code.
fn index_finding_each(categories: &[String]) -> CategoryIndex {
    let index = CategoryIndex::new(&Dimension {
        name: "d".into(),
        categories: categories.to_vec(),
        catch_all: None,
    });
    for (code, c) in categories.iter().enumerate() {
        assert_eq!(index.exact(c.as_bytes()), Some(code as u32), "{c}");
    }
    index
}

/// Category values of every length around the inline limit (found as integers up to 16
/// bytes, through a map beyond), values that are prefixes of one another, and a value one
/// byte off a declared one.
#[test]
fn category_codes_at_every_length() {
    let categories: Vec<String> = (1..=40).map(|n| "x".repeat(n)).collect();
    let index = index_finding_each(&categories);
    for c in &categories {
        let mut off = c.clone().into_bytes();
        *off.last_mut().unwrap() = b'y';
        assert_eq!(index.exact(&off), None);
    }
    assert_eq!(index.exact(b""), None);
    assert_eq!(index.exact(&[b'x'; 41]), None);
    let dim = Dimension {
        name: "d".into(),
        categories,
        catch_all: Some(3),
    };
    let index = CategoryIndex::new(&dim);
    assert!(matches!(index.lookup(b"zebra"), Ok(3)));
    // Bytes that are not UTF-8 (here CP949 for `서울`) never fall to the catch-all.
    assert!(matches!(
        index.lookup(b"\xbc\xad\xbf\xef"),
        Err(BadValue::NotUtf8 { offset: 0, .. })
    ));
}

/// Categories that differ only in their last bytes (beyond the 16th), or only in the order of
/// bytes within their words, get homes of their own: the home mixes every word, each in its
/// place (when it left out the words holding bytes 17 to 24, all 99 of these shared one home and
/// a lookup walked past up to 98 of them).
#[test]
fn categories_alike_but_for_a_few_bytes_get_homes_of_their_own() {
    let sets: [Vec<String>; 2] = [
        (1..=99)
            .map(|i| format!("KR-SEOUL-GANGNAM-{i:02}"))
            .collect(),
        (0..60)
            .map(|i| {
                let mut v = *b"abcdefghij";
                v.swap(0, i % 10);
                v.swap(1, (i / 10) % 10);
                String::from_utf8(v.to_vec()).unwrap()
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    ];
    for categories in sets {
        let index = index_finding_each(&categories);
        assert!(
            index.displaced() * 4 <= categories.len(),
            "{} of {} displaced",
            index.displaced(),
            categories.len()
        );
    }
}

/// Regression: a Hangul category typed on a Mac (decomposed, NFD) did not match the same
/// category declared in composed form (NFC).
#[test]
fn decomposed_hangul_matches_its_composed_category() {
    use unicode_normalization::UnicodeNormalization;
    let dim = Dimension {
        name: "region".into(),
        categories: vec!["서울".into(), "부산".into()],
        catch_all: None,
    };
    let index = CategoryIndex::new(&dim);
    let decomposed: String = "부산".nfd().collect();
    assert_ne!(decomposed.as_bytes(), "부산".as_bytes());
    assert!(matches!(index.lookup(decomposed.as_bytes()), Ok(1)));
}

/// Every key of up to [`INLINE_KEY`] bytes over a two-byte alphabet (so a byte that is
/// dropped, or confused with padding, shows), and random keys of up to [`CATEGORY_KEY`]
/// bytes with each of their bytes changed in turn, get words of their own.
#[test]
fn key_words_are_one_to_one() {
    let mut seen: HashMap<[u64; KEY_WORDS], Vec<u8>> = HashMap::new();
    for n in 0..=INLINE_KEY {
        for bits in 0..1u32 << n {
            let key: Vec<u8> = (0..n).map(|i| (bits >> i & 1) as u8).collect();
            if let Some(other) = seen.insert(key_words(&key), key.clone()) {
                panic!("{key:?} and {other:?} share their words");
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..2000 {
        let n = rng.gen_range(0..=CATEGORY_KEY);
        let key: Vec<u8> = (0..n).map(|_| rng.r#gen()).collect();
        for i in 0..n {
            let mut other = key.clone();
            other[i] ^= 1 << rng.gen_range(0..8);
            assert_ne!(
                category_words(&key),
                category_words(&other),
                "{key:?} at {i}"
            );
            if n <= INLINE_KEY {
                assert_ne!(key_words(&key), key_words(&other), "{key:?} at {i}");
            }
        }
        let shorter = &key[..n.saturating_sub(1)];
        if n > 0 {
            assert_ne!(category_words(&key), category_words(shorter));
        }
    }
}

/// Keys of every length around the inline limit, keys that share their first 16 bytes, and
/// keys that are prefixes of one another stay distinct units, also when every key has the
/// same hash (so every lookup walks past the others' slots) and as the table grows from its
/// smallest size (placing every unit again by the hash of the key its record keeps).
#[test]
fn units_tell_keys_apart_at_every_length() {
    let (_dir, plan) = plan_for("id,cell,v\n");
    let file = File::open(&plan.inputs[0].path).unwrap();
    let layout = Layout::new(
        &plan,
        0,
        &counts(&plan, &[0]),
        read_header_of(file),
        &plan.inputs[0].path,
    )
    .unwrap();
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for len in 0..40 {
        keys.push(vec![b'a'; len]);
        let mut other = vec![b'a'; len + 1];
        other[len] = b'b';
        keys.push(other);
    }
    let hasher = foldhash::quality::RandomState::default();
    let true_hash = |k: &[u8]| unit_hash(&hasher, &key_words(k), k);
    // Every key's hash alike, or alike by length, in a table with room for them all (a table
    // that grows places its units again by their own hashes); then their own hashes, from the
    // smallest table up.
    type Hash<'a> = &'a dyn Fn(&[u8]) -> u64;
    let cases: [(Hash, usize); 3] = [
        (&|_| 7, keys.len()),
        (&|k| k.len() as u64 * 0x9E37_79B9, keys.len()),
        (&true_hash, 0),
    ];
    for (hash, room) in cases {
        let mut units = Units::new(&layout, &[[1, 2]], (room, u64::MAX), &hasher);
        let slots = units.slots.len();
        let ids: Vec<u32> = keys
            .iter()
            .map(|k| units.intern(&key_words(k), k, hash(k)).ok().unwrap())
            .collect();
        assert_eq!(units.len(), keys.len());
        assert_eq!(
            units.slots.len() > slots,
            room == 0,
            "grown only from the smallest"
        );
        for (k, &id) in keys.iter().zip(&ids) {
            assert_eq!(units.intern(&key_words(k), k, hash(k)).ok(), Some(id));
        }
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), keys.len());
    }
}

fn read_header_of(mut file: File) -> csv::ByteRecord {
    read_header(&mut file, Path::new("in.csv")).unwrap().0
}

/// The first reader's rows turn bad near the end of its chunk, the second's from its first
/// row: the second stops bounding at once and the first, whose hand-overs to it then fail,
/// must still find and report its own bad row, the first in the file, with the others.
#[test]
fn the_first_bad_row_in_the_file_is_reported() {
    let mut data = String::from("id,cell,v\n");
    for i in 0..30_000 {
        match i {
            14_000 => data += "p14000,c1,oops\n", // line 14,002
            i if i >= 15_000 => data += &format!("p{i:05},zebra,1\n"),
            _ => data += &format!("p{i:05},c1,1\n"),
        }
    }
    let (_dir, plan) = plan_for(&data);
    for i in 0..10 {
        // Filed, then streamed (the readers handing each other rows).
        let two = ReadOptions {
            threads: 2,
            ..if i % 2 == 0 {
                tiny_chunks()
            } else {
                streaming()
            }
        };
        let err = read_input_with(&plan, 0, &counts(&plan, &[0, 2]), two)
            .unwrap_err()
            .to_string();
        // Every kind of bad row is reported, in file order, with its count.
        assert!(
            err.contains("15,001 rows are not valid, with 2 kind(s) of problem:\n  - "),
            "{err}"
        );
        let first = err.lines().nth(1).unwrap();
        assert!(
            first.ends_with("in.csv:14002: field `v`: `oops` is not an integer"),
            "{err}"
        );
        assert!(
            err.contains("in.csv:15002: field `cell`: value `zebra`")
                && err.ends_with("(15,000 rows like this; the first is shown)"),
            "{err}"
        );
    }
}

#[test]
fn quoted_newlines_fall_back_to_one_chunk() {
    let mut data = String::from("id,cell,v\n");
    for i in 0..200 {
        data += &format!("\"p{i}\nsecond line\",c{},1\n", i % 50);
    }
    let (_dir, mut plan) = plan_for(&data);
    plan.inputs[0].multiline = true;
    let r = read_input_with(&plan, 0, &counts(&plan, &[0]), tiny_chunks()).unwrap();
    assert_eq!(r.rows, 200);
    assert_eq!(r.counted[0].values().iter().sum::<i128>(), 200);
}

/// Regression: a field opening with a stray `"` and closed by a legitimate quote lines
/// later turned the rows between into one record that passed every check (one unit's row
/// swallowed the next 498 units). A line break inside quotes is an error naming the line
/// where the quote opened, unless the input declares `multiline = true`.
#[test]
fn a_stray_quote_cannot_swallow_the_rows_after_it() {
    let mut data = String::from("id,cell,v\np0,c0,1\n\"p1,c1,1\n");
    for i in 2..500 {
        data += &format!("p{i},c{},1\n", i % 50);
    }
    data += "p500\",c0,1\n";
    let (_dir, plan) = plan_for(&data);
    for options in [tiny_chunks(), in_memory(), streaming(), spilling()] {
        let err = read_input_with(&plan, 0, &counts(&plan, &[0]), options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("in.csv:3: field `id`"), "{err}");
        assert!(err.contains("across 499 line break(s)"), "{err}");
        assert!(err.contains("multiline = true"), "{err}");
    }
}

/// Windows line ends and blank lines before the bad row: the line named is the row's own,
/// whether the rows are split by [`Unquoted`] or (with a quote in the file) by the csv crate.
#[test]
fn crlf_and_blank_lines_name_the_right_line() {
    for first in ["p0", "\"p0\""] {
        let mut data = String::from("id,cell,v\r\n");
        for i in 0..100 {
            data += &format!("{},c1,1\r\n", if i == 0 { first } else { "p1" });
        }
        data += "\r\n\n\r\np9,zebra,1\r\n"; // line 105
        let (_dir, plan) = plan_for(&data);
        for options in [tiny_chunks(), in_memory(), streaming(), spilling()] {
            let err = read_input_with(&plan, 0, &counts(&plan, &[0]), options)
                .unwrap_err()
                .to_string();
            assert!(err.contains("in.csv:105: field `cell`"), "{first}: {err}");
        }
    }
}

/// Unquoted and quoted inputs with the same rows give the same counts, on every path.
#[test]
fn a_quote_anywhere_gives_the_same_counts() {
    let mut plain = String::from("id,cell,v\n");
    for i in 0..300 {
        plain += &format!("p{},c{},{}\r\n", i % 97, i % 50, i % 13);
    }
    let quoted = plain.replace("p42,", "\"p42\",");
    let (_a, plain) = plan_for(&plain);
    let (_b, quoted) = plan_for(&quoted);
    for options in [tiny_chunks(), in_memory(), streaming(), spilling()] {
        let a = read_input_with(&plain, 0, &counts(&plain, &[0, 2]), options).unwrap();
        let b = read_input_with(&quoted, 0, &counts(&quoted, &[0, 2]), options).unwrap();
        assert_eq!((a.counted, a.rows, a.units), (b.counted, b.rows, b.units));
    }
}

#[test]
fn integers_parse_as_rust_parses_them() {
    let mut cases: Vec<String> = [
        "",
        "-",
        "+",
        "0",
        "-0",
        "+0",
        "007",
        "-007",
        "12a",
        "1 2",
        "--1",
        "+-1",
        "-+1",
        "0x10",
        "1e3",
        "1.0",
        "\u{661}",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "+9223372036854775807",
        "99999999999999999999",
        "/",
        ":",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..20_000 {
        let len = rng.gen_range(0..22);
        cases.push(
            (0..len)
                .map(|_| ['0', '1', '9', '-', '+', '/', ':', ' ', 'x'][rng.gen_range(0..9)])
                .collect(),
        );
        cases.push(rng.r#gen::<i64>().to_string());
    }
    for case in &cases {
        assert_eq!(
            parse_i64(case.as_bytes()).ok(),
            case.parse::<i64>().ok(),
            "`{case}`"
        );
    }
}

/// An exact table's sum: every row of a unit counts, whole, into its cell; each cell counts its
/// units once; each cell's largest sums are those of its units in no other cell, and every unit
/// in several cells comes back with its sum in each, however the reading is split (in chunks
/// that cut a unit's rows apart, or spilled by unit).
#[test]
fn exact_sums_keep_every_row_and_each_cells_largest_units() {
    let mut data = String::from("id,cell,v\n");
    let mut expected_sum = [0i128; 51];
    // Per unit, its sum per cell: one unit in 13 has rows in several cells.
    let mut per_unit: std::collections::BTreeMap<usize, std::collections::BTreeMap<usize, i128>> =
        Default::default();
    for i in 0..4000usize {
        let unit = (i * 7919) % 1301;
        let cell = if unit % 13 == 0 {
            (unit + i) % 50
        } else {
            unit % 50
        };
        let v = ((i * 31) % 1000) as i128 * if unit % 97 == 0 { 1000 } else { 1 };
        data += &format!("u{unit},c{cell},{v}\n");
        expected_sum[cell] += v;
        *per_unit.entry(unit).or_default().entry(cell).or_default() += v;
    }
    let mut expected_units = [0i128; 51];
    let mut expected_largest: Vec<Vec<i128>> = vec![Vec::new(); 51];
    let mut expected_spanning: Vec<Vec<(u32, i128)>> = Vec::new();
    for cells in per_unit.values() {
        for &cell in cells.keys() {
            expected_units[cell] += 1;
        }
        match cells.len() {
            1 => {
                let (&cell, &total) = cells.iter().next().unwrap();
                expected_largest[cell].push(total);
            }
            _ => expected_spanning.push(cells.iter().map(|(&c, &v)| (c as u32, v)).collect()),
        }
    }
    assert!(
        expected_spanning.len() > 50,
        "the data has units in several cells"
    );
    expected_spanning.sort_unstable();
    for list in &mut expected_largest {
        list.sort_unstable_by(|a, b| b.cmp(a));
        list.truncate(3);
    }
    let (dir, plan) = plan_with(
        &data,
        r#"
        [[table]]
        name = "sums"
        input = "in"
        statistic = "sum"
        column = "v"
        by = ["cell"]
        protection = "suppression"
        primary = { min_frequency = 3, dominance = { n = 3, k = 90 }, p_percent = 10 }
        interval_percent = 10
        "#,
    );
    let reading = crate::input::reading_plan(&plan).counts;
    // One read: each unit's sum in each cell.
    assert_eq!(reading.len(), 1);
    for options in [in_memory(), tiny_chunks(), streaming(), spilling()] {
        let r = read_input_with(&plan, 0, &reading, options).unwrap();
        assert_eq!(r.counted[0].values(), expected_sum);
        assert_eq!(r.counted[0].whole().unwrap().units, expected_units);
        let got: Vec<Vec<i128>> = r.counted[0]
            .whole()
            .unwrap()
            .largest
            .iter()
            .map(|l| l.iter().copied().take(3).collect())
            .collect();
        assert_eq!(got, expected_largest);
        let mut spanning: Vec<Vec<(u32, i128)>> = r.counted[0]
            .whole()
            .unwrap()
            .spanning
            .iter()
            .map(|u| {
                let mut u = u.clone();
                u.sort_unstable();
                u
            })
            .collect();
        spanning.sort_unstable();
        assert_eq!(spanning, expected_spanning);
    }
    // A negative value is an error naming its line and field.
    std::fs::write(dir.path().join("in.csv"), "id,cell,v\nu1,c1,5\nu2,c2,-1\n").unwrap();
    let err = read_input_with(&plan, 0, &reading, in_memory())
        .unwrap_err()
        .to_string();
    assert!(err.contains("in.csv:3") && err.contains("`v`"), "{err}");
    assert!(err.contains("`-1` is negative"), "{err}");
}

#[test]
fn the_reading_plan_asks_each_count_once_and_says_what_it_is_for() {
    let (_dir, plan) = plan_with(
        "id,cell,v\n",
        r#"
        [[table]]
        name = "rows"
        input = "in"
        statistic = "count_rows"
        by = ["cell"]
        max_rows_per_unit = 4
        cost = { rho = 0.1 }
        [[table]]
        name = "exact_units"
        input = "in"
        statistic = "count_units"
        by = ["cell"]
        protection = "suppression"
        primary = { min_frequency = 3 }
        interval_percent = 10
        [[table]]
        name = "exact_sums"
        input = "in"
        statistic = "sum"
        column = "v"
        by = ["cell"]
        protection = "suppression"
        primary = { min_frequency = 3, dominance = { n = 2, k = 90 } }
        interval_percent = 10
        [[table]]
        name = "exact_sums_again"
        input = "in"
        statistic = "sum"
        column = "v"
        by = ["cell"]
        protection = "suppression"
        primary = { min_frequency = 3 }
        interval_percent = 10
        "#,
    );
    let reading = crate::input::reading_plan(&plan);
    use crate::input::Request;
    assert_eq!(
        reading.requests,
        [
            Request::Dp(0),
            Request::ExactUnits {
                table: 0,
                check: false
            },
            Request::ExactUnits {
                table: 0,
                check: true
            },
            // One read of the data's sums for both its tables.
            Request::ExactSums(vec![1, 2]),
        ]
    );
    let statistics: Vec<&Statistic> = reading.counts.iter().map(|c| &c.statistic).collect();
    assert_eq!(
        statistics,
        [
            &plan.tables[0].statistic,
            &Statistic::CountUnits {
                max_cells_per_unit: 1
            },
            &Statistic::CountUnits {
                max_cells_per_unit: 2
            },
            &Statistic::Total {
                column: Some("v".into()),
                largest: 2
            },
        ]
    );
}
