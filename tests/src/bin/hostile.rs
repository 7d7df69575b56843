//! Hostile-header benchmark (issue 8): what one unauthenticated request with a
//! huge `svix-signature` costs the ingester, and what a few such senders do to
//! honest deliveries.
//!
//! ```text
//! ledgerhook-hostile --url http://127.0.0.1:8080/webhooks/crossmint --ingester-pid PID
//!     [--clk-tck 100] [--entries 8000] [--body-bytes 262000]
//!     [--hostile-count 20] [--honest-count 200] [--cost-secs 45]
//!     [--rate 200] [--phase-secs 30] [--concurrency 16] [--senders 4]
//! ```
//!
//! 1. Cost: hostile requests (`--entries` random `v1,` entries, a fresh id, a
//!    current timestamp, a `--body-bytes` JSON body), then honest signed ones,
//!    sent one at a time; the ingester's CPU time (utime + stime from
//!    `/proc/PID/stat`) before and after each batch gives CPU per request.
//! 2. Attack: honest deliveries paced at `--rate` for `--phase-secs` alone
//!    (phase A), then the same while `--senders` hostile senders loop
//!    (phase B); honest ack latency of both, from each delivery's scheduled
//!    time and from its send, and the p99 ratios.
//!
//! Answers are counted by status and `code` (or `status`) field, whatever
//! they are: the tool measures, it does not judge. Bounded: each batch and
//! phase has a time cap (honest deliveries due within a phase get 15 s more
//! to be sent and answered), hostile senders are cut off when it ends,
//! and only a loopback URL is accepted. The secret for honest deliveries is
//! the first of `CROSSMINT_WEBHOOK_SECRET` (the Svix test secret if unset).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use ledgerhook_domain::PACKAGES;
use ledgerhook_providers::svix::SigningSecret;
use ledgerhook_tests::webhook::{
    TEST_SECRET, new_delivery_id, now_secs, payment_succeeded, svix_headers,
};
use tokio::time::Instant;

struct Options {
    url: String,
    ingester_pid: u32,
    /// `getconf CLK_TCK`: the unit of utime and stime in /proc/PID/stat.
    clk_tck: f64,
    entries: usize,
    body_bytes: usize,
    hostile_count: usize,
    honest_count: usize,
    /// Cap on each cost batch: today a hostile request takes about a second.
    cost_secs: u64,
    rate: f64,
    phase_secs: u64,
    concurrency: usize,
    senders: usize,
}

/// Hostile-header benchmark: what one unauthenticated request with a huge
/// svix-signature costs the ingester (its CPU time, from /proc/PID/stat),
/// and what a few such senders do to honest deliveries' latency.
///
/// Only a loopback URL is accepted. The secret for honest deliveries is the
/// first of CROSSMINT_WEBHOOK_SECRET (the Svix test secret if unset). The
/// phases are described at the top of tests/src/bin/hostile.rs.
#[derive(Parser)]
#[command(name = "ledgerhook-hostile", version)]
struct Cli {
    /// The ingester's Crossmint webhook route (loopback only).
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8080/webhooks/crossmint"
    )]
    url: String,
    /// The ingester's process id, whose CPU time is measured (required).
    #[arg(
        long,
        value_name = "PID",
        default_value_t = 0,
        hide_default_value = true
    )]
    ingester_pid: u32,
    /// `getconf CLK_TCK`: the unit of utime and stime in /proc/PID/stat.
    #[arg(long, value_name = "N", default_value_t = 100.0)]
    clk_tck: f64,
    /// Random `v1,` entries in each hostile signature header (1..=20000).
    #[arg(long, value_name = "N", default_value_t = 8000)]
    entries: usize,
    /// Size of each hostile request's body, just under the ingester's
    /// default limit so it is read and hashed (at most 1 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = 262_000)]
    body_bytes: usize,
    /// Hostile requests in the cost batch (1..=1000).
    #[arg(long, value_name = "N", default_value_t = 20)]
    hostile_count: usize,
    /// Honest requests in the cost batch (1..=10000).
    #[arg(long, value_name = "N", default_value_t = 200)]
    honest_count: usize,
    /// Cap on each cost batch, in seconds (1..=300).
    #[arg(long, value_name = "SECS", default_value_t = 45)]
    cost_secs: u64,
    /// Honest deliveries per second in the attack phases (at most 5000).
    #[arg(long, value_name = "PER_SEC", default_value_t = 200.0)]
    rate: f64,
    /// Length of each attack phase, in seconds (1..=120).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    phase_secs: u64,
    /// Honest requests in flight at once (1..=256).
    #[arg(long, value_name = "N", default_value_t = 16)]
    concurrency: usize,
    /// Hostile senders looping in phase B (1..=16).
    #[arg(long, value_name = "N", default_value_t = 4)]
    senders: usize,
}

