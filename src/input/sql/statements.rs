//! The SQL text an SQL input sends: written once here, from the plan alone, so that `safestat sql`
//! prints exactly what `release` sends and the ledger can record each statement's SHA-256.
//!
//! Nothing data-dependent is ever spliced into a statement: identifiers are quoted, numbers come
//! from the validated plan, and everything else (the secret key, the category arrays) travels as
//! bind parameters.
//!
//! ## Bounding in SQL: the CSV path's contract, restated
//! `input/csv/bounding.rs` keeps, per privacy unit, a uniform random subset of its contributions,
//! chosen by *bottom-k priorities*; the statements below compute the same thing with window
//! functions partitioned by the unit, so a distributed engine runs them where the unit's rows
//! live.
//! - `count_rows` / `sum` (`k` rows per unit, `m` per cell): every row gets the priority
//!   `sha256(key || identity)`; a unit keeps its `k` lowest-priority rows, and of those each cell
//!   keeps its `m` lowest. Sums add each kept row's value clamped to `[lo, hi]`.
//! - `count_units` (`c` cells per unit): every distinct (unit, cell) gets the priority
//!   `sha256(key || unit || cell)`; a unit is counted in its `c` lowest-priority cells.
//!
//! A unit whose rows all hold one value per dimension (byte for byte), and, for a sum, number at
//! most the cap, has no choice to make: every priority order counts it the same. Such units are
//! counted from one aggregate per unit, and only the other units' rows are ranked
//! (`Frame::with_free_units`): the cells are the same, and the sorts and windows run on those
//! rows alone. A `query` input is therefore evaluated twice per bounded table, in one snapshot.
//!
//! The key is 32 fresh random bytes per statement of `count_units` and per input for the rows
//! tables (which then keep the same rows when they have the same `k`, as in the CSV path), sent
//! as a bind parameter and never stored. SHA-256 under a secret key prefix is a pseudo-random
//! function of the identity, so the priorities are independent and uniform and nobody who lacks
//! the key can predict or steer them; the engine's `random()` is never used.
//!
//! A row's *identity* is its content: the text of every column the input's tables read (unit,
//! dimensions, summed columns, each `quote_nullable`d and joined by commas), followed by its
//! occurrence number among the unit's rows with the same content (`row_number()` over that
//! content). It is a function of the snapshot's data only (no physical row address such as
//! `ctid`, which a query has not got and a distributed engine does not keep unique), so it is
//! stable for the whole REPEATABLE READ transaction. Rows with identical content are
//! interchangeable, so how the engine numbers them cannot change any result, and the occurrence
//! number still gives each its own priority (without it, two identical rows would be kept or
//! dropped together and the choice would not be uniform).

use crate::input::Count;
use crate::policy::{Bound, Plan, Relation, Statistic};

/// Undeclared values of one dimension beyond this many are refused (map them in a `query`).
pub const MAX_UNDECLARED: usize = 10_000;

/// Every statement one SQL input's read sends, in order.
#[derive(Debug, Clone)]
pub struct InputStatements {
    /// `LIMIT 0`: the relation's columns and types, without reading a row.
    pub probe: String,
    /// Values of each dimension column that are not declared categories (and NULLs), per
    /// dimension, with their row counts. `None` when no table has a dimension.
    pub domain: Option<String>,
    /// Rows, distinct units, empty units, NULL summed values and a content fingerprint.
    pub totals: String,
    pub tables: Vec<TableStatement>,
    /// The plan's dimension indices this input's tables use, in the order of the domain
    /// statement's parameters.
    pub dims: Vec<usize>,
    /// The summed columns, in the order of the totals statement's NULL counts (read by the
    /// client, which only the `postgres` feature builds).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub sum_columns: Vec<String>,
}

/// One table's bounded aggregation.
#[derive(Debug, Clone)]
pub struct TableStatement {
    /// Index into the counts.
    pub table: usize,
    pub sql: String,
    /// Whether `$1` is the input's shared row key (rows tables) or the table's own key
    /// (`count_units`).
    pub shared_key: bool,
    /// An exact sum's second statement, with the same parameters: each unit with rows in
    /// several cells, as `(its rank among them, code per dimension..., its sum in the cell)`.
    pub spanning: Option<String>,
}

