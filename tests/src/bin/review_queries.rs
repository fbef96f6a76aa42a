//! `review-queries`: how long the review API takes to answer a coordinator on
//! one territory of millions of sightings (default 3,000,000), as p50, p95 and
//! max in milliseconds per query, measured over HTTP against the release
//! server. A baseline measurement: there is no target in the code; the
//! brief's yardstick is 50 ms.
//!
//! Setup (untimed, but its phases are printed):
//! - a fresh database (dropped afterwards), migrated; one territory, one
//!   coordinator with a password session, 200 volunteers each with a notebook
//!   `documents` row;
//! - generated sightings, deterministic for a `--seed` (the content; account
//!   and document ids are random): ~800 taxa with a Zipf-like frequency (a few
//!   common species, a long tail), a TAXREF-like id on 90% of rows (the ids
//!   are synthetic, not TAXREF's), 40 sites, points in a ~6×6 km box around
//!   Lyon, event dates over 3 years with more in summer, a few very active
//!   volunteers, 2% of rows with a conflict, validation statuses 70% 0, 20% 1,
//!   5% 2, 5% 3–6, and 1% of sightings filed with a near-twin (same taxon,
//!   5–40 m away, within 90 minutes) so duplicate proposals exist. Rows are
//!   filed (`review_seq`) in the order their phones would have synced them;
//! - the bulk load as one would do it in production: the sightings indexes
//!   other than the primary key are saved (`pg_indexes`), dropped, the rows
//!   sent with `COPY … FROM STDIN` (text, EWKT points) with the triggers on,
//!   the indexes recreated (`maintenance_work_mem` raised for this session
//!   only), then `ANALYZE sightings` and a `VACUUM sightings` (so the
//!   measurements do not race the autovacuum a fresh 3M-row table triggers,
//!   and index-only scans are possible as on a table that has lived a while).
//!
//! Measured (sequentially, one keep-alive HTTP client, the coordinator's
//! bearer token, after a short untimed warm-up), `--runs` times each with
//! parameters drawn from the data: the review table's first page, a deep page
//! (a cursor among the oldest 1% of rows), taxon id + status, scientific name,
//! a 500 m box + 1-month window, author + conflicts, site, possible
//! duplicates, the duplicate proposals (first page and the next through its
//! cursor) and the dashboard counts. Every answer must be 200, and non-empty
//! (with rows matching the filter) where the data guarantees it; the run fails
//! otherwise. A request not answered within `--timeout-secs` (default 60)
//! counts as timed out: the statements it left running are cancelled
//! (`pg_cancel_backend`, on the benchmark's database only), the query's other
//! runs are skipped and the table shows `> 60000`. The `items` column is the
//! mean number of rows (or pairs) a page returned. Finally the slowest
//! query's (by p95) `EXPLAIN (ANALYZE, BUFFERS)`, or plain `EXPLAIN` if it
//! timed out, is printed: its SQL, a copy of the server's SQL in
//! `server/src/review/{filter,duplicates}.rs` with the last run's values
//! inlined, i.e. a custom plan (the server's prepared statements may switch
//! to a generic plan after five executions per connection).
//!
//! `--keep-database NAME` loads into (or reuses) the database NAME and does
//! not drop it at the end: a later run with the same `--sightings` and
//! `--seed` finds the rows (a completed-load marker in `review_bench_load`)
//! and goes straight to the queries. A database of that name that this
//! benchmark did not create is refused, never dropped; one it created whose
//! load is incomplete or of another size or seed is dropped and reloaded.
//! Drop it yourself when done (`DROP DATABASE NAME`).
//!
//! ```text
//! review-queries [--sightings 3000000] [--runs 200] [--seed N] [--keep-database NAME]
//!                [--timeout-secs 60] [--json]
//! ```

use std::{
    f64::consts::PI,
    fmt::Write as _,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context};
