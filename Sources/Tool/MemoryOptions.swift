import ArgumentParser
import Net

/// `--max-memory SIZE`: the budget every size from outside is checked against (`MemoryBudget.current`).
/// It takes effect when the command line is parsed, before any command starts work.
struct MemoryOptions: ParsableArguments {
    @Option(name: .customLong("max-memory"),
            help: "Most memory one step may allocate from sizes read from files or flags: bytes, or K, M, G, T (powers of 1024). Default: half of physical memory.")
    var maxMemory: String?

    func validate() throws {
        guard let maxMemory else { return }
        guard let budget = MemoryBudget(parsing: maxMemory) else {
            throw ValidationError("--max-memory must be a size such as 4G, 512M or 1000000, not '\(maxMemory)'")
        }
        MemoryBudget.current = budget
    }
}

/// Throws unless `--size N` is from 1 to the side of the largest square image the decoders read (16384).
func validateSizeFlag(_ size: Int?) throws {
    let largest = Int(Double(Image.maximumPixels).squareRoot())
    if let size, !(1...largest ~= size) { throw ValidationError("--size must be from 1 to \(largest), not \(size)") }
}
