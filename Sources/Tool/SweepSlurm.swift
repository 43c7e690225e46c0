import ArgumentParser
import Foundation
import Net

/// `sweep --slurm` and the modes that work on a sweep directory (`--status DIR`, and `--task I DIR`
/// and `--summary DIR`, which the job scripts run).
struct SlurmOptions: ParsableArguments {
    @Flag(name: .customLong("slurm"), help: ArgumentHelp(
        "Submit the runs to Slurm instead of training them here: a job array of one task per combination (OUT/sweep.sbatch) and a summary job after it (OUT/summary.sbatch). OUT must be on a filesystem every node shares."))
    var submit = false

    @Option(help: "Slurm partition of the jobs (sbatch --partition).")
    var partition: String?

    @Option(help: "Time limit of each task, as sbatch --time takes it (minutes, H:MM:SS, D-HH:MM).")
    var time: String?

    @Option(name: .customLong("cpus-per-task"), help: "CPUs of each task (sbatch --cpus-per-task), which its run uses as --workers (default 1).")
    var cpusPerTask: Int?

    @Option(name: .customLong("max-running"), help: "Tasks of the array running at the same time (--array=…%K).")
    var maxRunning: Int?

    @Flag(name: .customLong("dry-run"), help: "With --slurm: write the job scripts and print the sbatch commands, without submitting.")
    var dryRun = false

    @Option(help: ArgumentHelp("Show the state of each run of the Slurm sweep in DIR, from its run directory and from squeue/sacct.", valueName: "dir"))
    var status: String?

    @Option(parsing: .upToNextOption, help: ArgumentHelp("(What OUT/sweep.sbatch runs.) Train combination I of the Slurm sweep in DIR.", valueName: "i> <dir"))
    var task: [String] = []

    @Option(help: ArgumentHelp("(What OUT/summary.sbatch runs.) Write the summaries and the report of the Slurm sweep in DIR.", valueName: "dir"))
    var summary: String?

    /// A mode that works on an existing sweep directory alone: --status, --task or --summary.
    var directoryMode: Bool { status != nil || !task.isEmpty || summary != nil }

    static let directoryModeUsage = "--status DIR, --task I DIR and --summary DIR take nothing else: the sweep's settings are in DIR/sweep.json"

    func validate() throws {
        if [status != nil, !task.isEmpty, summary != nil, submit].filter({ $0 }).count > 1 {
            throw ValidationError("give one of --slurm, --status, --task and --summary")
        }
        let submitOptions = [("--partition", partition != nil), ("--time", time != nil), ("--cpus-per-task", cpusPerTask != nil),
                             ("--max-running", maxRunning != nil), ("--dry-run", dryRun)]
        if !submit, let (name, _) = submitOptions.first(where: \.1) { throw ValidationError("\(name) needs --slurm") }
        if !task.isEmpty, task.count != 2 || Int(task[0]).map({ $0 < 0 }) ?? true {
            throw ValidationError("--task takes a task index and the sweep directory: --task I DIR")
        }
        if let partition, !partition.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.,-".contains($0)) }) || partition.isEmpty {
            throw ValidationError("--partition '\(partition)': a partition name is letters, digits and _ . - (several joined by ,)")
        }
        if let time, !time.allSatisfy({ $0.isASCII && ($0.isNumber || ":-".contains($0)) }) || time.isEmpty {
            throw ValidationError("--time '\(time)': write minutes, H:MM:SS or D-HH:MM:SS")
        }
        if let cpusPerTask, cpusPerTask < 1 { throw ValidationError("--cpus-per-task must be positive") }
        if let maxRunning, maxRunning < 1 { throw ValidationError("--max-running must be positive") }
    }

    /// The mode that works on a sweep directory alone, if one was given.
    var directoryCommand: SweepDirectoryCommand? {
        if let status { return .status(status) }
        if task.count == 2, let index = Int(task[0]) { return .task(index, task[1]) }
        if let summary { return .summary(summary) }
        return nil
    }
}

/// `sweep --status DIR`, `--task I DIR` and `--summary DIR`: each reads the sweep from DIR/sweep.json.
enum SweepDirectoryCommand {
    case status(String)
    case task(Int, String)
    case summary(String)

