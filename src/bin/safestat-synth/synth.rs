//! Synthetic sample data for the worked example: a victim-support centre's 2024 microdata and
//! its raw gender x age breakdown. Never real people.
//!
//! Owns the generator that re-creates `data/disung_2024_victims.csv` and
//! `data/disung_2024_breakdown.csv` byte for byte (a fixed seed and ChaCha8, whose stream is
//! stable across versions: this is test data, not a release, so a fixed seed is right here and
//! nowhere else). The published 2024 marginals are met exactly: 10,305 victims (7,428 female,
//! 2,877 male; 2,863 in their teens, 5,242 in their twenties), 16,833 victim-type reports with
//! the published counts per type, and 332,000 support services with a long tail.

use std::io::{self, Write};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const SEED: u64 = 2024;

pub const GENDERS: [(&str, usize); 2] = [("female", 7_428), ("male", 2_877)];
pub const AGE_GROUPS: [(&str, usize); 7] = [
    ("under_10", 180),
    ("10s", 2_863),
    ("20s", 5_242),
    ("30s", 1_150),
    ("40s", 480),
    ("50_plus", 160),
    ("unknown", 230),
];
pub const VICTIM_TYPES: [(&str, usize); 9] = [
    ("distribution_fear", 4_358),
    ("illegal_filming", 4_182),
    ("distribution", 2_890),
    ("distribution_threat", 2_244),
    ("synthesis", 1_184),
    ("grooming", 612),
    ("sextortion", 598),
    ("harassment", 431),
    ("other", 334),
];
/// Relative weights (per mille), skewed like the population so that small provinces give small
/// cells.
pub const REGIONS: [(&str, u32); 17] = [
    ("seoul", 190),
    ("busan", 65),
    ("daegu", 45),
    ("incheon", 58),
    ("gwangju", 27),
    ("daejeon", 28),
    ("ulsan", 21),
    ("sejong", 7),
    ("gyeonggi", 260),
    ("gangwon", 28),
    ("chungbuk", 30),
    ("chungnam", 40),
    ("jeonbuk", 33),
    ("jeonnam", 32),
    ("gyeongbuk", 45),
    ("gyeongnam", 60),
    ("jeju", 13),
];
/// Victims by number of reports (rows): sums to 10,305 victims and 16,833 rows. The 6- and
/// 7-row victims are the messy extract records that `max_rows_per_unit = 4` must cut.
pub const ROWS_PER_VICTIM: [(usize, usize); 6] =
    [(1, 5_482), (2, 3_423), (3, 1_100), (4, 298), (6, 1), (7, 1)];
pub const TOTAL_SERVICES: i64 = 332_000;

struct Victim {
    id: String,
    gender: &'static str,
    age: usize,
    region: &'static str,
    types: Vec<usize>,
}

/// Expands `(item, count)` pairs into a shuffled list with exactly those counts.
fn exact_list<T: Copy, R: Rng>(counts: &[(T, usize)], rng: &mut R) -> Vec<T> {
    let mut v: Vec<T> = counts
        .iter()
        .flat_map(|&(x, n)| std::iter::repeat_n(x, n))
        .collect();
    v.shuffle(rng);
    v
}

/// Writes both sample files: the recipe of the sample, one marginal after the other. Re-creating
/// `data/` byte for byte depends on the exact order of its random draws, so the steps below
/// draw from one generator in this order.
pub fn write_sample(victims_csv: &mut dyn Write, breakdown_csv: &mut dyn Write) -> io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut victims = draw_victims(&mut rng);
    let row_counts = exact_list(&ROWS_PER_VICTIM, &mut rng);
    let mut ids: Vec<usize> = (1..=victims.len()).collect();
    ids.shuffle(&mut rng);
    for (victim, id) in victims.iter_mut().zip(&ids) {
        victim.id = format!("V{id:06}");
    }
    for (victim, region) in victims.iter_mut().zip(draw_regions(ids.len(), &mut rng)) {
        victim.region = region;
    }
    draw_types(&mut victims, &row_counts, &mut rng);
    let rows = draw_rows(&victims, &mut rng);
    write_victims(victims_csv, &victims, &rows)?;
    write_breakdown(breakdown_csv, &victims)
}

