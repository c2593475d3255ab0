//! Noise: the published spread matches the manifest's noise scale.

use crate::common::*;

/// Dvoretzky-Kiefer-Wolfowitz (see `cdf_distance`): n = 4,000 samples and t = 0.045 give a
/// false-failure probability of 2 exp(-16.2) < 2e-7 per table, 4e-7 for this test. A scale 30%
/// off moves the CDF by more than 0.06 at one standard deviation and fails.
fn assert_noise_matches(samples: &mut [i64], pmf: impl Fn(i64) -> f64) {
    let worst = safestat::protect::dp::cdf_distance(samples, pmf);
    assert!(
        worst < 0.045,
        "published noise differs from the manifest's distribution by {worst}"
    );
}

#[test]
fn published_noise_matches_the_manifest_scale() {
    // 4,000 cells of true value 10,000 (from an aggregated input): each published value minus
    // 10,000 is one noise draw. Clamping and suppression cannot touch values this far from 0.
    let (a, b) = (80, 50);
    let s = Scratch::new();
    let mut agg = String::from("x,y,n\n");
    for i in 0..a {
        for j in 0..b {
            agg += &format!("x{i},y{j},10000\n");
        }
    }
    let cats = |p: &str, k: usize| {
        (0..k)
            .map(|i| format!("\"{p}{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    s.write("agg.csv", &agg);
    s.write(
        "policy.toml",
        &format!(
            r#"
[release]
id = "noise"
[dataset]
name = "d"
privacy_unit = "pid"
budget = {{ rho = 1.0 }}
[inputs.agg]
path = "agg.csv"
aggregated = true
count_column = "n"
[categories]
x = [{}]
y = [{}]
[[table]]
name = "gauss"
input = "agg"
statistic = "count_rows"
max_rows_per_unit = 3
by = ["x", "y"]
cost = {{ rho = 0.02 }}
[[table]]
name = "lap"
input = "agg"
statistic = "count_units"
max_cells_per_unit = 2
by = ["x", "y"]
cost = {{ epsilon = 0.3 }}
"#,
            cats("x", a),
            cats("y", b)
        ),
    );
    s.run(&["release", "policy.toml", "--out", "rel"])
        .expect_code(0);
    let m = manifest(&s.path("rel"));
    let noise = |table: &str| -> Vec<i64> {
        read_csv(&s.path(&format!("rel/{table}.csv")))
            .iter()
            .map(|r| r["value"].parse::<i64>().unwrap() - 10_000)
            .collect()
    };

    let sigma = m["tables"][0]["noise_scale"].as_f64().unwrap();
    // L2 sensitivity 3 (all 3 rows may fall in one cell), rho 0.02: sigma = 3 / sqrt(0.04) = 15
    assert!((sigma - 15.0).abs() < 1e-6, "{sigma}");
    let z: f64 = (-10_000i64..=10_000)
        .map(|y| (-((y * y) as f64) / (2.0 * sigma * sigma)).exp())
        .sum();
    assert_noise_matches(&mut noise("gauss"), |x| {
        (-((x * x) as f64) / (2.0 * sigma * sigma)).exp() / z
    });

    let scale = m["tables"][1]["noise_scale"].as_f64().unwrap();
    assert!((scale - 2.0 / 0.3).abs() < 1e-6, "{scale}");
    let q = (-1.0 / scale).exp();
    assert_noise_matches(&mut noise("lap"), |x| {
        (1.0 - q) / (1.0 + q) * q.powi(x.abs() as i32)
    });
}