/// An identifier as SQL quotes it.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What every statement reads `FROM`: the quoted table name, or the query as a subquery (not a
/// CTE, which PostgreSQL before 12 materialises, and which a second reference materialises).
fn source(relation: &Relation) -> String {
    match relation {
        Relation::Table(parts) => {
            let name: Vec<String> = parts.iter().map(|p| ident(p)).collect();
            name.join(".")
        }
        Relation::Query(q) => format!("(\n{q}\n)"),
    }
}

/// `s."column"::text`.
fn text(column: &str) -> String {
    format!("s.{}::text", ident(column))
}

impl InputStatements {
    /// The statements for input `input` of `plan` and its `counts`. The input must be an SQL
    /// input.
    pub fn new(plan: &Plan, input: usize, counts: &[Count]) -> InputStatements {
        let relation = &plan.inputs[input]
            .sql
            .as_ref()
            .expect("an SQL input")
            .relation;
        let src = source(relation);
        let mut dims: Vec<usize> = Vec::new();
        let mut sum_columns: Vec<String> = Vec::new();
        for count in counts {
            for &d in &count.dims {
                if !dims.contains(&d) {
                    dims.push(d);
                }
            }
            if let Statistic::Sum { column, .. }
            | Statistic::Total {
                column: Some(column),
                ..
            } = &count.statistic
                && !sum_columns.contains(column)
            {
                sum_columns.push(column.clone());
            }
        }
        let unit = &plan.privacy_unit;
        let dim_names: Vec<&str> = dims
            .iter()
            .map(|&d| plan.dimensions[d].name.as_str())
            .collect();
        // The identity's columns: unit, dimensions, summed columns.
        let mut identity_columns: Vec<&str> = vec![unit.as_str()];
        identity_columns.extend(&dim_names);
        identity_columns.extend(sum_columns.iter().map(String::as_str));
        let identity = format!(
            "concat_ws(',', {})",
            identity_columns
                .iter()
                .map(|c| format!("quote_nullable({})", text(c)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let probe = format!("SELECT * FROM {src} s LIMIT 0");
        let domain = (!dims.is_empty()).then(|| domain_statement(&src, &dim_names));
        let totals = totals_statement(&src, unit, &sum_columns);
        let tables = counts
            .iter()
            .enumerate()
            .map(|(k, count)| table_statement(plan, (k, count), &src, &identity))
            .collect();
        InputStatements {
            probe,
            domain,
            totals,
            tables,
            dims,
            sum_columns,
        }
    }
}

/// `(dim, value, rows)` for every value of a dimension column that is NULL or not declared
/// (`$i` is dimension `i`'s declared categories), byte for byte as the CSV path compares them
/// (`COLLATE "C"`: a column's case- or accent-insensitive collation would otherwise find `Seoul`
/// declared as `seoul`; every statement maps values the same way). The rows are first counted
/// per combination of the dimensions' values, an aggregate PostgreSQL runs in parallel (grouping
/// sets it does not: one process then hashed every row once per dimension; see BENCHMARKS.md),
/// and then each combination's values are checked dimension by dimension.
fn domain_statement(src: &str, dims: &[&str]) -> String {
    let columns = dims
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{} COLLATE \"C\" AS v{i}", text(d)))
        .collect::<Vec<_>>()
        .join(", ");
    let positions = (1..=dims.len())
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let checks = (0..dims.len())
        .map(|i| {
            format!(
                "({i}, c.v{i}, c.v{i} IS NULL OR c.v{i} <> ALL(${}::text[]))",
                i + 1
            )
        })
        .collect::<Vec<_>>()
        .join(",\n  ");
    format!(
        "SELECT d.dim::int4 AS dim, d.value, sum(c.rows)::int8 AS rows\nFROM (\n  SELECT {columns}, count(*) AS rows\n  FROM {src} s\n  GROUP BY {positions}\n) c\nCROSS JOIN LATERAL (VALUES\n  {checks}\n) AS d(dim, value, undeclared)\nWHERE d.undeclared\nGROUP BY d.dim, d.value\nLIMIT {}",
        MAX_UNDECLARED + 1
    )
}

/// One row: rows, distinct units, rows with an empty or NULL unit, NULLs per summed column, and
/// the content fingerprint (the sum of each row's MD5 as a signed 64-bit number: order-free, so
/// the same rows in any physical order give the same fingerprint).
/// The distinct units come from their own hash aggregate (no sort); the rest from one scan.
fn totals_statement(src: &str, unit: &str, sums: &[String]) -> String {
    let mut columns = vec![
        "count(*)::int8 AS n".to_string(),
        format!(
            "count(*) FILTER (WHERE s.{} IS NULL OR {} COLLATE \"C\" = '')::int8 AS empty_units",
            ident(unit),
            text(unit)
        ),
    ];
    let mut out = vec!["t.n".to_string(), "u.units".into(), "t.empty_units".into()];
    for (i, c) in sums.iter().enumerate() {
        columns.push(format!(
            "count(*) FILTER (WHERE s.{} IS NULL)::int8 AS null{i}",
            ident(c)
        ));
        out.push(format!("t.null{i}"));
    }
    columns.push(
        "COALESCE(sum(('x' || substr(md5(s::text), 1, 16))::bit(64)::int8), 0) AS h".to_string(),
    );
    out.push("t.h::text".into());
    format!(
        "SELECT {2}\nFROM (\n  SELECT {0}\n  FROM {src} s\n) t,\n(\n  SELECT count(*)::int8 AS units\n  FROM (SELECT {1} COLLATE \"C\" AS u FROM {src} s GROUP BY 1) x\n  WHERE u IS NOT NULL AND u <> ''\n) u",
        columns.join(",\n         "),
        text(unit),
        out.join(", ")
    )
}

/// Table `t`'s bounded aggregation: `(code per dimension..., count, sum, contributors)` per
/// non-empty cell (a sum's contributors: the distinct units among the cell's kept rows).
/// Parameters: `$1` the key (bytea); per dimension `j` of the table, `$(3j+2)` the values
/// (text[]), `$(3j+3)` their codes (int4[]) and `$(3j+4)` the code of a NULL (int4, the
/// catch-all or NULL).
fn table_statement(
    plan: &Plan,
    (t, table): (usize, &Count),
    src: &str,
    identity: &str,
) -> TableStatement {
    let frame = Frame::new(plan, table, src);
    let (sql, shared_key, spanning) = match table.statistic.bound() {
        Bound::Whole => {
            let (sql, spanning) = frame.whole(table);
            (sql, false, Some(spanning))
        }
        Bound::Cells(max_cells_per_unit) => (frame.cells(max_cells_per_unit), false, None),
        Bound::Rows { per_unit, per_cell } => (
            frame.rows(table, identity, (per_unit, per_cell)),
            true,
            None,
        ),
    };
    TableStatement {
        table: t,
        sql,
        shared_key,
        spanning,
    }
}

/// Dimension `j`'s code for the text `value`, compared byte for byte: the column `c{j}` and the
/// join to the dimension's values and codes (`$(3j+2)`, `$(3j+3)`; a NULL's code `$(3j+4)`).
fn code_of(j: usize, value: &str) -> (String, String) {
    let (values, codes_at, null_at) = (3 * j + 2, 3 * j + 3, 3 * j + 4);
    (
        format!("COALESCE(m{j}.c, ${null_at}::int4) AS c{j}"),
        format!(
            "\n  LEFT JOIN unnest(${values}::text[], ${codes_at}::int4[]) AS m{j}(v, c) ON m{j}.v = {value} COLLATE \"C\""
        ),
    )
}

/// What a bounded table keeps of a unit with no choice to make (see
/// [`Frame::with_free_units`]): the unit once, or up to `cap` of its rows, or (a sum) its rows'
/// clamped values, `value` being one row's.
enum Kept {
    Units,
    Rows { cap: u32 },
    Sum { cap: u32, value: String },
}

/// What every table's statement is built from: the columns its rows are read as (the unit `u`
/// and one code `c{j}` per dimension), the joins that map values to codes, and the cells'
/// columns in the forms the statements use.
struct Frame {
    select: Vec<String>,
    joins: String,
    src: String,
    /// The unit's column and each dimension's column, as text.
    unit: String,
    values: Vec<String>,
    /// The code columns, `c0, c1, ...` (empty for a table of no dimension).
    codes: Vec<String>,
    /// The code columns and a comma, to lead a `SELECT`'s columns (empty without dimensions).
    leading: String,
    /// `GROUP BY` the code columns (empty without dimensions).
    group_by: String,
}

impl Frame {
    fn new(plan: &Plan, table: &Count, src: &str) -> Frame {
        let codes: Vec<String> = (0..table.dims.len()).map(|j| format!("c{j}")).collect();
        // The unit and the identity are only partitioned and hashed, never shown in order: byte
        // order (`COLLATE "C"`) sorts them fastest and the same on every server.
        let mut select = vec![format!("{} COLLATE \"C\" AS u", text(&plan.privacy_unit))];
        let values: Vec<String> = table
            .dims
            .iter()
            .map(|&d| text(&plan.dimensions[d].name))
            .collect();
        let mut joins = String::new();
        for (j, value) in values.iter().enumerate() {
            let (column, join) = code_of(j, value);
            select.push(column);
            joins.push_str(&join);
        }
        let mut frame = Frame {
            select,
            joins,
            src: src.to_string(),
            unit: text(&plan.privacy_unit),
            values,
            codes,
            leading: String::new(),
            group_by: String::new(),
        };
        frame.leading = frame.with_cells("", ", ");
        frame.group_by = frame.with_cells("\nGROUP BY ", "");
        frame
    }