fn options() -> anyhow::Result<Options> {
    let cli = Cli::parse();
    let o = Options {
        url: cli.url,
        ingester_pid: cli.ingester_pid,
        clk_tck: cli.clk_tck,
        entries: cli.entries,
        body_bytes: cli.body_bytes,
        hostile_count: cli.hostile_count,
        honest_count: cli.honest_count,
        cost_secs: cli.cost_secs,
        rate: cli.rate,
        phase_secs: cli.phase_secs,
        concurrency: cli.concurrency,
        senders: cli.senders,
    };
    if o.ingester_pid == 0 {
        bail!("--ingester-pid is required: the ingester's CPU time is what is measured");
    }
    let host = reqwest::Url::parse(&o.url)
        .context("parsing --url")?
        .host_str()
        .map(str::to_owned);
    if !matches!(host.as_deref(), Some("127.0.0.1" | "localhost" | "[::1]")) {
        bail!("--url must be a loopback address: this tool sends hostile traffic");
    }
    let in_range = (1..=20_000).contains(&o.entries)
        && (1..=1_000).contains(&o.hostile_count)
        && (1..=10_000).contains(&o.honest_count)
        && (1..=300).contains(&o.cost_secs)
        && (1..=120).contains(&o.phase_secs)
        && (1..=256).contains(&o.concurrency)
        && (1..=16).contains(&o.senders)
        && o.rate > 0.0
        && o.rate <= 5_000.0
        && o.body_bytes <= 1 << 20
        && o.clk_tck > 0.0;
    if !in_range {
        bail!("an option is out of range; see the bounds in tests/src/bin/hostile.rs");
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let cpu = Cpu {
        pid: o.ingester_pid,
        clk_tck: o.clk_tck,
    };
    cpu.seconds().context("reading the ingester's CPU time")?;
    let secret_text =
        std::env::var("CROSSMINT_WEBHOOK_SECRET").unwrap_or_else(|_| TEST_SECRET.into());
    let secret =
        SigningSecret::parse(secret_text.split_whitespace().next().unwrap_or(TEST_SECRET))?;
    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency + o.senders)
        .build()?;
    let target = Target {
        client,
        url: o.url.clone(),
    };
    // A few distinct headers, made before any clock starts and reused: the
    // ingester keeps nothing between requests, so a reused header costs it
    // as much as a new one, and the senders spend their CPU on sending.
    let hostile = Arc::new(Hostile {
        signatures: (0..4).map(|_| random_signatures(o.entries)).collect(),
        body: padded_body(o.body_bytes)?,
    });
    println!(
        "# hostile request: {} v1 entries ({} header bytes), body {} bytes; url {}",
        o.entries,
        hostile.signatures[0].len(),
        hostile.body.len(),
        o.url
    );

    // Warm up connections, the database pool and the recorder, so that the
    // honest cost is the steady state.
    let honest = Honest {
        secret,
        run,
        sent: Default::default(),
    };
    for _ in 0..20 {
        target.honest(&honest, Duration::from_secs(10)).await;
    }
    let idle_from = cpu.seconds()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "ingester idle CPU: {:.1} ms/s",
        (cpu.seconds()? - idle_from) * 1e3
    );

    let cap = Duration::from_secs(o.cost_secs);
    let honest_cost = cost(&cpu, "honest", o.honest_count, cap, || {
        target.honest(&honest, Duration::from_secs(10))
    })
    .await?;
    let mut n = 0;
    let hostile_cost = cost(&cpu, "hostile", o.hostile_count, cap, || {
        n += 1;
        target.hostile(&hostile, n, cap)
    })
    .await?;
    println!(
        "cost ratio hostile/honest: {:.0}x CPU, {:.0}x wall (p50)",
        hostile_cost.cpu_per_request / honest_cost.cpu_per_request.max(1e-9),
        hostile_cost.p50.as_secs_f64() / honest_cost.p50.as_secs_f64().max(1e-9),
    );

    let phase = Duration::from_secs(o.phase_secs);
    let alone = attack_phase(&o, &cpu, &target, &honest, &hostile, phase, 0).await?;
    let attacked = attack_phase(&o, &cpu, &target, &honest, &hostile, phase, o.senders).await?;
    println!(
        "honest p99 ratio B/A: {:.1}x from schedule, {:.1}x from send (goal: within 2x)",
        attacked.p99_scheduled.as_secs_f64() / alone.p99_scheduled.as_secs_f64().max(1e-9),
        attacked.p99.as_secs_f64() / alone.p99.as_secs_f64().max(1e-9),
    );
    Ok(())
}