    func run() throws {
        switch self {
        case .status(let directory):
            let directory = absolutePath(directory)
            let (manifest, sweep) = try SweepManifest.sweep(in: directory)
            try sweep.printStatus(manifest, in: directory)
        case let .task(index, directory):
            let directory = absolutePath(directory)
            try SweepManifest.sweep(in: directory).command.runTask(index, in: directory)
        case .summary(let directory):
            let directory = absolutePath(directory)
            try SweepManifest.sweep(in: directory).command.runSummaryJob(in: directory)
        }
    }
}

/// What a Slurm sweep's tasks run, kept in DIR/sweep.json: the grid and train options as given, the
/// directory they are relative to, and the jobs submitted so far.
struct SweepManifest: Codable, Equatable {
    var grid: String
    var arguments: [String]
    /// Where `sweep --slurm` was first run: relative paths in `arguments` are relative to it.
    var workingDirectory: String
    var submissions: [Submission]

    /// One `sweep --slurm` that submitted jobs.
    struct Submission: Codable, Equatable {
        /// The array job's id, and the task indices (combinations) it runs.
        var array: String
        var tasks: [Int]
        /// nil when sbatch took the array but refused the summary job
        var summary: String?
    }

    static func path(in directory: String) -> String { directory + "/sweep.json" }

    /// The manifest in `directory`, or nil when there is none.
    static func load(from directory: String) throws -> SweepManifest? {
        let path = path(in: directory)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(SweepManifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw SlurmError.badManifest(path: path, reason: "not a sweep manifest (\(error.localizedDescription))")
        }
    }

    func write(to directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeAtomically(try encoder.encode(self), to: Self.path(in: directory))
    }

    /// The manifest in `directory` (an absolute path) and the sweep it describes, parsed and validated
    /// as `deconvnet sweep` parses its command line, from the manifest's working directory.
    static func sweep(in directory: String) throws -> (manifest: SweepManifest, command: SweepCommand) {
        guard let manifest = try load(from: directory) else { throw SlurmError.notASlurmSweep(directory) }
        guard FileManager.default.changeCurrentDirectoryPath(manifest.workingDirectory) else {
            throw SlurmError.badManifest(path: path(in: directory), reason: "its working directory \(manifest.workingDirectory) is not there")
        }
        do {
            return (manifest, try SweepCommand.parse(["--grid", manifest.grid, "--out", directory] + manifest.arguments))
        } catch {
            throw SlurmError.badManifest(path: path(in: directory), reason: SweepCommand.message(for: error))
        }
    }

    /// For each task index, the array job that ran it last.
    var lastArray: [Int: String] {
        var last: [Int: String] = [:]
        for submission in submissions {
            for task in submission.tasks { last[task] = submission.array }
        }
        return last
    }
}