    /// The code columns between `prefix` and `suffix`, or nothing for a table of no dimension.
    fn with_cells(&self, prefix: &str, suffix: &str) -> String {
        if self.codes.is_empty() {
            String::new()
        } else {
            format!("{prefix}{}{suffix}", self.codes.join(", "))
        }
    }

    /// The rows' common table expression `r`, after the expressions `before` (each with its
    /// comma and line break, or nothing) and with `filter` (a `WHERE` clause or nothing).
    fn rows_read(&self, before: &str, filter: &str) -> String {
        format!(
            "WITH {before}r AS (\n  SELECT {}\n  FROM {} s{}{filter}\n)",
            self.select.join(",\n         "),
            self.src,
            self.joins
        )
    }

    /// A bounded table's statement in two parts: the units that have no choice to make are
    /// counted from one aggregate per unit (`safestat_units`, a name no input's relation is
    /// expected to have: the statement reads the relation again after it, where a table of the
    /// same name would be hidden), and only the rows of the others go through the ranking that
    /// `ranked` writes (given the rows' common table expression, it returns the further
    /// expressions and the `SELECT` of the cells as `n`, `s`, `w`). A unit has no choice when all
    /// its rows hold one value per dimension, byte for byte (so one cell), and, for a sum, when it
    /// has at most `cap` rows: it is then counted in that cell whatever the priorities, exactly
    /// as the ranking would count it (a count of rows keeps `min(rows, cap)` of them there, a sum
    /// all of them). The ranking of the other units' rows is unchanged (it partitions by unit),
    /// so the cells are the same as if every unit were ranked, at the cost of an aggregate by
    /// unit instead of sorts and windows over every row (see BENCHMARKS.md, issue 28).
    fn with_free_units(
        &self,
        kept: Kept,
        ranked: impl FnOnce(String) -> (String, String),
    ) -> String {
        let mut columns = vec![
            format!("{} COLLATE \"C\" AS u", self.unit),
            "count(*) AS n".to_string(),
        ];
        let mut one_choice: Vec<String> = Vec::new();
        for (j, d) in self.values.iter().enumerate() {
            let (lo, hi) = (
                format!("min({d} COLLATE \"C\")"),
                format!("max({d} COLLATE \"C\")"),
            );
            one_choice.push(format!(
                "({lo} = {hi} AND count({d}) = count(*) OR count({d}) = 0)"
            ));
            columns.push(format!("{lo} AS lo{j}"));
        }
        if let Kept::Sum { cap, value } = &kept {
            one_choice.push(format!("count(*) <= {cap}"));
            columns.push(format!("sum({value}) AS v"));
        }
        columns.push(if one_choice.is_empty() {
            "true AS free".to_string()
        } else {
            format!("COALESCE({}, false) AS free", one_choice.join(" AND "))
        });
        let units = format!(
            "safestat_units AS (\n  SELECT {}\n  FROM {} s\n  GROUP BY 1\n),\n",
            columns.join(",\n         "),
            self.src
        );
        let (ranking, heavy) = ranked(self.rows_read(
            &units,
            &format!(
                "\n  WHERE {} COLLATE \"C\" IN (SELECT u FROM safestat_units WHERE NOT free)",
                self.unit
            ),
        ));
        let los: Vec<String> = (0..self.codes.len()).map(|j| format!("lo{j}")).collect();
        let mut free_select: Vec<String> = Vec::new();
        let mut free_joins = String::new();
        for j in 0..self.codes.len() {
            let (column, join) = code_of(j, &format!("f.lo{j}"));
            free_select.push(column);
            free_joins.push_str(&join);
        }
        let mut per_free = los.clone();
        per_free.push("count(*) AS units".to_string());
        let (n, s, w) = match &kept {
            Kept::Units => ("f.units", "NULL::text", "NULL::int8"),
            Kept::Rows { cap } => {
                per_free.push(format!("sum(LEAST(n, {cap})) AS rows"));
                ("f.rows", "NULL::text", "NULL::int8")
            }
            Kept::Sum { .. } => {
                per_free.extend(["sum(n) AS rows".to_string(), "sum(v) AS v".into()]);
                ("f.rows", "f.v::text", "f.units")
            }
        };
        free_select.extend([
            format!("{n}::int8 AS n"),
            format!("{s} AS s"),
            format!("{w} AS w"),
        ]);
        let free_group = if los.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", los.join(", "))
        };
        let heavy = heavy.replace('\n', "\n  ");
        format!(
            "{ranking},\nheavy AS (\n  {heavy}\n),\nfree AS (\n  SELECT {}\n  FROM (SELECT {} FROM safestat_units WHERE free{free_group}) f{free_joins}\n)\nSELECT {}COALESCE(sum(n), 0)::int8, sum(s::numeric)::text, sum(w)::int8\nFROM (SELECT * FROM heavy UNION ALL SELECT * FROM free) x{}",
            free_select.join(",\n         "),
            per_free.join(", "),
            self.leading,
            self.group_by
        )
    }

