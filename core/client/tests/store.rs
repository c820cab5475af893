//! The shared store suite against every native backend, and tests that need one backend's
//! internals (editing SQLite rows directly).

// Native only: the browser runs tests/web.rs (tokio is not a wasm32 dev-dependency).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::suite::Harness;
use sotto_client::store::MemoryStore;

/// Memory backend: "reopening" is another handle on the same records.
#[derive(Default)]
struct MemoryHarness {
    last: MemoryStore,
}

impl Harness for MemoryHarness {
    type Backend = MemoryStore;
    async fn fresh(&mut self) -> MemoryStore {
        self.last = MemoryStore::new();
        self.last.clone()
    }
    async fn reopen(&mut self) -> MemoryStore {
        self.last.clone()
    }
}

mod memory {
    crate::suite_tests!(super::MemoryHarness::default());
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    use sotto_client::Error;
    use sotto_client::store::{EncryptedStore, MAX_SEALED_LEN, Query, SqliteStore, Store, Update};
    use sqlx::{Connection, SqliteConnection};

    use crate::common::suite::{self, Harness, id, key, ns};

    /// A fresh database file under the target's temporary directory for each backend.
    pub struct SqliteHarness {
        path: PathBuf,
    }

    static NEXT: AtomicU32 = AtomicU32::new(0);

    pub fn temp_db(name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sotto-client-store");
        std::fs::create_dir_all(&dir).unwrap();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{name}-{}-{n}.sqlite", std::process::id()));
        remove_db(&path);
        path
    }

    pub fn remove_db(path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }

    impl SqliteHarness {
        pub fn new() -> Self {
            SqliteHarness {
                path: PathBuf::new(),
            }
        }
    }

    impl Drop for SqliteHarness {
        fn drop(&mut self) {
            if !self.path.as_os_str().is_empty() {
                remove_db(&self.path);
            }
        }
    }

    impl Harness for SqliteHarness {
        type Backend = SqliteStore;
        async fn fresh(&mut self) -> SqliteStore {
            if !self.path.as_os_str().is_empty() {
                remove_db(&self.path);
            }
            self.path = temp_db("suite");
            SqliteStore::open(&self.path).await.unwrap()
        }
        async fn reopen(&mut self) -> SqliteStore {
            SqliteStore::open(&self.path).await.unwrap()
        }
    }

    mod suite_tests {
        crate::suite_tests!(super::SqliteHarness::new());
    }