extension SweepCommand {
    /// `sweep --slurm`: records the sweep in OUT/sweep.json, writes OUT/sweep.sbatch for the runs that
    /// are neither finished, diverged, nor still queued or running, and OUT/summary.sbatch, and submits
    /// both (the summary after every array of the sweep that has not ended).
    func submitToSlurm(in out: String) throws {
        let directory = absolutePath(out)
        guard Slurm.isDirectiveSafe(directory) else { throw SlurmError.unsafePath(directory) }
        let grid = try parsedGrid()
        let combinations = grid.combinations
        let base = try trainCommand(combinations[0])
        var manifest = try SweepManifest.load(from: directory)
            ?? SweepManifest(grid: self.grid ?? "", arguments: trainArguments, workingDirectory: FileManager.default.currentDirectoryPath, submissions: [])
        if (try? SweepGrid(parsing: manifest.grid)) != grid { throw SlurmError.otherGrid(directory: directory, grid: manifest.grid) }
        if manifest.arguments != trainArguments { throw SlurmError.otherOptions(directory: directory, arguments: manifest.arguments) }
        if !slurm.dryRun, Slurm.find("sbatch") == nil { throw SlurmError.toolMissing("sbatch") }

        // Tasks of earlier submissions that Slurm still runs or holds are left to it.
        let lastArray = manifest.lastArray
        var active: Set<Int> = []
        if !manifest.submissions.isEmpty {
            let (states, silent) = Slurm.taskStates(of: Array(Set(lastArray.values)).sorted())
            if silent.contains("squeue") && !slurm.dryRun { throw SlurmError.noAnswer(tool: "squeue") }
            active = Set(lastArray.filter { task, array in states[Slurm.TaskKey(array: array, task: task)].map { !Slurm.endedStates.contains($0) } ?? false }.keys)
        }
        let unfinished = combinations.indices.filter { job(for: combinations[$0], base: base, in: directory) != nil }
        let tasks = unfinished.filter { !active.contains($0) }
        print("sweep of \(combinations.count) runs in \(directory): \(combinations.count - unfinished.count) finished or diverged, "
              + "\(unfinished.count - tasks.count) queued or running, \(tasks.count) to submit")
        guard !tasks.isEmpty else {
            if active.isEmpty { try summarize(grid, in: directory) }
            return
        }

        try FileManager.default.createDirectory(atPath: directory + "/slurm", withIntermediateDirectories: true)
        try manifest.write(to: directory)
        let arrayScript = directory + "/sweep.sbatch", summaryScript = directory + "/summary.sbatch"
        try writeAtomically(Data(jobScript(task: tasks, in: directory).utf8), to: arrayScript)
        try writeAtomically(Data(jobScript(task: nil, in: directory).utf8), to: summaryScript)
        let earlier = Set(active.compactMap { lastArray[$0] }).sorted()
        if slurm.dryRun {
            let after = (earlier + ["<array job id>"]).joined(separator: ":")
            print("wrote \(arrayScript) (tasks \(Slurm.arraySpec(tasks))) and \(summaryScript); submit them with:")
            print("  sbatch --parsable \(Slurm.shellQuoted(arrayScript))")
            print("  sbatch --parsable --dependency=afterany:\(after) \(Slurm.shellQuoted(summaryScript))")
            return
        }
        let array = try Slurm.submit([arrayScript])
        manifest.submissions.append(.init(array: array, tasks: tasks, summary: nil))
        try manifest.write(to: directory)
        let summary = try Slurm.submit(["--dependency=afterany:" + (earlier + [array]).joined(separator: ":"), summaryScript])
        manifest.submissions[manifest.submissions.count - 1].summary = summary
        try manifest.write(to: directory)
        print("submitted array job \(array) (tasks \(Slurm.arraySpec(tasks))) and summary job \(summary); see deconvnet sweep --status \(directory)")
    }

    /// OUT/sweep.sbatch (an array of `tasks`, each running `deconvnet sweep --task I DIR`), or with no
    /// tasks OUT/summary.sbatch (`deconvnet sweep --summary DIR`). Only checked values stand in `#SBATCH`
    /// lines; the grid is in DIR/sweep.json and never in a script.
    private func jobScript(task tasks: [Int]?, in directory: String) -> String {
        var directives = ["--job-name=\(tasks == nil ? "deconvnet-sweep-summary" : "deconvnet-sweep")"]
        if let tasks {
            directives += ["--array=\(Slurm.arraySpec(tasks))\(slurm.maxRunning.map { "%\($0)" } ?? "")",
                           "--cpus-per-task=\(slurm.cpusPerTask ?? 1)", "--output=\(directory)/slurm/task-%A_%a.out"]
        } else {
            directives += ["--cpus-per-task=1", "--output=\(directory)/slurm/summary-%j.out"]
        }
        if let partition = slurm.partition { directives.append("--partition=\(partition)") }
        if let time = slurm.time { directives.append("--time=\(time)") }
        let command = [Slurm.shellQuoted(SweepJob.executable.path), "sweep"]
            + (tasks == nil ? ["--summary"] : ["--task", "\"$SLURM_ARRAY_TASK_ID\""]) + [Slurm.shellQuoted(directory)]
        return """
        #!/bin/sh
        \(directives.map { "#SBATCH " + $0 }.joined(separator: "\n"))
        # Written by `deconvnet sweep --slurm`: \(tasks == nil ? "the summaries and the report of" : "one run per array task of") \
        the sweep in this folder, whose grid and options are in sweep.json.
        exec \(command.joined(separator: " "))

        """
    }