use chrono::{DateTime, TimeZone, Utc};
use clap::Parser;
use fieldnotes_tests::{
    accounts,
    bench::{self, percentile, Cell},
    maintenance_url, ServerProcess, TestDatabase,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use server::auth::{admin, Role};
use sqlx::{postgres::PgPoolOptions, Connection, PgConnection, PgPool, Row};
use url::Url;
use uuid::Uuid;

/// Review API latency on one territory of generated sightings.
#[derive(Debug, Parser)]
#[command(name = "review-queries", version, about)]
struct Args {
    /// Sightings generated in the territory (at least 10,000, so that the
    /// duplicate proposals have a second page).
    #[arg(long, default_value_t = 3_000_000)]
    sightings: usize,

    /// Timed requests per query.
    #[arg(long, default_value_t = 200)]
    runs: usize,

    /// Seed of the generated data and of the queries' parameters.
    #[arg(long, default_value_t = 20_260_601)]
    seed: u64,

    /// Load into the database of this name and keep it (not dropped at the
    /// end); reuse it as it is if it already holds `--sightings` rows loaded
    /// with `--seed`.
    #[arg(long, value_name = "NAME")]
    keep_database: Option<String>,

    /// A request not answered within this many seconds counts as timed out:
    /// its SQL is cancelled (`pg_cancel_backend`) and the query's remaining
    /// runs are skipped.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,

    #[command(flatten)]
    common: bench::CommonArgs,
}

const VOLUNTEERS: usize = 200;
const TAXA: usize = 800;
/// Rows per COPY statement (each its own transaction, for progress output).
const COPY_ROWS: usize = 500_000;
/// Lines per message sent within a COPY.
const COPY_CHUNK_LINES: usize = 10_000;
const PAGE: usize = 50;
/// Untimed requests per query before its timed runs.
const WARM_UP: usize = 3;
/// The box around Lyon the points fall in.
const LAT_RANGE: (f64, f64) = (45.74, 45.80);
const LON_RANGE: (f64, f64) = (4.80, 4.88);
const METRES_PER_DEGREE: f64 = 111_320.0;
/// 2023-07-01T00:00:00Z: the first day of the three years of records.
const FIRST_DAY: i64 = 1_688_169_600;
const DAYS: i64 = 3 * 365;
/// The columns COPY fills, in the order of each line.
const COPY_COLUMNS: &str = "id, territory_id, doc_id, occurrence_id, scientific_name, taxon_id, \
    event_date, geom, coordinate_uncertainty_m, individual_count, occurrence_status, \
    basis_of_record, recorded_by, site, author_id, device_id, created_at, modified_at, \
    conflicts, validation_status";
const CONFLICT: &str = r#"[{"field":"individualCount","winner":2,"values":[1,2]}]"#;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    bench::init_process(&args.common.database_url);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// The database the benchmark runs on.
enum Database {
    /// Dropped when this is.
    Fresh(TestDatabase),
    /// `--keep-database`: left in place.
    Kept { name: String, url: String },
}

impl Database {
    fn name(&self) -> &str {
        match self {
            Database::Fresh(db) => &db.name,
            Database::Kept { name, .. } => name,
        }
    }

    fn url(&self) -> &str {
        match self {
            Database::Fresh(db) => &db.url,
            Database::Kept { url, .. } => url,
        }
    }
}

/// How long the load's phases took (as recorded when the rows were loaded).
#[derive(Debug, Clone, Serialize)]
struct LoadTimes {
    /// False when `--keep-database` found the rows already loaded.
    loaded_now: bool,
    sightings: i64,
    /// Generating the rows in memory (part of no other figure).
    generate_s: f64,
    copy_s: f64,
    index_s: f64,
    indexes: Vec<(String, f64)>,
    analyze_s: f64,
    vacuum_s: f64,
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.sightings < 10_000 {
        bail!("--sightings must be at least 10000 (the duplicate proposals need a second page)");
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let binary = bench::server_binary(args.common.server_bin.as_deref())?;
    let log_dir = bench::log_dir(args.common.log_dir.as_deref(), "review-queries-")?;

    let (database, reusable) = match &args.keep_database {
        Some(name) => open_kept(name, &args).await?,
        None => (Database::Fresh(TestDatabase::create().await?), None),
    };
    eprintln!("database {}", database.name());
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(database.url())
        .await?;
    server::MIGRATOR
        .run(&pool)
        .await
        .context("migrating (a kept database must have been loaded with the same migrations)")?;

    let (territory, load) = match reusable {
        Some(territory) => {
            eprintln!("reusing the rows already loaded in {}", database.name());
            (territory, recorded_load(&pool).await?)
        }
        None => setup_and_load(&pool, &args).await?,
    };

    let coordinator = accounts::password_actor(
        &pool,
        "Review benchmark coordinator",
        Some((territory, Role::Coordinator)),
        false,
    )
    .await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sightings WHERE territory_id = $1")
        .bind(territory)
        .fetch_one(&pool)
        .await?;
    ensure!(
        rows == args.sightings as i64,
        "the territory holds {rows} sightings, not {}",
        args.sightings
    );

    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed_0f9e_71e5);
    eprintln!(
        "drawing the parameters of {} runs from the data…",
        args.runs
    );
    let params = draw_parameters(&pool, territory, args.runs, &mut rng).await?;

    let log = log_dir.join("review-queries-server.log");
    let mut server = ServerProcess::start_binary_with(&binary, database.url(), Some(&log), &[])?;
    eprintln!(
        "{} on {} (pid {}), log {}",
        binary.display(),
        server.addr,
        server.pid(),
        log.display()
    );
    let bench = Bench {
        client: reqwest::Client::new(),
        base: Url::parse(&server.http_url("/"))?,
        token: coordinator.token.clone(),
        territory,
        rows,
        timeout: Duration::from_secs(args.timeout_secs),
        pool: pool.clone(),
    };
    let measured = measure_all(&bench, &params).await;
    let exit = server.terminate();
    let (results, last) = measured?;

    if args.common.json {
        println!("{}", serde_json::to_string(&json!({ "setup": load }))?);
        for result in &results {
            println!("{}", serde_json::to_string(result)?);
        }
    } else {
        print_setup(&load, database.name());
        print_results(&results);
    }

    // A timed-out query is the slowest; it is explained without running it.
    let slowest = results
        .iter()
        .max_by(|a, b| {
            (a.timed_out, a.p95_ms)
                .partial_cmp(&(b.timed_out, b.p95_ms))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .expect("at least one query");
    let sql = sql_equivalent(slowest.query, territory, &last);
    let explain = if slowest.timed_out {
        "EXPLAIN"
    } else {
        "EXPLAIN (ANALYZE, BUFFERS)"
    };
    let plan: Vec<String> = sqlx::query_scalar(&format!("{explain} {sql}"))
        .fetch_all(&pool)
        .await
        .with_context(|| format!("explaining {sql}"))?;
    if args.common.json {
        let explain = json!({ "explain": slowest.query.key(), "sql": sql, "plan": plan });
        println!("{}", serde_json::to_string(&explain)?);
    } else {
        println!(
            "\n{explain} of the slowest query, {} (its SQL, values inlined):\n{sql}\n",
            slowest.label
        );
        for line in &plan {
            println!("{line}");
        }
        println!("\nserver log: {} (exit: {exit:?})", log.display());
    }

    pool.close().await;
    if let Database::Kept { name, .. } = &database {
        eprintln!("database {name} kept (drop it with DROP DATABASE {name})");
    }
    drop(database);
    Ok(())
}

/// `--keep-database NAME`: the database, and the territory when it already
/// holds the rows this run asks for.
async fn open_kept(name: &str, args: &Args) -> anyhow::Result<(Database, Option<Uuid>)> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        bail!("--keep-database: use lowercase letters, digits and _ (got {name:?})");
    }
    let maintenance = maintenance_url();
    let mut url = Url::parse(&maintenance)?;
    url.set_path(name);
    let database = Database::Kept {
        name: name.to_string(),
        url: url.to_string(),
    };
    let mut admin = PgConnection::connect(&maintenance)
        .await
        .with_context(|| format!("connecting to {maintenance}"))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await?;
    if exists {
        let mut conn = PgConnection::connect(database.url()).await?;
        let ours: bool = sqlx::query_scalar("SELECT to_regclass('review_bench_load') IS NOT NULL")
            .fetch_one(&mut conn)
            .await?;
        if !ours {
            bail!("database {name} exists but was not made by review-queries: choose another name");
        }
        let marker: Option<(Uuid, i64, i64, bool)> = sqlx::query_as(
            "SELECT territory_id, sightings, seed, complete FROM review_bench_load LIMIT 1",
        )
        .fetch_optional(&mut conn)
        .await?;
        conn.close().await?;
        match marker {
            Some((territory, sightings, seed, true))
                if sightings == args.sightings as i64 && seed == args.seed as i64 =>
            {
                return Ok((database, Some(territory)));
            }
            _ => {
                eprintln!("database {name} holds another or an incomplete load: reloading it");
                sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
            }
        }
    }
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    Ok((database, None))
}

async fn recorded_load(pool: &PgPool) -> anyhow::Result<LoadTimes> {
    let row = sqlx::query(
        "SELECT sightings, generate_s, copy_s, index_s, analyze_s, vacuum_s, indexes \
         FROM review_bench_load",
    )
    .fetch_one(pool)
    .await?;
    Ok(LoadTimes {
        loaded_now: false,
        sightings: row.try_get("sightings")?,
        generate_s: row.try_get("generate_s")?,
        copy_s: row.try_get("copy_s")?,
        index_s: row.try_get("index_s")?,
        indexes: serde_json::from_value(row.try_get("indexes")?)?,
        analyze_s: row.try_get("analyze_s")?,
        vacuum_s: row.try_get("vacuum_s")?,
    })
}

/// A volunteer whose notebook the generated sightings come from.
struct Volunteer {
    id: Uuid,
    name: String,
    doc: String,
    device: String,
}

async fn setup_and_load(pool: &PgPool, args: &Args) -> anyhow::Result<(Uuid, LoadTimes)> {
    let boundary = json!({
        "type": "Polygon",
        "coordinates": [[[LON_RANGE.0, LAT_RANGE.0], [LON_RANGE.1, LAT_RANGE.0],
                         [LON_RANGE.1, LAT_RANGE.1], [LON_RANGE.0, LAT_RANGE.1],
                         [LON_RANGE.0, LAT_RANGE.0]]],
    });
    let territory =
        admin::create_territory(pool, "Review benchmark: Lyon", Some(&boundary)).await?;
    sqlx::query(
        "CREATE TABLE review_bench_load (territory_id uuid NOT NULL, sightings bigint NOT NULL, \
           seed bigint NOT NULL, complete boolean NOT NULL DEFAULT false, \
           generate_s float8, copy_s float8, index_s float8, analyze_s float8, vacuum_s float8, \
           indexes jsonb, loaded_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO review_bench_load (territory_id, sightings, seed) VALUES ($1, $2, $3)",
    )
    .bind(territory)
    .bind(args.sightings as i64)
    .bind(args.seed as i64)
    .execute(pool)
    .await?;

    eprintln!("creating {VOLUNTEERS} volunteers with a notebook each…");
    let mut volunteers = Vec::with_capacity(VOLUNTEERS);
    for i in 0..VOLUNTEERS {
        let name = volunteer_name(i);
        let id = admin::create_account(pool, &name, None, None, false).await?;
        admin::add_membership(pool, id, territory, Role::Volunteer, None).await?;
        let doc = accounts::seed_document(pool, territory, id).await?;
        volunteers.push(Volunteer {
            id,
            name,
            doc,
            device: Uuid::new_v4().to_string(),
        });
    }

    let started = Instant::now();
    let rows = generate(args.sightings, args.seed);
    let generate_s = started.elapsed().as_secs_f64();
    eprintln!(
        "generated {} sightings in {generate_s:.1}s ({} near-twins)",
        rows.len(),
        rows.iter().filter(|row| row.twin).count()
    );
    let load = bulk_load(pool, territory, &volunteers, &rows, args.seed, generate_s).await?;
    sqlx::query(
        "UPDATE review_bench_load SET complete = true, generate_s = $1, copy_s = $2, \
           index_s = $3, analyze_s = $4, vacuum_s = $5, indexes = $6",
    )
    .bind(load.generate_s)
    .bind(load.copy_s)
    .bind(load.index_s)
    .bind(load.analyze_s)
    .bind(load.vacuum_s)
    .bind(serde_json::to_value(&load.indexes)?)
    .execute(pool)
    .await?;
    Ok((territory, load))
}

fn volunteer_name(i: usize) -> String {
    const FIRST: [&str; 20] = [
        "Camille", "Lucas", "Léa", "Hugo", "Chloé", "Louis", "Manon", "Nathan", "Inès", "Jules",
        "Zoé", "Gabriel", "Sarah", "Arthur", "Jade", "Paul", "Emma", "Théo", "Alice", "Noah",
    ];
    let initial = (b'A' + (i / FIRST.len()) as u8 % 26) as char;
    format!("{} {initial}. ({i:03})", FIRST[i % FIRST.len()])
}

/// One generated sighting, as far as its order and relations need; the other
/// fields are drawn when its line is written (from a second seeded stream, so
/// they are deterministic too).
struct GenRow {
    /// When its phone synced it: the order of `review_seq`.
    filed: i64,
    /// Unix seconds.
    event: i64,
    taxon: u16,
    with_taxon_id: bool,
    site: Option<u8>,
    author: u16,
    lon: f64,
    lat: f64,
    twin: bool,
}

struct Taxon {
    name: String,
    id: i64,
}

/// ~800 taxa: real species common in Lyon first (the most frequent), then
/// synthetic binomials for the long tail. Ids are synthetic.
fn taxa() -> Vec<Taxon> {
    const COMMON: [&str; 30] = [
        "Passer domesticus",
        "Columba livia",
        "Turdus merula",
        "Parus major",
        "Pica pica",
        "Sturnus vulgaris",
        "Apus apus",
        "Columba palumbus",
        "Erithacus rubecula",
        "Cyanistes caeruleus",
        "Corvus corone",
        "Fringilla coelebs",
        "Phoenicurus ochruros",
        "Podarcis muralis",
        "Pipistrellus pipistrellus",
        "Erinaceus europaeus",
        "Sciurus vulgaris",
        "Apis mellifera",
        "Bombus terrestris",
        "Pieris rapae",
        "Vanessa atalanta",
        "Coccinella septempunctata",
        "Harmonia axyridis",
        "Taraxacum officinale",
        "Bellis perennis",
        "Urtica dioica",
        "Hedera helix",
        "Robinia pseudoacacia",
        "Ailanthus altissima",
        "Buddleja davidii",
    ];
    const GENERA: [&str; 40] = [
        "Carabus",
        "Lestes",
        "Anthus",
        "Sylvia",
        "Orchis",
        "Ophrys",
        "Salix",
        "Quercus",
        "Acer",
        "Rosa",
        "Rubus",
        "Carex",
        "Juncus",
        "Poa",
        "Festuca",
        "Bromus",
        "Veronica",
        "Viola",
        "Trifolium",
        "Vicia",
        "Lathyrus",
        "Geranium",
        "Euphorbia",
        "Galium",
        "Centaurea",
        "Cirsium",
        "Hieracium",
        "Crepis",
        "Senecio",
        "Achillea",
        "Zygaena",
        "Melitaea",
        "Polyommatus",
        "Lycaena",
        "Coenagrion",
        "Sympetrum",
        "Aeshna",
        "Chorthippus",
        "Myotis",
        "Helix",
    ];
    const EPITHETS: [&str; 40] = [
        "alba",
        "nigra",
        "rubra",
        "viridis",
        "minor",
        "major",
        "vulgaris",
        "communis",
        "sylvestris",
        "arvensis",
        "pratensis",
        "palustris",
        "montana",
        "campestris",
        "officinalis",
        "repens",
        "canina",
        "hirsuta",
        "glabra",
        "lutea",
        "caerulea",
        "aurea",
        "gracilis",
        "elegans",
        "tenuis",
        "speciosa",
        "foetida",
        "odorata",
        "maculata",
        "punctata",
        "striata",
        "australis",
        "borealis",
        "orientalis",
        "occidentalis",
        "italica",
        "gallica",
        "germanica",
        "hispanica",
        "helvetica",
    ];
    COMMON
        .iter()
        .map(|name| name.to_string())
        .chain(
            (0..GENERA.len() * EPITHETS.len())
                // A fixed walk over the combinations, so the tail mixes genera.
                .map(|k| (k * 37) % (GENERA.len() * EPITHETS.len()))
                .map(|k| {
                    format!(
                        "{} {}",
                        GENERA[k % GENERA.len()],
                        EPITHETS[k / GENERA.len()]
                    )
                }),
        )
        .take(TAXA)
        .enumerate()
        .map(|(i, name)| Taxon {
            name,
            id: 60_000 + 13 * i as i64,
        })
        .collect()
}

const SITES: [&str; 40] = [
    "Parc de la Tête d'Or",
    "Berges du Rhône",
    "Parc de Gerland",
    "Friche RVI",
    "Jardin des Chartreux",
    "Parc des Hauteurs",
    "Jardin Rosa Mir",
    "Parc Sergent Blandan",
    "Île Barbe",
    "Parc de la Cerisaie",
    "Jardin des Plantes",
    "Parc Chazière",
    "Berges de Saône",
    "Parc Blandan nord",
    "Square Delestraint",
    "Jardin botanique",
    "Friche de la Croix-Rousse",
    "Parc Jacob Kaplan",
    "Parc Zénith",
    "Coulée verte",
    "Mare de Vaise",
    "Fort de Vaise",
    "Parc du Vallon",
    "Jardin Sauvage",
    "Talus du Rhône",
    "Prairie de Gerland",
    "Parc Ferber",
    "Jardin de l'Antiquaille",
    "Parc Bazin",
    "Square Marius Berliet",
    "Verger partagé",
    "Parc Montel",
    "Parc de Parilly",
    "Berges du canal",
    "Friche Lamartine",
    "Bois de la Caille",
    "Jardin Girié",
    "Parc Bellevue",
    "Roseraie",
    "Noue de la Duchère",
];

/// Cumulative weights ∝ 1/(rank+1)^s.
fn zipf(n: usize, s: f64) -> Vec<f64> {
    let mut total = 0.0;
    (0..n)
        .map(|rank| {
            total += 1.0 / ((rank + 1) as f64).powf(s);
            total
        })
        .collect()
}

fn pick(cumulative: &[f64], rng: &mut StdRng) -> usize {
    let u = rng.random::<f64>() * cumulative.last().expect("weights");
    cumulative
        .partition_point(|&c| c <= u)
        .min(cumulative.len() - 1)
}

/// Seconds after which a phone syncs what it recorded: exponential, mean 6 h
/// (mostly within hours, sometimes days later).
fn sync_delay(rng: &mut StdRng) -> i64 {
    (-(rng.random::<f64>().max(1e-12)).ln() * 6.0 * 3600.0) as i64
}

fn normal(rng: &mut StdRng) -> f64 {
    let u = rng.random::<f64>().max(f64::MIN_POSITIVE);
    (-2.0 * u.ln()).sqrt() * (2.0 * PI * rng.random::<f64>()).cos()
}

/// `count` sightings in filing order: 1% of them near-twins of another.
fn generate(count: usize, seed: u64) -> Vec<GenRow> {
    let mut rng = StdRng::seed_from_u64(seed);
    let taxa = zipf(taxa().len(), 1.1);
    let authors = zipf(VOLUNTEERS, 0.8);
    let sites: Vec<(f64, f64, f64)> = (0..SITES.len())
        .map(|_| {
            let lon = LON_RANGE.0
                + 0.1 * (LON_RANGE.1 - LON_RANGE.0)
                + 0.8 * (LON_RANGE.1 - LON_RANGE.0) * rng.random::<f64>();
            let lat = LAT_RANGE.0
                + 0.1 * (LAT_RANGE.1 - LAT_RANGE.0)
                + 0.8 * (LAT_RANGE.1 - LAT_RANGE.0) * rng.random::<f64>();
            // How spread out the site is (metres, one standard deviation).
            (lon, lat, 100.0 + 300.0 * rng.random::<f64>())
        })
        .collect();
    let site_weights = zipf(SITES.len(), 0.6);
    let mut rows = Vec::with_capacity(count);
    while rows.len() < count {
        // A day, more of them in spring and summer.
        let day = loop {
            let day = rng.random_range(0..DAYS);
            let season = (2.0 * PI * ((day + 181) % 365 - 172) as f64 / 365.0).cos();
            if rng.random::<f64>() < 0.35 + 0.65 * season.max(0.0) {
                break day;
            }
        };
        let event = FIRST_DAY + day * 86_400 + rng.random_range(5 * 3600..19 * 3600);
        let site = (rng.random::<f64>() < 0.9).then(|| pick(&site_weights, &mut rng));
        let (lon, lat) = match site {
            Some(site) => {
                let (lon, lat, spread) = sites[site];
                (
                    lon + normal(&mut rng) * spread / (METRES_PER_DEGREE * lat.to_radians().cos()),
                    lat + normal(&mut rng) * spread / METRES_PER_DEGREE,
                )
            }
            None => (
                rng.random_range(LON_RANGE.0..LON_RANGE.1),
                rng.random_range(LAT_RANGE.0..LAT_RANGE.1),
            ),
        };
        let row = GenRow {
            filed: event + sync_delay(&mut rng),
            event,
            taxon: pick(&taxa, &mut rng) as u16,
            with_taxon_id: rng.random::<f64>() < 0.9,
            site: site.map(|s| s as u8),
            author: pick(&authors, &mut rng) as u16,
            lon: lon.clamp(LON_RANGE.0, LON_RANGE.1),
            lat: lat.clamp(LAT_RANGE.0, LAT_RANGE.1),
            twin: false,
        };
        // About 1% of all sightings are the near-twin of the one before.
        let twin = (rows.len() + 1 < count && rng.random::<f64>() < 1.0 / 99.0).then(|| {
            let distance = rng.random_range(5.0..40.0);
            let bearing = rng.random_range(0.0..2.0 * PI);
            let event = row.event + rng.random_range(-90 * 60..=90 * 60);
            GenRow {
                filed: event + sync_delay(&mut rng),
                event,
                taxon: row.taxon,
                with_taxon_id: row.with_taxon_id,
                site: row.site,
                // Often the same person recording twice, else a companion.
                author: if rng.random_bool(0.5) {
                    row.author
                } else {
                    pick(&authors, &mut rng) as u16
                },
                lon: row.lon
                    + distance * bearing.sin() / (METRES_PER_DEGREE * row.lat.to_radians().cos()),
                lat: row.lat + distance * bearing.cos() / METRES_PER_DEGREE,
                twin: true,
            }
        });
        rows.push(row);
        rows.extend(twin);
    }
    rows.sort_by_key(|row| row.filed);
    rows
}

fn timestamp(seconds: i64) -> String {
    Utc.timestamp_opt(seconds, 0)
        .single()
        .expect("a valid time")
        .format("%Y-%m-%d %H:%M:%S+00")
        .to_string()
}

/// Appends the COPY text line of `row`.
fn write_line(
    line: &mut String,
    row: &GenRow,
    territory: Uuid,
    volunteers: &[Volunteer],
    taxa: &[Taxon],
    rng: &mut StdRng,
) {
    let id = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
    let volunteer = &volunteers[row.author as usize];
    let taxon = &taxa[row.taxon as usize];
    let taxon_id = if row.with_taxon_id {
        taxon.id.to_string()
    } else {
        "\\N".to_string()
    };
    let site = row.site.map_or("\\N", |s| SITES[s as usize]);
    let created = row.event + rng.random_range(0..1800);
    let modified = if rng.random::<f64>() < 0.1 {
        created + rng.random_range(60..7 * 86_400)
    } else {
        created
    };
    let uncertainty = [5, 10, 15, 20, 30, 50][rng.random_range(0..6)];
    let individuals = 1 + (-(rng.random::<f64>().max(1e-12)).ln() * 1.5) as i64;
    let conflicts = if rng.random::<f64>() < 0.02 {
        CONFLICT
    } else {
        "[]"
    };
    let status = match rng.random_range(0..100) {
        0..70 => 0,
        70..90 => 1,
        90..95 => 2,
        _ => rng.random_range(3..=6),
    };
    writeln!(
        line,
        "{id}\t{territory}\t{doc}\turn:uuid:{id}\t{name}\t{taxon_id}\t{event}\t\
         SRID=4326;POINT({lon:.7} {lat:.7})\t{uncertainty}\t{individuals}\tpresent\t\
         HumanObservation\t{recorded_by}\t{site}\t{author}\t{device}\t{created}\t{modified}\t\
         {conflicts}\t{status}",
        doc = volunteer.doc,
        name = taxon.name,
        event = timestamp(row.event),
        lon = row.lon,
        lat = row.lat,
        recorded_by = volunteer.name,
        author = volunteer.id,
        device = volunteer.device,
        created = timestamp(created),
        modified = timestamp(modified),
    )
    .expect("writing to a String");
}

async fn bulk_load(
    pool: &PgPool,
    territory: Uuid,
    volunteers: &[Volunteer],
    rows: &[GenRow],
    seed: u64,
    generate_s: f64,
) -> anyhow::Result<LoadTimes> {
    let mut conn = pool.acquire().await?;
    // For this session's index builds only; the server's setting is untouched.
    sqlx::query("SET maintenance_work_mem = '1GB'")
        .execute(&mut *conn)
        .await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexname::text, i.indexdef FROM pg_indexes i \
         WHERE i.schemaname = current_schema() AND i.tablename = 'sightings' \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
             WHERE c.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass) \
         ORDER BY i.indexname",
    )
    .fetch_all(&mut *conn)
    .await?;
    eprintln!(
        "dropping {} indexes for the load: {}",
        indexes.len(),
        indexes
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, _) in &indexes {
        sqlx::query(&format!("DROP INDEX {name}"))
            .execute(&mut *conn)
            .await?;
    }

    let taxa = taxa();
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(1));
    let started = Instant::now();
    let statement = format!("COPY sightings ({COPY_COLUMNS}) FROM STDIN");
    let mut buffer = String::with_capacity(COPY_CHUNK_LINES * 512);
    for (batch, chunk) in rows.chunks(COPY_ROWS).enumerate() {
        let mut copy = conn.copy_in_raw(&statement).await?;
        for lines in chunk.chunks(COPY_CHUNK_LINES) {
            buffer.clear();
            for row in lines {
                write_line(&mut buffer, row, territory, volunteers, &taxa, &mut rng);
            }
            copy.send(buffer.as_bytes()).await?;
        }
        let copied = copy.finish().await?;
        ensure!(
            copied == chunk.len() as u64,
            "COPY took {copied} rows of {}",
            chunk.len()
        );
        let done = batch * COPY_ROWS + chunk.len();
        let elapsed = started.elapsed().as_secs_f64();
        eprintln!(
            "copied {done}/{} rows in {elapsed:.1}s ({:.0} rows/s)",
            rows.len(),
            done as f64 / elapsed
        );
    }
    let copy_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut timed = Vec::new();
    for (name, definition) in &indexes {
        let one = Instant::now();
        sqlx::query(definition).execute(&mut *conn).await?;
        let secs = one.elapsed().as_secs_f64();
        eprintln!("recreated {name} in {secs:.1}s");
        timed.push((name.clone(), secs));
    }
    let index_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    sqlx::query("ANALYZE sightings").execute(&mut *conn).await?;
    let analyze_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    sqlx::query("VACUUM sightings").execute(&mut *conn).await?;
    let vacuum_s = started.elapsed().as_secs_f64();
    eprintln!("ANALYZE {analyze_s:.1}s, VACUUM {vacuum_s:.1}s");
    Ok(LoadTimes {
        loaded_now: true,
        sightings: rows.len() as i64,
        generate_s,
        copy_s,
        index_s,
        indexes: timed,
        analyze_s,
        vacuum_s,
    })
}