    /// A separate connection to the file, as a tool or an attacker would use.
    async fn raw_connection(path: &Path) -> SqliteConnection {
        SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn editing_a_row_directly_is_detected() {
        let path = temp_db("edit");
        let store = EncryptedStore::open(SqliteStore::open(&path).await.unwrap(), key(1))
            .await
            .unwrap();
        let a = id("device", b"me");
        let b = id("device", b"you");
        store
            .put(&a, b"ed25519 seed and x25519 secret")
            .await
            .unwrap();
        store.put(&b, b"another value").await.unwrap();

        let mut conn = raw_connection(&path).await;
        // Edits in SQL alone: append a byte, drop the first byte.
        for edit in ["value || x'00'", "substr(value, 2)"] {
            let original: (Vec<u8>,) =
                sqlx::query_as("SELECT value FROM record WHERE namespace = 'device' AND key = ?1")
                    .bind(&b"me"[..])
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            sqlx::query(&format!(
                "UPDATE record SET value = {edit} WHERE namespace = 'device' AND key = ?1"
            ))
            .bind(&b"me"[..])
            .execute(&mut conn)
            .await
            .unwrap();
            assert_eq!(
                store.get(&a).await.unwrap_err().code(),
                "store_tampered",
                "{edit}"
            );
            sqlx::query("UPDATE record SET value = ?1 WHERE namespace = 'device' AND key = ?2")
                .bind(&original.0)
                .bind(&b"me"[..])
                .execute(&mut conn)
                .await
                .unwrap();
            assert!(store.get(&a).await.is_ok());
        }

        // A precise edit: read the row, flip a tag bit, write it back.
        let (sealed,): (Vec<u8>,) =
            sqlx::query_as("SELECT value FROM record WHERE namespace = 'device' AND key = ?1")
                .bind(&b"you"[..])
                .fetch_one(&mut conn)
                .await
                .unwrap();
        let mut t = sealed.clone();
        let last = t.len() - 1;
        t[last] ^= 0x40;
        sqlx::query("UPDATE record SET value = ?1 WHERE namespace = 'device' AND key = ?2")
            .bind(&t)
            .bind(&b"you"[..])
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            store.get(&b).await.unwrap_err(),
            Error::Tampered {
                namespace: "device".into()
            }
        );

        // Moving a row to another key (same bytes, another id) is refused too.
        sqlx::query("UPDATE record SET value = ?1 WHERE namespace = 'device' AND key = ?2")
            .bind(&sealed)
            .bind(&b"you"[..])
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            store.get(&b).await.unwrap().unwrap().value.as_slice(),
            b"another value"
        );
        sqlx::query("UPDATE record SET key = ?1 WHERE namespace = 'device' AND key = ?2")
            .bind(&b"moved"[..])
            .bind(&b"you"[..])
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            store.get(&id("device", b"moved")).await.unwrap_err().code(),
            "store_tampered"
        );
        sqlx::query("UPDATE record SET namespace = 'team.keys' WHERE key = ?1")
            .bind(&b"moved"[..])
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            store.get(&id("team.keys", b"moved")).await.unwrap_err(),
            Error::Tampered {
                namespace: "team.keys".into()
            }
        );
        conn.close().await.unwrap();
        store.backend().close().await;
        remove_db(&path);
    }

    #[tokio::test]
    async fn doctored_rows_are_bounded_typed_errors() {
        let path = temp_db("doctored");
        let store = EncryptedStore::open(SqliteStore::open(&path).await.unwrap(), key(1))
            .await
            .unwrap();
        store.put(&id("msg", b"k"), b"v").await.unwrap();
        let mut conn = raw_connection(&path).await;
        // An oversized value is refused before it is loaded.
        sqlx::query("UPDATE record SET value = zeroblob(?1) WHERE key = ?2")
            .bind(i64::try_from(MAX_SEALED_LEN + 1).unwrap())
            .bind(&b"k"[..])
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            store.get(&id("msg", b"k")).await.unwrap_err().code(),
            "store_tampered"
        );
        assert_eq!(
            store
                .list(&ns("msg"), &Query::default())
                .await
                .unwrap_err()
                .code(),
            "store_tampered"
        );
        // A value of the wrong SQL type, a bad namespace, an over-long key, a bad version.
        sqlx::query("UPDATE record SET value = 'text' WHERE key = ?1")
            .bind(&b"k"[..])
            .execute(&mut conn)
            .await
            .unwrap();
        // (SQLite hands TEXT over as bytes; they do not authenticate.)
        assert_eq!(
            store.get(&id("msg", b"k")).await.unwrap_err().code(),
            "store_tampered"
        );
        sqlx::query("INSERT INTO record VALUES ('Bad Namespace', x'00', 5, x'00')")
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            store.namespaces().await.unwrap_err().code(),
            "store_corrupt"
        );
        sqlx::query("DELETE FROM record WHERE namespace = 'Bad Namespace'")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO record VALUES ('msg', zeroblob(300), 5, x'00')")
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            store
                .list(&ns("msg"), &Query::prefix(vec![0]))
                .await
                .unwrap_err()
                .code(),
            "store_corrupt"
        );
        sqlx::query("UPDATE record SET version = -3 WHERE key = ?1")
            .bind(&b"k"[..])
            .execute(&mut conn)
            .await
            .unwrap_err(); // the CHECK constraint refuses it ...
        sqlx::query("PRAGMA ignore_check_constraints = ON")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("UPDATE record SET version = -3, value = x'00' WHERE key = ?1")
            .bind(&b"k"[..])
            .execute(&mut conn)
            .await
            .unwrap(); // ... unless an attacker turns it off
        assert_eq!(
            store.get(&id("msg", b"k")).await.unwrap_err().code(),
            "store_corrupt"
        );
        conn.close().await.unwrap();
        store.backend().close().await;
        remove_db(&path);
    }

    #[tokio::test]
    async fn foreign_and_newer_files_are_refused() {
        let path = temp_db("foreign");
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE something_else (x)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        assert_eq!(
            SqliteStore::open(&path).await.unwrap_err(),
            Error::Corrupt("the database file is not a Sotto store")
        );
        remove_db(&path);

        let path = temp_db("newer");
        SqliteStore::open(&path).await.unwrap().close().await;
        let mut conn = raw_connection(&path).await;
        sqlx::query("PRAGMA user_version = 2")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        assert_eq!(
            SqliteStore::open(&path).await.unwrap_err(),
            Error::SchemaTooNew { found: 2 }
        );
        remove_db(&path);
    }

    #[tokio::test]
    async fn file_settings_are_wal_full_sync_secure_delete() {
        let path = temp_db("settings");
        let store = SqliteStore::open(&path).await.unwrap();
        let mut conn = raw_connection(&path).await;
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        conn.close().await.unwrap();
        // Per-connection settings are checked through the store's own pool, via a value that
        // the deleted record leaves behind (or not) in the file.
        let s = EncryptedStore::open(store, key(1)).await.unwrap();
        let marker = id("epoch", b"shred-me");
        s.put(&marker, &[0x5A; 4000]).await.unwrap();
        let sealed = s.backend().get(&marker).await.unwrap().unwrap().sealed;
        let needle = &sealed[100..164];
        let found_in_files = || {
            let mut bytes = std::fs::read(&path).unwrap();
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            bytes.extend(std::fs::read(&wal).unwrap_or_default());
            bytes.windows(needle.len()).any(|w| w == needle)
        };
        assert!(
            found_in_files(),
            "the value is in the files while it exists"
        );
        s.delete(&marker).await.unwrap();
        assert!(
            !found_in_files(),
            "a deleted value is gone from the database file and the write-ahead log"
        );
        // An overwritten value leaves at a checkpoint.
        s.put(&marker, &[0x5A; 4000]).await.unwrap();
        let old = s.backend().get(&marker).await.unwrap().unwrap().sealed;
        s.put(&marker, b"new state").await.unwrap();
        s.backend().checkpoint().await.unwrap();
        let needle = &old[100..164];
        let mut bytes = std::fs::read(&path).unwrap();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        bytes.extend(std::fs::read(&wal).unwrap_or_default());
        assert!(!bytes.windows(needle.len()).any(|w| w == needle));
        s.backend().close().await;
        remove_db(&path);
    }

    /// Two stores on one file (two processes): updates through both never lose one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_connections_to_one_file_never_lose_updates() {
        let path = temp_db("two-pools");
        let a = std::sync::Arc::new(
            EncryptedStore::open(SqliteStore::open(&path).await.unwrap(), key(1))
                .await
                .unwrap(),
        );
        let b = std::sync::Arc::new(
            EncryptedStore::open(SqliteStore::open(&path).await.unwrap(), key(1))
                .await
                .unwrap(),
        );
        let counter = id("counter", b"c");
        a.put(&counter, &0u32.to_be_bytes()).await.unwrap();
        let mut tasks = Vec::new();
        for store in [a.clone(), b.clone(), a.clone(), b.clone()] {
            let counter = counter.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    store
                        .update(&counter, |cur| {
                            let v = cur.ok_or(Error::Corrupt("missing"))?;
                            let n = u32::from_be_bytes(v.value.as_slice().try_into().unwrap());
                            Ok((Update::Put((n + 1).to_be_bytes().to_vec().into()), ()))
                        })
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let n = b.get(&counter).await.unwrap().unwrap().value;
        assert_eq!(u32::from_be_bytes(n.as_slice().try_into().unwrap()), 100);
        a.backend().close().await;
        b.backend().close().await;
        remove_db(&path);
    }

    #[tokio::test]
    async fn migration_persists_in_the_file() {
        let path = temp_db("migrate-file");
        let backend = SqliteStore::open(&path).await.unwrap();
        let records = vec![
            (id("device", b""), b"device secrets".to_vec()),
            (id("chain.recv", &[1; 53]), vec![3; 200]),
        ];
        suite::write_v1_store(&backend, &key(1), &records).await;
        backend.close().await;
        // A newer library opens the old file.
        let store = EncryptedStore::open(SqliteStore::open(&path).await.unwrap(), key(1))
            .await
            .unwrap();
        store.backend().close().await;
        // And the migration is on disk: a third open reads the current schema directly.
        let store = EncryptedStore::open(SqliteStore::open(&path).await.unwrap(), key(1))
            .await
            .unwrap();
        for (rid, v) in &records {
            assert_eq!(
                store.get(rid).await.unwrap().unwrap().value.as_slice(),
                v.as_slice()
            );
        }
        store.backend().close().await;
        remove_db(&path);
    }

    #[tokio::test]
    async fn store_futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let path = temp_db("send");
        let store = EncryptedStore::open(SqliteStore::open(&path).await.unwrap(), key(1))
            .await
            .unwrap();
        let rid = id("n", b"k");
        let fut = store.put(&rid, b"v");
        assert_send(&fut);
        fut.await.unwrap();
        let fut = store.update(&rid, |_| Ok((Update::Keep, ())));
        assert_send(&fut);
        fut.await.unwrap();
        let (n, q) = (ns("n"), Query::default());
        let fut = store.list(&n, &q);
        assert_send(&fut);
        assert_eq!(fut.await.unwrap().len(), 1);
        store.backend().close().await;
        remove_db(&path);
    }
}
