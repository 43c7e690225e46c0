import ArgumentParser
import Foundation
import Net

@main
struct Deconvnet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deconvnet",
        abstract: "Train small CNNs and RNNs and look inside them, Zeiler–Fergus style.",
        subcommands: [
            TrainCommand.self, EvalCommand.self, PredictCommand.self, SummaryCommand.self, DataCommand.self, ExportCommand.self,
            ProjectCommand.self, TopCommand.self, EvolutionCommand.self, FiltersCommand.self, FeatureMapsCommand.self,
            InspectCommand.self, OccludeCommand.self, CorrespondenceCommand.self, InvarianceCommand.self,
            ReportCommand.self, SweepCommand.self, CompareCommand.self, BenchCommand.self, ExploreCommand.self, ImportCommand.self,
        ]
    )
}

extension Deconvnet {
    /// One line for `error`: a Foundation file error by its path and cause, every other error as
    /// ArgumentParser describes it (a `LocalizedError`'s description).
    static func describe(_ error: Error) -> String {
        if let line = describeFileError(error) { return line }
        if (error as NSError).domain == NSCocoaErrorDomain { return fileErrorReason(error) }
        return message(for: error)
    }

    /// Runs the command line. A failure prints one line on stderr, `Error: <message>`, and exits with
    /// an `ExitStatus`: 64 for a bad flag or value, a `StatusError`'s own status, 1 otherwise.
    /// ArgumentParser's own `main` follows a bad flag with the usage text, which `--help` still prints.
    static func main() {
        restartWithBetterBLASKernels()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = (error as? StatusError)?.exitStatus.exitCode ?? exitCode(for: error)
            let message = describe(error)
            guard code != .success, !message.isEmpty else { exit(withError: error) }
            printError("Error: " + message)
            exit(withError: code)
        }
    }

    /// Starts this command line again, once, with `OPENBLAS_CORETYPE` set to `betterBLASKernels()` when
    /// OpenBLAS fell back to kernels older than the CPU (it reads the variable only when it is loaded).
    /// If the restart fails, the command runs on with the kernels it has.
    private static func restartWithBetterBLASKernels() {
        guard let kernels = betterBLASKernels() else { return }
        setenv("OPENBLAS_CORETYPE", kernels, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }
}
