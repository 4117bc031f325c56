//! One PKCS#11 token: loading the module, finding the token, logging in, a pool of sessions
//! for concurrent signing, and reconnecting after the token went away.
//!
//! Every call runs under a read guard of the connection. A call that fails because the token
//! or module is gone (device removed, token not present, sessions invalidated, ...) retires
//! the connection under the write guard, which waits for the calls still in flight, so that
//! `C_Finalize` never runs beside another thread's call. The next call connects again
//! (at most once per [`RECONNECT_INTERVAL`]); until then calls fail at once with
//! [`KeyStoreError::Unavailable`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::keystore::KeyStoreError;

/// The least time between two attempts to reconnect to a token that went away.
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

/// How long a call waits for a free session when all are busy.
const SESSION_WAIT: Duration = Duration::from_secs(10);

/// Where the token is and how to log in.
#[derive(Clone)]
pub struct TokenConfig {
    /// The PKCS#11 module (shared library).
    pub module: PathBuf,
    /// The token's label (`CKA_LABEL` of the token, trailing blanks ignored).
    pub token_label: Option<String>,
    /// The slot ID, when no label is given.
    pub slot: Option<u64>,
    /// The user PIN.
    pub pin: Zeroizing<String>,
    /// Where the PIN came from (an environment variable), for messages.
    pub pin_source: String,
    /// Sessions opened at most; calls beyond wait for one.
    pub max_sessions: usize,
}

// Never print the PIN.
impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("slot", &self.slot)
            .field("pin_source", &self.pin_source)
            .field("max_sessions", &self.max_sessions)
            .finish()
    }
}

/// Why the token could not be reached, with the configuration setting to look at.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConnectError {
    /// The setting at fault (`pkcs11.module`, `pkcs11.token_label`, ...).
    pub setting: &'static str,
    /// What happened.
    pub reason: String,
}

fn connect_error(setting: &'static str, reason: impl Into<String>) -> ConnectError {
    ConnectError {
        setting,
        reason: reason.into(),
    }
}

/// A short form of a cryptoki error: the function and the CKR_ name, not the spec's prose.
pub(crate) fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("{function} returned {rv:?}"),
        other => other.to_string(),
    }
}

/// Errors after which the connection cannot be trusted: the token, the slot, the module or
/// our sessions are gone.
fn is_fatal(e: &CkError) -> bool {
    match e {
        CkError::Pkcs11(rv, _) => matches!(
            rv,
            RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SlotIdInvalid
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::SessionCount
                | RvError::UserNotLoggedIn
                | RvError::CryptokiNotInitialized
                | RvError::GeneralError
        ),
        CkError::LibraryLoading(_) | CkError::NullFunctionPointer => true,
        _ => false,
    }
}

/// A live connection: the module, the token's slot, and what the token can do.
pub(crate) struct Conn {
    ctx: Pkcs11,
    slot: Slot,
    /// The token's label as the token reports it (trimmed).
    pub(crate) label: String,
    mechanisms: Vec<MechanismType>,
    generation: u64,
}

impl Conn {
    /// Whether the token offers a mechanism.
    pub(crate) fn supports(&self, mechanism: MechanismType) -> bool {
        self.mechanisms.contains(&mechanism)
    }
}

struct Sessions {
    idle: Vec<Session>,
    open: usize,
    generation: u64,
}

struct Reconnect {
    generation: u64,
    not_before: Option<Instant>,
    last_error: String,
}

/// A logged-in PKCS#11 token with a session pool.
pub struct Token {
    config: TokenConfig,
    conn: RwLock<Option<Conn>>,
    sessions: Mutex<Sessions>,
    session_freed: Condvar,
    reconnect: Mutex<Reconnect>,
    /// Private-key handles by CKA_ID, valid for one connection generation.
    handles: Mutex<HashMap<Vec<u8>, (u64, ObjectHandle)>>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("config", &self.config)
            .finish()
    }
}

