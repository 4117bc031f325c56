//! A small Notary v1 client that talks to any notary-server over HTTPS the way the stock
//! clients do, for the benchmarks and for fault-injection tests.
//!
//! - [`TrustClient::init_repo`] creates a GUN like `notary init` + first publish (or, with
//!   `server_snapshot`, like the docker CLI): `GET timestamp.key` (and `snapshot.key`),
//!   `GET root.json` (404 expected), then one multipart `POST` with a root whose root key is
//!   an `ecdsa-x509` certificate with CN = GUN, built and signed with real keys by
//!   [`notary_tuf::test_support::TestRepo`].
//! - [`TrustClient::publish`] adds targets and posts the changed files (plus a client-signed
//!   snapshot unless the snapshot is server-managed); [`TrustClient::add_delegation`] and
//!   [`TrustClient::publish_role`] do the same for delegations.
//! - [`TrustClient::pull`] downloads in the order a client with an empty cache does
//!   (`root.json`, `timestamp.json`, `snapshot.<sha256>.json`, `targets.<sha256>.json`, each
//!   delegation by checksum) and verifies hashes along the chain and every signature.
//!
//! Uploads are encoded like Go's `mime/multipart` writer in the notary CLI: one part per
//! role, `Content-Disposition: form-data; name="files"; filename="<role>"`,
//! `Content-Type: application/octet-stream`. Only HTTP/1.1 is used, as by wrk, so both
//! servers are compared on the same protocol.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use notary_tuf::keys::PublicKey;
use notary_tuf::metadata::check_hashes;
use notary_tuf::roles;
use notary_tuf::test_support::TestRepo;
use notary_tuf::verify::RepoBuilder;
use notary_tuf::SignedFile;

/// An HTTPS client for one notary server. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct TrustClient {
    http: reqwest::Client,
    base: String,
}

/// A repository this client created: its keys and TUF content, and the exact bytes of the
/// files last accepted by the server.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The GUN.
    pub gun: String,
    /// Whether the server signs the snapshot (docker style) instead of the client.
    pub server_snapshot: bool,
    /// Keys and metadata content (root, targets, delegations, snapshot version).
    pub tuf: TestRepo,
    /// Exact bytes of the last accepted version of each uploaded role.
    pub published: BTreeMap<String, Vec<u8>>,
}

/// How much [`TrustClient::pull_with`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Only the hash chain timestamp → snapshot → root/targets/delegations.
    Hashes,
    /// Hashes plus every signature, version and expiry rule, through
    /// [`notary_tuf::verify::RepoBuilder`] (root certificate CN = GUN included).
    Full,
}

/// Result of an HTTP exchange: status and body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Response body.
    pub body: Vec<u8>,
}

