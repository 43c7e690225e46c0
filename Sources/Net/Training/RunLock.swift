import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a run directory could not be taken. Each description is one line.
public enum RunLockError: LocalizedError, Equatable {
    /// Another process holds the lock; `pid` is its process id when it could be read.
    case held(directory: String, pid: Int32?)
    /// The directory or its lock file could not be created or opened; `reason` is `strerror(errno)`.
    case unavailable(directory: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case let .held(directory, pid):
            let holder = pid.map { "process \($0)" } ?? "another process"
            return "\(directory) is in use by \(holder) (\(directory)/\(RunLock.fileName)): one process trains a run at a time"
        case let .unavailable(directory, reason):
            return "cannot lock \(directory): \(reason)"
        }
    }
}

/// One process's ownership of a run directory: an exclusive `flock` on `DIR/train.lock`, which holds
/// the owner's process id. The kernel releases the lock when the process ends in any way (kill -9
/// included), so a lock is never stale; the file itself stays. Taking the lock also removes the
/// temporary files of writes that a killed owner left behind (`removeInterruptedWrites(in:)`) in the
/// directory and its `checkpoints/`, `filters/` and `tensorboard/` folders.
public final class RunLock {
    /// The lock file's name inside the run directory.
    public static let fileName = "train.lock"
    /// The folders of a run directory that get atomic writes, besides the directory itself.
    static let writtenFolders = ["checkpoints", "filters", "tensorboard"]

    public let directory: String
    private let descriptor: Int32

    /// Creates `directory` if needed and takes its lock without waiting; throws `RunLockError.held`,
    /// naming the holder's process id, when another process (or another `RunLock` in this one) has it.
    public init(directory: String) throws(RunLockError) {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .unavailable(directory: directory, reason: "cannot create it (\((error as NSError).localizedFailureReason ?? "\(error)"))")
        }
        let path = directory + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .unavailable(directory: directory, reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            let reason = String(cString: strerror(errno))
            defer { close(fd) }
            guard busy else { throw .unavailable(directory: directory, reason: reason) }
            throw .held(directory: directory, pid: Self.holder(fd))
        }
        descriptor = fd
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, text, text.count, 0)
        for folder in [directory] + Self.writtenFolders.map({ directory + "/" + $0 }) { removeInterruptedWrites(in: folder) }
    }

    deinit { close(descriptor) }

    /// The process id written in the lock file by its holder; polls briefly, since the holder writes
    /// it just after taking the lock.
    private static func holder(_ fd: Int32) -> Int32? {
        for _ in 0..<20 {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, buffer.count, 0)
            if n > 0, let pid = Int32(String(decoding: buffer[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 {
                return pid
            }
            usleep(10_000)
        }
        return nil
    }
}
