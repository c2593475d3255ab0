//! The words around the numbers, in Korean and English.

use crate::policy::Presentation;
use crate::privacy::Budget;

pub struct Words {
    pub korean: bool,
    /// A table's number (`표 1.`), a footnote's and a source line's lead, and the methodology's
    /// reference period, publisher and contact.
    pub table_word: &'static str,
    pub notes_word: &'static str,
    pub source_word: &'static str,
    pub period_word: &'static str,
    pub organisation_word: &'static str,
    pub contact_word: &'static str,
    pub total: &'static str,
    pub unit: &'static str,
    pub margin: &'static str,
    pub methodology: &'static str,
    pub release: &'static str,
    pub privacy_unit: &'static str,
    pub method: &'static str,
    pub method_text: &'static str,
    pub margin_meaning: &'static str,
    pub margin_text: &'static str,
    pub suppressed_meaning: &'static str,
    pub mechanism: &'static str,
    pub cost: &'static str,
    pub budget: &'static str,
    pub item: &'static str,
    pub content: &'static str,
    pub chart_note: &'static str,
    pub totals_note: &'static str,
    /// The note under a table that publishes its own margins (format 6).
    pub own_totals_note: &'static str,
    pub excel_sum_note: &'static str,
    pub share: &'static str,
    pub share_margin: &'static str,
    pub share_note: &'static str,
    pub exact_note: &'static str,
    /// The methodology line of a release with exact and differentially private tables.
    pub mixing: &'static str,
}

const KO: Words = Words {
    korean: true,
    total: "계",
    table_word: "표",
    notes_word: "주",
    source_word: "자료",
    period_word: "기준 기간",
    organisation_word: "작성 기관",
    contact_word: "문의",
    unit: "단위",
    margin: "오차 범위",
    methodology: "작성 방법",
    release: "공표",
    privacy_unit: "보호 단위",
    method: "보호 방법",
    method_text: "차분 프라이버시(differential privacy): 각 보호 단위의 기여를 제한한 뒤 OpenDP의 잡음을 더했습니다. 한 사람이 자료에 있든 없든 공표 결과가 거의 달라지지 않도록 보장합니다.",
    margin_meaning: "오차 범위의 뜻",
    margin_text: "공표 값은 표시된 확률로 (기여 제한 후의) 실제 값에서 ± 오차 범위 안에 있습니다. 작은 값일수록 상대 오차가 큽니다.",
    suppressed_meaning: "비공개 표시의 뜻",
    mechanism: "잡음",
    cost: "프라이버시 비용",
    budget: "프라이버시 예산",
    item: "항목",
    content: "내용",
    chart_note: "막대는 공표 값, 선은 오차 범위입니다.",
    totals_note: "계는 같은 자료에서 함께 추정한 표의 공표 값으로, 공표된 칸의 합과 일치합니다(비공개 칸 제외).",
    own_totals_note: "계는 이 표의 값을 비공개 칸까지 더한 값이며, 오차 범위는 CSV 파일의 계 행에 있습니다. 함께 추정한 표끼리는 계가 서로 일치합니다.",
    excel_sum_note: "비공개 칸은 문자로 표시되어 엑셀 합계에 들어가지 않습니다.",
    share: "구성비(%)",
    share_margin: "오차 범위(%p)",
    share_note: "구성비는 공표된 표 전체 합계(비공개 칸 포함)에 대한 비율이며, 오차 범위는 칸과 합계의 잡음을 함께 고려한 값입니다.",
    exact_note: "정확한 값이며 차분 프라이버시로 보호된 표가 아닙니다. 작은 칸과, 공표된 다른 칸으로 그 값을 좁혀 알아낼 수 있게 하는 칸을 비공개로 처리했습니다.",
    mixing: "정확한 값의 표와 함께 공표",
};

const EN: Words = Words {
    korean: false,
    total: "Total",
    unit: "Unit",
    table_word: "Table",
    notes_word: "Note",
    source_word: "Source",
    period_word: "Reference period",
    organisation_word: "Published by",
    contact_word: "Contact",
    margin: "Margin of error",
    methodology: "Methodology",
    release: "Release",
    privacy_unit: "Privacy unit",
    method: "Protection",
    method_text: "Differential privacy: each privacy unit's contribution is bounded, then OpenDP's noise is added, so that the published values hardly change whether or not any one person is in the data.",
    margin_meaning: "What a margin of error means",
    margin_text: "With the stated probability, a published value is within ± the margin of the true (bounded) value. The smaller the value, the larger the error relative to it.",
    suppressed_meaning: "What the suppressed marker means",
    mechanism: "Noise",
    cost: "Privacy cost",
    budget: "Privacy budget",
    item: "Item",
    content: "Content",
    chart_note: "Bars are the published values; lines show the margin of error.",
    totals_note: "Totals are the published values of tables estimated together from the same data; they equal the sum of the published cells (suppressed cells aside).",
    own_totals_note: "Totals are sums of this table's values, suppressed cells included; each has its own margin of error in the CSV's total rows. Tables estimated together agree on every total.",
    excel_sum_note: "Suppressed cells are text, so Excel's SUM leaves them out.",
    share: "Share (%)",
    share_margin: "Margin (points)",
    share_note: "A share is of the table's published total (suppressed cells included); its margin counts the noise of both the cell and the total.",
    exact_note: "Exact values, not differentially private: small cells, and the cells from which the published ones would narrow them down, are suppressed.",
    mixing: "Published with exact tables",
};

