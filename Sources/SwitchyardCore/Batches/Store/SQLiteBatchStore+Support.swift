import NIOCore
import SQLiteNIO

extension SQLiteBatchStore {
    /// What an SQLite failure means to the caller. Messages name the file and what was being done,
    /// never a bound value (SQLite's own messages only quote SQL and schema names).
    static func storeError(_ error: any Error, path: String, doing: String) -> BatchStoreError {
        if let error = error as? BatchStoreError { return error }
        guard let error = error as? SQLiteError else {
            if error is CancellationError { return BatchStoreError(.unavailable, "\(doing) on \(path): the store is closed") }
            return BatchStoreError(.failed, "\(doing) on \(path) failed: \(type(of: error))")
        }
        switch error.reason {
        case .readOnly, .readonlyInRecovery, .readonlyCantLock, .readonlyInRollback, .readonlyBackingMoved, .readonlyDirectory,
            .permission, .auth:
            return BatchStoreError(.readOnly, "\(path) is read-only (\(error.message)): \(doing) cannot write it")
        case .full:
            return BatchStoreError(.readOnly, "\(path): the disk is full (\(error.message)): \(doing) cannot write it")
        case .busy, .busyTimeout, .busyInRecovery, .busyInSnapshot, .locked, .lockedBySharedCache, .lockedVirtualTable:
            return BatchStoreError(.unavailable, "\(path) is locked by another process: \(doing) gave up waiting")
        case .corrupt, .corruptIndex, .corruptSequenceSchema, .corruptVirtualTable, .notADatabase:
            return BatchStoreError(.failed, "\(path) is corrupt or not a Switchyard batch store (\(error.message))")
        case .cantOpen, .cantOpenDirectory, .cantOpenInvalidPath, .cantOpenUnfollowedSymlink:
            return BatchStoreError(.failed, "cannot open \(path) (\(error.message))")
        default:
            let message = error.message.lowercased()
            if message.contains("readonly") || message.contains("read-only") {
                return BatchStoreError(.readOnly, "\(path) is read-only (\(error.message)): \(doing) cannot write it")
            }
            if message.contains("disk is full") {
                return BatchStoreError(.readOnly, "\(path): the disk is full: \(doing) cannot write it")
            }
            return BatchStoreError(.failed, "\(doing) on \(path) failed: \(error.message)")
        }
    }

    static func isConstraintViolation(_ error: any Error) -> Bool {
        guard let error = error as? SQLiteError else { return false }
        switch error.reason {
        case .constraint, .constraintPrimaryKeyFailed, .constraintUniqueFailed: return true
        default: return false
        }
    }

    static func record(_ row: SQLiteRow) -> BatchRecord {
        BatchRecord(
            id: row.text("id"),
            client: row.optionalText("client"),
            createdAtMs: row.int64("created_at"),
            expiresAtMs: row.int64("expires_at"),
            endedAtMs: row.optionalInt64("ended_at"),
            cancelInitiatedAtMs: row.optionalInt64("cancel_initiated_at"),
            counts: BatchRequestCounts(
                processing: Int(row.int64("n_pending")),
                succeeded: Int(row.int64("n_succeeded")),
                errored: Int(row.int64("n_errored")),
                canceled: Int(row.int64("n_canceled")),
                expired: Int(row.int64("n_expired"))
            )
        )
    }

    /// `?first, ?first+1, …` for `count` values.
    static func placeholders(from first: Int, count: Int) -> String {
        (first..<(first + count)).map { "?\($0)" }.joined(separator: ", ")
    }

    /// `(?a, ?b), (?c, ?d), …`: `count` rows of `width` numbered placeholders from `first`.
    static func valueRows(from first: Int, count: Int, width: Int) -> String {
        (0..<count).map { row in
            "(" + placeholders(from: first + row * width, count: width) + ")"
        }.joined(separator: ", ")
    }

    /// Keys as `VALUES` rows of (batch_id, custom_id), with the batch ids as an `IN` list.
    static func keyBinds(_ keys: some Sequence<BatchRequestKey>) -> [SQLiteData] {
        keys.flatMap { [SQLiteData.text($0.batchID), .text($0.customID)] }
    }
}

extension SQLiteData {
    static func bytes(_ bytes: [UInt8]) -> SQLiteData {
        .blob(ByteBuffer(bytes: bytes))
    }

    static func int(_ value: Int64) -> SQLiteData {
        .integer(SQLiteInt64(value))
    }

    static func optionalText(_ value: String?) -> SQLiteData {
        value.map { .text($0) } ?? .null
    }
}

extension SQLiteRow {
    func int64(_ name: String) -> Int64 {
        optionalInt64(name) ?? 0
    }

    func optionalInt64(_ name: String) -> Int64? {
        guard let value = column(name), !value.isNull else { return nil }
        return value.integer.map { Int64($0) }
    }

    func text(_ name: String) -> String {
        optionalText(name) ?? ""
    }

    func optionalText(_ name: String) -> String? {
        guard let value = column(name), !value.isNull else { return nil }
        return value.string
    }

    func bytes(_ name: String) -> [UInt8] {
        switch column(name) {
        case .blob(let buffer): Array(buffer.readableBytesView)
        case .text(let text): Array(text.utf8)
        default: []
        }
    }
}

extension Array {
    /// Consecutive slices of at most `size` elements.
    func chunks(of size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
