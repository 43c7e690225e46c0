import ArgumentParser
import Foundation
import Net

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Train every combination of a grid of settings, then tabulate and report them.",
        discussion: """
        Each combination is an ordinary `deconvnet train` run in OUT/<name>/ (name like \
        lr=0.1_activation=tanh), started as a child process with its output in OUT/<name>/train.log, \
        --jobs at a time; the cores are shared out among the jobs (--workers of each run: cores / jobs, at \
        least 1), so that jobs do not fight over them. \
        Unrecognised options go to every run: deconvnet sweep --grid "lr=0.1,0.01 loss=mse,ce" --data D --epochs 3 --out OUT.

        Grid keys: \(SweepGrid.options.keys.sorted().joined(separator: ", ")). For augment, + joins \
        augmentations and none means none (augment=none,flip+shift).

        Running the same command again continues an interrupted sweep: finished runs (metrics.jsonl \
        reached the requested epochs or steps) and diverged runs are kept; a run with a checkpoint behind \
        the target and metrics that reach its checkpoint is resumed (--resume OUT/<name>/checkpoint.safetensors \
        for the remaining epochs); any other run (no directory, no checkpoint, metrics lost) is restarted \
        from scratch. A run that diverges (`train` exits with status 3) is reported as diverged, not as a \
        failure; when any run fails otherwise, the sweep still writes its summaries and then exits with status 4.

        Writes OUT/summary.csv and OUT/summary.md (one row per run) and OUT/report/index.html.

        With --slurm the runs are the tasks of a Slurm job array instead, submitted with sbatch (see --slurm).
        """)

    @Option(help: "Space-separated KEY=V1,V2,… terms, e.g. \"lr=0.1,0.01 activation=sigmoid,tanh\".")
    var grid: String?

    @Option(help: "Sweep directory: one run directory per combination, summaries and the report.")
    var out: String?

    @Option(help: "Runs trained at the same time.")
    var jobs = 1

    @OptionGroup(title: "Slurm") var slurm: SlurmOptions

    @Argument(parsing: .allUnrecognized, help: "Options for every run, as for `deconvnet train` (e.g. --data D --epochs 3).")
    var trainArguments: [String] = []

    func validate() throws {
        if slurm.directoryMode {
            guard grid == nil, out == nil, trainArguments.isEmpty else { throw ValidationError(SlurmOptions.directoryModeUsage) }
            return try slurm.validate()
        }
        guard grid != nil, out != nil else { throw ValidationError("sweep needs --grid and --out (or --status DIR)") }
        try slurm.validate()
        if slurm.submit, jobs != 1 { throw ValidationError("--jobs is for a sweep on this machine; with --slurm use --max-running") }
        guard jobs > 0 else { throw ValidationError("--jobs must be positive") }
        let grid = try parsedGrid()
        let given = Set(trainArguments.filter { $0.hasPrefix("--") }.map { String($0.split(separator: "=", maxSplits: 1)[0]) })
        for option in ["--run", "--resume"] where given.contains(option) {
            throw ValidationError("sweep chooses each run's directory itself; drop \(option)")
        }
        if given.contains("--workers") { throw ValidationError("sweep shares the cores out among its jobs itself; drop --workers") }
        for axis in grid.axes where given.contains(SweepGrid.options[axis.key]!) {
            throw ValidationError("\(SweepGrid.options[axis.key]!) is given both in --grid and as a train option")
        }
        for combination in grid.combinations { _ = try trainCommand(combination) }
        if let data = try trainCommand(grid.combinations[0]).data, !FileManager.default.fileExists(atPath: data) {
            throw ValidationError("--data \(data): no such file or directory")
        }
    }

    func parsedGrid() throws -> SweepGrid {
        do { return try SweepGrid(parsing: grid ?? "") } catch { throw ValidationError(error.localizedDescription) }
    }

    /// The `train` command a combination runs, parsed and validated as `train` would.
    func trainCommand(_ combination: SweepGrid.Combination) throws -> TrainCommand {
        do {
            return try TrainCommand.parse(trainArguments + SweepGrid.arguments(combination))
        } catch {
            throw ValidationError("\(SweepGrid.name(combination)): \(TrainCommand.message(for: error))")
        }
    }

    func run() throws {
        if let mode = slurm.directoryCommand { return try mode.run() }
        guard let out else { throw ValidationError("sweep needs --out") }
        if slurm.submit { return try submitToSlurm(in: out) }
        let grid = try parsedGrid()
        let combinations = grid.combinations
        let base = try trainCommand(combinations[0])
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var jobs = combinations.compactMap { job(for: $0, base: base, in: out) }
        let kept = combinations.count - jobs.count
        let workers = max(1, Workers.count / min(self.jobs, max(1, jobs.count)))
        for j in jobs.indices { jobs[j].arguments += ["--workers", String(workers)] }
        print("sweep of \(combinations.count) runs in \(out): \(kept) already done, \(jobs.count) to train"
              + (jobs.isEmpty ? "" : ", \(min(self.jobs, jobs.count)) at a time"))
        let outcomes = SweepJob.runAll(jobs, parallel: self.jobs)
        try summarize(grid, in: out)
        let failed = outcomes.filter { if case .failed = $0.value { return true } else { return false } }.keys.sorted()
        if !failed.isEmpty { throw SweepError.runsFailed(failed.map { "\(out)/\($0)/train.log" }) }
    }

    /// The child that takes `combination`'s run in `out` to the target of `base` (resumed from its
    /// checkpoint where it can be), or nil when the run is finished or diverged.
    func job(for combination: SweepGrid.Combination, base: TrainCommand, in out: String) -> SweepJob? {
        let name = SweepGrid.name(combination)
        let directory = out + "/" + name
        switch SweepJob.state(of: directory, epochs: base.epochs, steps: base.steps) {
        case .finished, .diverged:
            return nil
        case let .partial(epochs, steps):
            var arguments = ["train", "--resume", directory + "/checkpoint.safetensors", "--epochs", String(epochs), "--run", directory]
            if let steps { arguments += ["--steps", String(steps)] }
            if let data = base.data { arguments += ["--data", data] }
            // a resumed run keeps its stored settings; the budget is the process's, so it goes on again
            if let maxMemory = base.memoryOptions.maxMemory { arguments += ["--max-memory", maxMemory] }
            return SweepJob(name: name, directory: directory, arguments: arguments, resumed: true)
        case .fresh:
            return SweepJob(name: name, directory: directory,
                            arguments: ["train"] + trainArguments + SweepGrid.arguments(combination) + ["--run", directory], resumed: false)
        }
    }

    /// Writes OUT/summary.csv, OUT/summary.md and OUT/report/index.html from the run directories as
    /// they are (a run not started is a row without numbers), and prints where.
    func summarize(_ grid: SweepGrid, in out: String) throws {
        let records = grid.combinations.map { combination -> RunRecord in
            let name = SweepGrid.name(combination)
            return (try? RunRecord.load(out + "/" + name, name: name)) ?? RunRecord(name: name, path: out + "/" + name)
        }
        try writeSummaries(records, grid: grid, in: out)
        let report = try writeReport(ReportPage(runs: records, title: "Sweep: \(grid.axes.map { "\($0.key) ∈ {\($0.values.joined(separator: ", "))}" }.joined(separator: " × "))"),
                                     to: out + "/report")
        let diverged = records.filter(\.diverged).map(\.name)
        if !diverged.isEmpty { print("diverged: \(diverged.joined(separator: ", "))") }
        print("summary: \(out)/summary.csv, \(out)/summary.md; report: \(report)")
    }

    /// OUT/summary.csv (plain numbers, accuracies as fractions) and OUT/summary.md (formatted).
    private func writeSummaries(_ records: [RunRecord], grid: SweepGrid, in out: String) throws {
        let catalog = ModelCatalog()
        let summaries = records.map(catalog.summary)
        let settings = Dictionary(uniqueKeysWithValues: grid.combinations.map { c in
            (out + "/" + SweepGrid.name(c), Dictionary(uniqueKeysWithValues: c.map { ($0.key, $0.value) }))
        })
        let gridColumns = grid.axes.map { axis in RunColumn(header: axis.key, text: true) { settings[$0.path]?[axis.key] ?? "" } }
        func raw(_ header: String, _ value: @escaping (RunSummary) -> Float?) -> RunColumn {
            RunColumn(header: header) { value($0).map { String(describing: $0) } ?? "" }
        }
        let csvColumns = [RunColumn(header: "name", text: true) { $0.run }] + gridColumns + [
            RunColumn(header: "epochs") { String($0.epochs) },
            raw("final_train_loss", \.finalTrainLoss), raw("final_train_acc", \.finalTrainAcc),
            raw("final_test_loss", \.finalTestLoss), raw("final_test_acc", \.finalTestAcc),
            raw("best_train_loss", \.bestTrainLoss), raw("best_train_acc", \.bestTrainAcc),
            raw("best_test_loss", \.bestTestLoss), raw("best_test_acc", \.bestTestAcc),
            RunColumn(header: "seconds") { String(format: "%.2f", $0.seconds) }, .diverged,
        ]
        let mdColumns = [RunColumn.run] + gridColumns + [
            .epochs, .finalTrainLoss, .finalTrainAcc, .finalTestLoss, .finalTestAcc,
            RunColumn(header: "best train loss") { lossText($0.bestTrainLoss) }, RunColumn(header: "best train acc") { percentText($0.bestTrainAcc) },
            RunColumn(header: "best test loss") { lossText($0.bestTestLoss) }, .bestTestAcc,
            RunColumn(header: "seconds") { String(format: "%.1f", $0.seconds) }, .diverged,
        ]
        try writeAtomically(Data(runTable(summaries, columns: csvColumns).csv.utf8), to: out + "/summary.csv")
        try writeAtomically(Data(runTable(summaries, columns: mdColumns).markdown.utf8), to: out + "/summary.md")
    }
}