impl Words {
    pub fn of(p: &Presentation) -> &'static Words {
        if p.korean() { &KO } else { &EN }
    }

    /// The totals' margins of error: `(dimensions' labels, margin)` per kind of total shown (an
    /// empty label: the grand total).
    pub fn total_margins(&self, margins: &[(String, i64)], confidence: f64) -> String {
        let parts: Vec<String> = margins
            .iter()
            .map(|(by, moe)| match (self.korean, by.is_empty()) {
                (true, true) => format!("총계 ±{moe}"),
                (true, false) => format!("{by} 계 ±{moe}"),
                (false, true) => format!("grand total ±{moe}"),
                (false, false) => format!("totals by {by} ±{moe}"),
            })
            .collect();
        let pct = confidence * 100.0;
        if self.korean {
            format!("계의 오차 범위({pct}%): {}", parts.join(", "))
        } else {
            format!(
                "Margins of error of the totals ({pct}%): {}",
                parts.join(", ")
            )
        }
    }

    pub fn too_large(&self, csv: &str) -> String {
        if self.korean {
            format!("칸이 너무 많아 여기에 싣지 않았습니다. 전체 값은 {csv}에 있습니다.")
        } else {
            format!("This table has too many cells to show here; every value is in {csv}.")
        }
    }

    /// The flag's footnote; `contributors`: the table is a sum flagged on its count of
    /// contributors too.
    pub fn unreliable_text(&self, mark: &str, share: f64, contributors: bool) -> String {
        let pct = share * 100.0;
        match (self.korean, contributors) {
            (true, false) => format!(
                "{mark}: 오차 범위가 공표 값의 {pct}%보다 커서 신뢰도가 낮은 값입니다. 해석에 주의하십시오."
            ),
            (true, true) => format!(
                "{mark}: 오차 범위가 공표 값의 {pct}%보다 크거나, 기여자 수의 오차 범위가 기여자 수의 {pct}%보다 커서 신뢰도가 낮은 값입니다. 해석에 주의하십시오."
            ),
            (false, false) => format!(
                "{mark}: the margin of error is above {pct}% of the published value: read with care."
            ),
            (false, true) => format!(
                "{mark}: the margin of error is above {pct}% of the published value, or that of its number of contributors is above {pct}% of that number: read with care."
            ),
        }
    }

    /// The suppressed marker's footnote; `contributors`: the table is a sum, suppressed on its
    /// count of contributors.
    pub fn suppressed_text(&self, marker: &str, contributors: bool) -> String {
        match (self.korean, contributors) {
            (true, false) => format!(
                "{marker}: 잡음을 더한 값이 공표 기준보다 작아 공개하지 않은 칸입니다. 실제 값이 작다는 뜻만은 아닙니다."
            ),
            (true, true) => format!(
                "{marker}: 잡음을 더한 기여자 수가 공표 기준보다 작아 공개하지 않은 칸입니다. 합계가 작다는 뜻이 아닙니다."
            ),
            (false, false) => format!(
                "{marker}: the noisy value was below the publication threshold, so the cell is not shown; it does not by itself mean that the true value is small."
            ),
            (false, true) => format!(
                "{marker}: the noisy number of contributors was below the publication threshold, so the cell is not shown; it does not mean that the sum is small."
            ),
        }
    }

    /// A sum's count of contributors: its cost, margin and threshold.
    pub fn contributors_text(&self, cost: &str, moe: i64, threshold: i64) -> String {
        if self.korean {
            format!(
                "기여자 수(합계에 기여한 보호 단위 수)도 잡음을 더해 측정했습니다({cost}, 오차 범위 ±{moe}). 기여자 수가 {threshold}보다 작은 칸은 공개하지 않으며, 합계 값으로는 결정하지 않습니다"
            )
        } else {
            format!(
                "the number of contributors (privacy units behind each sum) is measured with noise too ({cost}, margin ±{moe}); a cell with fewer than {threshold} is suppressed, never decided on the noisy sum"
            )
        }
    }

    /// An exact table's protection in the methodology.
    pub fn exact_method(
        &self,
        rule: &crate::output::PrimaryRule,
        interval_percent: f64,
        hidden: usize,
        margins: bool,
    ) -> String {
        let min_frequency = rule.min_frequency;
        if self.korean {
            let margins = if margins {
                "모든 소계·합계 포함"
            } else {
                "소계·합계 없음"
            };
            let mut rules = format!("보호 단위 {min_frequency} 미만인 칸");
            if let Some(d) = rule.dominance {
                rules.push_str(&format!(", 상위 {}개 단위가 값의 {}%를 넘는 칸", d.n, d.k));
            }
            if let Some(p) = rule.p_percent {
                rules.push_str(&format!(
                    ", 두 번째로 큰 기여자가 가장 큰 기여를 {p}% 이내로 추정할 수 있는 칸"
                ));
            }
            format!(
                "정확한 값(차분 프라이버시 아님), {margins}; {rules}과 그 값을 좁혀 알아낼 수 있게 하는 칸을 비공개({hidden}칸); 공표된 값으로 추론할 수 있는 비공개 칸의 범위가 값의 {interval_percent}%(최소 1) 이상 위아래로 열려 있음을 공격자 분석으로 확인"
            )
        } else {
            let margins = if margins {
                "with every margin"
            } else {
                "without margins"
            };
            let mut rules = format!("cells of fewer than {min_frequency} privacy units");
            match rule.dominance {
                Some(d) if d.n == 1 => rules.push_str(&format!(
                    ", cells whose largest unit makes more than {}% of them",
                    d.k
                )),
                Some(d) => rules.push_str(&format!(
                    ", cells whose {} largest units make more than {}% of them",
                    d.n, d.k
                )),
                None => {}
            }
            if let Some(p) = rule.p_percent {
                rules.push_str(&format!(
                    ", cells in which the second largest contributor could estimate the largest's contribution within {p}%"
                ));
            }
            format!(
                "exact values (not differentially private) {margins}; {rules}, and the cells that would narrow them down, are suppressed ({hidden} cells); an attacker's analysis of everything published confirms each small cell's range stays open by {interval_percent}% (at least 1) above and below it"
            )
        }
    }

    pub fn statistic_name(&self, s: &str) -> &'static str {
        match (self.korean, s) {
            (true, "count_units") => "보호 단위 수",
            (true, "count_rows") => "건수",
            (true, "sum") => "합계",
            (false, "count_units") => "count of privacy units",
            (false, "count_rows") => "count of records",
            (false, "sum") => "sum",
            _ => "",
        }
    }

    pub fn statistic_unit(&self, s: &str) -> &'static str {
        match (self.korean, s) {
            (true, "count_units") => "명",
            (true, "count_rows") => "건",
            (true, _) => "",
            (false, "count_units") => "persons",
            (false, "count_rows") => "records",
            (false, _) => "",
        }
    }

    pub fn mechanism_name(&self, m: &str) -> String {
        match (self.korean, m) {
            (true, "discrete gaussian") => "이산 가우스 잡음".into(),
            (true, "discrete laplace") => "이산 라플라스 잡음".into(),
            _ => m.to_string(),
        }
    }

    pub fn cells_per_unit(&self, c: u32) -> String {
        if self.korean {
            format!("보호 단위당 최대 {c}칸")
        } else {
            format!("at most {c} cell(s) per unit")
        }
    }

    pub fn rows_per_unit(&self, r: u32, c: u32) -> String {
        if self.korean {
            format!("보호 단위당 최대 {r}건, 칸당 {c}건")
        } else {
            format!("at most {r} record(s) per unit, {c} per cell")
        }
    }

    pub fn bounds_status(&self, status: &str) -> &'static str {
        match (self.korean, status) {
            (true, "enforced") => "자료에서 강제함",
            (true, _) => "신고된 값: 집계 자료라 강제할 수 없음",
            (false, "enforced") => "enforced on the records",
            (false, _) => "declared: pre-counted input, not enforced",
        }
    }

    pub fn clamped(&self, lo: i64, hi: i64) -> String {
        if self.korean {
            format!("; 각 값은 [{lo}, {hi}]로 제한")
        } else {
            format!("; each value clamped to [{lo}, {hi}]")
        }
    }

    /// What it means that `exact` (table titles) are published with exact values beside the
    /// differentially private tables of the same people.
    pub fn mixing_text(&self, exact: &[String]) -> String {
        let names = exact.join(", ");
        if self.korean {
            format!(
                "이 공표의 정확한 값의 표({names})는 차분 프라이버시로 보호된 표와 같은 사람들에 대한 것입니다. 차분 프라이버시의 보장은 정확한 값의 표가 드러내는 것에 더해서만 성립합니다. 두 가지를 함께 본 사람은 정확한 값의 표가 알려 주는 것과, 그 이상으로는 차분 프라이버시 표의 프라이버시 비용만큼만 더 알게 됩니다."
            )
        } else {
            format!(
                "The exact tables of this release ({names}) are about the same people as its differentially private tables. The differential privacy guarantee holds only on top of what the exact tables reveal: someone who uses both learns what the exact tables give away, and beyond that at most the differentially private tables' privacy cost."
            )
        }
    }

    pub fn budget_text(
        &self,
        unit: &str,
        charged: f64,
        total_after: f64,
        budget: &Budget,
    ) -> String {
        if budget.is_none() {
            return if self.korean {
                "이 자료에는 프라이버시 예산이 없습니다: 정확한 값의 표만 공표합니다 (예산 사용 없음)"
                    .to_string()
            } else {
                "this dataset has no privacy budget: it publishes exact tables only (nothing spent)"
                    .to_string()
            };
        }
        // The budget in its own unit; an (ε, δ) budget is spent in rho and stated as it is
        // written, without a remainder in rho (the ledger and `safestat budget` give it).
        let (cap, remaining) = match (unit, budget.rho, budget.epsilon, budget.delta) {
            ("rho", Some(r), _, _) => (format!("rho = {r}"), Some(r - total_after)),
            ("rho", None, Some(e), Some(d)) => (format!("ε = {e}, δ = {d:e}"), None),
            (_, _, Some(e), _) => (format!("ε = {e}"), Some(e - total_after)),
            _ => ("?".to_string(), None),
        };
        let rem = remaining.map(|r| format!("{:.4}", r.max(0.0)));
        if self.korean {
            let rem = rem.map(|r| format!("; 남은 예산 {r}")).unwrap_or_default();
            format!(
                "이번 공표 {unit} = {charged:.4}; 이 자료의 누적 사용 {unit} = {total_after:.4} / 전체 {cap}{rem}"
            )
        } else {
            let rem = rem.map(|r| format!("; remaining {r}")).unwrap_or_default();
            format!(
                "this release {unit} = {charged:.4}; spent on this dataset {unit} = {total_after:.4} of {cap}{rem}"
            )
        }
    }
}