impl Reply {
    fn ok(self, what: &str) -> Result<Vec<u8>> {
        if self.status == 200 {
            Ok(self.body)
        } else {
            bail!(
                "{what}: HTTP {} {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        }
    }
}

impl TrustClient {
    /// A client for `url` (e.g. `https://127.0.0.1:4443`) that trusts only `ca_pem`.
    pub fn new(url: &str, ca_pem: &[u8]) -> Result<TrustClient> {
        let ca = reqwest::Certificate::from_pem(ca_pem).context("reading the CA certificate")?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .http1_only()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(TrustClient {
            http,
            base: url.trim_end_matches('/').to_string(),
        })
    }

    /// The server URL this client talks to.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// URL of a file under `/v2/<gun>/_trust/tuf/`.
    pub fn tuf_url(&self, gun: &str, file: &str) -> String {
        format!("{}/v2/{gun}/_trust/tuf/{file}", self.base)
    }

    /// `GET` any URL on this server (`path` starts with `/`).
    pub async fn get_path(&self, path: &str) -> Result<Reply> {
        self.get_url(&format!("{}{path}", self.base)).await
    }

    /// `GET /v2/<gun>/_trust/tuf/<file>`, e.g. `timestamp.json`, `targets.<sha>.json`.
    pub async fn get_file(&self, gun: &str, file: &str) -> Result<Reply> {
        self.get_url(&self.tuf_url(gun, file)).await
    }

    /// `GET` an absolute URL (any host: the client trusts only its CA).
    pub async fn get_url(&self, url: &str) -> Result<Reply> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .with_context(|| format!("GET {url}: body"))?;
        Ok(Reply {
            status,
            body: body.to_vec(),
        })
    }

    /// `POST /v2/<gun>/_trust/tuf/` with one multipart part per (role, bytes), encoded like
    /// the notary CLI. Returns whatever the server answered.
    pub async fn post_update(&self, gun: &str, parts: &[(String, Vec<u8>)]) -> Result<Reply> {
        let boundary = format!("{:032x}", rand_u128());
        let mut body = Vec::new();
        for (role, bytes) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let url = self.tuf_url(gun, "");
        let resp = self
            .http
            .post(&url)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.context("POST: body")?.to_vec();
        Ok(Reply { status, body })
    }

    /// `GET /v2/<gun>/_trust/tuf/<role>.key` (role `timestamp` or `snapshot`): the server's
    /// public key for that role, created on first use.
    pub async fn server_key(&self, gun: &str, role: &str) -> Result<PublicKey> {
        let body = self
            .get_file(gun, &format!("{role}.key"))
            .await?
            .ok(&format!("GET {role}.key of {gun}"))?;
        let value: serde_json::Value =
            serde_json::from_slice(&body).context("key response is not JSON")?;
        PublicKey::from_json_value(&value).map_err(|e| anyhow!("bad {role}.key response: {e}"))
    }

    /// Creates `gun` like `notary init` followed by the first publish (or like the docker
    /// CLI when `server_snapshot`): fetches the server keys, builds a version-1 root with an
    /// x509 root certificate for the GUN, an empty `targets` and (client-managed) a
    /// snapshot, and posts them. Fails unless the server answers 200.
    pub async fn init_repo(&self, gun: &str, server_snapshot: bool) -> Result<Repo> {
        let timestamp_key = self.server_key(gun, roles::TIMESTAMP).await?;
        let snapshot_key = if server_snapshot {
            Some(self.server_key(gun, roles::SNAPSHOT).await?)
        } else {
            None
        };
        // A real client checks that nothing is there yet; the answer does not matter here.
        self.get_file(gun, "root.json").await?;

        let mut tuf = TestRepo::new(gun);
        tuf.set_role_key(roles::TIMESTAMP, timestamp_key);
        if let Some(key) = snapshot_key {
            tuf.set_role_key(roles::SNAPSHOT, key);
        }
        // set_role_key bumps the version for rotations; a new repository starts at 1.
        tuf.root.common.version = 1;
        let mut repo = Repo {
            gun: gun.to_string(),
            server_snapshot,
            tuf,
            published: BTreeMap::new(),
        };
        let mut staged = repo.clone();
        let root = staged.tuf.root_file();
        // The snapshot must hash these exact root bytes (ECDSA signatures differ per run).
        staged
            .published
            .insert(roles::ROOT.to_string(), root.clone());
        let mut parts = vec![(roles::ROOT.to_string(), root)];
        parts.extend(staged.stage_roles(&[roles::TARGETS]));
        staged.record(&parts);
        self.post_update(gun, &parts)
            .await?
            .ok(&format!("initial publish of {gun}"))?;
        repo = staged;
        Ok(repo)
    }

    /// Adds `targets` (name, content) to the top-level `targets` role and publishes it.
    /// Returns the HTTP status; on anything but 200 `repo` is left unchanged.
    pub async fn publish(&self, repo: &mut Repo, targets: &[(String, Vec<u8>)]) -> Result<u16> {
        self.publish_role(repo, roles::TARGETS, targets).await
    }

    /// Adds `targets` to `role` (`targets` or an existing delegation) and publishes it,
    /// with a new client-signed snapshot unless the snapshot is server-managed. Returns the
    /// HTTP status; on anything but 200 `repo` is left unchanged.
    pub async fn publish_role(
        &self,
        repo: &mut Repo,
        role: &str,
        targets: &[(String, Vec<u8>)],
    ) -> Result<u16> {
        let mut staged = repo.clone();
        let parts = staged.stage(role, targets);
        self.commit(repo, staged, &parts).await
    }

    /// Adds delegation `name` (e.g. `targets/releases`) under `targets` with a fresh ECDSA
    /// key and the given paths, and publishes the new `targets`, the (empty) delegation file
    /// and the snapshot. Returns the HTTP status; on anything but 200 `repo` is unchanged.
    pub async fn add_delegation(&self, repo: &mut Repo, name: &str, paths: &[&str]) -> Result<u16> {
        let mut staged = repo.clone();
        let parent = roles::path_dir(name).to_string();
        staged.tuf.add_delegation(&parent, name, paths);
        let parts = staged.stage_roles(&[parent.as_str(), name]);
        self.commit(repo, staged, &parts).await
    }

    async fn commit(
        &self,
        repo: &mut Repo,
        mut staged: Repo,
        parts: &[(String, Vec<u8>)],
    ) -> Result<u16> {
        let reply = self.post_update(&repo.gun, parts).await?;
        if reply.status == 200 {
            staged.record(parts);
            *repo = staged;
        }
        Ok(reply.status)
    }

    /// Downloads `gun` like a client with an empty cache and verifies everything
    /// ([`Verify::Full`]).
    pub async fn pull(&self, gun: &str) -> Result<()> {
        self.pull_with(gun, Verify::Full).await.map(drop)
    }

    /// Downloads `gun`: `root.json`, `timestamp.json`, the snapshot by the sha256 the
    /// timestamp names, then `targets` and every delegation the snapshot lists, each by its
    /// sha256, checking every file against the hashes of the file that names it. Returns the
    /// files by role.
    pub async fn pull_with(&self, gun: &str, verify: Verify) -> Result<BTreeMap<String, Vec<u8>>> {
        let mut files = BTreeMap::new();
        let root = self
            .get_file(gun, "root.json")
            .await?
            .ok(&format!("GET root.json of {gun}"))?;
        let timestamp = self
            .get_file(gun, "timestamp.json")
            .await?
            .ok(&format!("GET timestamp.json of {gun}"))?;
        let ts = SignedFile::parse(&timestamp)
            .map_err(|e| anyhow!("timestamp of {gun}: {e}"))?
            .timestamp()
            .map_err(|e| anyhow!("timestamp of {gun}: {e}"))?;
        let snap_meta = ts
            .snapshot_meta()
            .ok_or_else(|| anyhow!("timestamp of {gun} lists no snapshot"))?;
        let snap_sha = snap_meta
            .sha256_hex()
            .ok_or_else(|| anyhow!("timestamp of {gun} has no snapshot sha256"))?;
        let snapshot = self
            .get_file(gun, &format!("snapshot.{snap_sha}.json"))
            .await?
            .ok(&format!("GET snapshot.{snap_sha}.json of {gun}"))?;
        check_hashes(&snapshot, roles::SNAPSHOT, &snap_meta.hashes)
            .map_err(|e| anyhow!("snapshot of {gun}: {e}"))?;
        let snap = SignedFile::parse(&snapshot)
            .map_err(|e| anyhow!("snapshot of {gun}: {e}"))?
            .snapshot()
            .map_err(|e| anyhow!("snapshot of {gun}: {e}"))?;
        let root_meta = snap
            .meta
            .get(roles::ROOT)
            .ok_or_else(|| anyhow!("snapshot of {gun} lists no root"))?;
        check_hashes(&root, roles::ROOT, &root_meta.hashes)
            .map_err(|e| anyhow!("root of {gun}: {e}"))?;

        let mut target_roles: Vec<&String> = snap
            .meta
            .keys()
            .filter(|r| r.as_str() == roles::TARGETS || roles::is_delegation(r))
            .collect();
        roles::sort_roles(&mut target_roles);
        for role in target_roles {
            let meta = &snap.meta[role];
            let sha = meta
                .sha256_hex()
                .ok_or_else(|| anyhow!("snapshot of {gun} has no sha256 for {role}"))?;
            let bytes = self
                .get_file(gun, &format!("{role}.{sha}.json"))
                .await?
                .ok(&format!("GET {role}.{sha}.json of {gun}"))?;
            check_hashes(&bytes, role, &meta.hashes)
                .map_err(|e| anyhow!("{role} of {gun}: {e}"))?;
            files.insert(role.clone(), bytes);
        }
        files.insert(roles::ROOT.to_string(), root);
        files.insert(roles::TIMESTAMP.to_string(), timestamp);
        files.insert(roles::SNAPSHOT.to_string(), snapshot);

        if verify == Verify::Full {
            let mut builder = RepoBuilder::new(gun, chrono::Utc::now());
            let mut order = vec![roles::ROOT, roles::TIMESTAMP, roles::SNAPSHOT];
            let mut delegated: Vec<&str> = files
                .keys()
                .map(String::as_str)
                .filter(|r| *r == roles::TARGETS || roles::is_delegation(r))
                .collect();
            roles::sort_roles(&mut delegated);
            order.extend(delegated);
            for role in order {
                builder
                    .load(role, &files[role], 1, false)
                    .map_err(|e| anyhow!("verifying {role} of {gun}: {e}"))?;
            }
        }
        Ok(files)
    }
}

impl Repo {
    /// Adds `targets` to `role`, bumps its version, signs it (and a new snapshot unless the
    /// server manages it) and records the result as published. Returns the parts to post.
    ///
    /// For callers that post themselves (e.g. several concurrent publishers sharing one
    /// repository under a lock, where a later stage must build on an earlier one even before
    /// the server has answered). [`TrustClient::publish_role`] records only on success.
    pub fn stage(&mut self, role: &str, targets: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
        for (name, content) in targets {
            self.tuf.add_target(role, name, content);
        }
        let parts = self.stage_roles(&[role]);
        self.record(&parts);
        parts
    }

