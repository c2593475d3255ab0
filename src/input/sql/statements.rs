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
//! Many units have no choice to make, and every priority order counts them the same: a unit
//! whose rows all hold one value per dimension (byte for byte), and, for a sum, number at most
//! the cap; for `count_rows`, also a unit of at most `k` rows in any cells. Such units are
//! counted from one aggregate per unit (per unit and cell for `count_rows`), and only the other
//! units' rows are ranked (`Frame::with_free_units`): the cells are the same, and the sorts and
//! windows run on those rows alone. A `query` input is therefore evaluated twice per bounded
//! table, in one snapshot. (A sum's units counted per cell too, when each cell keeps all their
//! rows, made the benchmark's sum slower: BENCHMARKS.md, issue 28.)
//! Spark has no snapshot, and evaluates a common table expression afresh at each use: there
//! every unit is ranked, and each statement reads the relation once.
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
use crate::policy::{Bound, Engine, Plan, Relation, Statistic};

/// Undeclared values of one dimension beyond this many are refused (map them in a `query`).
pub const MAX_UNDECLARED: usize = 10_000;

/// How an engine spells the few things SQL engines write differently. PostgreSQL's text is the
/// reference (its statements are byte for byte what they were before Spark came); Spark SQL's
/// differs only where it must: identifiers in backticks, casts as `CAST`, named parameters, a
/// cast to `STRING` that already compares byte for byte (`UTF8_BINARY`), `sha2` for SHA-256,
/// map lookups instead of joins to parameter arrays, and ordered windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Spark,
}

/// A statement's parameter: the key, a dimension's declared categories (the domain check), or a
/// table's dimension `j`'s values, their codes and the code of a NULL.
#[derive(Debug, Clone, Copy)]
pub enum Param {
    Key,
    Declared(usize),
    Values(usize),
    Codes(usize),
    Null(usize),
}

/// A type a statement casts to.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Int8,
    Text,
    Numeric,
}

impl Dialect {
    pub fn of(engine: Engine) -> Dialect {
        match engine {
            Engine::Postgres => Dialect::Postgres,
            Engine::Spark => Dialect::Spark,
        }
    }

    /// An identifier as the engine quotes it.
    pub fn ident(self, name: &str) -> String {
        match self {
            Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            Dialect::Spark => format!("`{}`", name.replace('`', "``")),
        }
    }

    /// `s.column` as text.
    fn text(self, column: &str) -> String {
        self.cast(&format!("s.{}", self.ident(column)), Ty::Text)
    }