impl Token {
    /// Loads the module, finds the token and logs in; the error names the setting at fault.
    /// Blocking.
    pub fn open(config: TokenConfig) -> Result<Self, ConnectError> {
        let (conn, session) = connect(&config, 1)?;
        Ok(Self {
            config,
            conn: RwLock::new(Some(conn)),
            sessions: Mutex::new(Sessions {
                idle: vec![session],
                open: 1,
                generation: 1,
            }),
            session_freed: Condvar::new(),
            reconnect: Mutex::new(Reconnect {
                generation: 1,
                not_before: None,
                last_error: String::new(),
            }),
            handles: Mutex::new(HashMap::new()),
        })
    }

    /// The configured token label, or `slot N`.
    pub fn name(&self) -> String {
        match (&self.config.token_label, self.config.slot) {
            (Some(label), _) => format!("token {label:?}"),
            (None, Some(slot)) => format!("slot {slot}"),
            (None, None) => "token".into(),
        }
    }

    /// Runs `op` on a pooled session of the live connection, connecting first if needed.
    /// Blocking. A fatal error retires the connection and answers
    /// [`KeyStoreError::Unavailable`]; other errors come back as `Err(Ok(e))` for the caller
    /// to interpret.
    pub(crate) fn with_session<T>(
        &self,
        what: &str,
        op: impl FnOnce(&Session, &Conn) -> Result<T, CkError>,
    ) -> Result<Result<T, CkError>, KeyStoreError> {
        let mut op = Some(op);
        for _ in 0..2 {
            let guard = self.conn.read().unwrap_or_else(|e| e.into_inner());
            let Some(conn) = guard.as_ref() else {
                drop(guard);
                self.reconnect()?;
                continue;
            };
            let session = self.checkout(conn)?;
            let result = (op.take().expect("op runs once"))(&session, conn);
            match result {
                Err(e) if is_fatal(&e) => {
                    let generation = conn.generation;
                    drop(session);
                    self.abandon_sessions(generation);
                    drop(guard);
                    let reason = format!("{what}: {}", describe(&e));
                    self.retire(generation, &reason);
                    return Err(KeyStoreError::Unavailable(format!(
                        "PKCS#11 {}: {reason}",
                        self.name()
                    )));
                }
                Err(e) if !self.present(conn) => {
                    // Errors on objects that vanished mid-call (invalid handles, failed
                    // functions) are how some modules report a token being pulled.
                    let generation = conn.generation;
                    drop(session);
                    self.abandon_sessions(generation);
                    drop(guard);
                    let reason = format!("{what}: {} and the token is gone", describe(&e));
                    self.retire(generation, &reason);
                    return Err(KeyStoreError::Unavailable(format!(
                        "PKCS#11 {}: {reason}",
                        self.name()
                    )));
                }
                other => {
                    self.checkin(session, conn.generation);
                    return Ok(other);
                }
            }
        }
        Err(self.unavailable())
    }

    /// Whether the module still lists the connection's token.
    fn present(&self, conn: &Conn) -> bool {
        conn.ctx
            .get_slots_with_initialized_token()
            .map(|slots| slots.iter().any(|s| s.id() == conn.slot.id()))
            .unwrap_or(false)
    }

    fn unavailable(&self) -> KeyStoreError {
        let state = self.reconnect.lock().unwrap_or_else(|e| e.into_inner());
        KeyStoreError::Unavailable(format!(
            "PKCS#11 {} is not connected: {}",
            self.name(),
            state.last_error
        ))
    }