/// The victims' genders and age groups, with the published totals exactly (ids, regions and
/// types come later).
fn draw_victims(rng: &mut ChaCha8Rng) -> Vec<Victim> {
    let genders = exact_list(&GENDERS.map(|(g, c)| (g, c)), rng);
    let ages = exact_list(
        &AGE_GROUPS
            .iter()
            .enumerate()
            .map(|(i, a)| (i, a.1))
            .collect::<Vec<_>>(),
        rng,
    );
    assert_eq!(
        genders.len(),
        ages.len(),
        "the gender and age totals differ"
    );
    genders
        .into_iter()
        .zip(ages)
        .map(|(gender, age)| Victim {
            id: String::new(),
            gender,
            age,
            region: "",
            types: Vec::new(),
        })
        .collect()
}

/// A region for each of `n` victims, drawn in proportion to the regions' weights.
fn draw_regions(n: usize, rng: &mut ChaCha8Rng) -> Vec<&'static str> {
    let region_total: u32 = REGIONS.iter().map(|r| r.1).sum();
    (0..n)
        .map(|_| {
            let mut pick = rng.gen_range(0..region_total);
            REGIONS
                .iter()
                .find(|r| {
                    if pick < r.1 {
                        true
                    } else {
                        pick -= r.1;
                        false
                    }
                })
                .expect("pick is below the total")
                .0
        })
        .collect()
}

/// Distinct types per victim (`row_counts` of them) with exact totals: most reports first, each
/// type drawn in proportion to what remains of it.
fn draw_types(victims: &mut [Victim], row_counts: &[usize], rng: &mut ChaCha8Rng) {
    let mut order: Vec<usize> = (0..victims.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(row_counts[i]));
    let mut remaining: Vec<usize> = VICTIM_TYPES.iter().map(|t| t.1).collect();
    for &i in &order {
        for _ in 0..row_counts[i] {
            let total: usize = (0..remaining.len())
                .filter(|t| !victims[i].types.contains(t))
                .map(|t| remaining[t])
                .sum();
            assert!(
                total > 0,
                "the type quotas leave a victim without a distinct type"
            );
            let mut pick = rng.gen_range(0..total);
            let t = (0..remaining.len())
                .filter(|t| !victims[i].types.contains(t))
                .find(|&t| {
                    if pick < remaining[t] {
                        true
                    } else {
                        pick -= remaining[t];
                        false
                    }
                })
                .expect("pick is below the total");
            remaining[t] -= 1;
            victims[i].types.push(t);
        }
    }
}

/// One row of the sample: a victim's report of one type.
struct Row {
    victim: usize,
    age: usize,
    victim_type: usize,
    services: i64,
}

/// The rows, with services from a log-normal body and a few very heavy users, one victim whose
/// rows disagree on age group, the published total of services met exactly, and shuffled.
fn draw_rows(victims: &[Victim], rng: &mut ChaCha8Rng) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for (v, victim) in victims.iter().enumerate() {
        for &t in &victim.types {
            let z = standard_normal(rng);
            let mut services = (1.9 + 1.05 * z).exp().floor() as i64;
            if rng.gen_range(0..2_000) == 0 {
                services += rng.gen_range(200..900);
            }
            rows.push(Row {
                victim: v,
                age: victim.age,
                victim_type: t,
                services,
            });
        }
    }
    // One victim whose rows disagree on age group (an extract error the bounds must absorb).
    if let Some(v) = victims
        .iter()
        .position(|v| v.types.len() == 3 && v.age == 2)
    {
        let r = rows
            .iter()
            .rposition(|r| r.victim == v)
            .expect("victim has rows");
        rows[r].age = 3;
    }
    // Meet the published total of services exactly, one service at a time on random rows.
    let mut diff = TOTAL_SERVICES - rows.iter().map(|r| r.services).sum::<i64>();
    while diff != 0 {
        let r = rng.gen_range(0..rows.len());
        if diff > 0 {
            rows[r].services += 1;
            diff -= 1;
        } else if rows[r].services > 0 {
            rows[r].services -= 1;
            diff += 1;
        }
    }
    rows.shuffle(rng);
    rows
}