    /// What follows a text expression so that it compares byte for byte, as the CSV path
    /// compares: PostgreSQL's `COLLATE "C"` (a column's case- or accent-insensitive collation
    /// would otherwise find `Seoul` declared as `seoul`); nothing in Spark, whose cast to
    /// `STRING` has the byte-order collation `UTF8_BINARY`.
    fn bytewise(self) -> &'static str {
        match self {
            Dialect::Postgres => " COLLATE \"C\"",
            Dialect::Spark => "",
        }
    }

    fn cast(self, e: &str, ty: Ty) -> String {
        match self {
            Dialect::Postgres => {
                let ty = match ty {
                    Ty::Int8 => "int8",
                    Ty::Text => "text",
                    Ty::Numeric => "numeric",
                };
                format!("{e}::{ty}")
            }
            Dialect::Spark => {
                let ty = match ty {
                    Ty::Int8 => "BIGINT",
                    Ty::Text => "STRING",
                    Ty::Numeric => "DECIMAL(38,0)",
                };
                format!("CAST({e} AS {ty})")
            }
        }
    }

    /// A parameter as the statement text names it: PostgreSQL's are positional (`$1` the key;
    /// per dimension `j` of a table `$(3j+2)`, `$(3j+3)`, `$(3j+4)`; the domain check's `$(i+1)`),
    /// Spark's named.
    pub fn param(self, p: Param) -> String {
        match (self, p) {
            (Dialect::Postgres, Param::Key) => "$1".to_string(),
            (Dialect::Postgres, Param::Declared(i)) => format!("${}", i + 1),
            (Dialect::Postgres, Param::Values(j)) => format!("${}", 3 * j + 2),
            (Dialect::Postgres, Param::Codes(j)) => format!("${}", 3 * j + 3),
            (Dialect::Postgres, Param::Null(j)) => format!("${}", 3 * j + 4),
            (Dialect::Spark, Param::Key) => ":key".to_string(),
            (Dialect::Spark, Param::Declared(i)) => format!(":declared{i}"),
            (Dialect::Spark, Param::Values(j)) => format!(":values{j}"),
            (Dialect::Spark, Param::Codes(j)) => format!(":codes{j}"),
            (Dialect::Spark, Param::Null(j)) => format!(":null{j}"),
        }
    }

    /// The key parameter, typed where the engine needs it.
    fn key(self) -> String {
        match self {
            Dialect::Postgres => "$1::bytea".to_string(),
            Dialect::Spark => self.param(Param::Key),
        }
    }

    /// The keyed priority of a text: SHA-256 of the key followed by the text's UTF-8 bytes
    /// (Spark's as hexadecimal digits, which order as the bytes do).
    fn prf(self, text: &str) -> String {
        match self {
            Dialect::Postgres => format!("sha256({} || convert_to({text}, 'UTF8'))", self.key()),
            Dialect::Spark => format!("sha2(concat({}, encode({text}, 'UTF-8')), 256)", self.key()),
        }
    }

    /// `sum(e)` where it cannot wrap: PostgreSQL sums 64-bit integers as `numeric`; Spark would
    /// stop at 64 bits.
    fn wide_sum(self, e: &str) -> String {
        match self {
            Dialect::Postgres => format!("sum({e})"),
            Dialect::Spark => format!("sum({})", self.cast(e, Ty::Numeric)),
        }
    }
}

/// Every statement one SQL input's read sends, in order.
#[derive(Debug, Clone)]
pub struct InputStatements {
    pub dialect: Dialect,
    /// `LIMIT 0`: the relation's columns and types, without reading a row.
    pub probe: String,
    /// Values of each dimension column that are not declared categories (and NULLs), per
    /// dimension, with their row counts. `None` when no table has a dimension.
    pub domain: Option<String>,
    /// Rows, distinct units (when asked for), empty units, NULL summed values and a content
    /// fingerprint (then, when asked for, PostgreSQL's fingerprint in the legacy scheme).
    pub totals: String,
    /// What the totals statement was asked for beyond what every read needs (read by the
    /// clients, which only the `postgres` and `spark` features build).
    #[cfg_attr(not(any(feature = "postgres", feature = "spark")), allow(dead_code))]
    pub asked: Asked,
    pub tables: Vec<TableStatement>,
    /// The plan's dimension indices this input's tables use, in the order of the domain
    /// statement's parameters.
    pub dims: Vec<usize>,
    /// The summed columns, in the order of the totals statement's NULL counts (read by the
    /// client, which only the `postgres` feature builds).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub sum_columns: Vec<String>,
}

/// What a read's totals statement counts beyond rows, empty units, NULL sums and the fingerprint.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked {
    /// The fingerprint in the legacy scheme too ([`crate::hash::Fingerprint`]; PostgreSQL: an
    /// MD5 digest, Spark: nothing more, its scheme is unchanged).
    pub legacy: bool,
    /// The distinct units, for `check` (a grouping of every row by unit, which a release does
    /// not need: BENCHMARKS.md, issue 28).
    pub units: bool,
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

/// What every statement reads `FROM`: the quoted table name, or the query as a subquery (not a
/// CTE, which PostgreSQL before 12 materialises, and which a second reference materialises).
fn source(dialect: Dialect, relation: &Relation) -> String {
    match relation {
        Relation::Table(parts) => {
            let name: Vec<String> = parts.iter().map(|p| dialect.ident(p)).collect();
            name.join(".")
        }
        Relation::Query(q) => format!("(\n{q}\n)"),
    }
}

