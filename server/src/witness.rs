//! `sotto-relay witness`: the team's freshness witness (PROTOCOL §6.8), a small service the
//! company runs on its own origin, apart from the relay (it shares no state, database or
//! listener with it).
//!
//! Member and visitor clients push chain links to it; it verifies them with the core's
//! [`TeamState`] from the team's first link (whose hash it pins: from `--team` flags, or on first
//! use) and keeps only valid next links. On request it signs a fresh statement of the newest head
//! it verified. A relay that withholds links from clients cannot make the witness forget them, so
//! a client that sees a statement of a head beyond what the relay served refuses to send.
//!
//! Storage: one file per team in `--data`, `<team hex>.chain`, holding the verified links as
//! `u32 big-endian length || wire link` records, appended and synced before the answer; at start
//! every file is verified again (a torn last record from a crash is cut off).

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use serde::{Deserialize, Serialize};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::crypto::sign::SigningKey;
use sotto_core::team::witness::WitnessStatement;
use sotto_core::team::{Link, LinkHash, TeamId, TeamState};
use sotto_core::wire::WireObject;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// `sotto-relay witness`.
#[derive(Args, Debug, Clone)]
pub struct WitnessArgs {
    /// Address to listen on (plain HTTP; put TLS in front of it as for the relay).
    #[arg(long, env = "SOTTO_WITNESS_LISTEN", default_value = "127.0.0.1:8790")]
    pub listen: SocketAddr,
    /// The statement signing key: a file holding a 32-byte Ed25519 seed. Created (mode 0600 on
    /// Unix) if it does not exist; its public key is printed at start, for the owner's
    /// SetWitness change.
    #[arg(long, env = "SOTTO_WITNESS_KEY_FILE")]
    pub key_file: PathBuf,
    /// The directory for the verified chains.
    #[arg(long, env = "SOTTO_WITNESS_DATA")]
    pub data: PathBuf,
    /// A team to serve, as `team_id:fingerprint` (32 and 64 hex digits), repeatable. With at
    /// least one, only these teams are kept; without, a team's fingerprint is pinned on first
    /// use (anyone who pushes first decides it, so pin in production).
    #[arg(long = "team")]
    pub teams: Vec<String>,
    /// Most teams kept when fingerprints are pinned on first use.
    #[arg(long, env = "SOTTO_WITNESS_MAX_TEAMS", default_value_t = 1000)]
    pub max_teams: usize,
    /// Most links in one push.
    #[arg(long, default_value_t = 64)]
    pub max_batch: usize,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
}

