//! Measurements for `bench/run.sh` (see BENCHMARKS.md). Not part of a release.
//!
//! - `safestat-bench parse-floor FILE`: the csv crate reading every record of FILE into one
//!   reused `ByteRecord`, nothing else: the floor any CSV-based release is compared against.
//! - `safestat-bench noise CELLS`: opendp noise on a CELLS-cell table through safestat's
//!   mechanism wrapper, for both mechanisms; prints cells per second.
//! - `safestat-bench consistency REPS`: REPS releases of two groups of tables with a known
//!   synthetic truth (the sample policy's five `count_units` tables, and a 17 x 7 x 2 x 9 group),
//!   through opendp's noise and `protect::consistency::estimate`; prints the time of an estimate
//!   and, per table, the root-mean-square error, the mean error and the share of cells within
//!   their margin of error, of the noisy and of the estimated tables.
//! - `safestat-bench sdc DIR`: cell suppression of four skewed synthetic tables with all their
//!   margins (17 x 7, 17 x 7 x 2, 250 x 20, 40 x 12 x 4; primary: 0 < n < 5, zeros never hidden),
//!   by cells and by value; prints time (the attacker's audit of every hidden cell included),
//!   primary and secondary cells, the value hidden and the method that chose them, and writes each table's inner cells to
//!   `DIR/sdc_<name>.csv` for the peers in R.
//! - `safestat-bench sdc-audit DIR`: safestat's attacker's audit of the peers' patterns
//!   (`DIR/gauss_<name>.csv`, written by `bench/sdc_peers.R`): how many primary cells an attacker
//!   pins, or narrows below the 20% protection interval safestat requires.

use std::process::ExitCode;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use safestat::privacy::{Cost, Mechanism, Sensitivity};
use safestat::protect::NoiseMechanism;
use safestat::protect::consistency::{self, Axes, Measured};

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
        ["consistency", reps] => {
            let Ok(reps) = reps.parse::<usize>() else {
                eprintln!("safestat-bench: REPS must be a whole number");
                return ExitCode::from(2);
            };
            consistency_bench(reps);
            ExitCode::SUCCESS
        }
        ["sdc", dir, only @ ..] => sdc_bench(std::path::Path::new(dir), only),
        ["sdc-audit", dir] => sdc_audit(std::path::Path::new(dir), "gauss"),
        ["sdc-audit", dir, peer] => sdc_audit(std::path::Path::new(dir), peer),
        _ => {
            eprintln!(
                "usage: safestat-bench parse-floor FILE | safestat-bench noise CELLS | safestat-bench consistency REPS | safestat-bench sdc DIR [TABLE...] | safestat-bench sdc-audit DIR [PEER]"
            );
            ExitCode::from(2)
        }
    }
}