/// One run's parameters, each taken from a random existing row that
/// matches, so every filtered query has at least that row to find.
#[derive(Debug, Clone)]
struct RunParams {
    /// A `review_seq` among the oldest 1% of rows.
    deep_cursor: i64,
    /// The TAXREF id of a sighting with validation status 0.
    taxon_id: i64,
    /// A sighting's scientific name, as recorded.
    name: String,
    /// A 500 m box around a sighting, and a 30-day window around its date.
    bbox: [f64; 4],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// The author of a sighting with a conflict.
    author: Uuid,
    site: String,
    /// The second page of the duplicate proposals (set while measuring).
    proposals_cursor: Option<String>,
}

type SampledRow = (
    Option<i64>,
    String,
    Option<String>,
    Uuid,
    f64,
    f64,
    DateTime<Utc>,
);

/// The first row at or after `seq` (else the first of all) that matches `condition`.
async fn sample(
    pool: &PgPool,
    territory: Uuid,
    seq: i64,
    condition: &str,
) -> anyhow::Result<SampledRow> {
    let sql = format!(
        "SELECT taxon_id, scientific_name, site, author_id, ST_X(geom), ST_Y(geom), event_date \
         FROM sightings WHERE territory_id = $1 AND review_seq >= $2 AND {condition} \
         ORDER BY review_seq LIMIT 1"
    );
    for from in [seq, i64::MIN] {
        if let Some(row) = sqlx::query_as(&sql)
            .bind(territory)
            .bind(from)
            .fetch_optional(pool)
            .await?
        {
            return Ok(row);
        }
    }
    bail!("no sighting matches {condition}")
}