impl WitnessArgs {
    /// Defaults for embedding and tests: listen on `127.0.0.1:0`.
    pub fn new(key_file: PathBuf, data: PathBuf) -> Self {
        WitnessArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            key_file,
            data,
            teams: Vec::new(),
            max_teams: 1000,
            max_batch: 64,
            max_body_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Why the witness could not start.
#[derive(Debug)]
pub struct WitnessError(pub String);

impl std::fmt::Display for WitnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WitnessError {}

fn fail(what: impl std::fmt::Display) -> WitnessError {
    WitnessError(what.to_string())
}

struct Shared {
    key: SigningKey,
    data: PathBuf,
    pins: HashMap<TeamId, LinkHash>,
    max_teams: usize,
    max_batch: usize,
    teams: Mutex<HashMap<TeamId, TeamState>>,
}

/// A running witness.
pub struct Witness {
    addr: SocketAddr,
    public_key: [u8; 32],
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Witness {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The statement key's public half, for the owner's SetWitness change.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// Stops serving.
    pub fn stop(self) {
        self.server.abort();
    }

    /// Serves until the task ends.
    pub async fn wait(self) -> std::io::Result<()> {
        self.server
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

fn parse_team_ref(s: &str) -> Result<(TeamId, LinkHash), WitnessError> {
    let bad = || fail(format!("--team {s:?} is not team_id:fingerprint in hex"));
    let (team, fingerprint) = s.split_once(':').ok_or_else(bad)?;
    let mut t = [0u8; 16];
    let mut f = [0u8; 32];
    hex::decode_to_slice(team, &mut t).map_err(|_| bad())?;
    hex::decode_to_slice(fingerprint, &mut f).map_err(|_| bad())?;
    Ok((TeamId(t), LinkHash(f)))
}

fn load_key(path: &FsPath) -> Result<SigningKey, WitnessError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| fail(format!("{}: not a 32-byte seed", path.display())))?;
            Ok(SigningKey::from_seed(&SecretBytes::new(seed)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| fail(format!("random source: {e}")))?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(path)
                .map_err(|e| fail(format!("{}: {e}", path.display())))?;
            file.write_all(&seed)
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(format!("{}: {e}", path.display())))?;
            Ok(SigningKey::from_seed(&SecretBytes::new(seed)))
        }
        Err(e) => Err(fail(format!("{}: {e}", path.display()))),
    }
}

fn chain_file(data: &FsPath, team: &TeamId) -> PathBuf {
    data.join(format!("{}.chain", hex::encode(team.0)))
}

/// Reads and verifies a stored chain; cuts a torn last record off.
fn load_chain(path: &FsPath, pin: Option<&LinkHash>) -> Result<Option<TeamState>, WitnessError> {
    let err = |what: String| fail(format!("{}: {what}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut state: Option<TeamState> = None;
    let mut at = 0usize;
    while let Some(len_bytes) = bytes.get(at..at.saturating_add(4)) {
        let len = u32::from_be_bytes(len_bytes.try_into().map_err(|_| err("length".into()))?);
        let start = at.saturating_add(4);
        let Some(record) = bytes.get(start..start.saturating_add(len as usize)) else {
            break;
        };
        let link = Link::from_wire(record).map_err(|e| err(format!("stored link: {e}")))?;
        match state.as_mut() {
            None => {
                let fingerprint = pin.copied().unwrap_or_else(|| link.hash());
                state = Some(
                    TeamState::from_genesis(&link, &fingerprint)
                        .map_err(|e| err(format!("first link: {e}")))?,
                );
            }
            Some(s) => s
                .apply(&link)
                .map_err(|e| err(format!("link {}: {e}", link.seq)))?,
        }
        at = start.saturating_add(len as usize);
    }
    if at < bytes.len() {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| err(e.to_string()))?;
        file.set_len(at as u64)
            .and_then(|()| file.sync_all())
            .map_err(|e| err(e.to_string()))?;
    }
    Ok(state)
}

/// Starts the witness: loads the key and the stored chains, binds, serves.
pub async fn start(args: &WitnessArgs) -> Result<Witness, WitnessError> {
    let key = load_key(&args.key_file)?;
    std::fs::create_dir_all(&args.data).map_err(|e| fail(format!("--data: {e}")))?;
    let mut pins = HashMap::new();
    for t in &args.teams {
        let (team, fingerprint) = parse_team_ref(t)?;
        pins.insert(team, fingerprint);
    }
    let mut teams = HashMap::new();
    let entries = std::fs::read_dir(&args.data).map_err(|e| fail(format!("--data: {e}")))?;
    for entry in entries {
        let path = entry.map_err(|e| fail(format!("--data: {e}")))?.path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".chain"))
        else {
            continue;
        };
        let mut id = [0u8; 16];
        if hex::decode_to_slice(stem, &mut id).is_err() {
            continue;
        }
        let team = TeamId(id);
        if !pins.is_empty() && !pins.contains_key(&team) {
            continue;
        }
        if let Some(state) = load_chain(&path, pins.get(&team))? {
            if state.team() != team {
                return Err(fail(format!("{}: another team's chain", path.display())));
            }
            teams.insert(team, state);
        }
    }
    let public_key = *key.verifying_key().as_bytes();
    let shared = Arc::new(Shared {
        key,
        data: args.data.clone(),
        pins,
        max_teams: args.max_teams,
        max_batch: args.max_batch,
        teams: Mutex::new(teams),
    });
    let app = router(shared, args.max_body_bytes);
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| fail(format!("listen: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| fail(format!("listen: {e}")))?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Witness {
        addr,
        public_key,
        server,
    })
}

fn router(shared: Arc<Shared>, max_body: usize) -> Router {
    Router::new()
        .route("/v1/witness/{team}", get(statement))
        .route("/v1/witness/{team}/links", post(push_links))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(cors))
        .with_state(shared)
}

/// Any origin may call the witness: it answers only public, signed statements and accepts only
/// links it verifies, and no request carries a credential. The browser widget calls it from the
/// integrator's pages.
async fn cors(request: Request, next: Next) -> Response {
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

struct ApiError(StatusCode, &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.1 } });
        (self.0, Json(body)).into_response()
    }
}

#[derive(Serialize)]
struct StatementOut {
    statement: String,
    seq: u64,
}