/// Why a sweep ended with a non-zero status.
enum SweepError: LocalizedError, StatusError {
    /// Runs that failed (not diverged), by their logs.
    case runsFailed([String])

    var errorDescription: String? {
        switch self {
        case .runsFailed(let logs): return "\(logs.count) run\(logs.count == 1 ? "" : "s") failed: see \(logs.joined(separator: ", "))"
        }
    }

    var exitStatus: ExitStatus { .runsFailed }
}

/// One `deconvnet train` child process of a sweep.
struct SweepJob {
    /// Set in each child's environment to the sweep's process id: a child whose parent is gone (the
    /// sweep was killed) stops after its current step instead of training on unwatched.
    static let parentVariable = "DECONVNET_SWEEP_PARENT"

    var name: String
    var directory: String
    /// Arguments after the executable, starting with `train`.
    var arguments: [String]
    var resumed: Bool

    enum State: Equatable {
        case finished, diverged, fresh
        /// A checkpoint to resume for this many more epochs (and steps, with `--steps`).
        case partial(epochs: Int, steps: Int?)
    }

    enum Outcome: Equatable {
        case finished, diverged, failed(Int32)

        /// The outcome a `train` process's exit status means.
        init(status: Int32) {
            switch status {
            case ExitStatus.success.rawValue: self = .finished
            case ExitStatus.diverged.rawValue: self = .diverged
            default: self = .failed(status)
            }
        }
    }