    /// `sweep --task I DIR`: trains combination `index` to the sweep's target, resuming its checkpoint
    /// where it can, with as many workers as Slurm gave the task CPUs. A diverged run ends the task
    /// with status 0, as it ends a local sweep; a failed one with status 4.
    func runTask(_ index: Int, in directory: String) throws {
        let combinations = try parsedGrid().combinations
        guard combinations.indices.contains(index) else { throw SlurmError.noSuchTask(index: index, count: combinations.count) }
        let name = SweepGrid.name(combinations[index])
        guard var job = job(for: combinations[index], base: try trainCommand(combinations[0]), in: directory) else {
            print("\(name): finished or diverged already")
            return
        }
        let workers = ProcessInfo.processInfo.environment["SLURM_CPUS_PER_TASK"].flatMap { Int($0) } ?? Workers.count
        job.arguments += ["--workers", String(max(1, workers))]
        if case .failed = SweepJob.runAll([job], parallel: 1)[name] {
            throw SweepError.runsFailed([job.directory + "/train.log"])
        }
    }

    /// `sweep --summary DIR`: the local sweep's summaries and report, and how many runs are not done.
    func runSummaryJob(in directory: String) throws {
        let grid = try parsedGrid()
        let base = try trainCommand(grid.combinations[0])
        try summarize(grid, in: directory)
        let unfinished = grid.combinations.filter { job(for: $0, base: base, in: directory) != nil }.count
        if unfinished > 0 { print("\(unfinished) of \(grid.combinations.count) runs are not finished: see deconvnet sweep --status \(directory)") }
    }

    /// `sweep --status DIR`: one line per run, its state from its directory and Slurm's state of its task.
    func printStatus(_ manifest: SweepManifest, in directory: String) throws {
        let combinations = try parsedGrid().combinations
        let base = try trainCommand(combinations[0])
        let lastArray = manifest.lastArray
        let (states, silent) = Slurm.taskStates(of: Array(Set(lastArray.values)).sorted())
        let jobs = manifest.submissions.map { "array \($0.array) (tasks \(Slurm.arraySpec($0.tasks))), summary \($0.summary ?? "none")" }
        print("sweep of \(combinations.count) runs in \(directory); Slurm jobs: \(jobs.isEmpty ? "none submitted" : jobs.joined(separator: "; "))"
              + (silent.isEmpty ? "" : " (\(silent.joined(separator: " and ")) did not answer)"))
        var rows: [[String]] = [["run", "state", "progress", "slurm"]]
        var counts: [String: Int] = [:]
        for (index, combination) in combinations.enumerated() {
            let run = directory + "/" + SweepGrid.name(combination)
            let slurmState = lastArray[index].flatMap { array in states[Slurm.TaskKey(array: array, task: index)].map { "\(array)_\(index) \($0)" } }
            let state: String
            switch SweepJob.state(of: run, epochs: base.epochs, steps: base.steps) {
            case .finished: state = "finished"
            case .diverged: state = "diverged"
            case .partial, .fresh:
                if slurmState?.hasSuffix(" RUNNING") ?? false { state = "running" }
                else if slurmState?.hasSuffix(" PENDING") ?? false { state = "pending" }
                else if FileManager.default.fileExists(atPath: run) { state = "partial" }
                else { state = "not started" }
            }
            counts[state, default: 0] += 1
            let last = (try? RunRecord.load(run))?.metrics.last
            let progress = last.map { m in base.steps.map { "step \(m.step) of \($0)" } ?? "epoch \(m.epoch) of \(base.epochs)" } ?? ""
            rows.append([SweepGrid.name(combination), state, progress, slurmState ?? ""])
        }
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces))
        }
        print(["finished", "diverged", "running", "pending", "partial", "not started"].compactMap { state in
            counts[state].map { "\($0) \(state)" }
        }.joined(separator: ", "))
    }
}