async fn draw_parameters(
    pool: &PgPool,
    territory: Uuid,
    runs: usize,
    rng: &mut StdRng,
) -> anyhow::Result<Vec<RunParams>> {
    let (min, max): (i64, i64) = sqlx::query_as(
        "SELECT min(review_seq), max(review_seq) FROM sightings WHERE territory_id = $1",
    )
    .bind(territory)
    .fetch_one(pool)
    .await?;
    let tail = ((max - min) / 100).max(1);
    let mut params = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut seq = || rng.random_range(min..=max);
        let (a, b, c, d, e) = (seq(), seq(), seq(), seq(), seq());
        let (taxon_id, ..) = sample(
            pool,
            territory,
            a,
            "taxon_id IS NOT NULL AND validation_status = 0",
        )
        .await?;
        let (_, name, ..) = sample(pool, territory, b, "true").await?;
        let (.., lon, lat, event) = sample(pool, territory, c, "true").await?;
        let (_, _, _, author, ..) = sample(pool, territory, d, "has_conflicts").await?;
        let (_, _, site, ..) = sample(pool, territory, e, "site IS NOT NULL").await?;
        let width = 500.0 / (METRES_PER_DEGREE * lat.to_radians().cos());
        let height = 500.0 / METRES_PER_DEGREE;
        // Rounded as sent, so the box the server gets is the one checked.
        let round = |v: f64| (v * 1e6).round() / 1e6;
        let min_lon = round(lon - width * rng.random_range(0.05..0.95));
        let min_lat = round(lat - height * rng.random_range(0.05..0.95));
        let month = chrono::Duration::days(30);
        let from = event - month * 9 / 10 + month * 8 / 10 * rng.random_range(0..=1000) / 1000;
        let from = DateTime::from_timestamp(from.timestamp(), 0).expect("a valid time");
        params.push(RunParams {
            deep_cursor: min + 1 + rng.random_range(0..tail),
            taxon_id: taxon_id.expect("sampled with a taxon id"),
            name,
            bbox: [
                min_lon,
                min_lat,
                round(min_lon + width),
                round(min_lat + height),
            ],
            from,
            to: from + month,
            author,
            site: site.expect("sampled with a site"),
            proposals_cursor: None,
        });
    }
    Ok(params)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Query {
    FirstPage,
    DeepPage,
    TaxonStatus,
    Name,
    BboxWindow,
    AuthorConflicts,
    Site,
    PossibleDuplicates,
    ProposalsFirst,
    ProposalsSecond,
    Counts,
}