    fn checkout(&self, conn: &Conn) -> Result<Session, KeyStoreError> {
        let deadline = Instant::now() + SESSION_WAIT;
        let mut pool = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            // The connection is being retired: do not wait for sessions that will not return.
            if pool.generation != conn.generation {
                drop(pool);
                return Err(self.unavailable());
            }
            if let Some(s) = pool.idle.pop() {
                return Ok(s);
            }
            if pool.open < self.config.max_sessions.max(1) {
                pool.open += 1;
                drop(pool);
                return conn.ctx.open_rw_session(conn.slot).map_err(|e| {
                    let mut pool = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
                    if pool.generation == conn.generation {
                        pool.open -= 1;
                    }
                    KeyStoreError::Unavailable(format!(
                        "PKCS#11 {}: cannot open a session: {}",
                        self.name(),
                        describe(&e)
                    ))
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(KeyStoreError::Unavailable(format!(
                    "PKCS#11 {}: all {} sessions stayed busy for {}s",
                    self.name(),
                    self.config.max_sessions,
                    SESSION_WAIT.as_secs()
                )));
            }
            pool = self
                .session_freed
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Marks the pool of `generation` as gone, so that calls waiting for one of its
    /// sessions give up at once instead of holding off the reconnect until they time out.
    fn abandon_sessions(&self, generation: u64) {
        let mut pool = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if pool.generation == generation {
            pool.idle.clear();
            pool.open = 0;
            pool.generation = generation + 1;
        }
        drop(pool);
        self.session_freed.notify_all();
    }

    fn checkin(&self, session: Session, generation: u64) {
        let mut pool = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if pool.generation == generation {
            pool.idle.push(session);
            drop(pool);
            self.session_freed.notify_one();
        }
    }

    /// Drops the connection of `generation` (if still current) and finalizes the module.
    fn retire(&self, generation: u64, reason: &str) {
        // The write guard waits for every call in flight on this connection.
        let mut guard = self.conn.write().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().map(|c| c.generation) != Some(generation) {
            return;
        }
        tracing::error!(token = %self.name(), %reason, "PKCS#11 token lost; will reconnect");
        let conn = guard.take().expect("checked above");
        {
            let mut pool = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            pool.idle.clear();
            pool.open = 0;
            pool.generation = generation + 1;
        }
        self.session_freed.notify_all();
        self.lock_handles().clear();
        // Logged only: a module whose device vanished often refuses to finalize too.
        if let Err(e) = conn.ctx.finalize() {
            tracing::debug!(error = %describe(&e), "C_Finalize after token loss");
        }
        let mut state = self.reconnect.lock().unwrap_or_else(|e| e.into_inner());
        state.generation = generation + 1;
        state.last_error = reason.to_string();
        state.not_before = None;
    }

    /// Connects again unless that was tried less than [`RECONNECT_INTERVAL`] ago.
    fn reconnect(&self) -> Result<(), KeyStoreError> {
        let mut guard = self.conn.write().unwrap_or_else(|e| e.into_inner());
        if guard.is_some() {
            return Ok(());
        }
        let mut state = self.reconnect.lock().unwrap_or_else(|e| e.into_inner());
        if state.not_before.is_some_and(|t| Instant::now() < t) {
            drop(state);
            return Err(self.unavailable());
        }
        let generation = state.generation;
        match connect(&self.config, generation) {
            Ok((conn, session)) => {
                tracing::warn!(token = %self.name(), "PKCS#11 token reconnected");
                let mut pool = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
                pool.idle = vec![session];
                pool.open = 1;
                pool.generation = generation;
                *guard = Some(conn);
                state.not_before = None;
                Ok(())
            }
            Err(e) => {
                state.not_before = Some(Instant::now() + RECONNECT_INTERVAL);
                state.last_error = e.to_string();
                tracing::warn!(token = %self.name(), error = %e, "PKCS#11 reconnect failed");
                Err(KeyStoreError::Unavailable(format!(
                    "PKCS#11 {}: {e}",
                    self.name()
                )))
            }
        }
    }

    fn lock_handles(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, (u64, ObjectHandle)>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handle of the object of `class` with `CKA_ID` = `id`, if there is one. Private-key
    /// handles are cached per connection.
    pub(crate) fn find(
        &self,
        session: &Session,
        conn: &Conn,
        class: ObjectClass,
        id: &[u8],
    ) -> Result<Option<ObjectHandle>, CkError> {
        let cacheable = class == ObjectClass::PRIVATE_KEY;
        if cacheable {
            if let Some((generation, handle)) = self.lock_handles().get(id) {
                if *generation == conn.generation {
                    return Ok(Some(*handle));
                }
            }
        }
        let found = session.find_objects(&[
            Attribute::Token(true),
            Attribute::Class(class),
            Attribute::Id(id.to_vec()),
        ])?;
        let handle = found.first().copied();
        if let (true, Some(h)) = (cacheable, handle) {
            self.lock_handles()
                .insert(id.to_vec(), (conn.generation, h));
        }
        Ok(handle)
    }

    /// Forgets a cached handle (after the object was destroyed or the handle went stale).
    pub(crate) fn forget(&self, id: &[u8]) {
        self.lock_handles().remove(id);
    }
}

/// Loads the module, finds the token, opens a session and logs in.
fn connect(config: &TokenConfig, generation: u64) -> Result<(Conn, Session), ConnectError> {
    let module = config.module.display().to_string();
    let ctx = Pkcs11::new(&config.module).map_err(|e| {
        connect_error(
            "pkcs11.module",
            format!("cannot load the PKCS#11 module {module}: {e}"),
        )
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(connect_error(
                "pkcs11.module",
                format!("{module} failed to initialize: {}", describe(&e)),
            ))
        }
    }
    // From here on, a failure must finalize what was initialized.
    let fail = |ctx: Pkcs11, e: ConnectError| {
        let _ = ctx.finalize();
        Err(e)
    };
    let slots = match ctx.get_slots_with_initialized_token() {
        Ok(s) => s,
        Err(e) => {
            return fail(
                ctx,
                connect_error(
                    "pkcs11.module",
                    format!("{module} cannot list its slots: {}", describe(&e)),
                ),
            )
        }
    };
    let mut labels = Vec::new();
    let mut chosen = None;
    for slot in slots {
        let label = match ctx.get_token_info(slot) {
            Ok(info) => info.label().trim_end().to_string(),
            Err(_) => continue,
        };
        let wanted = match (&config.token_label, config.slot) {
            (Some(l), _) => *l == label,
            (None, Some(id)) => slot.id() == id,
            (None, None) => false,
        };
        if wanted && chosen.is_none() {
            chosen = Some((slot, label.clone()));
        }
        labels.push(format!("{label:?} (slot {})", slot.id()));
    }
    let present = if labels.is_empty() {
        "none".to_string()
    } else {
        labels.join(", ")
    };
    let Some((slot, label)) = chosen else {
        let (setting, what) = match (&config.token_label, config.slot) {
            (Some(l), _) => ("pkcs11.token_label", format!("no token labelled {l:?}")),
            (None, Some(id)) => ("pkcs11.slot", format!("no initialized token in slot {id}")),
            (None, None) => (
                "pkcs11.token_label",
                "set pkcs11.token_label (or pkcs11.slot) to choose a token".to_string(),
            ),
        };
        return fail(
            ctx,
            connect_error(
                setting,
                format!("{what} in {module} (tokens present: {present})"),
            ),
        );
    };
    let session = match ctx.open_rw_session(slot) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                ctx,
                connect_error(
                    "pkcs11.token_label",
                    format!("cannot open a session on token {label:?}: {}", describe(&e)),
                ),
            )
        }
    };
    let pin = AuthPin::from(config.pin.as_str());
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => {
            let reason = match &e {
                CkError::Pkcs11(RvError::PinIncorrect, _) => format!(
                    "token {label:?} refused the PIN from {} (CKR_PIN_INCORRECT)",
                    config.pin_source
                ),
                CkError::Pkcs11(RvError::PinLocked, _) => format!(
                    "token {label:?} has locked its user PIN (CKR_PIN_LOCKED); unlock it with the SO PIN"
                ),
                other => format!(
                    "cannot log in to token {label:?} with the PIN from {}: {}",
                    config.pin_source,
                    describe(other)
                ),
            };
            drop(session);
            return fail(ctx, connect_error("pkcs11.pin_alias", reason));
        }
    }
    let mechanisms = ctx.get_mechanism_list(slot).unwrap_or_default();
    Ok((
        Conn {
            ctx,
            slot,
            label,
            mechanisms,
            generation,
        },
        session,
    ))
}