impl InputStatements {
    /// The statements for input `input` of `plan` and its `counts`, the totals with what is
    /// `asked`. The input must be an SQL input.
    pub fn new(plan: &Plan, input: usize, counts: &[Count], asked: Asked) -> InputStatements {
        let sql = plan.inputs[input].sql.as_ref().expect("an SQL input");
        let dialect = Dialect::of(sql.engine);
        let src = source(dialect, &sql.relation);
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
        // Quoted and joined (PostgreSQL) or a JSON array (Spark): either way one text per
        // content, NULLs apart from any text.
        let identity = match dialect {
            Dialect::Postgres => format!(
                "concat_ws(',', {})",
                identity_columns
                    .iter()
                    .map(|c| format!("quote_nullable({})", dialect.text(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Dialect::Spark => format!(
                "to_json(array({}))",
                identity_columns
                    .iter()
                    .map(|c| dialect.text(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let probe = format!("SELECT * FROM {src} s LIMIT 0");
        let domain = (!dims.is_empty()).then(|| domain_statement(dialect, &src, &dim_names));
        let totals = totals_statement(dialect, &src, unit, &sum_columns, asked);
        let tables = counts
            .iter()
            .enumerate()
            .map(|(k, count)| table_statement(plan, dialect, (k, count), &src, &identity))
            .collect();
        InputStatements {
            dialect,
            probe,
            domain,
            totals,
            asked,
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
/// and then each combination's values are checked dimension by dimension (Spark: the checks
/// as an array of structs, `inline`d).
fn domain_statement(dialect: Dialect, src: &str, dims: &[&str]) -> String {
    let columns = dims
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{}{} AS v{i}", dialect.text(d), dialect.bytewise()))
        .collect::<Vec<_>>()
        .join(", ");
    let positions = (1..=dims.len())
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if dialect == Dialect::Spark {
        let checks = (0..dims.len())
            .map(|i| {
                format!(
                    "named_struct('dim', {i}, 'value', c.v{i}, 'undeclared', c.v{i} IS NULL OR NOT array_contains({}, c.v{i}))",
                    dialect.param(Param::Declared(i))
                )
            })
            .collect::<Vec<_>>()
            .join(",\n  ");
        return format!(
            "SELECT CAST(d.dim AS INT) AS dim, d.value, CAST(sum(c.rows) AS BIGINT) AS rows\nFROM (\n  SELECT {columns}, count(*) AS rows\n  FROM {src} s\n  GROUP BY {positions}\n) c\nLATERAL VIEW inline(array(\n  {checks}\n)) d AS dim, value, undeclared\nWHERE d.undeclared\nGROUP BY d.dim, d.value\nLIMIT {}",
            MAX_UNDECLARED + 1
        );
    }
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

/// One row: rows, distinct units (if asked), rows with an empty or NULL unit, NULLs per summed
/// column, and
/// the content fingerprint: PostgreSQL's is the sum of each row's text's 64-bit
/// `hashtextextended` (order-free, so the same rows in any physical order give the same
/// fingerprint; its text compared byte for byte whatever the database's collation; the row as
/// `ROW(s.*)`, since a bare `s` would name a column called `s` before the row), and with
/// `legacy` then the sum of each row's MD5 as a signed 64-bit number (the scheme before
/// 2026-12-05, nearly three times as slow: BENCHMARKS.md, issue 28).
/// The distinct units come from their own hash aggregate (no sort); the rest from one scan.
/// Without `units`, the statement is that one scan.
/// Spark's fingerprint is the sum of the `xxhash64` of each row's JSON text (which names the
/// columns that are not NULL, so a value moved between columns changes it), as a decimal; its
/// scheme has not changed, so it has no legacy column.
fn totals_statement(
    dialect: Dialect,
    src: &str,
    unit: &str,
    sums: &[String],
    asked: Asked,
) -> String {
    let d = dialect;
    let count_if = |condition: String, name: String| {
        format!(
            "{} AS {name}",
            d.cast(&format!("count(*) FILTER (WHERE {condition})"), Ty::Int8)
        )
    };
    let mut columns = vec![
        format!("{} AS n", d.cast("count(*)", Ty::Int8)),
        count_if(
            format!(
                "s.{} IS NULL OR {}{} = ''",
                d.ident(unit),
                d.text(unit),
                d.bytewise()
            ),
            "empty_units".into(),
        ),
    ];
    let mut out = vec!["t.n".to_string()];
    if asked.units {
        out.push("u.units".into());
    }
    out.push("t.empty_units".into());
    for (i, c) in sums.iter().enumerate() {
        columns.push(count_if(
            format!("s.{} IS NULL", d.ident(c)),
            format!("null{i}"),
        ));
        out.push(format!("t.null{i}"));
    }
    columns.push(match d {
        Dialect::Postgres => {
            "COALESCE(sum(hashtextextended(ROW(s.*)::text COLLATE \"C\", 0)), 0) AS h".to_string()
        }
        Dialect::Spark => {
            "COALESCE(sum(CAST(xxhash64(to_json(struct(*))) AS DECIMAL(38,0))), 0) AS h".to_string()
        }
    });
    out.push(d.cast("t.h", Ty::Text));
    if asked.legacy && d == Dialect::Postgres {
        columns.push(
            "COALESCE(sum(('x' || substr(md5(s::text), 1, 16))::bit(64)::int8), 0) AS h_legacy"
                .to_string(),
        );
        out.push(d.cast("t.h_legacy", Ty::Text));
    }
    let units = if asked.units {
        format!(
            ",\n(\n  SELECT {} AS units\n  FROM (SELECT {}{} AS u FROM {src} s GROUP BY 1) x\n  WHERE u IS NOT NULL AND u <> ''\n) u",
            d.cast("count(*)", Ty::Int8),
            d.text(unit),
            d.bytewise(),
        )
    } else {
        String::new()
    };
    format!(
        "SELECT {}\nFROM (\n  SELECT {}\n  FROM {src} s\n) t{units}",
        out.join(", "),
        columns.join(",\n         "),
    )
}

/// Table `t`'s bounded aggregation: `(code per dimension..., count, sum, contributors)` per
/// non-empty cell (a sum's contributors: the distinct units among the cell's kept rows).
/// Parameters: `$1` the key (bytea); per dimension `j` of the table, `$(3j+2)` the values
/// (text[]), `$(3j+3)` their codes (int4[]) and `$(3j+4)` the code of a NULL (int4, the
/// catch-all or NULL).
fn table_statement(
    plan: &Plan,
    dialect: Dialect,
    (t, table): (usize, &Count),
    src: &str,
    identity: &str,
) -> TableStatement {
    let frame = Frame::new(plan, dialect, table, src);
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
/// join to the dimension's values and codes (`$(3j+2)`, `$(3j+3)`; a NULL's code `$(3j+4)`), or
/// in Spark a lookup in the map of values to codes (no join).
fn code_of(dialect: Dialect, j: usize, value: &str) -> (String, String) {
    let [values, codes, null] =
        [Param::Values(j), Param::Codes(j), Param::Null(j)].map(|p| dialect.param(p));
    match dialect {
        Dialect::Postgres => (
            format!("COALESCE(m{j}.c, {null}::int4) AS c{j}"),
            format!(
                "\n  LEFT JOIN unnest({values}::text[], {codes}::int4[]) AS m{j}(v, c) ON m{j}.v = {value} COLLATE \"C\""
            ),
        ),
        Dialect::Spark => (
            format!(
                "COALESCE(try_element_at(map_from_arrays({values}, {codes}), {value}), {null}) AS c{j}"
            ),
            String::new(),
        ),
    }
}

/// What a bounded table keeps of a unit with no choice to make (see
/// [`Frame::with_free_units`]): the unit once, or up to `per_cell` of its rows in each cell and
/// `per_unit` in all, or (a sum) its rows' clamped values, `value` being one row's.
enum Kept {
    Units,
    Rows { per_unit: u32, per_cell: u32 },
    Sum { cap: u32, value: String },
}

/// What every table's statement is built from: the columns its rows are read as (the unit `u`
/// and one code `c{j}` per dimension), the joins that map values to codes, and the cells'
/// columns in the forms the statements use.
struct Frame {
    dialect: Dialect,
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
    fn new(plan: &Plan, dialect: Dialect, table: &Count, src: &str) -> Frame {
        let codes: Vec<String> = (0..table.dims.len()).map(|j| format!("c{j}")).collect();
        // The unit and the identity are only partitioned and hashed, never shown in order: byte
        // order (`COLLATE "C"`) sorts them fastest and the same on every server.
        let unit = dialect.text(&plan.privacy_unit);
        let mut select = vec![format!("{unit}{} AS u", dialect.bytewise())];
        let values: Vec<String> = table
            .dims
            .iter()
            .map(|&d| dialect.text(&plan.dimensions[d].name))
            .collect();
        let mut joins = String::new();
        for (j, value) in values.iter().enumerate() {
            let (column, join) = code_of(dialect, j, value);
            select.push(column);
            joins.push_str(&join);
        }
        let mut frame = Frame {
            dialect,
            select,
            joins,
            src: src.to_string(),
            unit,
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
    /// Spark's rows are sent to their unit's partition once, here: every later window and
    /// aggregate partitions by the unit and more (by unit and identity, by unit and cell), which
    /// that partitioning already satisfies, so each statement shuffles its rows once (it
    /// shuffled them twice, and the `count_units` statement took 36 s instead of 47 on 10
    /// million rows; BENCHMARKS.md, issue 28).
    fn rows_read(&self, before: &str, filter: &str) -> String {
        let hint = match self.dialect {
            Dialect::Postgres => "",
            Dialect::Spark => "/*+ REPARTITION(u) */ ",
        };
        format!(
            "WITH {before}r AS (\n  SELECT {hint}{}\n  FROM {} s{}{filter}\n)",
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
    /// as the ranking would count it (a sum keeps all its rows). A count of rows asks more of
    /// its units, per cell ([`Frame::free_cells`]). The ranking of the other units' rows is
    /// unchanged (it partitions by unit), so the cells are the same as if every unit were
    /// ranked, at the cost of an aggregate by unit (or by unit and cell) instead of sorts and
    /// windows over every row (see BENCHMARKS.md, issue 28).
    fn with_free_units(
        &self,
        kept: Kept,
        ranked: impl FnOnce(String) -> (String, String),
    ) -> String {
        let dialect = self.dialect;
        let bytewise = dialect.bytewise();
        let totals = format!(
            "SELECT {}{}, {}, {}",
            self.leading,
            dialect.cast("COALESCE(sum(n), 0)", Ty::Int8),
            dialect.cast(
                &format!("sum({})", dialect.cast("s", Ty::Numeric)),
                Ty::Text
            ),
            dialect.cast("sum(w)", Ty::Int8),
        );
        if dialect == Dialect::Spark {
            // Spark evaluates a common table expression once per use, each a fresh read of the
            // relation: `safestat_units` read twice could call a unit free in one read and not in
            // the other, and count it twice. Every unit is ranked instead, from one read.
            let (ranking, heavy) = ranked(self.rows_read("", ""));
            let heavy = heavy.replace('\n', "\n  ");
            return format!(
                "{ranking},\nheavy AS (\n  {heavy}\n)\n{totals}\nFROM heavy x{}",
                self.group_by
            );
        }
        let (before, with_choice, free) = match kept {
            Kept::Rows { per_unit, per_cell } => self.free_cells(per_unit, per_cell),
            kept => self.free_units(&kept),
        };
        let (ranking, heavy) = ranked(self.rows_read(
            &before,
            &format!("\n  WHERE {}{bytewise} IN ({with_choice})", self.unit),
        ));
        format!(
            "{ranking},\nheavy AS (\n  {}\n),\nfree AS (\n  {free}\n)\n{totals}\nFROM (SELECT * FROM heavy UNION ALL SELECT * FROM free) x{}",
            heavy.replace('\n', "\n  "),
            self.group_by
        )
    }

    /// The units with no choice of a count of units or a sum, from one aggregate per unit
    /// ([`Frame::units_aggregate`]): the common table expressions before the rows, the units
    /// with a choice, and the `SELECT` of the others' cells.
    fn free_units(&self, kept: &Kept) -> (String, String, String) {
        let dialect = self.dialect;
        let los: Vec<String> = (0..self.codes.len()).map(|j| format!("lo{j}")).collect();
        let mut free_select: Vec<String> = Vec::new();
        let mut free_joins = String::new();
        for j in 0..self.codes.len() {
            let (column, join) = code_of(dialect, j, &format!("f.lo{j}"));
            free_select.push(column);
            free_joins.push_str(&join);
        }
        let mut per_free = los.clone();
        per_free.push("count(*) AS units".to_string());
        let (n, s, w) = match kept {
            Kept::Sum { .. } => {
                per_free.extend(["sum(n) AS rows".to_string(), "sum(v) AS v".into()]);
                (
                    "f.rows",
                    dialect.cast("f.v", Ty::Text),
                    "f.units".to_string(),
                )
            }
            Kept::Units => (
                "f.units",
                dialect.cast("NULL", Ty::Text),
                dialect.cast("NULL", Ty::Int8),
            ),
            Kept::Rows { .. } => unreachable!("a count of rows is counted per cell (free_cells)"),
        };
        free_select.extend([
            format!("{} AS n", dialect.cast(n, Ty::Int8)),
            format!("{s} AS s"),
            format!("{w} AS w"),
        ]);
        let free_group = if los.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", los.join(", "))
        };
        (
            self.units_aggregate(kept),
            "SELECT u FROM safestat_units WHERE NOT free".to_string(),
            format!(
                "SELECT {}\n  FROM (SELECT {} FROM safestat_units WHERE free{free_group}) f{free_joins}",
                free_select.join(",\n         "),
                per_free.join(", "),
            ),
        )
    }

    /// A count of rows' units with no choice, per cell: the common table expressions before the
    /// rows (`safestat_cells`: each unit's rows per cell, counted from the rows as the ranking
    /// reads them, codes and all; `safestat_heavy`: the units with a choice), those units, and
    /// the `SELECT` of the others' cells. The ranking keeps a unit's `per_unit` lowest rows,
    /// then at most `per_cell` of those in each cell. So a unit has no choice when it is in one
    /// cell (it keeps `min(rows, cap)` there), or when it has at most `per_unit` rows in all:
    /// every row passes the first step, and each cell keeps `min(rows, per_cell)`, which is then
    /// its `min(rows, cap)` too. Cells, not values: two values that map to one code (the
    /// catch-all) share their cell's cap, as in the ranking. A unit of a few reports each of
    /// another type (the sample's) is counted here, not ranked.
    fn free_cells(&self, per_unit: u32, per_cell: u32) -> (String, String, String) {
        let d = self.dialect;
        let cap = per_unit.min(per_cell);
        let cells = self.with_cells(", ", "");
        let before = format!(
            "safestat_cells AS (\n  SELECT u{cells}, count(*) AS n\n  FROM (SELECT {}\n        FROM {} s{}) a\n  GROUP BY u{cells}\n),\nsafestat_heavy AS (\n  SELECT u FROM safestat_cells\n  GROUP BY u\n  HAVING count(*) > 1 AND sum(n) > {per_unit}\n),\n",
            self.select[..1 + self.codes.len()].join(", "),
            self.src,
            self.joins.replace('\n', "\n      "),
        );
        let free = format!(
            "SELECT {}{} AS n, {} AS s, {} AS w\n  FROM safestat_cells f\n  WHERE NOT EXISTS (SELECT 1 FROM safestat_heavy h WHERE h.u = f.u){}",
            self.leading,
            d.cast(&format!("sum(LEAST(n, {cap}))"), Ty::Int8),
            d.cast("NULL", Ty::Text),
            d.cast("NULL", Ty::Int8),
            self.group_by.replace('\n', "\n  "),
        );
        (before, "SELECT u FROM safestat_heavy".to_string(), free)
    }

    /// The common table expression `safestat_units` of [`Frame::with_free_units`]: per unit its
    /// rows, each dimension's smallest value (byte for byte), a sum's clamped total, and whether
    /// it is free (one value per dimension, or only NULLs; for a sum, at most the cap of rows).
    fn units_aggregate(&self, kept: &Kept) -> String {
        let (dialect, bytewise) = (self.dialect, self.dialect.bytewise());
        let mut columns = vec![
            format!("{}{bytewise} AS u", self.unit),
            "count(*) AS n".to_string(),
        ];
        let mut one_choice: Vec<String> = Vec::new();
        for (j, d) in self.values.iter().enumerate() {
            let (lo, hi) = (format!("min({d}{bytewise})"), format!("max({d}{bytewise})"));
            one_choice.push(format!(
                "({lo} = {hi} AND count({d}) = count(*) OR count({d}) = 0)"
            ));
            columns.push(format!("{lo} AS lo{j}"));
        }
        if let Kept::Sum { cap, value } = kept {
            one_choice.push(format!("count(*) <= {cap}"));
            columns.push(format!("{} AS v", dialect.wide_sum(value)));
        }
        columns.push(if one_choice.is_empty() {
            "true AS free".to_string()
        } else {
            format!("COALESCE({}, false) AS free", one_choice.join(" AND "))
        });
        format!(
            "safestat_units AS (\n  SELECT {}\n  FROM {} s\n  GROUP BY 1\n),\n",
            columns.join(",\n         "),
            self.src
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
        let d = self.dialect;
        self.select.push(match column {
            Some(column) => format!(
                "{} AS v",
                d.cast(&format!("s.{}", d.ident(column)), Ty::Int8)
            ),
            None => format!("{} AS v", d.cast("1", Ty::Int8)),
        });
        let mut with = format!(
            "{},\nw AS (SELECT u{}, {} AS v, min(v) AS lowest FROM r GROUP BY u{}),\n",
            self.rows_read("", &format!("\n  WHERE length({}) = 0", d.key())),
            self.with_cells(", ", ""),
            d.wide_sum("v"),
            self.with_cells(", ", ""),
        );
        // Each unit's count of cells `k` beside its sums: PostgreSQL joins an aggregate of `w`;
        // Spark, which would read the relation again for a second use of `w`, counts it in a
        // window.
        let from = match d {
            Dialect::Postgres => {
                with.push_str("n AS (SELECT u, count(*) AS k FROM w GROUP BY u)");
                "w JOIN n USING (u)"
            }
            Dialect::Spark => {
                with.push_str("wk AS (SELECT w.*, count(*) OVER (PARTITION BY u) AS k FROM w)");
                "wk"
            }
        };
        let (leading, group_by) = (&self.leading, &self.group_by);
        // The largest sums of the units in this cell alone, largest first, joined by commas.
        let largest = match d {
            Dialect::Postgres => format!(
                "array_to_string((array_agg(v ORDER BY v DESC) FILTER (WHERE k = 1))[1:{largest}], ',')"
            ),
            Dialect::Spark => format!(
                "array_join(transform(slice(sort_array(collect_list(CASE WHEN k = 1 THEN v END), false), 1, {largest}), x -> CAST(x AS STRING)), ',')"
            ),
        };
        let sql = format!(
            "{with}\nSELECT {leading}{}, {}, {}, {largest}, {}\nFROM {from}{group_by}",
            d.cast("count(*)", Ty::Int8),
            d.cast("sum(v)", Ty::Text),
            d.cast("count(*)", Ty::Int8),
            d.cast("min(lowest)", Ty::Int8),
        );
        let spanning = format!(
            "{with}\nSELECT {}, {leading}{}\nFROM {from}\nWHERE k > 1",
            d.cast("dense_rank() OVER (ORDER BY u)", Ty::Int8),
            d.cast("v", Ty::Text),
        );
        (sql, spanning)
    }

    /// A count of units, each kept in at most `max_cells_per_unit` of its cells, chosen by keyed
    /// priority (rows of one cell share its priority).
    fn cells(&self, max_cells_per_unit: u32) -> String {
        let d = self.dialect;
        let unit_and_cell = match d {
            Dialect::Postgres => {
                let cell_text = self
                    .codes
                    .iter()
                    .map(|c| format!(" || ',' || {c}"))
                    .collect::<String>();
                format!("quote_literal(u){cell_text}")
            }
            // As the row identity: a JSON array, each NULL apart from any text.
            Dialect::Spark => {
                let mut parts = vec!["u".to_string()];
                parts.extend(self.codes.iter().map(|c| d.cast(c, Ty::Text)));
                format!("to_json(array({}))", parts.join(", "))
            }
        };
        let prio = d.prf(&unit_and_cell);
        let (leading, group_by, cells) = (&self.leading, &self.group_by, self.with_cells(", ", ""));
        let (null_text, null_int8) = (d.cast("NULL", Ty::Text), d.cast("NULL", Ty::Int8));
        self.with_free_units(Kept::Units, |r| {
            // Spark has no DISTINCT ON.
            let (ranking, kept) = if max_cells_per_unit == 1 && d == Dialect::Postgres {
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
                "SELECT {leading}count(*) AS n, {null_text} AS s, {null_int8} AS w\nFROM k{kept}{group_by}"
            );
            (ranking, counted)
        })
    }

    /// A count or DP sum of rows: each unit keeps at most `per_unit` rows, and at most
    /// `per_cell` in a cell, chosen by keyed priority of the row's identity and occurrence (so
    /// identical rows are each kept or not on their own).
    fn rows(mut self, table: &Count, identity: &str, (per_unit, per_cell): (u32, u32)) -> String {
        let d = self.dialect;
        let (sum, value) = match &table.statistic {
            Statistic::Sum { column, lo, hi, .. } => {
                let value = format!(
                    "LEAST(GREATEST({}, {}), {})",
                    d.cast(&format!("s.{}", d.ident(column)), Ty::Int8),
                    d.cast(&format!("'{lo}'"), Ty::Int8),
                    d.cast(&format!("'{hi}'"), Ty::Int8),
                );
                self.select.push(format!("{value} AS v"));
                (
                    format!(
                        "{} AS s, count(DISTINCT u) AS w",
                        d.cast(&d.wide_sum("v"), Ty::Text)
                    ),
                    Some(value),
                )
            }
            _ => (
                format!(
                    "{} AS s, {} AS w",
                    d.cast("NULL", Ty::Text),
                    d.cast("NULL", Ty::Int8)
                ),
                None,
            ),
        };
        self.select
            .push(format!("{identity}{} AS id", d.bytewise()));
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
        let kept = match value {
            Some(value) => Kept::Sum {
                cap: per_unit.min(per_cell),
                value,
            },
            None => Kept::Rows { per_unit, per_cell },
        };
        // Spark numbers rows only in an ordered window; identical rows tie, in any order.
        let (occurrence, id_occ) = match d {
            Dialect::Postgres => ("PARTITION BY u, id", "id || ',' || occ".to_string()),
            Dialect::Spark => (
                "PARTITION BY u, id ORDER BY id",
                format!("concat(id, ',', {})", d.cast("occ", Ty::Text)),
            ),
        };
        let prio = d.prf(&id_occ);
        self.with_free_units(kept, |r| {
            (
                format!(
                    "{r},\no AS (SELECT r.*, row_number() OVER ({occurrence}) AS occ FROM r),\np AS (SELECT o.*, {prio} AS prio FROM o),\nk AS (SELECT p.*, row_number() OVER (PARTITION BY u ORDER BY prio) AS ru FROM p){m_window}"
                ),
                format!("SELECT {leading}count(*) AS n, {sum}\n{m_filter}{group_by}"),
            )
        })
    }
}

/// The statement Spark's version is asked with (it has no snapshot nor transaction to set up).
pub(super) fn spark_version_statement() -> String {
    "SELECT version()".to_string()
}

/// The statements that set up the transaction, before [`InputStatements`]'s.
pub(super) fn setup_statements(timeout_seconds: u64) -> [String; 3] {
    [
        format!("SET LOCAL statement_timeout = {}", timeout_seconds * 1000),
        "SELECT version()".to_string(),
        "SELECT txid_current_snapshot()::text".to_string(),
    ]
}