const QUERIES: [Query; 11] = [
    Query::FirstPage,
    Query::DeepPage,
    Query::TaxonStatus,
    Query::Name,
    Query::BboxWindow,
    Query::AuthorConflicts,
    Query::Site,
    Query::PossibleDuplicates,
    Query::ProposalsFirst,
    Query::ProposalsSecond,
    Query::Counts,
];

impl Query {
    fn key(self) -> &'static str {
        match self {
            Query::FirstPage => "first_page",
            Query::DeepPage => "deep_page",
            Query::TaxonStatus => "taxon_status",
            Query::Name => "scientific_name",
            Query::BboxWindow => "bbox_window",
            Query::AuthorConflicts => "author_conflicts",
            Query::Site => "site",
            Query::PossibleDuplicates => "possible_duplicates",
            Query::ProposalsFirst => "proposals_first",
            Query::ProposalsSecond => "proposals_second",
            Query::Counts => "counts",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Query::FirstPage => "1. records, first page",
            Query::DeepPage => "2. records, deep page (oldest 1%)",
            Query::TaxonStatus => "3. taxon id + status=0",
            Query::Name => "4. scientific name",
            Query::BboxWindow => "5. 500 m bbox + 1-month from/to",
            Query::AuthorConflicts => "6. author + conflicts=true",
            Query::Site => "   site (extra)",
            Query::PossibleDuplicates => "7. duplicates=true, first page",
            Query::ProposalsFirst => "8a. /duplicates, first page",
            Query::ProposalsSecond => "8b. /duplicates, second page",
            Query::Counts => "9. /counts",
        }
    }

    /// Path and query string of the request.
    fn request(self, territory: Uuid, p: &RunParams) -> (String, Vec<(&'static str, String)>) {
        let records = format!("api/territories/{territory}/review/records");
        let limit = ("limit", PAGE.to_string());
        let query = match self {
            Query::FirstPage => vec![limit],
            Query::DeepPage => vec![("after", p.deep_cursor.to_string()), limit],
            Query::TaxonStatus => vec![
                ("taxon", p.taxon_id.to_string()),
                ("status", "0".to_string()),
                limit,
            ],
            Query::Name => vec![("taxon", p.name.clone()), limit],
            Query::BboxWindow => vec![
                ("bbox", p.bbox.map(|v| v.to_string()).join(",")),
                ("from", rfc3339(p.from)),
                ("to", rfc3339(p.to)),
                limit,
            ],
            Query::AuthorConflicts => vec![
                ("author", p.author.to_string()),
                ("conflicts", "true".to_string()),
                limit,
            ],
            Query::Site => vec![("site", p.site.clone()), limit],
            Query::PossibleDuplicates => vec![("duplicates", "true".to_string()), limit],
            Query::ProposalsFirst => {
                return (
                    format!("api/territories/{territory}/review/duplicates"),
                    vec![limit],
                )
            }
            Query::ProposalsSecond => {
                let cursor = p.proposals_cursor.clone().expect("the first page's cursor");
                return (
                    format!("api/territories/{territory}/review/duplicates"),
                    vec![("after", cursor), limit],
                );
            }
            Query::Counts => return (format!("api/territories/{territory}/review/counts"), vec![]),
        };
        (records, query)
    }

    /// Fails unless `body` is what the data guarantees for this query.
    fn check(self, body: &Value, p: &RunParams, rows: i64) -> anyhow::Result<usize> {
        if self == Query::Counts {
            let total = body["sightings"]["total"].as_f64();
            ensure!(
                total == Some(rows as f64),
                "counts say {total:?} sightings, not {rows}"
            );
            return Ok(1);
        }
        let items = body["items"].as_array().context("no items")?;
        ensure!(!items.is_empty(), "no items, though the data has some");
        ensure!(
            items.len() <= PAGE,
            "{} items for a page of {PAGE}",
            items.len()
        );
        for item in items {
            let ok = match self {
                Query::TaxonStatus => {
                    item["taxonID"] == json!(p.taxon_id) && item["validationStatus"] == json!(0)
                }
                Query::Name => item["scientificName"]
                    .as_str()
                    .is_some_and(|name| name.to_lowercase() == p.name.to_lowercase()),
                Query::BboxWindow => {
                    let lon = item["decimalLongitude"].as_f64().unwrap_or(f64::NAN);
                    let lat = item["decimalLatitude"].as_f64().unwrap_or(f64::NAN);
                    let date = item["eventDate"]
                        .as_str()
                        .and_then(|d| DateTime::parse_from_rfc3339(d).ok());
                    // `&&` compares PostGIS's float4 bounding boxes, rounded
                    // outwards: a point up to one float4 step (~4e-6°, under
                    // a metre here) outside the box matches.
                    const SLACK: f64 = 1e-5;
                    (p.bbox[0] - SLACK..=p.bbox[2] + SLACK).contains(&lon)
                        && (p.bbox[1] - SLACK..=p.bbox[3] + SLACK).contains(&lat)
                        && date.is_some_and(|d| d >= p.from && d <= p.to)
                }
                Query::AuthorConflicts => {
                    item["authorId"] == json!(p.author) && item["hasConflicts"] == json!(true)
                }
                Query::Site => item["site"] == json!(p.site),
                Query::PossibleDuplicates => item["possibleDuplicate"] == json!(true),
                Query::ProposalsFirst | Query::ProposalsSecond => {
                    item["a"]["id"].is_string() && item["b"]["id"].is_string()
                }
                Query::FirstPage | Query::DeepPage | Query::Counts => true,
            };
            ensure!(ok, "an item does not match the filter: {item}");
        }
        if self == Query::ProposalsFirst {
            ensure!(
                body["nextCursor"].is_string(),
                "the duplicate proposals have no second page"
            );
        }
        Ok(items.len())
    }
}

fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

struct Bench {
    client: reqwest::Client,
    base: Url,
    token: String,
    territory: Uuid,
    rows: i64,
    timeout: Duration,
    /// Our own connections to the database, to cancel what a timed-out
    /// request left running.
    pool: PgPool,
}

impl Bench {
    /// One request: its time to the last byte of the body, and the body;
    /// None if it timed out (its SQL is then cancelled).
    async fn get(&self, query: Query, p: &RunParams) -> anyhow::Result<Option<(Duration, Value)>> {
        let (path, pairs) = query.request(self.territory, p);
        let mut url = self.base.join(&path)?;
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        let started = Instant::now();
        let request = async {
            let response = self
                .client
                .get(url.clone())
                .bearer_auth(&self.token)
                .send()
                .await?;
            let status = response.status();
            anyhow::Ok((status, response.bytes().await?))
        };
        let Ok(answer) = tokio::time::timeout(self.timeout, request).await else {
            let cancelled = self.cancel_long_statements().await?;
            eprintln!(
                "GET {url}: no answer within {:?}; cancelled {cancelled} statement(s)",
                self.timeout
            );
            return Ok(None);
        };
        let (status, bytes) = answer.with_context(|| format!("GET {url}"))?;
        let elapsed = started.elapsed();
        if status != reqwest::StatusCode::OK {
            bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        let body: Value =
            serde_json::from_slice(&bytes).with_context(|| format!("GET {url}: not JSON"))?;
        query
            .check(&body, p, self.rows)
            .with_context(|| format!("GET {url}"))?;
        Ok(Some((elapsed, body)))
    }

    /// Cancels the statements that have run on the benchmark's database for
    /// about as long as a request may take: the server goes on with a query
    /// whose client is gone.
    async fn cancel_long_statements(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND backend_type = 'client backend' AND state = 'active' \
               AND query_start < now() - $1::float8 * interval '1 second'",
        )
        .bind(self.timeout.as_secs_f64() * 0.9)
        .fetch_one(&self.pool)
        .await?)
    }
}

