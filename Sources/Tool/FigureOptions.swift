import ArgumentParser

extension FigureFormat: ExpressibleByArgument {}

/// `--scale`: how large the commands that draw image tiles draw them.
struct TileOptions: ParsableArguments {
    @Option(help: "Draw image tiles N times their usual size (nearest neighbour), 1 to 8; text keeps its size.")
    var scale = 1

    func validate() throws {
        guard (1...8).contains(scale) else { throw ValidationError("--scale must be 1 to 8, not \(scale)") }
    }
}

/// `--format` and `--scale`: how the commands that draw figures write them.
struct FigureOptions: ParsableArguments {
    @Option(help: "png, or svg: vector text over the figure's tiles embedded as PNG (for papers).")
    var format: FigureFormat = .png

    @OptionGroup var tiles: TileOptions

    /// Tiles are drawn this many times their usual size.
    var scale: Int { tiles.scale }

    func validate() throws {
        try Typesetter.shared.requireFonts()
    }

    /// Throws unless the file named by `--out` ends in the format's extension.
    func validate(out: String) throws {
        guard out.lowercased().hasSuffix("." + format.rawValue) else {
            throw ValidationError("--out \(out) should end in .\(format.rawValue) for --format \(format.rawValue)")
        }
    }

    /// `stem` with the format's extension: `overview` → `overview.png`.
    func file(_ stem: String) -> String { "\(stem).\(format.rawValue)" }

    /// Writes `canvas` in the chosen format, atomically.
    func write(_ canvas: Canvas, to path: String) throws { try canvas.write(to: path, format: format) }
}