/// A group of tables for the consistency benchmark: union dimension sizes, and per table its
/// name, axes and rho.
struct Scenario {
    name: &'static str,
    sizes: Vec<usize>,
    tables: Vec<(&'static str, Vec<usize>, f64)>,
    /// Mean union cell of the synthetic truth.
    mean: f64,
}

/// The consistency benchmark's groups: the sample policy's, and a wider one of four dimensions.
fn scenarios() -> [Scenario; 2] {
    [
        Scenario {
            name: "sample policy (gender 2 x age 7 x region 17)",
            sizes: vec![2, 7, 17],
            tables: vec![
                ("victims_by_gender_age", vec![0, 1], 0.05),
                ("victims_by_gender", vec![0], 0.02),
                ("victims_by_age", vec![1], 0.02),
                ("victims_by_region", vec![2], 0.02),
                ("victims_by_region_age", vec![2, 1], 0.05),
            ],
            mean: 42.0,
        },
        Scenario {
            name: "region 17 x age 7 x gender 2 x type 9",
            sizes: vec![17, 7, 2, 9],
            tables: vec![
                ("total", vec![], 0.02),
                ("by_region", vec![0], 0.02),
                ("by_age", vec![1], 0.02),
                ("by_gender", vec![2], 0.02),
                ("by_type", vec![3], 0.02),
                ("by_region_age", vec![0, 1], 0.05),
                ("by_gender_age", vec![2, 1], 0.05),
                ("by_type_gender", vec![3, 2], 0.05),
                ("by_region_age_gender_type", vec![0, 1, 2, 3], 0.1),
            ],
            mean: 12.0,
        },
    ]
}

fn consistency_bench(reps: usize) {
    for sc in &scenarios() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let union_cells: usize = sc.sizes.iter().product();
        // A skewed truth: a third of the cells empty, the rest exponential around `mean`.
        let truth: Vec<i64> = (0..union_cells)
            .map(|_| {
                if rng.gen_bool(1.0 / 3.0) {
                    0
                } else {
                    (-(1.0 - rng.r#gen::<f64>()).ln() * sc.mean * 1.5).round() as i64
                }
            })
            .collect();
        let sens = Sensitivity { l1: 1.0, l2: 1.0 };
        let mechs: Vec<NoiseMechanism> = sc
            .tables
            .iter()
            .map(|(_, _, rho)| {
                NoiseMechanism::calibrate(Mechanism::Gaussian, sens, Cost::Rho(*rho))
                    .expect("calibration")
            })
            .collect();
        let axes: Vec<Axes> = sc.tables.iter().map(|(_, a, _)| Axes(a.clone())).collect();
        let exact: Vec<Vec<i64>> = axes
            .iter()
            .map(|a| consistency::marginal(&sc.sizes, a, &truth))
            .collect();
        let measured_var: Vec<(&Axes, f64)> = axes
            .iter()
            .zip(&mechs)
            .map(|(a, m)| (a, m.variance()))
            .collect();
        let mut scores = Scores::new(sc.tables.len());
        let mut seconds = Vec::with_capacity(reps);
        let mut widened = 0;
        for _ in 0..reps {
            let measured: Vec<Measured> = axes
                .iter()
                .zip(&mechs)
                .zip(&exact)
                .map(|((a, m), e)| Measured {
                    axes: a.clone(),
                    noisy: m.invoke(e).expect("noise"),
                    variance: m.variance(),
                })
                .collect();
            let start = Instant::now();
            let est = consistency::estimate(&sc.sizes, &measured, true).expect("estimate");
            seconds.push(start.elapsed().as_secs_f64());
            if est.tolerance != consistency::Tolerance::Within(0) {
                widened += 1;
            }
            for j in 0..sc.tables.len() {
                let var = consistency::cell_variance(&sc.sizes, &measured_var, j);
                let moe = safestat::protect::accuracy::margin_of_error(var, 0.95, est.shift[j]);
                let raw_moe = mechs[j].margin_of_error(0.95).expect("moe");
                scores.add(
                    j,
                    (&exact[j], &measured[j].noisy, &est.tables[j]),
                    (raw_moe, moe),
                );
            }
        }
        seconds.sort_by(f64::total_cmp);
        println!(
            "consistency group=\"{}\" union_cells={union_cells} tables={} reps={reps} median_seconds={:.4} max_seconds={:.4} not_controlled={widened}",
            sc.name,
            sc.tables.len(),
            seconds[seconds.len() / 2],
            seconds[seconds.len() - 1]
        );
        scores.print(sc, &exact, &mechs, reps);
    }
}

/// Per table of a consistency scenario, over its repetitions: the squared errors of the raw and
/// estimated cells, the estimated cells' summed error, how often each falls within its margin of
/// error, and the last estimated margin.
struct Scores {
    sq_raw: Vec<f64>,
    sq_est: Vec<f64>,
    sum_est: Vec<f64>,
    cover_raw: Vec<usize>,
    cover_est: Vec<usize>,
    moe_est: Vec<i64>,
}

impl Scores {
    fn new(n: usize) -> Scores {
        Scores {
            sq_raw: vec![0.0; n],
            sq_est: vec![0.0; n],
            sum_est: vec![0.0; n],
            cover_raw: vec![0; n],
            cover_est: vec![0; n],
            moe_est: vec![0; n],
        }
    }

    /// Table `j`'s cells of one repetition: exact, raw and estimated, with their margins.
    fn add(&mut self, j: usize, (exact, raw, est): (&[i64], &[i64], &[i64]), moes: (i64, i64)) {
        let (raw_moe, moe) = moes;
        self.moe_est[j] = moe;
        for (c, &e) in exact.iter().enumerate() {
            let r = (raw[c] - e) as f64;
            let s = (est[c] - e) as f64;
            self.sq_raw[j] += r * r;
            self.sq_est[j] += s * s;
            self.sum_est[j] += s;
            self.cover_raw[j] += usize::from(r.abs() <= raw_moe as f64);
            self.cover_est[j] += usize::from(s.abs() <= moe as f64);
        }
    }

    fn print(&self, sc: &Scenario, exact: &[Vec<i64>], mechs: &[NoiseMechanism], reps: usize) {
        for j in 0..sc.tables.len() {
            let cells = (exact[j].len() * reps) as f64;
            println!(
                "  table={} cells={} rmse_raw={:.3} rmse_estimated={:.3} ratio={:.3} mean_error_estimated={:+.3} moe_raw={} moe_estimated={} within_moe_raw={:.4} within_moe_estimated={:.4}",
                sc.tables[j].0,
                exact[j].len(),
                (self.sq_raw[j] / cells).sqrt(),
                (self.sq_est[j] / cells).sqrt(),
                (self.sq_est[j] / self.sq_raw[j]).sqrt(),
                self.sum_est[j] / cells,
                mechs[j].margin_of_error(0.95).expect("moe"),
                self.moe_est[j],
                self.cover_raw[j] as f64 / cells,
                self.cover_est[j] as f64 / cells,
            );
        }
    }
}

/// A skewed synthetic table: inner counts `floor(exp(N(mu, sigma)))` from a fixed seed.
fn skewed(cells: usize, mu: f64, sigma: f64, seed: u64) -> Vec<i64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..cells)
        .map(|_| {
            // Box-Muller from two uniforms: a fixed, documented stream.
            let (u1, u2): (f64, f64) = (rng.r#gen::<f64>().max(1e-300), rng.r#gen());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (mu + sigma * z).exp().floor() as i64
        })
        .collect()
}

/// Secondary suppression of the four synthetic tables (or those named in `only`, e.g.
/// `17x7x2`), timed, with the tables written to `dir` for the peers. Levels of 20% (at least 1),
/// or `SDC_INTERVAL_PERCENT`.
fn sdc_bench(dir: &std::path::Path, only: &[&str]) -> ExitCode {
    use safestat::protect::sdc::{self, Objective, Rules};
    let tables: [(&str, Vec<usize>, f64, f64, u64); 4] = [
        ("17x7", vec![17, 7], 1.75, 1.4, 1),
        ("17x7x2", vec![17, 7, 2], 2.0, 1.4, 2),
        ("250x20", vec![250, 20], 3.28, 1.3, 3),
        ("40x12x4", vec![40, 12, 4], 2.4, 1.4, 4),
    ];
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("safestat-bench: cannot create `{}`: {e}", dir.display());
        return ExitCode::from(1);
    }
    println!(
        "| table | objective | cells (with margins) | primary | secondary | value hidden (secondary) | method | seconds |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |");
    // SDC_INTERVAL_PERCENT=0 asks what sdcTable's default levels ask (1 either way).
    let interval_percent = std::env::var("SDC_INTERVAL_PERCENT")
        .ok()
        .and_then(|p| p.parse::<f64>().ok())
        .unwrap_or(20.0);
    let floor = count_floor();
    for (name, sizes, mu, sigma, seed) in tables {
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let inner = skewed(sizes.iter().product(), mu, sigma, seed);
        let path = dir.join(format!("sdc_{name}.csv"));
        if let Err(e) = write_for_peers(&path, &sizes, &inner) {
            eprintln!("safestat-bench: cannot write `{}`: {e}", path.display());
            return ExitCode::from(1);
        }
        // SDC_ZEROS_AS_SECONDARY=1: the policy's `zeros_as_secondary = true`, as a release runs it
        // (zeros may be hidden, so the floor is 0, and each respondent of a hidden cell knows it
        // holds at least 1: one insider per non-zero inner cell).
        let zeros = std::env::var("SDC_ZEROS_AS_SECONDARY").is_ok_and(|v| v == "1");
        let (structure, grid, values) = with_margins(&sizes, &inner, floor, zeros);
        for objective in [Objective::Cells, Objective::Value] {
            let rules = Rules {
                min_frequency: 5,
                zeros_primary: false,
                interval_percent,
                objective,
            };
            let start = Instant::now();
            let wanted: Vec<(usize, sdc::Levels)> = (0..values.len())
                .filter(|&c| sdc::primary(values[c], &rules))
                .map(|c| (c, sdc::levels(values[c], &rules)))
                .collect();
            let insiders: Vec<sdc::Insider> = grid
                .iter()
                .filter(|&&c| zeros && values[c] > 0 && structure.key(c).len() == sizes.len())
                .map(|&c| sdc::Insider {
                    keys: vec![structure.key(c).to_vec()],
                    knows: vec![(c, 1)],
                })
                .collect();
            let none = vec![false; values.len()];
            let p = match sdc::protect_cells(
                &structure,
                &values,
                (&wanted, &insiders),
                &none,
                &none,
                objective,
            ) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("safestat-bench: {name}: {e}");
                    return ExitCode::from(1);
                }
            };
            let seconds = start.elapsed().as_secs_f64();
            let primary = p.primary.iter().filter(|&&x| x).count();
            let secondary: Vec<usize> = (0..values.len())
                .filter(|&c| p.hidden[c] && !p.primary[c])
                .collect();
            let value: i64 = secondary.iter().map(|&c| values[c]).sum();
            println!(
                "| {name} | {objective:?} | {} | {primary} | {} | {value} | {:?} | {seconds:.3} |",
                values.len(),
                secondary.len(),
                p.method
            );
        }
    }
    ExitCode::SUCCESS
}

