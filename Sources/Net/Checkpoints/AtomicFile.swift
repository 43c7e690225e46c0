import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file could not be written. Each description is one readable line.
public enum FileWriteError: Error, LocalizedError, Equatable, Sendable {
    /// The path names no file (empty, or ends in `/`).
    case invalidPath(String)
    /// A system call failed; `operation` is what was being done, `reason` is `strerror(errno)`.
    case systemError(path: String, operation: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case .invalidPath(let path):
            return "cannot write to '\(path)': not a file path"
        case .systemError(let path, let operation, let reason):
            return "cannot write '\(path)': \(operation) failed: \(reason)"
        }
    }
}

/// Writes `bytes` to `path` so that readers see either the old file or the complete new one, never a
/// partial file.
///
/// The bytes go to a temporary file `.<name>.tmp-<pid>-<random>` in the destination's directory, which is
/// flushed to disk (`fsync`) and then renamed over `path`. On any failure the temporary file is removed
/// and an existing file at `path` is left untouched. A process killed mid-write can leave only the
/// temporary file behind, never a truncated `path`.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws(FileWriteError) {
    // `withUnsafeBytes` is `rethrows`, which erases the error type; carry it out in a `Result`.
    try bytes.withUnsafeBytes { buffer in
        Result { () throws(FileWriteError) in try writeAtomically(buffer, to: path) }
    }.get()
}

/// Writes `data` to `path` atomically; see `writeAtomically(_:to:)` for `[UInt8]`.
public func writeAtomically(_ data: Data, to path: String) throws(FileWriteError) {
    try data.withUnsafeBytes { buffer in
        Result { () throws(FileWriteError) in try writeAtomically(buffer, to: path) }
    }.get()
}

private func writeAtomically(_ buffer: UnsafeRawBufferPointer, to path: String) throws(FileWriteError) {
    guard !path.isEmpty, !path.hasSuffix("/") else { throw .invalidPath(path) }
    let directory: String
    let name: String
    if let slash = path.lastIndex(of: "/") {
        directory = slash == path.startIndex ? "/" : String(path[..<slash])
        name = String(path[path.index(after: slash)...])
    } else {
        directory = "."
        name = path
    }
    let separator = directory.hasSuffix("/") ? "" : "/"
    let temporary = directory + separator + TemporaryFileName.make(for: name)

    func failure(_ operation: String) -> FileWriteError {
        .systemError(path: path, operation: operation, reason: String(cString: strerror(errno)))
    }

    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
    guard fd >= 0 else { throw failure("creating temporary file in '\(directory)'") }
    var closed = false
    var renamed = false
    defer {
        if !closed { close(fd) }
        if !renamed { unlink(temporary) }
    }

    var written = 0
    while written < buffer.count {
        let n = write(fd, buffer.baseAddress! + written, buffer.count - written)
        if n < 0 {
            if errno == EINTR { continue }
            throw failure("writing")
        }
        written += n
    }
    guard fsync(fd) == 0 else { throw failure("fsync") }
    closed = true
    guard close(fd) == 0 else { throw failure("closing") }
    guard rename(temporary, path) == 0 else { throw failure("renaming temporary file") }
    renamed = true

    // Make the rename itself durable; failure here does not undo a completed write.
    let dirfd = open(directory, O_RDONLY | O_CLOEXEC)
    if dirfd >= 0 {
        _ = fsync(dirfd)
        close(dirfd)
    }
}

/// The names of `writeAtomically`'s temporary files: `.<name>.tmp-<pid>-<random>`.
enum TemporaryFileName {
    static func make(for name: String) -> String {
        ".\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Whether `file` (a name without directory) is such a temporary file.
    static func matches(_ file: String) -> Bool {
        guard file.hasPrefix("."), let marker = file.range(of: ".tmp-", options: .backwards), marker.lowerBound > file.index(after: file.startIndex) else {
            return false
        }
        let numbers = file[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
        return numbers.count == 2 && numbers.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
    }
}

/// Removes the temporary files that `writeAtomically` calls interrupted by a killed process left in
/// `directory` (not in its subdirectories), and returns their names. Only for a directory that no
/// other process is writing into, such as a run directory held with `RunLock`.
@discardableResult
public func removeInterruptedWrites(in directory: String) -> [String] {
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter(TemporaryFileName.matches).sorted()
    for name in names { unlink(directory + "/" + name) }
    return names
}
