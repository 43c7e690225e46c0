import Foundation
import XCTest

/// Runs `executable arguments…` to completion; returns its exit status and its standard output and
/// error combined (status -1 and the error when it cannot start).
public func runProcess(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return (-1, "\(error)") }
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// Cross-checks against the reference Python readers (safetensors, numpy, tensorboard, torch, Captum);
/// `make test` installs all but torch and Captum. A test skips with a message when they are missing.
public enum Python {
    /// `Tests/python/NAME`.
    public static func script(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("python").appendingPathComponent(name).path
    }

    /// Runs `python3 arguments…`; returns the exit status and the combined output.
    public static func run(_ arguments: [String]) -> (status: Int32, output: String) {
        runProcess("/usr/bin/env", ["python3"] + arguments)
    }

    /// Skips the calling test unless `python3 -c "import MODULES"` works.
    public static func require(_ modules: String) throws {
        try XCTSkipUnless(run(["-c", "import \(modules)"]).status == 0, "python3 with \(modules) is not available (pip install \(modules.replacingOccurrences(of: ",", with: "")))")
    }
}