/// A synthetic table's inner cells as the peers read them: `c<category>,...,value` per line.
fn write_for_peers(path: &std::path::Path, sizes: &[usize], inner: &[i64]) -> std::io::Result<()> {
    let mut csv = String::new();
    for (i, v) in inner.iter().enumerate() {
        let coords: Vec<String> = safestat::protect::sdc::tables::unravel(i, sizes)
            .iter()
            .map(|c| format!("c{c}"))
            .collect();
        csv.push_str(&format!("{},{v}\n", coords.join(",")));
    }
    std::fs::write(path, csv)
}

/// A synthetic table with all its margins: its structure (a hidden cell at least `floor`, or 0
/// with zeros hideable when `zeros`), its grid, and every grid point's value (the sum of the
/// inner cells under it).
fn with_margins(
    sizes: &[usize],
    inner: &[i64],
    floor: i64,
    zeros: bool,
) -> (safestat::protect::sdc::Structure, Vec<usize>, Vec<i64>) {
    use safestat::protect::sdc::{self, Structure};
    let mut structure = Structure::new();
    let dims: Vec<usize> = (0..sizes.len()).collect();
    let grid = structure.add_table(0, &dims, &sdc::structure::flat(sizes));
    let floor = if zeros { 0 } else { floor };
    structure.set_floors(vec![floor; structure.cells()]);
    structure.set_zeros_hideable(vec![zeros; structure.cells()]);
    let mut values = vec![0i64; structure.cells()];
    let flat = sdc::structure::flat(sizes);
    for (&cell, v) in grid.iter().zip(sdc::tables::grid_values(&flat, inner)) {
        values[cell] = v;
    }
    (structure, grid, values)
}