#[derive(Debug, Clone, Serialize)]
struct QueryResult {
    #[serde(rename = "query", serialize_with = "serialize_key")]
    query: Query,
    #[serde(skip)]
    label: &'static str,
    sightings: i64,
    /// Timed runs answered (all of `--runs` unless one timed out).
    runs: usize,
    /// A request (warm-up or timed) got no answer within `timeout_s`: the
    /// query's other runs were skipped.
    timed_out: bool,
    timeout_s: f64,
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
    mean_ms: f64,
    mean_items: f64,
}

fn serialize_key<S: serde::Serializer>(query: &Query, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(query.key())
}

/// The timed runs of one query.
#[derive(Default)]
struct Series {
    times: Vec<Duration>,
    items: usize,
    timed_out: bool,
}

impl Series {
    fn push(&mut self, query: Query, elapsed: Duration, body: &Value) {
        self.times.push(elapsed);
        self.items += count_items(query, body);
    }
}

/// Every query, `params.len()` times each (until one times out); returns the
/// results and the last run's parameters (with the proposals' cursor), for
/// EXPLAIN.
async fn measure_all(
    bench: &Bench,
    params: &[RunParams],
) -> anyhow::Result<(Vec<QueryResult>, RunParams)> {
    let mut last = params.last().expect("at least one run").clone();
    let mut results = Vec::new();
    for query in QUERIES {
        if query == Query::ProposalsSecond {
            // Measured with the first page, whose cursor it follows.
            continue;
        }
        let mut first = Series::default();
        let mut second = Series::default();
        for (i, p) in params.iter().take(WARM_UP).chain(params.iter()).enumerate() {
            let timed = i >= WARM_UP.min(params.len());
            let mut p = p.clone();
            let Some((elapsed, body)) = bench
                .get(query, &p)
                .await
                .with_context(|| format!("query {}", query.label()))?
            else {
                first.timed_out = true;
                second.timed_out = true;
                break;
            };
            if timed {
                first.push(query, elapsed, &body);
            }
            if query == Query::ProposalsFirst {
                p.proposals_cursor = body["nextCursor"].as_str().map(str::to_string);
                last.proposals_cursor = p.proposals_cursor.clone();
                let Some((elapsed, body)) = bench
                    .get(Query::ProposalsSecond, &p)
                    .await
                    .with_context(|| format!("query {}", Query::ProposalsSecond.label()))?
                else {
                    second.timed_out = true;
                    break;
                };
                if timed {
                    second.push(Query::ProposalsSecond, elapsed, &body);
                }
            }
        }
        let mut measured = vec![(query, first)];
        if query == Query::ProposalsFirst {
            measured.push((Query::ProposalsSecond, second));
        }
        for (query, series) in measured {
            let r = summarise(query, bench, series);
            eprintln!(
                "{}: {} runs{}, p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
                r.label,
                r.runs,
                if r.timed_out { " then a timeout" } else { "" },
                r.p50_ms,
                r.p95_ms,
                r.max_ms
            );
            results.push(r);
        }
    }
    Ok((results, last))
}

fn count_items(query: Query, body: &Value) -> usize {
    match query {
        Query::Counts => 1,
        _ => body["items"].as_array().map_or(0, Vec::len),
    }
}

fn summarise(query: Query, bench: &Bench, series: Series) -> QueryResult {
    let Series {
        mut times,
        items,
        timed_out,
    } = series;
    times.sort();
    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    let runs = times.len();
    QueryResult {
        query,
        label: query.label(),
        sightings: bench.rows,
        runs,
        timed_out,
        timeout_s: bench.timeout.as_secs_f64(),
        p50_ms: ms(percentile(&times, 50.0)),
        p95_ms: ms(percentile(&times, 95.0)),
        max_ms: ms(times.last().copied()),
        mean_ms: times.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / runs as f64,
        mean_items: items as f64 / runs as f64,
    }
}

