import Foundation
import XCTest
@testable import Net

/// One owner per run directory, and the clean-up of writes that a killed owner left half done.
final class RunLockTests: XCTestCase {
    private func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "deconvnet-lock-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testTemporaryFileNamesAreRecognised() {
        let made = TemporaryFileName.make(for: "checkpoint.safetensors")
        XCTAssertTrue(made.hasPrefix(".checkpoint.safetensors.tmp-\(getpid())-"), made)
        XCTAssertTrue(TemporaryFileName.matches(made))
        XCTAssertTrue(TemporaryFileName.matches(".metrics.jsonl.tmp-12-345"))
        for name in ["checkpoint.safetensors", "metrics.jsonl", ".tmp-1-2", "a.tmp-1-2", ".a.tmp-1", ".a.tmp-1-x", ".a.tmp-1-2-3", ".a.tmp--2", ".hidden"] {
            XCTAssertFalse(TemporaryFileName.matches(name), name)
        }
    }

    /// Taking the lock removes the temporary files a killed writer left in the run directory and its
    /// folders, and nothing else.
    func testLockRemovesInterruptedWrites() throws {
        let run = try temporaryDirectory()
        let fm = FileManager.default
        try fm.createDirectory(atPath: run + "/checkpoints", withIntermediateDirectories: true)
        let leftovers = [run + "/.checkpoint.safetensors.tmp-4242-17", run + "/checkpoints/.epoch-3.safetensors.tmp-4242-18"]
        let kept = [run + "/checkpoint.safetensors", run + "/.notes", run + "/checkpoints/epoch-2.safetensors"]
        for path in leftovers + kept { XCTAssertTrue(fm.createFile(atPath: path, contents: Data([1, 2, 3]))) }
        let lock = try RunLock(directory: run)
        for path in leftovers { XCTAssertFalse(fm.fileExists(atPath: path), path) }
        for path in kept { XCTAssertTrue(fm.fileExists(atPath: path), path) }
        XCTAssertEqual(try String(contentsOfFile: run + "/" + RunLock.fileName, encoding: .utf8), "\(getpid())\n")
        withExtendedLifetime(lock) {}
    }

    /// A second lock on the directory (here from this process, which the kernel treats as any other
    /// holder) is refused naming the holder's process id; once the first is released it succeeds.
    func testLockIsExclusiveAndReleasedWithItsOwner() throws {
        let run = try temporaryDirectory() + "/new/run"
        var first: RunLock? = try RunLock(directory: run)
        XCTAssertThrowsError(try RunLock(directory: run)) { error in
            XCTAssertEqual(error as? RunLockError, .held(directory: run, pid: getpid()))
            XCTAssertTrue(error.localizedDescription.contains("in use by process \(getpid())"), error.localizedDescription)
        }
        withExtendedLifetime(first) {}
        first = nil
        XCTAssertNoThrow(try RunLock(directory: run))
    }
}
