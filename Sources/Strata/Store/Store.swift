@_exported import OCI
import Foundation
import GRDB
import CArchive

/// A strata image store: SQLite metadata plus a content-addressed blob directory.
///
/// Open one with ``open(at:)``; every method is safe to call from several tasks and
/// several processes at once.
///
/// ```swift
/// import Strata
/// let store = try await Store.open(at: URL(fileURLWithPath: "/tmp/store"))
/// let result = try await store.load(from: URL(fileURLWithPath: "app.tar"))
/// for image in try await store.images() { print(image.id.shortHex, image.tags) }
/// ```
public final class Store: Sendable {
    /// The store's root directory.
    public let root: URL
    let paths: StorePaths
    let db: DatabasePool
    let blobs: BlobStore

    private init(root: URL, paths: StorePaths, db: DatabasePool) {
        self.root = root
        self.paths = paths
        self.db = db
        self.blobs = BlobStore(paths: paths)
    }

    /// Opens (creating if needed) the store at `root`, applying any pending migrations.
    public static func open(at root: URL) async throws -> Store {
        let paths = StorePaths(root: root.standardizedFileURL)
        try checkOwner(paths.root.path)
        try paths.createLayout()
        let newDatabase = access(paths.database, F_OK) != 0
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(60)
        config.maximumReaderCount = 4
        config.label = "strata"
        // Listings and df read much of the image graph at 10,000 images: map the database
        // file instead of copying each page through pread (a fifth of df's time), and keep
        // more pages than SQLite's default 2 MiB cache between the statements of one read.
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA mmap_size = 268435456; PRAGMA cache_size = -16384")
        }
        if !newDatabase { primeWAL(paths.database) }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: paths.database, configuration: config)
            // GRDB sets `synchronous = NORMAL` in WAL mode, which fsyncs the WAL only at a
            // checkpoint: a commit is then lost by a power cut while another connection keeps
            // the database open, and an unlink that follows a delete can become durable before
            // the delete (law 2). FULL fdatasyncs the WAL at every commit (law 11).
            try await pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        } catch {
            if databaseErrorCode(error, root: paths.root.path) == .diskFull {
                throw DiskSpace.error("opening the store at \(paths.root.path)", on: paths.root.path, estimate: nil, freeBefore: nil, cause: error)
            }
            throw StrataError(.database, "cannot open the store database at \(paths.database): \(error)", cause: error)
        }
        do {
            try Schema.migrator.migrate(pool)
        } catch {
            if databaseErrorCode(error, root: paths.root.path) == .diskFull {
                throw DiskSpace.error("migrating the store at \(paths.root.path)", on: paths.root.path, estimate: nil, freeBefore: nil, cause: error)
            }
            throw StrataError(.database, "cannot migrate the store database at \(paths.database): \(error)", cause: error)
        }
        // SQLite fsyncs the directory for a new WAL, not for a new database file.
        if newDatabase { try fsyncDirectory(paths.root.path) }
        let store = Store(root: paths.root, paths: paths, db: pool)
        try store.replayPendingUnlinks()
        try await store.fillMissingLabels()
        return store
    }

    /// Gives an existing database a WAL file of 32 zero bytes when it has none (SQLite
    /// deletes the WAL when the last connection closes, so every command starts without one).
    ///
    /// GRDB, finding the WAL missing or empty, creates a table and drops it to make one: a
    /// write transaction with three fdatasyncs before the first read, a third of a listing's
    /// time. SQLite reads a WAL whose header is not valid as an empty log (no frame is
    /// replayed) and writes a real header before its first frame. `fallocate` only extends a
    /// shorter file and never changes bytes already written, so a WAL another process is
    /// writing at the same moment is left as it is. Where the filesystem has no fallocate
    /// (some FUSE filesystems), nothing is done and GRDB makes its table as before.
    static func primeWAL(_ database: String) {
        var st = stat()
        guard stat(database, &st) == 0 else { return }
        let mode = mode_t(st.st_mode & 0o666)
        let fd = Glibc.open(database + "-wal", O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { return }
        _ = strata_fallocate_keep(fd, 32)
        Glibc.close(fd)
    }

    /// A root store and a user's store stay apart: a store whose directory another user owns
    /// is refused (in a rootless user namespace, a root store's directory shows as owned by
    /// the overflow uid, and a user's store is owned by that user outside it).
    static func checkOwner(_ root: String) throws {
        var st = stat()
        guard lstat(root, &st) == 0 else { return }  // a new store: created below, by us
        let me = geteuid()
        guard st.st_uid != me else { return }
        let whose = st.st_uid == 0 ? "root" : "uid \(st.st_uid)"
        let who = me == 0 ? "root" : "uid \(me)"
        throw StrataError(.permissionDenied, "the store at \(root) belongs to \(whose), not to \(who): a root store and a user's store stay apart; "
            + "use --root (or STRATA_ROOT) with a store of your own")
    }

    /// The default root: `$STRATA_ROOT`, else `/var/lib/strata` as root, else
    /// `$XDG_DATA_HOME/strata` (`~/.local/share/strata`).
    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let r = environment["STRATA_ROOT"], !r.isEmpty { return URL(fileURLWithPath: r) }
        if geteuid() == 0 { return URL(fileURLWithPath: "/var/lib/strata") }
        if let x = environment["XDG_DATA_HOME"], !x.isEmpty { return URL(fileURLWithPath: x).appendingPathComponent("strata") }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".local/share/strata")
    }

    /// The schema version this store is at (the highest applied migration).
    public func schemaVersion() async throws -> Int {
        try await read { db in
            let names = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
            return names.compactMap { Int($0.prefix(while: \.isNumber)) }.max() ?? 0
        }
    }

    // MARK: - Database helpers

    /// `.diskFull` for SQLite's SQLITE_FULL (the database or its WAL could not grow) and an
    /// I/O error's ENOSPC, so a full disk reads the same whichever write met it; else `.database`.
    /// SQLite reports a `-shm`/`-wal` file it cannot extend as SQLITE_IOERR (its errno is not
    /// exposed): that too is a full disk when the store's filesystem has no room left.
    static func databaseErrorCode(_ error: any Error, root: String) -> StrataError.Code {
        if DiskSpace.isDiskFull(error) { return .diskFull }
        if let e = error as? DatabaseError, e.resultCode == .SQLITE_IOERR, let free = DiskSpace.available(at: root), free < 64 << 10 {
            return .diskFull
        }
        return .database
    }

    func databaseErrorCode(_ error: any Error) -> StrataError.Code { Self.databaseErrorCode(error, root: paths.root.path) }

    func read<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws -> T {
        do {
            return try await db.read(body)
        } catch let e as StrataError {
            throw e
        } catch {
            throw StrataError(databaseErrorCode(error), "database read failed: \(error)", cause: error)
        }
    }

    /// One short `BEGIN IMMEDIATE` write transaction (law 4). Bumps the mutation counter
    /// when `body` changed something; `untracked` runs first and never counts (lease bookkeeping).
    func write<T: Sendable>(untracked: (@Sendable (Database) throws -> Void)? = nil,
                            _ body: @Sendable @escaping (Database) throws -> T) async throws -> T {
        do {
            return try await db.write { db in
                try untracked?(db)
                let before = db.totalChangesCount
                let result = try body(db)
                if db.totalChangesCount != before {
                    try db.execute(sql: "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'mutations'")
                }
                return result
            }
        } catch let e as StrataError {
            throw e
        } catch {
            throw StrataError(databaseErrorCode(error), "database write failed: \(error)", cause: error)
        }
    }

    /// A write whose loss in a power cut harms nothing (a build-cache hit's use count and
    /// time): committed without its own WAL fsync (`synchronous = NORMAL` for this one
    /// transaction), so it becomes durable with the next durable commit, which fsyncs the
    /// whole WAL. A cached rebuild of 20 steps paid 20 fsyncs for bookkeeping without it.
    func writeNotDurable<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws -> T {
        do {
            return try await db.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                var result: T?
                do {
                    try db.inTransaction(.immediate) {
                        let before = db.totalChangesCount
                        result = try body(db)
                        if db.totalChangesCount != before {
                            try db.execute(sql: "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'mutations'")
                        }
                        return .commit
                    }
                } catch {
                    try db.execute(sql: "PRAGMA synchronous = FULL")
                    throw error
                }
                try db.execute(sql: "PRAGMA synchronous = FULL")
                guard let result else { throw StrataError(.database, "database write returned nothing") }
                return result
            }
        } catch let e as StrataError {
            throw e
        } catch {
            throw StrataError(databaseErrorCode(error), "database write failed: \(error)", cause: error)
        }
    }

    /// Unlinks files whose rows are gone (law 2): called after the deleting commit,
    /// and on open to replay a crash between commit and unlink.
    func replayPendingUnlinks() throws {
        let paths: [String]
        do {
            paths = try db.read { db in try String.fetchAll(db, sql: "SELECT path FROM pending_unlinks") }
        } catch {
            throw StrataError(.database, "cannot read pending unlinks: \(error)", cause: error)
        }
        guard !paths.isEmpty else { return }
        var done: [String] = []
        for rel in paths {
            let full = self.paths.root.appendingPathComponent(rel).path
            if unlink(full) == 0 || errno == ENOENT {
                done.append(rel)
            } else if errno == EISDIR || errno == EPERM || errno == ENOTEMPTY {
                // A queued directory (a snapshot): remove the tree.
                if (try? FileManager.default.removeItem(atPath: full)) != nil { done.append(rel) }
            }
            CrashPoint.hit("unlink.mid")
        }
        // The unlinks are durable (their directories fsynced) before the queue forgets them:
        // else a power cut brings the files back with nothing left to remove them but gc's
        // orphan sweep, and a command that returned would have lost part of its effect.
        let dirs = Set(done.map { (self.paths.root.appendingPathComponent($0).path as NSString).deletingLastPathComponent })
        func forget() throws {
            for dir in dirs { try fsyncDirectory(dir) }
            do {
                try db.write { db in
                    for rel in done { try db.execute(sql: "DELETE FROM pending_unlinks WHERE path = ?", arguments: [rel]) }
                }
            } catch {
                throw StrataError(.database, "cannot clear pending unlinks: \(error)", cause: error)
            }
        }
        do {
            try forget()
        } catch {
            // On a disk that was full, the blocks the unlinks above freed may not be usable
            // until the filesystem commits them: one syncfs, then a second try. A row that still
            // stays is replayed by the next open (its file is already gone).
            try? syncFilesystem(of: self.paths.root.path)
            try forget()
        }
    }
}