    /// Where the run in `directory` stands against a target of `epochs` (or `steps`).
    static func state(of directory: String, epochs: Int, steps: Int?) -> State {
        let checkpoint = directory + "/checkpoint.safetensors"
        guard let run = try? RunRecord.load(directory), FileManager.default.fileExists(atPath: checkpoint),
              let meta = try? Checkpoint.readMetadata(from: checkpoint) else { return .fresh }
        if run.diverged { return .diverged }
        if let last = run.metrics.last, last.epoch >= epochs || steps.map({ last.step >= $0 }) ?? false { return .finished }
        let epoch = Int(meta[CheckpointKey.epoch] ?? "") ?? -1, step = Int(meta[CheckpointKey.step] ?? "") ?? -1
        let recorded = Set(run.metrics.map(\.epoch))
        guard epoch >= 0, epoch < epochs, (0..<epoch).allSatisfy({ recorded.contains($0 + 1) }), steps.map({ step < $0 }) ?? true else { return .fresh }
        return .partial(epochs: epochs - epoch, steps: steps.map { $0 - step })
    }

    /// The running executable, to start children of the same build.
    static var executable: URL {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: CommandLine.arguments[0])
    }

    /// Runs the job to completion, its output appended to `directory/train.log`.
    func run() -> Outcome {
        let fm = FileManager.default
        let log = directory + "/train.log"
        do {
            if !resumed { try? fm.removeItem(atPath: directory) }
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if !fm.fileExists(atPath: log) { _ = fm.createFile(atPath: log, contents: nil) }
            guard let handle = FileHandle(forWritingAtPath: log) else { return .failed(-1) }
            defer { try? handle.close() }
            handle.seekToEndOfFile()
            handle.write(Data("$ deconvnet \(arguments.joined(separator: " "))\n".utf8))
            let process = Process()
            process.executableURL = Self.executable
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging([Self.parentVariable: String(getpid())]) { $1 }
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationReason == .exit else { return .failed(128 + process.terminationStatus) }
            return Outcome(status: process.terminationStatus)
        } catch {
            printError("\(name): \(error.localizedDescription)")
            return .failed(-1)
        }
    }

    /// Runs `jobs`, `parallel` at a time, printing a line as each starts and ends; returns each job's outcome by name.
    static func runAll(_ jobs: [SweepJob], parallel: Int) -> [String: Outcome] {
        let progress = SweepProgress(total: jobs.count)
        let slots = DispatchSemaphore(value: parallel)
        let group = DispatchGroup()
        for job in jobs {
            slots.wait()
            group.enter()
            progress.say("start \(job.name)\(job.resumed ? " (resuming)" : "")")
            Thread.detachNewThread {
                let started = Date()
                progress.record(job, job.run(), seconds: Date().timeIntervalSince(started))
                slots.signal()
                group.leave()
            }
        }
        group.wait()
        return progress.outcomes
    }
}

/// The outcomes of a sweep's jobs so far, and its console lines, shared by the job threads.
private final class SweepProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int
    private var results: [String: SweepJob.Outcome] = [:]

    init(total: Int) { self.total = total }

    var outcomes: [String: SweepJob.Outcome] { lock.withLock { results } }

    func say(_ line: String) {
        lock.withLock {
            print(line)
            fflush(stdout)
        }
    }

    func record(_ job: SweepJob, _ outcome: SweepJob.Outcome, seconds: Double) {
        let accuracy = (try? RunRecord.load(job.directory))?.bestTestAcc.map { ", best test acc \(percent($0.value))" } ?? ""
        let text: String
        switch outcome {
        case .finished: text = "done\(accuracy) (\(String(format: "%.1f", seconds)) s)"
        case .diverged: text = "diverged, see \(job.directory)/diverged.txt"
        case .failed(let status): text = "failed with status \(status), see \(job.directory)/train.log"
        }
        lock.withLock {
            results[job.name] = outcome
            print("[\(results.count)/\(total)] \(job.name): \(text)")
            fflush(stdout)
        }
    }
}