    /// An exact sum or count of rows: every row counts, and the key is not used (an empty one is
    /// sent). Per unit and cell its sum (`w`), per unit its cells (`n`): a cell's units are all
    /// of its units, its largest sums those of the units in no other cell; the second statement
    /// gives those apart, each unit in several cells with its sum in each.
    fn whole(mut self, table: &Count) -> (String, String) {
        let (column, largest) = match &table.statistic {
            Statistic::Total { column, largest } => (column, *largest),
            _ => unreachable!("only an exact sum keeps every row"),
        };
        self.select.push(match column {
            Some(column) => format!("s.{}::int8 AS v", ident(column)),
            None => "1::int8 AS v".to_string(),
        });
        let with = format!(
            "{},\nw AS (SELECT u{}, sum(v) AS v, min(v) AS lowest FROM r GROUP BY u{}),\nn AS (SELECT u, count(*) AS k FROM w GROUP BY u)",
            self.rows_read("", "\n  WHERE length($1::bytea) = 0"),
            self.with_cells(", ", ""),
            self.with_cells(", ", ""),
        );
        let (leading, group_by) = (&self.leading, &self.group_by);
        let sql = format!(
            "{with}\nSELECT {leading}count(*)::int8, sum(v)::text, count(*)::int8, array_to_string((array_agg(v ORDER BY v DESC) FILTER (WHERE k = 1))[1:{largest}], ','), min(lowest)::int8\nFROM w JOIN n USING (u){group_by}"
        );
        let spanning = format!(
            "{with}\nSELECT dense_rank() OVER (ORDER BY u)::int8, {leading}v::text\nFROM w JOIN n USING (u)\nWHERE k > 1"
        );
        (sql, spanning)
    }

