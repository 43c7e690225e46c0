import Foundation
import XCTest
import Net
import TestSupport

/// `deconvnet sweep --slurm` on the single-node cluster of `scripts/local-slurm`, which `make test`
/// starts before the tests (SLURM_CONF names its slurm.conf) and stops after them; and the Slurm
/// options' bad input, which needs no cluster.
final class SlurmSweepTests: XCTestCase {
    /// Seed 003's grid as a job array: one task cancelled mid-run with scancel, then the same command
    /// again completes it from its checkpoint and leaves the other 11 runs alone. (lr=0.1 with MSE
    /// diverges here; a run that diverges is reported as such and counts as done.)
    func testSeed003GridOnSlurmWithACancelledTask() throws {
        try requireCluster()
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data", perClass: 10, size: 24)
        let out = dir + "/sweep"
        // 30 training images in batches of 6: 5 steps an epoch, 4 epochs in 20 steps
        let arguments = ["sweep", "--slurm", "--grid", "lr=0.1,0.01,0.001 activation=sigmoid,tanh loss=mse,ce", "--out", out,
                         "--max-running", "2", "--data", dir + "/data", "--model", "conv:32:5:same,maxpool:2,conv:32:5:same,maxpool:2,fc",
                         "--steps", "20", "--batch-size", "6"]
        let first = try CLI.run(arguments)
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr)
        XCTAssertTrue(first.stdout.contains("0 finished or diverged, 0 queued or running, 12 to submit"), first.stdout)
        let (array, summary) = try submittedJobs(first.stdout)
        let script = try String(contentsOfFile: out + "/sweep.sbatch", encoding: .utf8)
        XCTAssertTrue(script.contains("#SBATCH --array=0-11%2\n"), script)
        XCTAssertTrue(script.contains(" sweep --task \"$SLURM_ARRAY_TASK_ID\" '\(out)'\n"), script)

        let names = try runNames(out)
        XCTAssertEqual(names.count, 12)
        let cancelled = try cancelOneTaskMidRun(array: array, out: out, names: names)
        try waitForJobs([array, summary])
        let name = names[cancelled]
        XCTAssertFalse(try isDone(out + "/" + name), "\(name) was cancelled before its last step")
        var csv = try summaryRows(out)
        XCTAssertEqual(csv.count, 13, csv.joined(separator: "\n"))
        let diverged = names.filter { FileManager.default.fileExists(atPath: out + "/" + $0 + "/diverged.txt") }
        XCTAssertEqual(Set(csv.filter { $0.hasSuffix(",yes") }.map { String($0.split(separator: ",")[0]) }), Set(diverged))
        let counts = (diverged.isEmpty ? "" : ", \(diverged.count) diverged")
        let status = try CLI.run(["sweep", "--status", out])
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertTrue(status.stdout.hasSuffix("\(11 - diverged.count) finished\(counts), 1 partial\n"), status.stdout)
        let line = status.stdout.split(separator: "\n").first { $0.hasPrefix(name + " ") }.map(String.init) ?? ""
        XCTAssertTrue(line.contains("partial") && line.hasSuffix("\(array)_\(cancelled) CANCELLED"), status.stdout)

        let others = names.enumerated().filter { $0.offset != cancelled }.map { out + "/" + $0.element }
        let before = try others.map { try snapshot($0) }
        let second = try CLI.run(arguments)
        XCTAssertEqual(second.status, 0, second.stdout + second.stderr)
        XCTAssertTrue(second.stdout.contains("11 finished or diverged, 0 queued or running, 1 to submit"), second.stdout)
        let (rerun, rerunSummary) = try submittedJobs(second.stdout)
        XCTAssertTrue(second.stdout.contains("(tasks \(cancelled))"), second.stdout)
        try waitForJobs([rerun, rerunSummary])