/// The least value of a hidden cell of the benchmark's count tables, as the release's attacker
/// knows it (zeros are never hidden, so 1); `SDC_FLOOR=0` gives the attacker who does not use
/// that rule, as safestat's did before.
fn count_floor() -> i64 {
    std::env::var("SDC_FLOOR")
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or(1)
}

/// The attacker's audit of a peer's patterns (`{peer}_{table}.csv`: `gauss` from
/// bench/sdc_peers.R, `sdctable-opt` or `sdctable-hitas` from bench/sdc_peers_sdctable.R; tables
/// without a pattern are skipped): per table, primary cells disclosed exactly and primary cells
/// whose interval falls short of safestat's levels (20%, at least 1).
fn sdc_audit(dir: &std::path::Path, peer: &str) -> ExitCode {
    use safestat::protect::sdc::{self, Objective, Rules, Structure};
    let rules = Rules {
        min_frequency: 5,
        zeros_primary: false,
        interval_percent: 20.0,
        objective: Objective::Cells,
    };
    println!(
        "| table | peer's hidden cells | primary | primary disclosed exactly (by the LP alone) | primary short of the 20% interval | seconds |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (name, sizes) in [
        ("17x7", vec![17, 7]),
        ("17x7x2", vec![17, 7, 2]),
        ("250x20", vec![250, 20]),
        ("40x12x4", vec![40, 12, 4]),
    ] {
        let path = dir.join(format!("{peer}_{name}.csv"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!(
                "safestat-bench: no `{}` (run bench/sdc_peers.R or bench/sdc_peers_sdctable.R first)",
                path.display()
            );
            continue;
        };
        let mut structure = Structure::new();
        let dims: Vec<usize> = (0..sizes.len()).collect();
        let grid = structure.add_table(0, &dims, &sdc::structure::flat(&sizes));
        structure.set_floors(vec![count_floor(); structure.cells()]);
        let extent: Vec<usize> = sizes.iter().map(|n| n + 1).collect();
        let mut values = vec![0i64; structure.cells()];
        let mut hidden = vec![false; structure.cells()];
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let k = sizes.len();
            let p = (0..k).fold(0, |p, j| {
                let c = f[j]
                    .strip_prefix('c')
                    .and_then(|c| c.parse::<usize>().ok())
                    .unwrap_or(sizes[j]);
                p * extent[j] + c
            });
            values[grid[p]] = f[k].parse().unwrap_or(0);
            hidden[grid[p]] = f[k + 1] == "TRUE";
        }
        let start = Instant::now();
        let targets: Vec<usize> = (0..values.len()).filter(|&c| hidden[c]).collect();
        let found = match sdc::attack(&structure, &values, &hidden, &targets) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("safestat-bench: {name}: {e}");
                return ExitCode::from(1);
            }
        };
        let seconds = start.elapsed().as_secs_f64();
        // The continuous attacker alone (LPs without whole numbers), which is what the peers
        // protect against.
        let continuous = match sdc::attack::continuous(&structure, &values, &hidden, &targets) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("safestat-bench: {name}: {e}");
                return ExitCode::from(1);
            }
        };
        let (mut primary, mut exact, mut short, mut exact_lp) = (0, 0, 0, 0);
        for ((&c, i), (lp, _)) in targets.iter().zip(&found).zip(&continuous) {
            if !sdc::primary(values[c], &rules) {
                continue;
            }
            primary += 1;
            if lp.hi == Some(lp.lo) {
                exact_lp += 1;
            }
            if i.hi == Some(i.lo) {
                exact += 1;
            } else if !sdc::protects(*i, values[c], sdc::levels(values[c], &rules)) {
                short += 1;
            }
        }
        println!(
            "| {name} | {} | {primary} | {exact} ({exact_lp}) | {short} | {seconds:.3} |",
            targets.len(),
        );
    }
    ExitCode::SUCCESS
}
