import Foundation
import XCTest

/// Cross-checks against the reference Python readers (safetensors, numpy, tensorboard), which `make test`
/// installs; a test skips with a message when they are missing.
enum Python {
    /// `Tests/python/NAME`.
    static func script(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("python").appendingPathComponent(name).path
    }

    /// Runs `python3 arguments…`; returns the exit status and the combined output.
    static func run(_ arguments: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (-1, "\(error)") }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// Skips the calling test unless `python3 -c "import MODULES"` works.
    static func require(_ modules: String) throws {
        try XCTSkipUnless(run(["-c", "import \(modules)"]).status == 0, "python3 with \(modules) is not available (pip install \(modules.replacingOccurrences(of: ",", with: "")))")
    }
}
