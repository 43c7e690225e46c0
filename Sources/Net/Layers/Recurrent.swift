/// Builds the recurrent stack for `rnn|lstm|gru:H[:L]` stages.
func makeRecurrentLayer(_ kind: CellKind, hidden: Int, layers: Int, inputShape: [Int]) throws -> any Layer {
    throw ModelError.badSpec("recurrent layers are not available in this build")
}