        let log = try String(contentsOfFile: out + "/" + name + "/train.log", encoding: .utf8)
        XCTAssertTrue(try isFinished(out + "/" + name), log)
        XCTAssertFalse(diverged.contains(name))
        XCTAssertTrue(log.contains("--resume \(out)/\(name)/checkpoint.safetensors"), "resumed from its checkpoint: " + log)
        XCTAssertEqual(try others.map { try snapshot($0) }, before, "the other 11 runs were left alone")
        csv = try summaryRows(out)
        XCTAssertEqual(csv.count, 13, csv.joined(separator: "\n"))
        XCTAssertEqual(Set(csv.dropFirst().map { String($0.split(separator: ",")[0]) }), Set(names))
        for row in csv.dropFirst() { XCTAssertTrue(row.hasSuffix(",yes") || row.hasSuffix(",no") && !row.contains(",,"), row) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/report/index.html"))
        let done = try CLI.run(["sweep", "--status", out])
        XCTAssertTrue(done.stdout.hasSuffix("\(12 - diverged.count) finished\(counts)\n"), done.stdout)

        let third = try CLI.run(arguments)
        XCTAssertEqual(third.status, 0, third.stderr)
        XCTAssertTrue(third.stdout.contains("12 finished or diverged, 0 queued or running, 0 to submit"), third.stdout)
        XCTAssertFalse(third.stdout.contains("submitted"), third.stdout)
    }