#[derive(Deserialize)]
struct LinksIn {
    links: Vec<String>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn parse_team(hex_id: &str) -> Result<TeamId, ApiError> {
    let mut id = [0u8; 16];
    hex::decode_to_slice(hex_id, &mut id)
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "invalid_id"))?;
    Ok(TeamId(id))
}

fn signed(shared: &Shared, state: &TeamState) -> Json<StatementOut> {
    let statement = WitnessStatement::sign(state, &shared.key, now());
    Json(StatementOut {
        statement: STANDARD.encode(statement.to_wire()),
        seq: state.seq(),
    })
}

/// `GET /v1/witness/{team}`: a fresh statement of the newest verified head.
async fn statement(
    State(shared): State<Arc<Shared>>,
    Path(team): Path<String>,
) -> Result<Json<StatementOut>, ApiError> {
    let team = parse_team(&team)?;
    let teams = shared.teams.lock().await;
    let state = teams
        .get(&team)
        .ok_or(ApiError(StatusCode::NOT_FOUND, "unknown_team"))?;
    Ok(signed(&shared, state))
}

/// `POST /v1/witness/{team}/links`: verifies and keeps the valid next links of a batch, then
/// answers a statement of the new head. Links the witness holds already are skipped (a retry),
/// another link at a held position is a fork.
async fn push_links(
    State(shared): State<Arc<Shared>>,
    Path(team): Path<String>,
    Json(body): Json<LinksIn>,
) -> Result<Json<StatementOut>, ApiError> {
    let team = parse_team(&team)?;
    if body.links.is_empty() || body.links.len() > shared.max_batch {
        return Err(ApiError(StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"));
    }
    let mut links = Vec::with_capacity(body.links.len());
    for l in &body.links {
        let bytes = STANDARD
            .decode(l)
            .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "invalid_base64"))?;
        links.push(
            Link::from_wire(&bytes)
                .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "invalid_wire"))?,
        );
    }
    let mut teams = shared.teams.lock().await;
    let known = teams.contains_key(&team);
    if !known && !shared.pins.is_empty() && !shared.pins.contains_key(&team) {
        return Err(ApiError(StatusCode::FORBIDDEN, "unknown_team"));
    }
    if !known && teams.len() >= shared.max_teams {
        return Err(ApiError(StatusCode::FORBIDDEN, "team_limit"));
    }
    let mut rest = links.iter();
    let mut state = match teams.get(&team) {
        Some(s) => s.clone(),
        None => {
            let first = rest
                .next()
                .filter(|l| l.seq == 0)
                .ok_or(ApiError(StatusCode::CONFLICT, "gap"))?;
            let fingerprint = shared
                .pins
                .get(&team)
                .copied()
                .unwrap_or_else(|| first.hash());
            let state = TeamState::from_genesis(first, &fingerprint)
                .map_err(|_| ApiError(StatusCode::UNPROCESSABLE_ENTITY, "verification_failed"))?;
            if state.team() != team {
                return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, "wrong_team"));
            }
            state
        }
    };
    let mut accepted: Vec<&Link> = if known {
        Vec::new()
    } else {
        links.first().into_iter().collect()
    };
    let mut refused = None;
    for link in rest {
        if link.seq <= state.seq() {
            if state.link_hash(link.seq) != Some(link.hash()) {
                refused = Some(ApiError(StatusCode::CONFLICT, "fork"));
                break;
            }
            continue;
        }
        if Some(link.seq) != state.seq().checked_add(1) {
            refused = Some(ApiError(StatusCode::CONFLICT, "gap"));
            break;
        }
        if state.apply(link).is_err() {
            refused = Some(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "verification_failed",
            ));
            break;
        }
        accepted.push(link);
    }
    if !accepted.is_empty() {
        append(&chain_file(&shared.data, &team), &accepted)
            .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal"))?;
    }
    // The valid prefix is kept even when a later link was refused: each is a verified next link.
    teams.insert(team, state);
    if let Some(e) = refused {
        return Err(e);
    }
    let state = teams
        .get(&team)
        .ok_or(ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal"))?;
    Ok(signed(&shared, state))
}

/// Appends verified links and syncs them before the witness vouches for them.
fn append(path: &FsPath, links: &[&Link]) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    for link in links {
        let wire = link.to_wire();
        let len = u32::try_from(wire.len()).map_err(std::io::Error::other)?;
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&wire);
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(&bytes)?;
    file.sync_data()
}