/// The ingester's CPU time, all threads, from /proc.
struct Cpu {
    pid: u32,
    clk_tck: f64,
}

impl Cpu {
    fn seconds(&self) -> anyhow::Result<f64> {
        let path = format!("/proc/{}/stat", self.pid);
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        // The command name may hold spaces and parentheses; fields are
        // counted after its closing one. utime and stime are fields 14 and
        // 15, the 12th and 13th after the name.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("no command name in /proc/PID/stat")?
            .1
            .split_whitespace()
            .collect();
        let field = |n: usize| -> anyhow::Result<u64> {
            fields
                .get(n)
                .context("/proc/PID/stat is too short")?
                .parse()
                .context("a CPU time in /proc/PID/stat is not a number")
        };
        Ok((field(11)? + field(12)?) as f64 / self.clk_tck)
    }
}

struct Target {
    client: reqwest::Client,
    url: String,
}

struct Hostile {
    signatures: Vec<String>,
    body: Vec<u8>,
}

struct Honest {
    secret: SigningSecret,
    run: String,
    sent: std::sync::atomic::AtomicUsize,
}

/// One answer: wall time and what came back.
type Answer = (Duration, String);

impl Target {
    async fn honest(&self, honest: &Honest, timeout: Duration) -> Answer {
        let n = honest
            .sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let package = &PACKAGES[n % PACKAGES.len()];
        let order = format!("hostile-bench-{}-{n}", honest.run);
        let user = format!("hostile-bench-{}-user-{}", honest.run, n % 1000);
        let body = serde_json::to_vec(&payment_succeeded(
            &order,
            &user,
            package.id,
            &package.price.to_string(),
        ))
        .expect("a JSON value serialises");
        let headers = svix_headers(&honest.secret, &new_delivery_id(), &body);
        self.send(headers, body, timeout).await
    }

    async fn hostile(&self, hostile: &Hostile, n: usize, timeout: Duration) -> Answer {
        let headers = [
            ("svix-id", new_delivery_id()),
            ("svix-timestamp", now_secs().to_string()),
            (
                "svix-signature",
                hostile.signatures[n % hostile.signatures.len()].clone(),
            ),
        ];
        self.send(headers, hostile.body.clone(), timeout).await
    }

    async fn send(
        &self,
        headers: [(&'static str, String); 3],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Answer {
        let mut request = self
            .client
            .post(&self.url)
            .timeout(timeout)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let sent = Instant::now();
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(bytes) => format!("{status} {}", answer_code(&bytes)),
                    Err(e) => format!("{status} body error ({})", error_kind(&e)),
                }
            }
            Err(e) => format!("no answer ({})", error_kind(&e)),
        };
        (sent.elapsed(), outcome)
    }
}

/// The `code` of a refusal, or the `status` of an acceptance.
fn answer_code(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    ["code", "status"]
        .iter()
        .find_map(|field| value.get(field)?.as_str())
        .unwrap_or("(no code)")
        .to_owned()
}

fn error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_request() {
        "connection closed while sending"
    } else {
        "other"
    }
}

/// Answers counted by status and code.
#[derive(Default)]
struct Answers(BTreeMap<String, usize>);

impl Answers {
    fn add(&mut self, outcome: String) {
        *self.0.entry(outcome).or_default() += 1;
    }
}

impl fmt::Display for Answers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> = self.0.iter().map(|(k, n)| format!("{n} x {k}")).collect();
        f.write_str(&parts.join(", "))
    }
}

struct Cost {
    cpu_per_request: f64,
    p50: Duration,
}

