//! Connections: the writer (WAL, `synchronous=FULL`), the pool of read connections of a file
//! store, each with the key lookup statement prepared for its whole life, and the helpers that
//! lend a read connection or that statement to a closure.

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Statement};

use super::verify::LOOKUP_SQL;
use super::{lock, Inner};
use crate::error::{DbContext, Error, Result};

/// A read connection of a file store with its lookup statement prepared for life.
///
/// The statement borrows the connection, which is why this struct owns the connection through
/// a raw pointer: `Drop` finalises the statement before freeing the connection, and the two
/// only ever move and are used together, on one thread at a time (the pool hands the whole
/// struct to one caller).
pub(super) struct ReadConn {
    lookup: ManuallyDrop<Statement<'static>>,
    conn: NonNull<Connection>,
}

// SAFETY: `Connection` is `Send`; the statement refers only to the connection owned by the same
// struct, and the struct is used by one thread at a time (it is moved in and out of a
// `Mutex<Vec<_>>`), which is what SQLite's multi-thread mode (`NO_MUTEX`) requires.
unsafe impl Send for ReadConn {}

impl ReadConn {
    fn open(path: &Path, busy: Duration) -> Result<ReadConn> {
        let conn = open_connection(path, busy)?;
        let ptr = NonNull::from(Box::leak(Box::new(conn)));
        // SAFETY: `ptr` stays valid until `Drop`, which drops the statement first.
        let conn_ref: &'static Connection = unsafe { &*ptr.as_ptr() };
        match conn_ref.prepare(LOOKUP_SQL) {
            Ok(stmt) => Ok(ReadConn {
                lookup: ManuallyDrop::new(stmt),
                conn: ptr,
            }),
            Err(e) => {
                // SAFETY: no statement borrows the connection; reclaim the box.
                drop(unsafe { Box::from_raw(ptr.as_ptr()) });
                Err(e).db("preparing the key lookup")
            }
        }
    }

    fn conn(&self) -> &Connection {
        // SAFETY: valid for the life of `self`.
        unsafe { self.conn.as_ref() }
    }
}

impl Drop for ReadConn {
    fn drop(&mut self) {
        // SAFETY: the statement is dropped exactly once, before its connection.
        unsafe {
            ManuallyDrop::drop(&mut self.lookup);
            drop(Box::from_raw(self.conn.as_ptr()));
        }
    }
}

fn open_connection(path: &Path, busy: Duration) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .db("opening the database")?;
    conn.busy_timeout(busy).db("opening the database")?;
    Ok(conn)
}

/// Opens the writer of a file store: WAL journal (checked), `synchronous=FULL`.
pub(super) fn open_file_writer(path: &Path, busy: Duration) -> Result<Connection> {
    let writer = open_connection(path, busy)?;
    let mode: String = writer
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .db("switching the database to WAL")?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Internal {
            reason: format!("could not switch the keys database to WAL (got `{mode}`)"),
        });
    }
    writer
        .execute_batch("PRAGMA synchronous = FULL;")
        .db("setting synchronous=FULL")?;
    Ok(writer)
}

/// The connections besides the writer.
pub(super) enum Conns {
    /// File store: a writer and a pool of readers.
    File {
        path: PathBuf,
        busy: Duration,
        readers: Mutex<Vec<ReadConn>>,
    },
    /// In-memory store: everything on the writer connection.
    Memory,
}

impl Conns {
    /// A file store's connections: an empty pool of readers, opened on demand.
    pub(super) fn file(path: PathBuf, busy: Duration) -> Conns {
        Conns::File {
            path,
            busy,
            readers: Mutex::new(Vec::new()),
        }
    }
}

impl Inner {
    /// Runs `f` with the lookup statement: a pooled read connection's prepared statement for a
    /// file store, the writer's cached statement in memory.
    pub(super) fn with_lookup<T>(
        &self,
        f: impl FnOnce(&mut Statement<'_>) -> Result<T>,
    ) -> Result<T> {
        match &self.conns {
            Conns::File {
                path,
                busy,
                readers,
            } => {
                let mut rc = match lock(readers).pop() {
                    Some(rc) => rc,
                    None => ReadConn::open(path, *busy)?,
                };
                let out = f(&mut rc.lookup);
                lock(readers).push(rc);
                out
            }
            Conns::Memory => {
                let conn = lock(&self.writer);
                let mut st = conn
                    .prepare_cached(LOOKUP_SQL)
                    .db("preparing the key lookup")?;
                f(&mut st)
            }
        }
    }

    /// Runs a read with a pooled read connection (file) or the writer (memory).
    pub(super) fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        match &self.conns {
            Conns::File {
                path,
                busy,
                readers,
            } => {
                let rc = match lock(readers).pop() {
                    Some(rc) => rc,
                    None => ReadConn::open(path, *busy)?,
                };
                let out = f(rc.conn());
                lock(readers).push(rc);
                out
            }
            Conns::Memory => f(&lock(&self.writer)),
        }
    }
}