    /// A task whose loss becomes infinite is reported as diverged (not failed), and sbatch's own
    /// refusal is passed on in one line.
    func testDivergingTaskAndRejectedJob() throws {
        try requireCluster()
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data", perClass: 4, size: 8)
        let options = ["--data", dir + "/data", "--model", "conv:2:3:same,maxpool:2,fc", "--optimizer", "sgd", "--loss", "mse",
                       "--steps", "6", "--batch-size", "4"]
        let out = dir + "/sweep"
        let result = try CLI.run(["sweep", "--slurm", "--grid", "lr=0.01,1e30", "--out", out] + options)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let (array, summary) = try submittedJobs(result.stdout)
        try waitForJobs([array, summary])
        let status = try CLI.run(["sweep", "--status", out])
        XCTAssertEqual(status.status, 0, status.stderr)
        let lines = status.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains { $0.hasPrefix("lr=1e30 ") && $0.contains(" diverged ") && $0.hasSuffix("\(array)_1 COMPLETED") }, status.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("lr=0.01 ") && $0.contains(" finished ") }, status.stdout)
        XCTAssertEqual(lines.last, "1 finished, 1 diverged")
        let csv = try summaryRows(out)
        XCTAssertTrue(csv[2].hasPrefix("lr=1e30,") && csv[2].hasSuffix(",yes"), csv.joined(separator: "\n"))
        let taskLog = try String(contentsOfFile: out + "/slurm/task-\(array)_1.out", encoding: .utf8)
        XCTAssertTrue(taskLog.contains("lr=1e30: diverged"), taskLog)

        try assertCleanFailure(["sweep", "--slurm", "--partition", "nosuch", "--grid", "lr=0.01", "--out", dir + "/other"] + options,
                               mentions: "sbatch rejected the job: invalid partition specified: nosuch")
    }

    /// Bad input of the Slurm options, one line each, and what --dry-run writes; no cluster needed.
    func testSlurmScriptsAndBadInput() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data", perClass: 2, size: 8)
        let out = dir + "/sweep"
        let options = ["--data", dir + "/data", "--model", "conv:2:3:same,fc", "--steps", "2"]
        try assertCleanFailure(["sweep", "--slurm", "--dry-run", "--grid", "lr=0.1 model=lenet5", "--out", out] + options,
                               mentions: "--model is given both")
        let dryRun = try CLI.run(["sweep", "--slurm", "--dry-run", "--grid", "lr=0.1,0.01 seed=1,2", "--out", out, "--cpus-per-task", "2",
                                  "--max-running", "3", "--time", "10:00", "--partition", "debug"] + options)
        XCTAssertEqual(dryRun.status, 0, dryRun.stdout + dryRun.stderr)
        XCTAssertTrue(dryRun.stdout.contains("sbatch --parsable --dependency=afterany:<array job id> '\(out)/summary.sbatch'"), dryRun.stdout)
        let script = try String(contentsOfFile: out + "/sweep.sbatch", encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(script.filter { $0.hasPrefix("#SBATCH ") }, [
            "#SBATCH --job-name=deconvnet-sweep", "#SBATCH --array=0-3%3", "#SBATCH --cpus-per-task=2",
            "#SBATCH --output=\(out)/slurm/task-%A_%a.out", "#SBATCH --partition=debug", "#SBATCH --time=10:00",
        ])
        XCTAssertTrue(script.last?.hasPrefix("exec '/") ?? false, script.joined(separator: "\n"))
        XCTAssertTrue(script.last?.hasSuffix("/deconvnet' sweep --task \"$SLURM_ARRAY_TASK_ID\" '\(out)'") ?? false, script.joined(separator: "\n"))
        let summaryScript = try String(contentsOfFile: out + "/summary.sbatch", encoding: .utf8)
        XCTAssertTrue(summaryScript.hasSuffix("sweep --summary '\(out)'\n"), summaryScript)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/summary.csv"), "nothing ran")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/sweep.json"))) as? [String: Any]
        XCTAssertEqual(manifest?["grid"] as? String, "lr=0.1,0.01 seed=1,2")

        XCTAssertFalse(script.contains { $0.contains("lr=") || $0.contains("seed") }, "a task reads its combination from sweep.json")

        let status = try CLI.run(["sweep", "--status", out])
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertTrue(status.stdout.contains("none submitted") && status.stdout.hasSuffix("4 not started\n"), status.stdout)
        try assertCleanFailure(["sweep", "--slurm", "--dry-run", "--grid", "lr=0.1,0.02", "--out", out] + options,
                               mentions: "holds a sweep of another grid (lr=0.1,0.01 seed=1,2)")
        try assertCleanFailure(["sweep", "--slurm", "--dry-run", "--grid", "lr=0.1,0.01 seed=1,2", "--out", out] + options + ["--lr", "1"],
                               mentions: "--lr is given both")
        try assertCleanFailure(["sweep", "--slurm", "--dry-run", "--grid", "lr=0.1,0.01 seed=1,2", "--out", out, "--data", dir + "/data", "--steps", "3"],
                               mentions: "holds a sweep with other train options")
        try assertCleanFailure(["sweep", "--slurm", "--grid", "lr=0.1", "--out", dir + "/with space"] + options, mentions: "--slurm needs an --out path")
        try assertCleanFailure(["sweep", "--grid", "lr=0.1", "--out", out, "--partition", "debug"] + options, mentions: "--partition needs --slurm")
        try assertCleanFailure(["sweep", "--slurm", "--jobs", "2", "--grid", "lr=0.1", "--out", out] + options, mentions: "with --slurm use --max-running")
        try assertCleanFailure(["sweep", "--slurm", "--partition", "a b", "--grid", "lr=0.1", "--out", out] + options, mentions: "a partition name is")
        try assertCleanFailure(["sweep", "--status", dir], mentions: "holds no Slurm sweep")
        try assertCleanFailure(["sweep", "--status", out, "--steps", "2"], mentions: "take nothing else")
        try assertCleanFailure(["sweep", "--task", "x", out], mentions: "--task I DIR")
        try assertCleanFailure(["sweep", "--task", "4", out], mentions: "the sweep has tasks 0-3")

        let noSlurm = try CLI.run(["sweep", "--slurm", "--grid", "lr=0.1", "--out", dir + "/plain"] + options, environment: ["PATH": dir])
        XCTAssertEqual(noSlurm.status, 1)
        XCTAssertEqual(noSlurm.stderr, "Error: sbatch not found on PATH: --slurm submits with Slurm's commands; --dry-run writes the job scripts without submitting them\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/plain"), "nothing written")
    }

    // MARK: - The cluster

    private func requireCluster() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["SLURM_CONF"] != nil,
                          "no Slurm cluster: make test starts one with scripts/local-slurm (or: eval \"$(scripts/local-slurm start)\")")
    }

    private func slurm(_ arguments: [String]) -> (status: Int32, output: String) {
        runProcess("/usr/bin/env", arguments)
    }

    /// The array and summary job ids `sweep --slurm` printed.
    private func submittedJobs(_ stdout: String) throws -> (array: String, summary: String) {
        let words = stdout.split(whereSeparator: \.isWhitespace).map(String.init)
        let array = words.indices.first { words[$0] == "array" && words[$0 + 1] == "job" }.map { words[$0 + 2] }
        let summary = words.indices.first { words[$0] == "summary" && words[$0 + 1] == "job" }.map { words[$0 + 2].trimmingCharacters(in: .punctuationCharacters) }
        return (try XCTUnwrap(array, stdout), try XCTUnwrap(summary, stdout))
    }

    /// Waits until Slurm has ended `jobs` (five minutes at most).
    private func waitForJobs(_ jobs: [String]) throws {
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline {
            // without --states squeue lists the jobs not yet ended; one it no longer knows is an error
            let queue = slurm(["squeue", "-h", "-j", jobs.joined(separator: ","), "-o", "%i %T"])
            if queue.status != 0 || queue.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTFail("jobs \(jobs) still queued after 5 minutes: \(slurm(["squeue"]).output)")
        throw XCTSkip("timed out")
    }

    /// Cancels, with scancel, a task caught between its first epoch's checkpoint and its last step, and
    /// returns its index; a task that finishes before the cancel reaches it does not count, the next one is tried.
    /// Only cross-entropy runs are tried: MSE with lr=0.1 diverges, and the cancelled run must finish on the rerun.
    private func cancelOneTaskMidRun(array: String, out: String, names: [String]) throws -> Int {
        let deadline = Date().addingTimeInterval(240)
        while Date() < deadline {
            for (task, name) in names.enumerated() where name.hasSuffix("loss=ce") {
                let run = out + "/" + name
                guard FileManager.default.fileExists(atPath: run + "/checkpoint.safetensors"), !(try isDone(run)) else { continue }
                let cancel = slurm(["scancel", "\(array)_\(task)"])
                XCTAssertEqual(cancel.status, 0, cancel.output)
                // wait until the task has ended, then see whether the cancel came in time
                try waitForJobs(["\(array)_\(task)"])
                if !(try isDone(run)) { return task }
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTFail("no task was caught mid-run: the runs are too short for this test")
        throw XCTSkip("no task cancelled")
    }

    // MARK: - The sweep directory

    /// The run directories' names in task order, from the rows of `sweep --status`.
    private func runNames(_ out: String) throws -> [String] {
        let status = try CLI.run(["sweep", "--status", out])
        XCTAssertEqual(status.status, 0, status.stderr)
        return status.stdout.split(separator: "\n").dropFirst(2).dropLast().map { String($0.split(separator: " ")[0]) }
    }

    /// Whether the run finished or diverged.
    private func isDone(_ run: String) throws -> Bool {
        try isFinished(run) || FileManager.default.fileExists(atPath: run + "/diverged.txt")
    }

    /// Whether the run's metrics reach the sweep's 20 steps.
    private func isFinished(_ run: String) throws -> Bool {
        guard let text = try? String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8), let last = text.split(separator: "\n").last else { return false }
        return try JSONDecoder().decode(EpochMetrics.self, from: Data(last.utf8)).step >= 20
    }

    private func summaryRows(_ out: String) throws -> [String] {
        try String(contentsOfFile: out + "/summary.csv", encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// Every file of a run directory: its path, modification time and contents.
    private func snapshot(_ run: String) throws -> [String] {
        let fm = FileManager.default
        return try (fm.subpathsOfDirectory(atPath: run)).sorted().flatMap { file -> [String] in
            let path = run + "/" + file
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { return [file] }
            let modified = (try fm.attributesOfItem(atPath: path)[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return [file, "\(modified)", try Data(contentsOf: URL(fileURLWithPath: path)).base64EncodedString()]
        }
    }
}