/// Where things live under a store root.
struct StorePaths: Sendable {
    let root: URL
    var database: String { root.appendingPathComponent("strata.db").path }
    var blobsDir: URL { root.appendingPathComponent("blobs/sha256") }
    var ingestDir: URL { root.appendingPathComponent("ingest") }
    var locksDir: URL { root.appendingPathComponent("locks") }

    func blob(_ d: Digest) -> URL { root.appendingPathComponent("blobs/\(d.algorithm)/\(d.encoded)") }
    func blobRelative(_ d: Digest) -> String { "blobs/\(d.algorithm)/\(d.encoded)" }

    /// Creates the store's directories that are missing, each made durable (its parent
    /// fsynced) before anything is written into it, so a new store survives a power cut.
    func createLayout() throws {
        for dir in [root, root.appendingPathComponent("blobs"), blobsDir, root.appendingPathComponent("blobs/sha512"),
                    ingestDir, locksDir, root.appendingPathComponent("snapshots"),
                    root.appendingPathComponent("containers"), root.appendingPathComponent("volumes")] {
            try Self.createDurableDirectory(dir.path)
        }
    }

    /// `mkdir -p` that fsyncs the parent of every directory it creates.
    static func createDurableDirectory(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { return }
            throw StrataError(.io, "cannot create store directory \(path): a file is in the way")
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path { try createDurableDirectory(parent) }
        if mkdir(path, 0o777) != 0 && errno != EEXIST {
            throw StrataError.system("cannot create store directory \(path)")
        }
        try fsyncDirectory(parent.isEmpty ? "." : parent)
    }
}

enum Schema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        for (i, migration) in EmbeddedMigrations.all.enumerated() {
            m.registerMigration(migration.name) { db in
                // Killed as a migration starts (inside its transaction): the earlier ones stay.
                if i > 0 { CrashPoint.hit("migrate.step") }
                try db.execute(sql: migration.sql)
            }
        }
        return m
    }
}

func now() -> Int64 { Int64(Date().timeIntervalSince1970) }

/// 64 random lowercase hex characters: container IDs and anonymous volume names.
package func randomHex() -> String {
    (0..<32).map { _ in UInt8.random(in: 0...255) }.hexString
}
