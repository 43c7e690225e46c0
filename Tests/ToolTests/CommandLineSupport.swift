import Foundation
import XCTest
import Net

/// Runs the built `deconvnet` executable and captures what it prints.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
    /// The process ran past its deadline and was killed.
    var timedOut = false
}

enum CLI {
    /// The directory holding the test bundle, which also holds the `deconvnet` executable.
    static var productsDirectory: URL {
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL
    }

    /// Runs `deconvnet arguments`, with `environment` added to this process's environment; a process
    /// still running after `timeout` seconds is killed (SIGKILL) and reported as `timedOut`.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Double? = nil) throws -> CommandResult {
        let process = try start(arguments, environment: environment)
        let out = process.standardOutput as! Pipe, err = process.standardError as! Pipe
        let deadline = timeout.map { seconds in
            DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }.scheduled(after: seconds)
        }
        // stderr is read on its own thread, so that a child filling one pipe cannot block on it
        let stderrRead = DispatchGroup()
        nonisolated(unsafe) var stderr = Data()
        DispatchQueue.global().async(group: stderrRead) { stderr = err.fileHandleForReading.readDataToEndOfFile() }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        stderrRead.wait()
        process.waitUntilExit()
        deadline?.cancel()
        return CommandResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                             stderr: String(decoding: stderr, as: UTF8.self),
                             timedOut: process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL)
    }

    /// Starts `deconvnet arguments` with its output going to pipes (or, not `capturing`, nowhere), and
    /// returns the running process.
    static func start(_ arguments: [String], environment: [String: String] = [:], capturing: Bool = true) throws -> Process {
        let process = Process()
        process.executableURL = productsDirectory.appendingPathComponent("deconvnet")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = capturing ? Pipe() : FileHandle.nullDevice
        process.standardError = capturing ? Pipe() : FileHandle.nullDevice
        try process.run()
        return process
    }
}

extension DispatchWorkItem {
    /// Schedules the item on a global queue after `seconds`; returns it, for cancelling.
    func scheduled(after seconds: Double) -> DispatchWorkItem {
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: self)
        return self
    }
}

extension XCTestCase {
    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "deconvnet-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Asserts a clean failure: non-zero exit, one readable line on stderr containing `needle`, no crash.
    /// A command that would hang fails by `timeout` instead.
    func assertCleanFailure(_ arguments: [String], mentions needle: String, timeout: Double = 300,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try CLI.run(arguments, timeout: timeout)
        XCTAssertFalse(result.timedOut, "\(arguments) did not end within \(timeout) s", file: file, line: line)
        XCTAssertNotEqual(result.status, 0, "\(arguments) should fail", file: file, line: line)
        let lines = result.stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        XCTAssertEqual(lines.count, 1, "stderr was: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(lines.first?.contains(needle) ?? false, "stderr was: \(result.stderr)", file: file, line: line)
        XCTAssertFalse(result.stderr.contains("Fatal error") || result.stderr.contains("Stack dump"), result.stderr, file: file, line: line)
        XCTAssertLessThan(result.status, 128, "killed by a signal", file: file, line: line)
    }

    /// Writes an untrained model of `spec` for 1x12x12 images of 3 classes (those of `writeCourseData`)
    /// to `DIR/model.safetensors` and returns the path.
    func writeUntrainedCheckpoint(_ spec: String, in directory: String, seed: UInt64) throws -> String {
        let path = directory + "/model.safetensors"
        try Sequential(spec: try ModelSpec(parsing: spec), inputShape: ImageShape(channels: 1, height: 12, width: 12), classes: 3, seed: seed)
            .checkpoint(classNames: ["0", "1", "2"], epoch: 0, step: 0).write(to: path)
        return path
    }

    /// Writes a tiny data set in the course layout: DIR/Train/<c>/ImageNNNNN.png and DIR/Test/<c>/….
    func writeCourseData(_ directory: String, classes: Int = 3, perClass: Int = 8, size: Int = 12) throws {
        var random = SeededRandom(seed: 5)
        for split in ["Train", "Test"] {
            for c in 0..<classes {
                let folder = "\(directory)/\(split)/\(c)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for i in 0..<perClass {
                    var pixels = [UInt8](repeating: 0, count: size * size)
                    for y in 0..<size {
                        for x in 0..<size { pixels[y * size + x] = y / (size / classes) == c ? 220 : UInt8(random.int(below: 50)) + UInt8(x) }
                    }
                    try Image(width: size, height: size, channels: 1, pixels: pixels).writePNG(toFile: String(format: "%@/Image%05d.png", folder, i))
                }
            }
        }
    }
}