    /// Adds image tags to `role` the way `docker trust` writes them: the sha256 of a
    /// manifest and its length, no sha512 (about 100 bytes a tag in `targets.json`). Not
    /// staged: [`Repo::stage`] with no further targets signs them.
    pub fn add_docker_tags(&mut self, role: &str, tags: impl IntoIterator<Item = String>) {
        for tag in tags {
            let manifest = format!("{{\"schemaVersion\":2,\"tag\":\"{tag}\"}}");
            let mut meta = notary_tuf::metadata::FileMeta::from_bytes(manifest.as_bytes());
            meta.hashes.retain(|alg, _| alg == "sha256");
            meta.length = 1_573;
            self.tuf.add_target_meta(role, &tag, meta);
        }
    }

    /// Signs the given targets roles (bumping the version of those already published) and,
    /// for a client-managed snapshot, a new snapshot over root and all targets roles.
    fn stage_roles(&mut self, changed: &[&str]) -> Vec<(String, Vec<u8>)> {
        let mut parts = Vec::new();
        for role in changed {
            if self.published.contains_key(*role) {
                self.tuf.bump_targets(role);
            }
            parts.push((role.to_string(), self.tuf.targets_file(role)));
        }
        if !self.server_snapshot {
            if self.published.contains_key(roles::SNAPSHOT) {
                self.tuf.snapshot_common.version += 1;
            }
            let root = self
                .published
                .get(roles::ROOT)
                .cloned()
                .unwrap_or_else(|| self.tuf.root_file());
            let mut targets: BTreeMap<String, Vec<u8>> = self
                .published
                .iter()
                .filter(|(r, _)| r.as_str() == roles::TARGETS || roles::is_delegation(r))
                .map(|(r, b)| (r.clone(), b.clone()))
                .collect();
            for (role, bytes) in &parts {
                if role == roles::TARGETS || roles::is_delegation(role) {
                    targets.insert(role.clone(), bytes.clone());
                }
            }
            parts.push((
                roles::SNAPSHOT.to_string(),
                self.tuf.snapshot_file(&root, &targets),
            ));
        }
        parts
    }

    fn record(&mut self, parts: &[(String, Vec<u8>)]) {
        for (role, bytes) in parts {
            self.published.insert(role.clone(), bytes.clone());
        }
    }
}

/// A random value for multipart boundaries (no need for a CSPRNG).
fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let a = h.finish();
    h.write_u64(a);
    (u128::from(a) << 64) | u128::from(h.finish())
}
