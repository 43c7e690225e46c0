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

/// Cross-checks against the reference Python packages (safetensors, numpy, tensorboard, torch, Captum),
/// which `make test` installs into the package's `.venv/`. A test skips with a message when they are
/// missing; under `CI=true` it fails instead, so that a parity check cannot silently stop running.
public enum Python {
    /// The package's root directory.
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The interpreter: `$DECONVNET_PYTHON`, else the package's `.venv/bin/python` when it exists, else
    /// `python3` on the PATH.
    public static let interpreter: String = {
        if let path = ProcessInfo.processInfo.environment["DECONVNET_PYTHON"], !path.isEmpty { return path }
        let venv = packageRoot.appendingPathComponent(".venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "python3"
    }()

    /// `Tests/python/NAME`.
    public static func script(_ name: String) -> String {
        packageRoot.appendingPathComponent("Tests/python").appendingPathComponent(name).path
    }

    /// Runs the interpreter with `arguments`; returns the exit status and the combined output.
    public static func run(_ arguments: [String]) -> (status: Int32, output: String) {
        interpreter.contains("/") ? runProcess(interpreter, arguments) : runProcess("/usr/bin/env", [interpreter] + arguments)
    }

    /// A Python package a cross-check needs is missing where `CI=true` promises it.
    struct MissingPackages: Error, CustomStringConvertible {
        var description: String
    }

    /// Returns when `import MODULES` works; otherwise skips the calling test, or fails it under `CI=true`.
    public static func require(_ modules: String) throws {
        guard run(["-c", "import \(modules)"]).status != 0 else { return }
        let message = "\(interpreter) with \(modules) is not available (make test installs them into .venv)"
        if ProcessInfo.processInfo.environment["CI"] == "true" { throw MissingPackages(description: "CI=true: " + message) }
        throw XCTSkip(message)
    }
}