fn print_setup(load: &LoadTimes, database: &str) {
    println!(
        "review-queries: {} sightings in one territory (database {database}{})",
        load.sightings,
        if load.loaded_now {
            ""
        } else {
            ", reused: the times are those of its load"
        }
    );
    println!(
        "load: generate {:.1} s, COPY {:.1} s ({:.0} rows/s, triggers on), indexes {:.1} s, \
         ANALYZE {:.1} s, VACUUM {:.1} s",
        load.generate_s,
        load.copy_s,
        load.sightings as f64 / load.copy_s,
        load.index_s,
        load.analyze_s,
        load.vacuum_s
    );
    println!(
        "indexes: {}\n",
        load.indexes
            .iter()
            .map(|(name, secs)| format!("{name} {secs:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn print_results(results: &[QueryResult]) {
    const COLUMNS: [&str; 6] = ["runs", "p50 ms", "p95 ms", "max ms", "mean ms", "items"];
    let headers: Vec<String> = COLUMNS.iter().map(ToString::to_string).collect();
    let columns: Vec<usize> = (0..COLUMNS.len()).collect();
    let rows: Vec<(&str, Cell<usize>)> = results
        .iter()
        .map(|r| {
            let r = r.clone();
            let timeout = format!("> {:.0}", r.timeout_s * 1000.0);
            let cell: Cell<usize> = Box::new(move |column: &usize| match column {
                0 if r.timed_out => format!("{} + timeout", r.runs),
                0 => r.runs.to_string(),
                // A timed-out query's figures are those of the runs before.
                1..=4 if r.runs == 0 => timeout.clone(),
                3 if r.timed_out => timeout.clone(),
                1 => format!("{:.1}", r.p50_ms),
                2 => format!("{:.1}", r.p95_ms),
                3 => format!("{:.1}", r.max_ms),
                4 => format!("{:.1}", r.mean_ms),
                _ if r.runs == 0 => "—".to_string(),
                _ => format!("{:.1}", r.mean_items),
            });
            (r.label, cell)
        })
        .collect();
    bench::print_table(&headers, &columns, &rows);
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The server's SQL for `query` (a copy of `server/src/review/filter.rs` and
/// `duplicates.rs`), with `p`'s values inlined.
/// An instant as the third dimension of `review_place_time` (migration 0012).
fn place_time_day(instant: DateTime<Utc>) -> f64 {
    instant.timestamp() as f64 / 86_400.0 * 0.0001
}

fn sql_equivalent(query: Query, territory: Uuid, p: &RunParams) -> String {
    use server::review::filter::HAS_POSSIBLE_DUPLICATE;
    let filter = match query {
        Query::FirstPage => String::new(),
        Query::DeepPage => format!(" AND t.review_seq < {}", p.deep_cursor),
        Query::TaxonStatus => format!(
            " AND t.taxon_id = {} AND t.validation_status = 0",
            p.taxon_id
        ),
        Query::Name => format!(
            " AND lower(t.scientific_name) = {}",
            literal(&p.name.to_lowercase())
        ),
        Query::BboxWindow => format!(
            " AND t.event_date >= '{}' AND t.event_date <= '{}' \
             AND t.geom && ST_MakeEnvelope({}, {}, {}, {}, 4326) \
             AND review_place_time(t.geom, t.event_date) &&& ST_MakeLine(\
               ST_MakePoint({}, {}, {}), ST_MakePoint({}, {}, {}))",
            rfc3339(p.from),
            rfc3339(p.to),
            p.bbox[0],
            p.bbox[1],
            p.bbox[2],
            p.bbox[3],
            p.bbox[0],
            p.bbox[1],
            place_time_day(p.from) - 0.0001 / 1440.0,
            p.bbox[2],
            p.bbox[3],
            place_time_day(p.to) + 0.0001 / 1440.0,
        ),
        Query::AuthorConflicts => format!(
            " AND t.author_id = '{}' AND t.has_conflicts = true",
            p.author
        ),
        Query::Site => format!(" AND t.site = {}", literal(&p.site)),
        Query::PossibleDuplicates => format!(" AND {HAS_POSSIBLE_DUPLICATE}"),
        Query::ProposalsFirst | Query::ProposalsSecond => {
            let (a, b) = match (
                query,
                p.proposals_cursor
                    .as_deref()
                    .and_then(|c| c.split_once(':')),
            ) {
                (Query::ProposalsSecond, Some((a, b))) => (a.to_string(), b.to_string()),
                _ => ("NULL".to_string(), "NULL".to_string()),
            };
            // The server's own SQL, its parameters inlined.
            return server::review::duplicates::PROPOSALS_SQL
                .replace("$1", &format!("'{territory}'::uuid"))
                .replace("$2", &a)
                .replace("$3", &b)
                .replace("$4", &(PAGE + 1).to_string());
        }
        Query::Counts => {
            return "SELECT jsonb_build_object(\
                   'sightings', (SELECT jsonb_build_object('total', COALESCE(sum(n), 0), \
                       'byStatus', COALESCE(jsonb_object_agg(s, n), '{}'), \
                       'conflicts', (SELECT count(*) FROM sightings WHERE territory_id = $1 AND has_conflicts)) \
                     FROM (SELECT validation_status::text AS s, count(*) AS n FROM sightings \
                           WHERE territory_id = $1 GROUP BY 1) g), \
                   'degradationReports', (SELECT jsonb_build_object('total', COALESCE(sum(n), 0), \
                       'byStatus', COALESCE(jsonb_object_agg(s, n), '{}'), \
                       'conflicts', (SELECT count(*) FROM degradation_reports \
                                     WHERE territory_id = $1 AND has_conflicts)) \
                     FROM (SELECT status AS s, count(*) AS n FROM degradation_reports \
                           WHERE territory_id = $1 GROUP BY 1) g), \
                   'timesheetEntries', (SELECT jsonb_build_object('total', COALESCE(sum(n), 0), \
                       'byStatus', COALESCE(jsonb_object_agg(s, n), '{}'), \
                       'minutesByStatus', COALESCE(jsonb_object_agg(s, minutes), '{}'), \
                       'conflicts', (SELECT count(*) FROM timesheet_entries \
                                     WHERE territory_id = $1 AND has_conflicts)) \
                     FROM (SELECT approval_status AS s, count(*) AS n, sum(duration_minutes) AS minutes \
                           FROM timesheet_entries WHERE territory_id = $1 GROUP BY 1) g), \
                   'invalidRecords', (SELECT count(*) FROM invalid_records WHERE territory_id = $1))"
            .replace("$1", &format!("'{territory}'::uuid"));
        }
    };
    format!(
        "SELECT jsonb_build_object('kind', 'sighting', 'id', t.id, 'documentId', t.doc_id, \
           'scientificName', t.scientific_name, 'taxonID', t.taxon_id, \
           'vernacularName', t.vernacular_name, 'eventDate', t.event_date, \
           'decimalLatitude', ST_Y(t.geom), 'decimalLongitude', ST_X(t.geom), \
           'coordinateUncertaintyInMeters', t.coordinate_uncertainty_m, \
           'individualCount', t.individual_count, 'site', t.site, \
           'recordedBy', t.recorded_by, 'notes', t.notes, 'photos', t.photos, \
           'authorId', t.author_id, 'authorName', au.display_name, \
           'validationStatus', t.validation_status, 'duplicateOf', t.duplicate_of, \
           'hasConflicts', t.has_conflicts, 'conflicts', t.conflicts, \
           'possibleDuplicate', {HAS_POSSIBLE_DUPLICATE}, 'modifiedAt', t.modified_at) AS row, \
           t.review_seq \
         FROM sightings t JOIN territories tr ON tr.id = t.territory_id \
         LEFT JOIN accounts au ON au.id = t.author_id \
         WHERE t.territory_id = '{territory}'{filter} \
         ORDER BY t.review_seq DESC LIMIT {limit}",
        limit = PAGE + 1
    )
}