    /// A count of units, each kept in at most `max_cells_per_unit` of its cells, chosen by keyed
    /// priority (rows of one cell share its priority).
    fn cells(&self, max_cells_per_unit: u32) -> String {
        let cell_text = self
            .codes
            .iter()
            .map(|c| format!(" || ',' || {c}"))
            .collect::<String>();
        let prio = format!("sha256($1::bytea || convert_to(quote_literal(u){cell_text}, 'UTF8'))");
        let (leading, group_by, cells) = (&self.leading, &self.group_by, self.with_cells(", ", ""));
        self.with_free_units(Kept::Units, |r| {
            let (ranking, kept) = if max_cells_per_unit == 1 {
                // One cell per unit: the unit's lowest-priority row names it, one sort instead
                // of a DISTINCT and a window.
                (
                    format!(
                        "{r},\nk AS (\n  SELECT DISTINCT ON (u) u{cells}\n  FROM r\n  ORDER BY u, {prio}\n)"
                    ),
                    String::new(),
                )
            } else {
                (
                    format!(
                        "{r},\nd AS (SELECT DISTINCT u{cells} FROM r),\nk AS (\n  SELECT d.*, row_number() OVER (PARTITION BY u ORDER BY {prio}) AS ru\n  FROM d\n)"
                    ),
                    format!("\nWHERE ru <= {max_cells_per_unit}"),
                )
            };
            let counted = format!(
                "SELECT {leading}count(*) AS n, NULL::text AS s, NULL::int8 AS w\nFROM k{kept}{group_by}"
            );
            (ranking, counted)
        })
    }