/// When a release was made (the manifest's `created_at`, RFC 3339 in UTC), as its readers write a
/// date: in Korean the day in Korea (KST, UTC+9), `2026년 12월 3일`; in English the UTC time as
/// recorded. A time that does not parse is shown as it is.
pub fn made_on(created_at: &str, korean: bool) -> String {
    if !korean {
        return created_at.to_string();
    }
    let Ok(utc) = humantime::parse_rfc3339_weak(created_at) else {
        return created_at.to_string();
    };
    let kst = humantime::format_rfc3339_seconds(utc + std::time::Duration::from_secs(9 * 3600))
        .to_string();
    let n = |r: std::ops::Range<usize>| kst.get(r).and_then(|s| s.parse::<u32>().ok());
    match (n(0..4), n(5..7), n(8..10)) {
        (Some(y), Some(m), Some(d)) => format!("{y}년 {m}월 {d}일"),
        _ => created_at.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(epsilon: Option<f64>, rho: Option<f64>, delta: Option<f64>) -> Budget {
        Budget {
            epsilon,
            rho,
            delta,
        }
    }

    #[test]
    fn the_budget_is_stated_in_its_own_unit() {
        let en = &EN;
        assert_eq!(
            en.budget_text("rho", 0.385, 0.385, &budget(None, Some(1.0), None)),
            "this release rho = 0.3850; spent on this dataset rho = 0.3850 of rho = 1; remaining 0.6150"
        );
        assert_eq!(
            en.budget_text("epsilon", 0.5, 2.5, &budget(Some(3.0), None, None)),
            "this release epsilon = 0.5000; spent on this dataset epsilon = 2.5000 of ε = 3; remaining 0.5000"
        );
        // An (ε, δ) budget is spent in rho: no remainder in a unit the budget is not written in.
        assert_eq!(
            en.budget_text("rho", 0.1, 0.1, &budget(Some(4.0), None, Some(1e-7))),
            "this release rho = 0.1000; spent on this dataset rho = 0.1000 of ε = 4, δ = 1e-7"
        );
        assert!(
            KO.budget_text("rho", 0.1, 0.4, &budget(None, Some(1.0), None))
                .ends_with("남은 예산 0.6000")
        );
    }

    #[test]
    fn a_korean_date_is_the_day_in_korea() {
        assert_eq!(
            super::made_on("2026-12-03T08:57:47Z", true),
            "2026년 12월 3일"
        );
        // 20:00 UTC on the last day of the year is the next morning in Seoul.
        assert_eq!(
            super::made_on("2026-12-31T20:00:00Z", true),
            "2027년 1월 1일"
        );
        assert_eq!(
            super::made_on("2026-12-03T08:57:47Z", false),
            "2026-12-03T08:57:47Z"
        );
        assert_eq!(super::made_on("yesterday", true), "yesterday");
    }
}