/// Sends up to `count` requests one at a time, stopping early at `cap`, and
/// reports the ingester's CPU per request and the wall time of each.
async fn cost<F, Fut>(
    cpu: &Cpu,
    label: &str,
    count: usize,
    cap: Duration,
    mut send: F,
) -> anyhow::Result<Cost>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Answer>,
{
    let started = Instant::now();
    let cpu_before = cpu.seconds()?;
    let mut latencies = Vec::with_capacity(count);
    let mut answers = Answers::default();
    while latencies.len() < count && started.elapsed() < cap {
        let (latency, outcome) = send().await;
        latencies.push(latency);
        answers.add(outcome);
    }
    // An honest delivery's outbox publish follows its answer; let it land
    // inside the window so that it is counted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_used = cpu.seconds()? - cpu_before;
    let sent = latencies.len();
    latencies.sort();
    let cpu_per_request = cpu_used / sent as f64;
    let p50 = percentile(&latencies, 0.5);
    println!(
        "cost {label}: {sent} sequential requests{}; ingester CPU {:.2} s ({:.0} ms ticks) = {:.2} ms/request; wall p50 {:.1} ms, max {:.1} ms; answers: {answers}",
        if sent < count {
            format!(" (of {count}: capped at {} s)", cap.as_secs())
        } else {
            String::new()
        },
        cpu_used,
        1e3 / cpu.clk_tck,
        cpu_per_request * 1e3,
        ms(p50),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    Ok(Cost {
        cpu_per_request,
        p50,
    })
}

/// How long after a phase the honest deliveries due within it may still be
/// sent and answered.
const HONEST_GRACE: Duration = Duration::from_secs(15);

#[derive(Default)]
struct HonestResults {
    /// Accepted deliveries only: a refusal's latency is not an ack.
    from_send: Vec<Duration>,
    from_schedule: Vec<Duration>,
    answers: Answers,
    accepted_in_phase: usize,
}

struct PhaseResult {
    p99: Duration,
    p99_scheduled: Duration,
}

/// Honest deliveries paced at `--rate` for `phase`, with `senders` hostile
/// senders looping beside them until the phase ends.
async fn attack_phase(
    o: &Options,
    cpu: &Cpu,
    target: &Target,
    honest: &Honest,
    hostile: &Arc<Hostile>,
    phase: Duration,
    senders: usize,
) -> anyhow::Result<PhaseResult> {
    let name = if senders == 0 {
        "A (honest alone)".to_owned()
    } else {
        format!("B (with {senders} hostile senders)")
    };
    let started = Instant::now();
    let end = started + phase;
    let cpu_before = cpu.seconds()?;
    let hostile_answers = Arc::new(Mutex::new(Answers::default()));
    let attackers: Vec<_> = (0..senders)
        .map(|sender| {
            // An attacker's connections are its own, as they would be: a
            // connection the ingester closes after refusing a hostile request
            // must not be handed to an honest sender from a shared pool.
            let (target, hostile, answers) = (
                Target {
                    client: reqwest::Client::new(),
                    url: target.url.clone(),
                },
                hostile.clone(),
                hostile_answers.clone(),
            );
            tokio::spawn(async move {
                for n in sender.. {
                    // Cut off at the end of the phase, answered or not: only
                    // answers received within it are counted.
                    let Ok((_, outcome)) = tokio::time::timeout_at(
                        end,
                        target.hostile(&hostile, n, Duration::from_secs(600)),
                    )
                    .await
                    else {
                        break;
                    };
                    answers.lock().expect("not poisoned").add(outcome);
                }
            })
        })
        .collect();

    let scheduled = (o.rate * phase.as_secs_f64()) as usize;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let collected = Mutex::new(HonestResults::default());
    // Open-loop pacing: delivery i is due at i / rate. A sender slot busy
    // past that time delays it; "from schedule" counts that wait (what a
    // delivery due then experiences), "from send" does not (as
    // ledgerhook-loadgen reports). When the ingester stalls, the slots fall
    // behind and most late deliveries go out after the stall, fast: "from
    // send" then hides the stall, "from schedule" shows it.
    // Deliveries due within the phase but still waiting are sent after it,
    // up to a hard cap, so that a stalled ingester cannot stretch the run.
    let cutoff = end + HONEST_GRACE;
    let (next, results) = (&next, &collected);
    let slot = || async move {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let due = started + Duration::from_secs_f64(i as f64 / o.rate);
            if i >= scheduled || due >= end || Instant::now() >= cutoff {
                break;
            }
            tokio::time::sleep_until(due).await;
            let answer =
                tokio::time::timeout_at(cutoff, target.honest(honest, Duration::from_secs(10)))
                    .await;
            let mut results = results.lock().expect("not poisoned");
            let Ok((latency, outcome)) = answer else {
                results.answers.add("no answer by the cap".to_owned());
                break;
            };
            if outcome.starts_with('2') {
                results.from_send.push(latency);
                results.from_schedule.push(due.elapsed());
                if Instant::now() <= end {
                    results.accepted_in_phase += 1;
                }
            }
            results.answers.add(outcome);
        }
    };
    futures_util::future::join_all((0..o.concurrency).map(|_| slot())).await;
    let honest_elapsed = started.elapsed();
    for attacker in attackers {
        attacker.await?;
    }
    let cpu_used = cpu.seconds()? - cpu_before;
    let wall = started.elapsed().as_secs_f64();

    let HonestResults {
        mut from_send,
        mut from_schedule,
        answers,
        accepted_in_phase,
    } = collected.into_inner().expect("not poisoned");
    from_send.sort();
    from_schedule.sort();
    let sent: usize = answers.0.values().sum();
    println!(
        "phase {name}: {} s, honest {sent} sent of {scheduled} scheduled at {}/s, concurrency {}; accepted within the phase {accepted_in_phase}; answers: {answers}",
        phase.as_secs(),
        o.rate,
        o.concurrency,
    );
    println!(
        "phase {name}: honest ack from schedule p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; from send p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; last answer {:.1} s after start",
        ms(percentile(&from_schedule, 0.5)),
        ms(percentile(&from_schedule, 0.99)),
        ms(from_schedule.last().copied().unwrap_or_default()),
        ms(percentile(&from_send, 0.5)),
        ms(percentile(&from_send, 0.99)),
        ms(from_send.last().copied().unwrap_or_default()),
        honest_elapsed.as_secs_f64(),
    );
    if senders > 0 {
        let answers = hostile_answers.lock().expect("not poisoned");
        println!(
            "phase {name}: hostile answered within the phase: {}; answers: {answers}",
            answers.0.values().sum::<usize>()
        );
    }
    println!(
        "phase {name}: ingester CPU {:.1} s over {wall:.1} s = {:.2} cores",
        cpu_used,
        cpu_used / wall
    );
    Ok(PhaseResult {
        p99: percentile(&from_send, 0.99),
        p99_scheduled: percentile(&from_schedule, 0.99),
    })
}