    /// A count or DP sum of rows: each unit keeps at most `per_unit` rows, and at most
    /// `per_cell` in a cell, chosen by keyed priority of the row's identity and occurrence (so
    /// identical rows are each kept or not on their own).
    fn rows(mut self, table: &Count, identity: &str, (per_unit, per_cell): (u32, u32)) -> String {
        let (sum, value) = match &table.statistic {
            Statistic::Sum { column, lo, hi, .. } => {
                let value = format!(
                    "LEAST(GREATEST(s.{}::int8, '{lo}'::int8), '{hi}'::int8)",
                    ident(column)
                );
                self.select.push(format!("{value} AS v"));
                ("sum(v)::text AS s, count(DISTINCT u) AS w", Some(value))
            }
            _ => ("NULL::text AS s, NULL::int8 AS w", None),
        };
        self.select.push(format!("{identity} COLLATE \"C\" AS id"));
        // The per-cell cap binds only when it is below the per-unit one.
        let (m_window, m_filter) = if per_cell < per_unit {
            (
                format!(
                    ",\nm AS (\n  SELECT k.*, row_number() OVER (PARTITION BY u{} ORDER BY prio) AS rc\n  FROM k\n  WHERE ru <= {per_unit}\n)",
                    self.with_cells(", ", "")
                ),
                format!("FROM m\nWHERE rc <= {per_cell}"),
            )
        } else {
            (String::new(), format!("FROM k\nWHERE ru <= {per_unit}"))
        };
        let (leading, group_by) = (&self.leading, &self.group_by);
        let cap = per_unit.min(per_cell);
        let kept = match value {
            Some(value) => Kept::Sum { cap, value },
            None => Kept::Rows { cap },
        };
        self.with_free_units(kept, |r| {
            (
                format!(
                    "{r},\no AS (SELECT r.*, row_number() OVER (PARTITION BY u, id) AS occ FROM r),\np AS (SELECT o.*, sha256($1::bytea || convert_to(id || ',' || occ, 'UTF8')) AS prio FROM o),\nk AS (SELECT p.*, row_number() OVER (PARTITION BY u ORDER BY prio) AS ru FROM p){m_window}"
                ),
                format!("SELECT {leading}count(*) AS n, {sum}\n{m_filter}{group_by}"),
            )
        })
    }
}

/// The statements that set up the transaction, before [`InputStatements`]'s.
pub(super) fn setup_statements(timeout_seconds: u64) -> [String; 3] {
    [
        format!("SET LOCAL statement_timeout = {}", timeout_seconds * 1000),
        "SELECT version()".to_string(),
        "SELECT txid_current_snapshot()::text".to_string(),
    ]
}
