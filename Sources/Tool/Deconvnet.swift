import ArgumentParser

@main
struct Deconvnet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deconvnet",
        abstract: "Train small CNNs and RNNs and look inside them, Zeiler–Fergus style.",
        subcommands: [
            TrainCommand.self, EvalCommand.self, PredictCommand.self, SummaryCommand.self, DataCommand.self, ExportCommand.self,
            ProjectCommand.self, TopCommand.self, EvolutionCommand.self, FiltersCommand.self, FeatureMapsCommand.self,
            InspectCommand.self, OccludeCommand.self, CorrespondenceCommand.self, InvarianceCommand.self,
            ReportCommand.self, SweepCommand.self, CompareCommand.self, BenchCommand.self,
        ]
    )
}