/// The microdata file: one line per row.
fn write_victims(out: &mut dyn Write, victims: &[Victim], rows: &[Row]) -> io::Result<()> {
    writeln!(
        out,
        "victim_id,gender,age_group,region,victim_type,services"
    )?;
    for r in rows {
        let v = &victims[r.victim];
        writeln!(
            out,
            "{},{},{},{},{},{}",
            v.id,
            v.gender,
            AGE_GROUPS[r.age].0,
            v.region,
            VICTIM_TYPES[r.victim_type].0,
            r.services
        )?;
    }
    Ok(())
}

/// The pre-counted file: victims by gender and age group.
fn write_breakdown(out: &mut dyn Write, victims: &[Victim]) -> io::Result<()> {
    writeln!(out, "gender,age_group,victims")?;
    for (g, _) in GENDERS {
        for (a, (age, _)) in AGE_GROUPS.iter().enumerate() {
            let count = victims
                .iter()
                .filter(|v| v.gender == g && v.age == a)
                .count();
            writeln!(out, "{g},{age},{count}")?;
        }
    }
    Ok(())
}

/// Streams `rows` rows of synthetic microdata with the sample's schema and distributions to
/// `out`: victims drawn one at a time (reports per victim, gender, age group, region, distinct
/// victim types and services with the sample's proportions, about 1 in 1,000 multi-report victims
/// disagreeing on age group), mixed through a 4,096-row shuffle buffer so that a victim's rows are
/// near each other but not adjacent. Memory stays constant whatever `rows` is. For benchmarks
/// only; the file is never committed.
pub fn write_large(out: &mut dyn Write, rows: u64, seed: u64) -> io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pick = |rng: &mut ChaCha8Rng, weights: &[u64]| -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = rng.gen_range(0..total);
        weights
            .iter()
            .position(|&w| {
                if x < w {
                    true
                } else {
                    x -= w;
                    false
                }
            })
            .expect("x is below the total")
    };
    let rows_w: Vec<u64> = ROWS_PER_VICTIM.iter().map(|r| r.1 as u64).collect();
    let gender_w: Vec<u64> = GENDERS.iter().map(|g| g.1 as u64).collect();
    let age_w: Vec<u64> = AGE_GROUPS.iter().map(|a| a.1 as u64).collect();
    let region_w: Vec<u64> = REGIONS.iter().map(|r| u64::from(r.1)).collect();
    let type_w: Vec<u64> = VICTIM_TYPES.iter().map(|t| t.1 as u64).collect();

    writeln!(
        out,
        "victim_id,gender,age_group,region,victim_type,services"
    )?;
    let mut buffer: Vec<String> = Vec::with_capacity(4096);
    let mut written: u64 = 0;
    let mut victim: u64 = 0;
    while written < rows {
        victim += 1;
        let n = ROWS_PER_VICTIM[pick(&mut rng, &rows_w)].0;
        let gender = GENDERS[pick(&mut rng, &gender_w)].0;
        let age = pick(&mut rng, &age_w);
        let region = REGIONS[pick(&mut rng, &region_w)].0;
        let messy = n > 1 && rng.gen_range(0..1000) == 0;
        let mut types_w = type_w.clone();
        for r in 0..n {
            if written >= rows {
                break;
            }
            let t = pick(&mut rng, &types_w);
            types_w[t] = 0;
            let z = standard_normal(&mut rng);
            let mut services = (1.9 + 1.05 * z).exp().floor() as i64;
            if rng.gen_range(0..2_000) == 0 {
                services += rng.gen_range(200..900);
            }
            let row_age = if messy && r == n - 1 {
                (age + 1) % AGE_GROUPS.len()
            } else {
                age
            };
            let line = format!(
                "V{victim:09},{gender},{},{region},{},{services}\n",
                AGE_GROUPS[row_age].0, VICTIM_TYPES[t].0
            );
            written += 1;
            if buffer.len() < 4096 {
                buffer.push(line);
            } else {
                let i = rng.gen_range(0..buffer.len());
                out.write_all(std::mem::replace(&mut buffer[i], line).as_bytes())?;
            }
        }
    }
    buffer.shuffle(&mut rng);
    for line in buffer {
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// A standard normal draw by Box-Muller (for synthetic data only; never for privacy noise).
fn standard_normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.r#gen::<f64>();
    let u2: f64 = rng.r#gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_generator_writes_exactly_the_rows_asked_for_with_the_sample_schema() {
        let mut out = Vec::new();
        write_large(&mut out, 10_000, 7).unwrap();
        let mut rdr = csv::Reader::from_reader(out.as_slice());
        assert_eq!(
            rdr.headers().unwrap(),
            vec![
                "victim_id",
                "gender",
                "age_group",
                "region",
                "victim_type",
                "services"
            ]
        );
        let recs: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
        assert_eq!(recs.len(), 10_000);
        let ids: std::collections::HashSet<&str> = recs.iter().map(|r| r.get(0).unwrap()).collect();
        // 1.63 rows per victim on average.
        assert!(ids.len() > 5_500 && ids.len() < 6_800, "{}", ids.len());
        let mut again = Vec::new();
        write_large(&mut again, 10_000, 7).unwrap();
        assert!(again == out, "the same seed must give the same file");
    }

    #[test]
    fn quotas_are_consistent() {
        let victims: usize = ROWS_PER_VICTIM.iter().map(|r| r.1).sum();
        let rows: usize = ROWS_PER_VICTIM.iter().map(|r| r.0 * r.1).sum();
        assert_eq!(victims, 10_305);
        assert_eq!(rows, 16_833);
        assert_eq!(AGE_GROUPS.iter().map(|a| a.1).sum::<usize>(), 10_305);
        assert_eq!(VICTIM_TYPES.iter().map(|t| t.1).sum::<usize>(), 16_833);
        assert_eq!(VICTIM_TYPES[4..].iter().map(|t| t.1).sum::<usize>(), 3_159);
    }

    /// The committed sample must be exactly what the generator makes.
    #[test]
    fn committed_sample_is_reproduced_byte_for_byte() {
        let (mut v, mut b) = (Vec::new(), Vec::new());
        write_sample(&mut v, &mut b).unwrap();
        let root = env!("CARGO_MANIFEST_DIR");
        assert!(
            std::fs::read(format!("{root}/data/disung_2024_victims.csv")).unwrap() == v,
            "data/disung_2024_victims.csv differs from the generator's output; run `cargo run --release --bin safestat-synth`"
        );
        assert!(
            std::fs::read(format!("{root}/data/disung_2024_breakdown.csv")).unwrap() == b,
            "data/disung_2024_breakdown.csv differs from the generator's output"
        );
    }

    #[test]
    fn sample_meets_the_published_marginals() {
        let (mut v, mut b) = (Vec::new(), Vec::new());
        write_sample(&mut v, &mut b).unwrap();
        let mut rdr = csv::Reader::from_reader(v.as_slice());
        let mut ids = std::collections::HashMap::<String, (String, usize)>::new();
        let mut types = std::collections::HashMap::<String, usize>::new();
        let (mut rows, mut services) = (0, 0i64);
        for rec in rdr.records() {
            let rec = rec.unwrap();
            rows += 1;
            services += rec[5].parse::<i64>().unwrap();
            *types.entry(rec[4].to_string()).or_default() += 1;
            ids.entry(rec[0].to_string())
                .or_insert((rec[1].to_string(), 0))
                .1 += 1;
        }
        assert_eq!(rows, 16_833);
        assert_eq!(services, TOTAL_SERVICES);
        assert_eq!(ids.len(), 10_305);
        assert_eq!(ids.values().filter(|v| v.0 == "female").count(), 7_428);
        assert_eq!(ids.values().filter(|v| v.1 > 4).count(), 2);
        for (t, n) in VICTIM_TYPES {
            assert_eq!(types[t], n, "{t}");
        }
        let breakdown = String::from_utf8(b).unwrap();
        assert!(breakdown.contains("\nfemale,20s,") && breakdown.lines().count() == 15);
    }
}
