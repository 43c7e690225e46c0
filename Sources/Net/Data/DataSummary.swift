/// A description of a loaded data set for `deconvnet data`: format, image shape, and images per class
/// in each split. Prints as an aligned text table; encodes as JSON.
public struct DataSummary: Codable, Sendable, CustomStringConvertible {
    /// One split's counts.
    public struct Split: Codable, Sendable {
        /// "train" or "test".
        public var name: String
        /// Number of images.
        public var images: Int
        /// Images per class, in class-index order.
        public var perClass: [Int]
    }

    /// The data set's directory.
    public var path: String
    /// `DataSplits.format`.
    public var format: String
    /// Per-image shape `(C, H, W)`, nil if both splits are absent.
    public var shape: ImageShape?
    /// Class names in class-index order.
    public var classNames: [String]
    /// The splits present, train first.
    public var splits: [Split]

    /// Counts the images of `data`, loaded from `path`.
    public init(_ data: DataSplits, path: String) {
        self.path = path
        format = data.format
        shape = data.shape
        classNames = data.classNames
        splits = [("train", data.train), ("test", data.test)].compactMap { name, dataset in
            dataset.map { dataset in
                var perClass = [Int](repeating: 0, count: dataset.classNames.count)
                for label in dataset.labels { perClass[Int(label)] += 1 }
                return Split(name: name, images: dataset.count, perClass: perClass)
            }
        }
    }

    /// Several lines: path, format, shape, split sizes, then a table of images per class and split.
    public var description: String {
        let layout = DataFormat(rawValue: format)?.layout ?? format
        var lines = [
            "path:    \(path)",
            "format:  \(format) (\(layout))",
            "shape:   " + (shape.map { "\($0) (C x H x W), 8-bit" } ?? "none"),
            "splits:  " + splits.map { "\($0.name) \($0.images) images" }.joined(separator: ", "),
            "classes: \(classNames.count)",
        ]
        let nameWidth = max(5, classNames.map(\.count).max() ?? 0)
        func row(_ name: String, _ cells: [String]) -> String {
            "  " + name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                + cells.map { String(repeating: " ", count: max(0, 8 - $0.count)) + $0 }.joined()
        }
        lines.append(row("class", splits.map(\.name)))
        for (c, name) in classNames.enumerated() {
            lines.append(row(name, splits.map { String($0.perClass[c]) }))
        }
        return lines.joined(separator: "\n")
    }
}