/// `entries` space-separated `v1,<base64 of 32 random bytes>` entries: each
/// decodes to a well-formed candidate, so a verifier that tries them all
/// computes one HMAC over the body per entry.
fn random_signatures(entries: usize) -> String {
    let mut header = String::with_capacity(entries * 48);
    for i in 0..entries {
        if i > 0 {
            header.push(' ');
        }
        // Two v4 UUIDs: 32 bytes from the OS generator (6 bits of each are
        // fixed version and variant bits, which changes nothing here).
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        header.push_str("v1,");
        header.push_str(&base64(&bytes));
    }
    header
}

/// Standard base64 with padding. Written out because the tests crate does
/// not depend on a base64 crate; the unit test checks it against the
/// ingester's own decoder.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A JSON body of exactly `size` bytes that looks like a payment event, so a
/// verifier that parses before checking the signature would pay for that too.
fn padded_body(size: usize) -> anyhow::Result<Vec<u8>> {
    let event = |padding: String| {
        let mut event = payment_succeeded("hostile-order", "hostile-user", "pkg", "1.00");
        event["padding"] = serde_json::Value::String(padding);
        serde_json::to_vec(&event).expect("a JSON value serialises")
    };
    let base = event(String::new()).len();
    if size < base {
        bail!("--body-bytes must be at least {base}");
    }
    let body = event("x".repeat(size - base));
    debug_assert_eq!(body.len(), size);
    Ok(body)
}

/// Nearest-rank percentile of sorted values, as ledgerhook-loadgen reports.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerhook_providers::svix::{MAX_SIGNATURE_ENTRIES, parse_entries};

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn every_hostile_entry_is_a_candidate_the_ingester_decodes() {
        // Within the ingester's bound, so that each entry is one it decodes.
        let header = random_signatures(MAX_SIGNATURE_ENTRIES);
        let candidates = parse_entries(&header).unwrap().symmetric;
        assert_eq!(candidates.len(), MAX_SIGNATURE_ENTRIES);
        assert!(candidates.iter().all(|c| c.len() == 32));
    }

    #[test]
    fn the_padded_body_is_json_of_exactly_the_size_asked() {
        let body = padded_body(262_000).unwrap();
        assert_eq!(body.len(), 262_000);
        serde_json::from_slice::<serde_json::Value>(&body).unwrap();
    }
}
