import Foundation

/// Why a Slurm sweep could not go on. Each description is one line.
enum SlurmError: LocalizedError, Equatable {
    case toolMissing(String)
    case rejected(tool: String, message: String)
    case noAnswer(tool: String)
    case notASlurmSweep(String)
    case otherGrid(directory: String, grid: String)
    case otherOptions(directory: String, arguments: [String])
    case unsafePath(String)
    case badManifest(path: String, reason: String)
    case noSuchTask(index: Int, count: Int)

    var errorDescription: String? {
        switch self {
        case .toolMissing(let tool):
            return "\(tool) not found on PATH: --slurm submits with Slurm's commands; --dry-run writes the job scripts without submitting them"
        case let .rejected(tool, message): return "\(tool) rejected the job: \(message)"
        case .noAnswer(let tool): return "\(tool) did not answer, so which runs Slurm still holds is unknown: try again when it does"
        case .notASlurmSweep(let directory): return "\(directory) holds no Slurm sweep (no sweep.json; start one with sweep --slurm)"
        case let .otherGrid(directory, grid):
            return "\(directory) holds a sweep of another grid (\(grid)): give that --grid, or another --out"
        case let .otherOptions(directory, arguments):
            return "\(directory) holds a sweep with other train options (\(arguments.joined(separator: " "))): give those, or another --out"
        case .unsafePath(let path):
            return "--slurm needs an --out path of letters, digits and . _ - + = , @ ~ : / only (#SBATCH lines cannot quote): '\(path)'"
        case let .badManifest(path, reason): return "\(path): \(reason)"
        case let .noSuchTask(index, count): return "--task \(index): the sweep has tasks 0-\(count - 1)"
        }
    }
}

/// Slurm's client commands (sbatch, squeue, sacct), run as child processes.
enum Slurm {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String

        /// stderr (or stdout) in one line, without the tool's `sbatch: error: ` prefixes.
        var message: String {
            let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? stdout : stderr
            let lines = text.split(separator: "\n").map { line -> String in
                var line = Substring(line)
                if let colon = line.range(of: ": error: ") { line = line[colon.upperBound...] }
                return line.trimmingCharacters(in: .whitespaces)
            }
            let joined = lines.filter { !$0.isEmpty }.joined(separator: "; ")
            return joined.isEmpty ? "exit status \(status)" : joined
        }
    }

    /// The path of `tool` on PATH, or nil.
    static func find(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for folder in path.split(separator: ":") where !folder.isEmpty {
            let candidate = folder + "/" + tool
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `tool arguments` to its end and returns what it printed; throws `toolMissing` when it is not on PATH.
    static func run(_ tool: String, _ arguments: [String]) throws -> Output {
        guard let executable = find(tool) else { throw SlurmError.toolMissing(tool) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Slurm's tools say little on stderr (far less than a pipe holds), so reading stdout first cannot block
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Submits `arguments` (sbatch options, then the script) with `sbatch --parsable` and returns the job id.
    static func submit(_ arguments: [String]) throws -> String {
        let output = try run("sbatch", ["--parsable"] + arguments)
        // --parsable prints "ID" or "ID;CLUSTER"
        let id = output.stdout.split(separator: "\n").last.map { String($0.split(separator: ";")[0]) } ?? ""
        guard output.status == 0, !id.isEmpty, id.allSatisfy(\.isNumber) else { throw SlurmError.rejected(tool: "sbatch", message: output.message) }
        return id
    }

    /// The state (RUNNING, PENDING, CANCELLED, TIMEOUT, ...) of each task of the array jobs `arrays`,
    /// keyed by array job id and task index: from squeue, then from sacct for the tasks squeue no
    /// longer knows. A tool that does not answer (sacct without an accounting database) adds nothing
    /// and is named in `silent`.
    static func taskStates(of arrays: [String]) -> (states: [TaskKey: String], silent: [String]) {
        guard !arrays.isEmpty else { return ([:], []) }
        var states: [TaskKey: String] = [:]
        var silent: [String] = []
        let wanted = Set(arrays)
        // -r: one line per task, pending ones too; --states=all: also those ended a moment ago
        if let queue = try? run("squeue", ["--me", "-h", "-r", "--states=all", "-o", "%F|%K|%T"]), queue.status == 0 {
            for line in queue.stdout.split(separator: "\n") {
                let fields = line.split(separator: "|").map(String.init)
                guard fields.count == 3, wanted.contains(fields[0]), let task = Int(fields[1]) else { continue }
                states[TaskKey(array: fields[0], task: task)] = fields[2]
            }
        } else {
            silent.append("squeue")
        }
        if let accounting = try? run("sacct", ["-n", "-P", "-X", "-j", arrays.joined(separator: ","), "-o", "JobID,State"]), accounting.status == 0 {
            for line in accounting.stdout.split(separator: "\n") {
                let fields = line.split(separator: "|").map(String.init)
                let id = fields.first?.split(separator: "_").map(String.init) ?? []
                guard fields.count == 2, id.count == 2, wanted.contains(id[0]), let task = Int(id[1]) else { continue }
                let key = TaskKey(array: id[0], task: task)
                if states[key] == nil { states[key] = String(fields[1].split(separator: " ")[0]) }
            }
        } else {
            silent.append("sacct")
        }
        return (states, silent)
    }

    struct TaskKey: Hashable {
        var array: String
        var task: Int
    }

    /// Job states after which a job does nothing more (squeue's and sacct's long names).
    static let endedStates: Set<String> = [
        "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "REVOKED",
        "SPECIAL_EXIT",
    ]

    /// `indices` as an `--array` value: `0-11`, `3,5-7`.
    static func arraySpec(_ indices: [Int]) -> String {
        var ranges: [String] = []
        var start = indices.first ?? 0, end = start
        for index in indices.dropFirst() + [Int.min] {
            if index == end + 1 { end = index; continue }
            ranges.append(start == end ? String(start) : "\(start)-\(end)")
            start = index
            end = index
        }
        return indices.isEmpty ? "" : ranges.joined(separator: ",")
    }

    /// `text` as one word for a POSIX shell: in single quotes, each `'` written as `'\''`.
    static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Whether `text` can stand unquoted in an `#SBATCH` line (which sbatch reads without a shell).
    static func isDirectiveSafe(_ text: String) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-+=,@~:/".unicodeScalars.contains($0)) }
    }
}
